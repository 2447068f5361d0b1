"""The TTS worker of corpus runs (mms.engines): synthesises rows {"index", "line", "text"}, writes each one's audio
file into the output folder, and yields its index.jsonl record; the same object in every engine."""

from __future__ import annotations

from typing import Iterator

from mms.options import TTSOptions
from mms.tts.synthesizer import TTS
from mms.writers.audio import SpeechWriter


class Worker:
    """settings: model, lang, device, dtype, options (TTSOptions), outdir, audio_format, subtype, count."""

    def __init__(self, settings: dict):
        self.tts = TTS.load(settings.get("model"), lang=settings.get("lang"), device=settings.get("device", "auto"),
                            dtype=settings.get("dtype", "auto"), options=TTSOptions(**settings.get("options", {})))
        self.audio = SpeechWriter(settings["outdir"], outdir=True, audio_format=settings.get("audio_format"),
                                  subtype=settings.get("subtype", "PCM_16"), count=settings.get("count", 1),
                                  index_file=False)

    @property
    def precision(self):
        """The dtype the model runs in (what --dtype auto chose here); recorded in run.json."""
        return self.tts.dtype

    def describe(self) -> str:
        return self.tts.describe()

    def run(self, rows: list[dict]) -> Iterator[dict]:
        speeches = self.tts.synthesize_iter([(row.get("line"), row["text"]) for row in rows])
        for row, speech in zip(rows, speeches):
            speech.index = row["index"]  # the file is named by the input's place in the whole list
            self.audio.write(speech)
            yield self.audio.record(speech)

    def close(self) -> None:
        self.audio.close()
