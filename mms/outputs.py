"""Writing results: atomic files and the txt/jsonl/json/tsv result formats.

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
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return "".join(line + "\n" for line in lines)
