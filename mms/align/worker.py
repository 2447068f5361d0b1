"""The alignment worker of corpus runs (mms.engines): aligns rows (one (audio, transcript) pair each), writes
each pair's directory (mms.writers.alignment) and yields a short record of it; the same object in every engine."""

from __future__ import annotations

from typing import Iterator

from mms.align.aligner import Aligner, Pair, stretched_lines, unlikely_lines
from mms.options import AlignOptions
from mms.writers import WriterError
from mms.writers.alignment import AlignmentWriter


class Worker:
    """settings: model, lang, dict_path, device, dtype, star, outdir, options (AlignOptions)."""

    def __init__(self, settings: dict):
        self.aligner = Aligner.load(settings.get("model"), lang=settings.get("lang"),
                                    device=settings.get("device", "auto"), dtype=settings.get("dtype", "auto"),
                                    dict_path=settings.get("dict_path"),
                                    options=AlignOptions(**settings.get("options", {})))
        # the caller chose what to (re)do; each pair's directory is rewritten whole
        self.writer = AlignmentWriter(settings["outdir"], single=False, overwrite=True)
        self.star, self.lang = settings.get("star", False), settings.get("lang")

    @property
    def precision(self):
        """The dtype the model runs in (what --dtype auto chose here); recorded in run.json."""
        return self.aligner.runner.dtype

    def describe(self) -> str:
        runner = self.aligner.runner
        return (f"{runner.checkpoint.format} model {runner.checkpoint.path}, device {runner.device}, romanize "
                f"{self.aligner.romanize}, normalize audio {self.aligner.normalize_audio}")

    def run(self, rows: list[dict]) -> Iterator[dict]:
        for row in rows:  # a manifest line that could not be read: its error is its record
            if row.get("error"):
                yield {"index": row["index"], "audio": row["audio"], "name": None, "lang": row.get("lang"),
                       "duration": None, "lines": 0, "error": row["error"], "unspelled": None, "lost_words": None}
        rows = [row for row in rows if not row.get("error")]
        pairs = [Pair(row["audio"], row.get("text_path"), row.get("lang"), row.get("text"), row.get("name"))
                 for row in rows]
        for row, result in zip(rows, self.aligner.align_iter(pairs, star=self.star, lang=self.lang, keep_audio=True)):
            try:
                self.writer.write(result)
            except WriterError as e:
                result.error = str(e)
            yield {"index": row["index"], "audio": result.audio, "name": result.name, "lang": result.lang,
                   "duration": result.duration, "lines": len(result.lines), "error": result.error,
                   "unspelled": result.unspelled, "lost_words": result.lost_words,
                   "unlikely": unlikely_lines(result.lines), "stretched": stretched_lines(result.lines)}

    def close(self) -> None:
        pass  # the gathered manifest.json of the whole run is written by the command, which knows every pair
