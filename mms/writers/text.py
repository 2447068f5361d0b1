"""The line formats of ASR and LID results: txt, tsv, srt/vtt subtitles, fairseq's LID predictions.txt."""

from __future__ import annotations

import json
import os

from mms.files import check_writable, write_text_atomic
from mms.results import Word, cues
from mms.writers import LineWriter, Writer, WriterError


def one_line(value) -> str:
    """A field for a line-based format: None -> "", tabs and newlines -> spaces."""
    if value is None:
        return ""
    text = str(value)
    for separator in ("\r\n", "\r", "\n", "\t"):
        text = text.replace(separator, " ")
    return text


def seconds(value) -> str:
    return "" if value is None else f"{float(value):.3f}"


class TranscriptTxtWriter(LineWriter):
    """The text alone for a single input, else `audio<TAB>text` per input."""

    def __init__(self, dest: str, single: bool = False, append: bool = False):
        self.single = single
        super().__init__(dest, append)

    def format(self, record: dict) -> str:
        text = one_line(record.get("text"))
        return f"{text}\n" if self.single else f"{one_line(record['audio'])}\t{text}\n"


class TranscriptTsvWriter(LineWriter):
    COLUMNS = ("audio", "lang", "duration", "text", "error")
    header = "\t".join(COLUMNS) + "\n"

    def __init__(self, dest: str, single: bool = False, append: bool = False):
        super().__init__(dest, append)

    def format(self, record: dict) -> str:
        row = (record["audio"], record.get("lang"), seconds(record.get("duration")), record.get("text"),
               record.get("error"))
        return "\t".join(one_line(x) if i != 2 else x for i, x in enumerate(row)) + "\n"


def _timestamp(value: float, decimal: str) -> str:
    millis = max(0, int(round(value * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def format_cue(number: int, start: float, end: float, text: str, fmt: str) -> str:
    """One SubRip cue (numbered, "00:00:01,500 --> ...") or WebVTT cue ("." in times)."""
    decimal = "," if fmt == "srt" else "."
    head = f"{number}\n" if fmt == "srt" else ""
    text = one_line(text)
    if fmt == "vtt":  # WebVTT cue text is markup: a literal & or < must be escaped (`<b>` would be bold)
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"{head}{_timestamp(start, decimal)} --> {_timestamp(end, decimal)}\n{text}\n"


def format_subtitles(segments: list[tuple[float, float, str]], fmt: str) -> str:
    """A whole subtitle file of (start, end, text) cues."""
    blocks = ["WEBVTT\n"] if fmt == "vtt" else []
    blocks += [format_cue(n, start, end, text, fmt) for n, (start, end, text) in enumerate(segments, 1)]
    return "\n".join(blocks)


class SubtitleWriter(Writer):
    """SubRip or WebVTT cues of one result's timed words (without words: its whole text over its duration;
    nothing for a failed input; a second result is refused). One document (one recording's clock), so it is written
    atomically when the run ends: an interrupted run, or an input that failed, leaves an existing file as it was."""

    def __init__(self, dest: str, fmt: str = "srt", single: bool = False):
        self.dest, self.fmt, self.count, self.failed = os.fspath(dest), fmt, 0, False
        self.parts = ["WEBVTT\n" if fmt == "vtt" else ""]
        self.first = fmt != "vtt"
        try:
            check_writable(self.dest)  # now, not after the recording is transcribed
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None

    def write(self, result) -> None:
        if len(self.parts) > 1:  # (the header, then a result's cues): a second recording's would overlap them
            raise WriterError(f"{self.dest}: a subtitle file holds one recording's cues; write one file per "
                              f"recording, or jsonl for several")
        record = result.to_dict()
        self.failed = self.failed or bool(record.get("error"))
        self.parts.append(self.format(record))

    def close(self, complete: bool = True) -> None:
        if not complete or (self.failed and not self.count):
            return
        try:
            write_text_atomic(self.dest, "".join(self.parts))
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None

    def format(self, record: dict) -> str:
        words = [Word(w["text"], w["start"], w["end"]) for w in record.get("words") or []]
        if words:
            timed = [(c.start, c.end, c.text) for c in cues(words)]
        else:
            text = one_line(record.get("text")).strip()
            timed = [(0.0, float(record.get("duration") or 0.0), text)] if text else []
        out = []
        for start, end, text in timed:
            self.count += 1
            separator = "" if self.first else "\n"
            self.first = False
            out.append(separator + format_cue(self.count, start, end, text, self.fmt))
        return "".join(out)


class LanguageTxtWriter(LineWriter):
    """`audio<TAB>eng 0.9812 fra 0.0101 ...` (with --names: `eng (English) 0.9812`); the predictions alone for a
    single input."""

    def __init__(self, dest: str, single: bool = False, append: bool = False):
        self.single = single
        super().__init__(dest, append)

    def format(self, record: dict) -> str:
        names = record.get("names") or [None] * len(record["predictions"])
        text = " ".join(f"{code}{f' ({name})' if name else ''} {p:.4f}"
                        for (code, p), name in zip(record["predictions"], names))
        if record.get("error"):
            text = f"error: {record['error']}"
        return f"{text}\n" if self.single else f"{one_line(record['audio'])}\t{text}\n"


class LanguageTsvWriter(LineWriter):
    """audio, lang, (name,) probability, predictions (code:probability ...), duration, error."""

    def __init__(self, dest: str, names: bool = False, single: bool = False, append: bool = False):
        self.names = names
        self.header = "\t".join(("audio", "lang") + (("name",) if names else ()) +
                                ("probability", "predictions", "duration", "error")) + "\n"
        super().__init__(dest, append)

    def format(self, record: dict) -> str:
        top = record["predictions"][0] if record["predictions"] else ("", "")
        row = [record["audio"], top[0]]
        if self.names:
            row.append((record.get("names") or [""])[0] or "" if record["predictions"] else "")
        row += [str(top[1]), " ".join(f"{code}:{p}" for code, p in record["predictions"]),
                seconds(record.get("duration")), record.get("error") or ""]
        return "\t".join(one_line(field) for field in row) + "\n"


class PredictionsWriter(LineWriter):
    """fairseq examples/mms/lid/infer.py's predictions.txt: one JSON list of [label, probability] per input, in
    input order ([] for an input that failed). A directory as `dest` (or a path ending in "/") gets
    DIR/predictions.txt."""

    def __init__(self, dest: str, single: bool = False, append: bool = False):
        import os

        if dest != "-" and (os.path.isdir(dest) or dest.endswith(("/", os.sep))):  # `out/` may not exist yet
            dest = os.path.join(dest, "predictions.txt")
        super().__init__(dest, append)

    def format(self, record: dict) -> str:
        return json.dumps(record["predictions"]) + "\n"
