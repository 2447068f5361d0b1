"""The audio output of text to speech: one file (`--wav PATH`, "-" for standard output), or a folder of numbered
files (0001.wav, 0002.wav, ... numbered by input position) with DIR/index.jsonl, one record per input (its
`path`: the file's name, relative to the index).

Each file is written atomically (mms.audio.write_audio) as its result arrives, and its index.jsonl line is
written and flushed right after, so a killed run keeps every finished line and file. A file that cannot be
written becomes that result's error (and its record says so); the other inputs carry on. No torch here: a
result is read through `wave`, `sample_rate`, `index`, `name`, `error`, `path` and `to_dict()`.
"""

from __future__ import annotations

import os

from mms.audio import WRITE_FORMATS, write_audio
from mms.writers import JsonlWriter, Writer, WriterError


class SpeechWriter(Writer):
    """`dest` is the one output file, or with `outdir` the output folder; `audio_format` "wav" or "flac" (default: a
    single file's suffix, else wav); `subtype` "PCM_16" or "FLOAT" (wav only); `count`: the number of inputs
    (the width of the file numbers, at least 4 digits); `index_file`: write DIR/index.jsonl."""

    def __init__(self, dest: str, outdir: bool = False, audio_format: str | None = None, subtype: str = "PCM_16",
                 count: int = 1, index_file: bool = True):
        self.dest, self.outdir, self.subtype = os.fspath(dest), outdir, subtype
        self.fmt = audio_format or ("wav" if outdir else None)  # a single file: write_audio reads its suffix
        self.width = max(4, len(str(count)))
        self.written = 0
        if not outdir and self.dest != "-":  # now, not as an error of the synthesised result
            fmt = (audio_format or os.path.splitext(self.dest)[1].lstrip(".")).lower()
            if os.path.isdir(self.dest):
                raise WriterError(f"{self.dest}: is a directory (a folder of numbered files: outdir=True)")
            if "." + fmt not in WRITE_FORMATS:
                raise WriterError(f"{self.dest}: cannot write audio format {fmt or '(no suffix)'!r}; use .wav or .flac")
        # index.jsonl here, unless a corpus run (mms.engines) writes the records itself
        self.index = JsonlWriter(os.path.join(self.dest, "index.jsonl")) if outdir and index_file else None

    def path_of(self, result) -> str:
        if not self.outdir:
            return self.dest
        return os.path.join(self.dest, f"{result.index + 1:0{self.width}d}.{self.fmt}")

    def write(self, result) -> None:
        if not self.outdir and self.written:
            raise WriterError(f"{self.dest}: one output file takes one text; give a folder for several")
        self.written += 1
        if result.error is None:
            path = self.path_of(result)
            try:
                write_audio(path, result.wave, result.sample_rate, fmt=self.fmt, subtype=self.subtype)
                result.path = path
            except (OSError, RuntimeError, ValueError) as e:  # soundfile's errors are RuntimeErrors
                result.error = f"{result.name}: {path}: cannot write audio ({getattr(e, 'strerror', None) or e})"
        if self.index is not None:
            self.index.write_record(self.record(result))

    def record(self, result) -> dict:
        """The index.jsonl record of a result: in a folder, `path` is the file's name, relative to the index as
        manifest paths are (`mms asr --manifest DIR/index.jsonl` reads the files; the folder can move)."""
        record = result.to_dict()
        if self.outdir and record.get("path"):
            record["path"] = os.path.basename(record["path"])
        return record

    def close(self, complete: bool = True) -> None:
        if self.index is not None:
            self.index.close(complete)
