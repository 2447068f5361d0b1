"""One writer layer for every task and format: `get_writer(task, fmt, dest)` (whisper's shape).

A writer takes the results of a task's lazy iterator one at a time, in input order:

    with get_writer("asr", "jsonl", "out.jsonl") as writer:
        for result in asr.transcribe_iter(inputs):
            writer.write(result)

Line formats (txt, jsonl, tsv, fairseq predictions.txt, the TTS index.jsonl) are streamed: each result is
written and flushed as soon as it arrives, so memory does not grow with the number of inputs and a killed run
leaves every finished record intact (and at most one partial last line). Single documents (json, and srt/vtt
subtitles of one recording) are collected and written atomically when the writer closes without an error. Directory outputs (TTS audio
files, alignment directories) write each result's files atomically as it arrives.

No torch here: writers read results through `to_dict()` and a few plain attributes (mms.results).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys

from mms.errors import MMSError
from mms.files import check_writable, ensure_parent, json_text, write_text_atomic


class WriterError(MMSError):
    """An output that cannot be written (a bad format for the task, an unwritable path)."""


class Writer:
    """Base of every writer: `write(result)` per result, `close()` once (a context manager closes it)."""

    def write(self, result) -> None:
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        """Finish the output; `complete` is False when the run stopped on an exception."""

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        self.close(complete=kind is None)


class LineWriter(Writer):
    """A text output streamed line by line to a file or standard output ("-"), flushed after each result.
    `append` continues an existing file (its header is not written again)."""

    header = ""

    def __init__(self, dest: str, append: bool = False):
        self.dest = os.fspath(dest)
        if self.dest == "-":
            if sys.stdout is None:  # started with standard output closed (`>&-`)
                raise WriterError("standard output is closed: give --output FILE")
            self.file, continuing = sys.stdout, False
        else:
            continuing = append and os.path.exists(self.dest) and os.path.getsize(self.dest) > 0
            try:
                ensure_parent(self.dest)
                # surrogateescape: a file name that is not UTF-8 (txt, tsv) is written as the bytes it has on disk
                self.file = open(self.dest, "a" if append else "w", encoding="utf-8", errors="surrogateescape",
                                 newline="")
            except OSError as e:
                raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None
        if self.header and not continuing:
            self._put(self.header)

    def _put(self, text: str) -> None:
        try:
            self.file.write(text)
            self.file.flush()
        except BrokenPipeError:  # `mms asr ... | head -1`: the reader has gone, which is not a failure
            raise
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None

    def format(self, record: dict) -> str:
        """The text of one record, ending with a newline (or "" for nothing)."""
        raise NotImplementedError

    def write(self, result) -> None:
        self.write_record(result.to_dict())

    def write_record(self, record: dict) -> None:
        self._put(self.format(record))

    def close(self, complete: bool = True) -> None:
        if self.file is not sys.stdout:
            self.file.close()
        else:
            self.file.flush()


class JsonlWriter(LineWriter):
    def format(self, record: dict) -> str:
        return json_text(record) + "\n"


class JsonWriter(Writer):
    """One JSON list of every record, written atomically at the end (a document cannot be streamed)."""

    def __init__(self, dest: str, append: bool = False):
        if append:
            raise WriterError("json output is one document and cannot be continued; use jsonl")
        self.dest, self.records = os.fspath(dest), []
        try:
            check_writable(self.dest)  # now, not after the whole run
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None

    def write(self, result) -> None:
        self.records.append(result.to_dict())

    def close(self, complete: bool = True) -> None:
        if not complete:
            return
        try:
            write_text_atomic(self.dest, json_text(self.records, indent=2) + "\n")
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None


# (task, format) -> "module:class"; a module is imported only when its format is used.
WRITERS = {
    **{(task, "jsonl"): "mms.writers:JsonlWriter" for task in ("asr", "lid", "tts", "align")},
    **{(task, "json"): "mms.writers:JsonWriter" for task in ("asr", "lid")},
    ("asr", "txt"): "mms.writers.text:TranscriptTxtWriter",
    ("asr", "tsv"): "mms.writers.text:TranscriptTsvWriter",
    ("asr", "srt"): "mms.writers.text:SubtitleWriter",
    ("asr", "vtt"): "mms.writers.text:SubtitleWriter",
    ("lid", "txt"): "mms.writers.text:LanguageTxtWriter",
    ("lid", "tsv"): "mms.writers.text:LanguageTsvWriter",
    ("lid", "fairseq"): "mms.writers.text:PredictionsWriter",
    ("tts", "audio"): "mms.writers.audio:SpeechWriter",
    ("align", "dir"): "mms.writers.alignment:AlignmentWriter",
}


def formats(task: str) -> tuple[str, ...]:
    return tuple(fmt for t, fmt in WRITERS if t == task)


# every writer's options (a format takes those it has a use for)
WRITER_OPTIONS = {"single", "append", "overwrite", "outdir", "audio_format", "subtype", "count", "index_file", "names"}


def get_writer(task: str, fmt: str, dest: str, **options) -> Writer:
    """The writer of `task`'s results in format `fmt` to `dest` (a file, "-" for standard output, or a
    directory for directory outputs). Options go to the writer (e.g. single=True for a one-input txt, append=True
    to continue a file)."""
    if (task, fmt) not in WRITERS:
        raise WriterError(f"unknown output format {fmt!r} for {task}; choose one of {', '.join(formats(task))}")
    module, name = WRITERS[task, fmt].split(":")
    unknown = sorted(set(options) - WRITER_OPTIONS)
    if unknown:  # (a misspelt option had been dropped as one this format has no use for)
        raise TypeError(f"get_writer: unknown option {', '.join(unknown)}; known: {', '.join(sorted(WRITER_OPTIONS))}")
    cls = getattr(importlib.import_module(module), name)
    if fmt in ("srt", "vtt"):
        options["fmt"] = fmt
    accepted = inspect.signature(cls).parameters  # options a format has no use for are ignored
    return cls(dest, **{k: v for k, v in options.items() if k in accepted})
