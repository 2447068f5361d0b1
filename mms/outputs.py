"""Writing results: atomic files, the txt/jsonl/json/tsv result formats and srt/vtt subtitles.

An ASR result record is a plain dict:
    audio     str, the input path
    lang      str or None
    text      str, "" when that input failed
    duration  float seconds or None
    error     str, present only when that input failed
    words     optional list of {"word", "start", "end"}
and possibly other keys, which jsonl/json keep and txt/tsv ignore.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from collections.abc import Iterator

FORMATS = ("txt", "jsonl", "json", "tsv")
SUBTITLE_FORMATS = ("srt", "vtt")  # format_results makes cues of the records' timed words (see subtitle_cues)

# Subtitle cues from timed words: a new cue when the text would pass MAX_CUE_CHARS, the cue would last more
# than MAX_CUE_SECONDS, or the speaker pauses for more than MAX_CUE_GAP seconds between two words.
MAX_CUE_CHARS = 42
MAX_CUE_SECONDS = 7.0
MAX_CUE_GAP = 1.0

TSV_COLUMNS = ("audio", "lang", "duration", "text", "error")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to `path`; move it onto `path` on success.

    Readers never see a half-written file, and an exception leaves an existing
    `path` untouched. The temporary file is not created here, so the writer
    creates it with normal permissions (mkstemp would make it 0600).
    Parent directories are created.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    temp_path = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        yield temp_path
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` as utf-8 to `path` atomically; "-" means standard output."""
    if os.fspath(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(path) as temp_path:
        with open(temp_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def _one_line(value) -> str:
    """A field for a line-based format: None -> "", tabs and newlines -> spaces."""
    if value is None:
        return ""
    text = str(value)
    for separator in ("\r\n", "\r", "\n", "\t"):
        text = text.replace(separator, " ")
    return text


def _format_duration(duration) -> str:
    if duration is None:
        return ""
    return f"{float(duration):.3f}"


def format_results(records: list[dict], fmt: str) -> str:
    """Render result records in one of FORMATS.

    The result ends with a newline unless there is nothing to write:
    txt and jsonl give "" for no records, json gives "[]\\n" and tsv gives
    just its header line.
    """
    if fmt == "txt":
        if len(records) == 1:
            lines = [_one_line(records[0].get("text"))]
        else:
            lines = [
                f"{_one_line(r['audio'])}\t{_one_line(r.get('text'))}" for r in records
            ]
    elif fmt == "jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
    elif fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "tsv":
        lines = ["\t".join(TSV_COLUMNS)]
        for r in records:
            row = (
                _one_line(r["audio"]),
                _one_line(r.get("lang")),
                _format_duration(r.get("duration")),
                _one_line(r.get("text")),
                _one_line(r.get("error")),
            )
            lines.append("\t".join(row))
    elif fmt in SUBTITLE_FORMATS:
        return format_subtitles([cue for r in records for cue in subtitle_cues(r)], fmt)
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS + SUBTITLE_FORMATS)}")
    return "".join(line + "\n" for line in lines)


def subtitle_cues(record: dict) -> list[tuple[float, float, str]]:
    """(start, end, text) cues of one result: its `words` ({"word" or "text", "start", "end"}) grouped into
    short cues; without words, the whole text over the whole duration; nothing for a failed input."""
    words = record.get("words")
    if not words:
        text = _one_line(record.get("text")).strip()
        return [(0.0, float(record.get("duration") or 0.0), text)] if text else []
    cues, current = [], []
    for word in words:
        text = word.get("word", word.get("text", ""))
        if current:
            joined = " ".join(w[2] for w in current) + " " + text
            if (len(joined) > MAX_CUE_CHARS or word["end"] - current[0][0] > MAX_CUE_SECONDS
                    or word["start"] - current[-1][1] > MAX_CUE_GAP):
                cues.append((current[0][0], current[-1][1], " ".join(w[2] for w in current)))
                current = []
        current.append((float(word["start"]), float(word["end"]), text))
    cues.append((current[0][0], current[-1][1], " ".join(w[2] for w in current)))
    return cues


def _timestamp(seconds: float, decimal: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def format_subtitles(cues: list[tuple[float, float, str]], fmt: str) -> str:
    """SubRip (numbered cues, "00:00:01,500 --> 00:00:02,000") or WebVTT ("WEBVTT" header, "." in times)."""
    if fmt not in SUBTITLE_FORMATS:
        raise ValueError(f"unknown subtitle format {fmt!r}; choose one of {', '.join(SUBTITLE_FORMATS)}")
    decimal = "," if fmt == "srt" else "."
    blocks = ["WEBVTT\n"] if fmt == "vtt" else []
    for n, (start, end, text) in enumerate(cues, 1):
        times = f"{_timestamp(start, decimal)} --> {_timestamp(end, decimal)}"
        number = f"{n}\n" if fmt == "srt" else ""
        blocks.append(f"{number}{times}\n{_one_line(text)}\n")
    return "\n".join(blocks)
