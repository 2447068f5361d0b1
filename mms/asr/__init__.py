"""Speech recognition. `from mms.asr import ASR` (imports torch on first use, not on package import)."""


def __getattr__(name):
    if name in ("ASR", "Transcript"):
        from mms.asr import transcriber

        return getattr(transcriber, name)
    raise AttributeError(name)
