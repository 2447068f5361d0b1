"""Text to speech (MMS-TTS, VITS). `from mms.tts import TTS` (imports torch on first use, not on package import)."""


def __getattr__(name):
    if name == "TextError":  # torch-free
        from mms.text.tts_text import TextError

        return TextError
    if name in ("TTS", "Speech"):
        from mms.tts import synthesizer

        return getattr(synthesizer, name)
    raise AttributeError(name)
