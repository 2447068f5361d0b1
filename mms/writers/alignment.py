"""The `mms align` output directory, written as each alignment finishes (results of mms.align's align_iter).

Per aligned pair, in its directory (--outdir itself for one pair, --outdir/<pair name>/ in a manifest run):
    segment{i}.flac       the audio of line i (16 kHz, the channel that was aligned)
    manifest.json         fairseq data_prep's JSON lines (its keys, in its order, json.dumps defaults)
    subtitles.srt/.vtt    one cue per line of text
    alignment.json        every line, word and character with times and scores; written last, so that it
                          marks the directory as finished
A manifest run also gets --outdir/manifest.json, every pair's lines in pair order, written when the writer
closes (complete or not), and skips pairs finished before (`done`), so that a stopped run resumes.

Works from the result's attributes (lines, wave, name, error) and to_dict(); no torch, no mms.align (writers
sit below the tasks).
"""

from __future__ import annotations

import json
import os
from glob import escape, glob

from mms.audio import SAMPLE_RATE, write_audio
from mms.files import ensure_parent, json_text, write_text_atomic
from mms.writers import Writer, WriterError
from mms.writers.text import format_subtitles


class AlignmentWriter(Writer):
    """`single`: one pair, written into `dest` itself, which must be empty unless `overwrite`; else a
    manifest run: each pair in dest/<its name>/, finished pairs kept unless `overwrite`."""

    def __init__(self, dest: str, single: bool = False, overwrite: bool = False):
        self.dest, self.single, self.overwrite = os.fspath(dest), single, overwrite
        if single and not overwrite and os.path.isdir(self.dest) and os.listdir(self.dest):
            raise WriterError(f"{self.dest}: output directory exists and is not empty (use --overwrite)")
        if os.path.exists(self.dest) and not os.path.isdir(self.dest):
            raise WriterError(f"{self.dest}: is a file; --outdir names a folder")
        self.made = not os.path.exists(self.dest)  # (a folder made here and left empty by a failure goes again)
        try:  # before any audio is read: a file in the way of the folder is a usage error
            ensure_parent(os.path.join(self.dest, "alignment.json"))
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None
        self.manifests: dict[str, list[str]] = {}  # a manifest run's pairs in order -> their manifest lines

    def directory(self, name: str) -> str:
        if self.single:
            return self.dest
        if not name or name == os.pardir or os.sep in name or os.path.isabs(name):
            # (a path as a name wrote outside dest, or nested folders two pairs could share)
            raise WriterError(f"{name!r}: not a pair name for a folder in {self.dest} (Aligner.align_iter names "
                              f"pairs from their audio files)")
        return os.path.join(self.dest, name)

    def done(self, name: str) -> bool:
        """Whether a manifest run's pair `name` was finished by an earlier run (its alignment.json exists) and
        is kept (no `overwrite`); its manifest lines are then gathered from its directory. Call it for every
        pair, in order: it also gives the pair its place in the gathered manifest.json."""
        if self.single:
            return False
        self.manifests.setdefault(name, [])
        target = self.directory(name)
        if self.overwrite or not os.path.exists(os.path.join(target, "alignment.json")):
            return False
        with open(os.path.join(target, "manifest.json"), encoding="utf-8") as f:
            self.manifests[name] = f.read().splitlines()
        return True

    def gather(self, names: list[str]) -> None:
        """Gather the manifest lines of every finished pair among `names` (in that order), whichever process
        finished it: after a sharded or Ray run the top-level manifest.json lists them all."""
        self.manifests = {}
        for name in names:
            path = os.path.join(self.directory(name), "manifest.json")
            finished = os.path.exists(os.path.join(self.directory(name), "alignment.json"))
            if finished and os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    self.manifests[name] = f.read().splitlines()

    def write(self, result) -> None:
        if result.error is not None:  # nothing to write; the runner reports it
            return
        if result.wave is None:
            raise WriterError(f"{result.name}: an alignment directory needs the aligned audio (keep_audio=True)")
        target = self.directory(result.name)
        try:
            lines = write_alignment(result, target)
        except OSError as e:
            raise WriterError(f"{target}: cannot write output ({e.strerror or e})") from None
        if not self.single:
            self.manifests[result.name] = lines

    def close(self, complete: bool = True) -> None:
        if self.single:
            if self.made and os.path.isdir(self.dest) and not os.listdir(self.dest):
                os.rmdir(self.dest)
            return
        gathered = [line for lines in self.manifests.values() for line in lines]
        try:
            write_text_atomic(os.path.join(self.dest, "manifest.json"), "".join(x + "\n" for x in gathered))
        except OSError as e:
            raise WriterError(f"{self.dest}: cannot write output ({e.strerror or e})") from None


def manifest_lines(result, outdir: str) -> list[str]:
    """data_prep's manifest.json lines (its keys, in its order, json.dumps defaults, times unrounded)."""
    return [json.dumps({
        "audio_start_sec": line.start,
        "audio_filepath": os.path.join(outdir, f"segment{line.index}.flac"),  # "out/" gives no "//"
        "duration": line.end - line.start,
        "text": line.text,
        "normalized_text": line.normalized_text,
        "uroman_tokens": line.tokens,
    }) for line in result.lines]


def write_alignment(result, outdir: str) -> list[str]:
    """segment{i}.flac, manifest.json, subtitles.srt/.vtt, then alignment.json (written last: it marks the
    directory as finished). Returns the manifest lines."""
    os.makedirs(outdir, exist_ok=True)
    finished = os.path.join(outdir, "alignment.json")
    if os.path.exists(finished):  # an earlier run's (--overwrite): unmarked first, so that a kill part-way
        os.remove(finished)  # leaves a directory that a resumed run redoes, not a mix it takes as finished
    for old in glob(os.path.join(escape(outdir), "segment*.flac")):
        os.remove(old)
    for line in result.lines:
        first, last = int(round(line.start * SAMPLE_RATE)), int(round(line.end * SAMPLE_RATE))
        last = max(last, first + 1)  # a zero-length line still gets a readable file (an empty FLAC is not)
        write_audio(os.path.join(outdir, f"segment{line.index}.flac"), result.wave[first:last], SAMPLE_RATE)
    lines = manifest_lines(result, outdir)
    write_text_atomic(os.path.join(outdir, "manifest.json"), "".join(x + "\n" for x in lines))
    cues = [(line.start, line.end, line.text) for line in result.subtitles]
    for fmt in ("srt", "vtt"):
        write_text_atomic(os.path.join(outdir, f"subtitles.{fmt}"), format_subtitles(cues, fmt))
    write_text_atomic(os.path.join(outdir, "alignment.json"),
                      json_text(result.to_dict(), indent=1) + "\n")
    return lines
