"""Lists of audio inputs: fairseq tsv manifests, JSON lines, or plain path lists."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from mms.errors import MMSError

log = logging.getLogger("mms.manifest")

# JSON lines: the keys that may hold the audio path, the first present wins.
JSON_AUDIO_KEYS = ("audio_filepath", "audio", "path")


@dataclass
class Item:
    """One input: an audio path, and optionally its language and reference text."""

    audio: str
    lang: str | None = None
    text: str | None = None
    error: str | None = None  # why its manifest line could not be read (`audio` is then "manifest:line")

    def __post_init__(self):
        if isinstance(self.audio, (bytes, os.PathLike)):  # a pathlib.Path: its records are JSON, as a str's
            self.audio = os.fsdecode(self.audio)


class ManifestError(MMSError):
    """A manifest that cannot be read; str() is one line: "file:line: reason"."""

    def __init__(self, path: str | os.PathLike, line: int | None, reason: str):
        self.path = os.fspath(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}".replace("\n", " "))

    def __reduce__(self):
        # Custom __init__ arguments: without this the error cannot be pickled.
        return (type(self), (self.path, self.line, self.reason))


def read_manifest(path: str | os.PathLike, keep_bad_lines: bool = False) -> list[Item]:
    """Read a manifest, telling its format from the suffix or first character.

    .tsv: fairseq (root directory line, then path<TAB>num_samples lines);
    .jsonl/.json or a first non-blank "{": one JSON object per line;
    anything else: one audio path per line, "#" comments and blanks skipped.
    Relative paths are relative to the manifest's directory; the returned
    paths are absolute when the manifest names them relatively.
    A line that cannot be read raises ManifestError, or with `keep_bad_lines` becomes an Item named
    "manifest:line" whose `error` says why (a batch run reports it in that input's place and goes on).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ManifestError(path, None, "is a directory, not a manifest file")
    try:
        # utf-8-sig: tolerate the byte order mark some editors write.
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise ManifestError(path, None, "no such file") from None
    except UnicodeDecodeError as error:
        raise ManifestError(path, None, f"not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ManifestError(path, None, f"cannot read ({error.strerror})") from None

    lines = text.splitlines()
    base_dir = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".tsv":
        items = _read_fairseq_tsv(path, lines, base_dir, keep_bad_lines)
    elif suffix in (".jsonl", ".json") or text.lstrip().startswith("{"):
        items = _read_json_lines(path, lines, base_dir, keep_bad_lines)
    else:
        items = _read_path_list(lines, base_dir)
    if not items:
        raise ManifestError(path, None, "no audio entries")
    return items


def items_from_paths(paths) -> list[Item]:
    """Items for audio paths given on the command line, used as given."""
    return [Item(audio=str(p)) for p in paths]


MANIFEST_SUFFIXES = (".tsv", ".jsonl", ".json", ".lst", ".list")


def collect_inputs(paths, manifests=(), keep_bad_lines: bool = False) -> list[Item]:
    """The inputs of a command line: the audio paths, then the items of each manifest (those given with
    --manifest first, then paths ending in a manifest suffix). Raises ManifestError (a manifest that cannot be
    read at all; a bad line too, unless `keep_bad_lines`: see read_manifest)."""
    paths = [str(p) for p in paths]
    manifests = list(manifests) + [p for p in paths if p.lower().endswith(MANIFEST_SUFFIXES)]
    items = items_from_paths([p for p in paths if not p.lower().endswith(MANIFEST_SUFFIXES)])
    for manifest in manifests:
        items += read_manifest(manifest, keep_bad_lines)
    return items


def _line_items(path: str, numbered_lines, parse, keep_bad_lines: bool) -> list[Item]:
    """parse(line_number, line) -> Item for each (number, line); a ManifestError raised, or kept as the error
    of an Item in the line's place."""
    items = []
    for line_number, line in numbered_lines:
        try:
            items.append(parse(line_number, line))
        except ManifestError as error:
            if not keep_bad_lines:
                raise
            items.append(Item(audio=f"{path}:{line_number}", error=error.reason))
    return items


def _read_fairseq_tsv(path: str, lines: list[str], base_dir: str, keep_bad_lines: bool = False) -> list[Item]:
    if not lines or not lines[0].strip():
        raise ManifestError(path, 1, "first line must be the audio root directory")
    if "\t" in lines[0]:
        raise ManifestError(path, 1, "first line must be the audio root directory, found an entry (path<TAB>samples)")
    root = os.path.join(base_dir, lines[0].strip())

    def parse(line_number: int, line: str) -> Item:
        fields = line.strip().split("\t")
        if len(fields) != 2:
            raise ManifestError(
                path, line_number,
                f"expected 2 tab-separated fields (path, num_samples), found {len(fields)}",
            )
        relative_path, num_samples = fields
        if not num_samples.strip().isdigit():
            raise ManifestError(path, line_number, f"num_samples {num_samples!r} is not a whole number")
        # Plain os.path.join, as fairseq does: root "/" with "a/b.wav" gives
        # "/a/b.wav", and an absolute entry path replaces the root entirely.
        return Item(audio=os.path.join(root, relative_path))

    numbered = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    items = _line_items(path, numbered, parse, keep_bad_lines)

    # fairseq keeps transcripts in <stem>.wrd next to the tsv, one line per entry.
    words_path = os.path.splitext(path)[0] + ".wrd"
    if os.path.isfile(words_path):
        with open(words_path, encoding="utf-8-sig") as f:
            transcripts = f.read().splitlines()
        if len(transcripts) == len(items):
            for item, transcript in zip(items, transcripts):
                item.text = transcript.strip()
        else:
            log.warning(f"{words_path}: {len(transcripts)} lines but {path} has {len(items)} entries; ignoring "
                        f"the transcripts")
    return items


def _read_json_lines(path: str, lines: list[str], base_dir: str, keep_bad_lines: bool = False) -> list[Item]:
    def parse(line_number: int, line: str) -> Item:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ManifestError(
                path, line_number, f"bad JSON ({error.msg}); expected one JSON object per line"
            ) from None
        if not isinstance(record, dict):
            raise ManifestError(path, line_number, "expected a JSON object")
        audio_key = next((key for key in JSON_AUDIO_KEYS if key in record), None)
        if audio_key is None:
            raise ManifestError(
                path, line_number, f"no audio path: needs one of {', '.join(JSON_AUDIO_KEYS)}"
            )
        audio = record[audio_key]
        if not isinstance(audio, str) or not audio:
            raise ManifestError(path, line_number, f"{audio_key!r} must be a non-empty string")
        text = record.get("text")
        if isinstance(text, (int, float)) and not isinstance(text, bool):  # a transcript that is a number: "42"
            text = json.dumps(text)
        for key, value in (("lang", record.get("lang")), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise ManifestError(path, line_number, f"{key!r} must be a string")
        return Item(audio=os.path.join(base_dir, audio), lang=record.get("lang"), text=text)

    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    return _line_items(path, numbered, parse, keep_bad_lines)


def _read_path_list(lines: list[str], base_dir: str) -> list[Item]:
    items = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        items.append(Item(audio=os.path.join(base_dir, line)))
    return items
