"""Word and character error rates, per utterance and over a corpus, as JSON-able dicts.

WER is fairseq's (examples/speech_recognition/new/infer.py): 100 * sum of word edit distances / sum of
reference word counts, words split on whitespace, over the whole corpus (not a mean of per-utterance rates).

CER is the same over characters: Unicode code points of the texts in NFC, so that a letter and its accent written
as one code point or as two (canonically the same text; a model's vocabulary may hold either) are one thing to
get right, not an error (for text already in NFC, fairseq's numbers exactly). Spaces, by default, are counted:
both strings have their whitespace collapsed to single spaces and stripped, and a space is a character
to get right, as in fairseq's training-time unit error rate, where the word boundary `|` is a unit.
`ignore_spaces=True` drops all whitespace first, as MMS lid_rerank's CER does (it spaces out the
characters and takes a word-level edit distance, which never sees the spaces).

The edit distance is Levenshtein's (unit costs). Its split into substitutions, deletions and insertions
follows one minimal alignment, preferring, where several tie, a match or substitution, then a deletion,
then an insertion (walking back from the ends); the total never depends on that choice.

An empty reference has no rate: the utterance's (or corpus's) rate is 0.0 when the hypothesis is empty
too and None (null in JSON) otherwise; its errors (all insertions) still count in the corpus totals.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Sequence

import numpy as np

from mms.errors import MMSError
from mms.files import read_text
from mms.manifest import Item, ManifestError, read_manifest

COUNTS = ("ref", "hyp", "errors", "substitutions", "deletions", "insertions")


class ScoringError(MMSError):
    """References or hypotheses that cannot be scored; str() is one line."""


def edit_counts(ref: Sequence, hyp: Sequence) -> dict:
    """{"ref", "hyp", "errors", "substitutions", "deletions", "insertions"} turning the token sequence
    `ref` into `hyp` (tokens compared with ==)."""
    symbol_ids = {}
    ref_ids = np.array([symbol_ids.setdefault(t, len(symbol_ids)) for t in ref], dtype=np.int64)
    hyp_ids = np.array([symbol_ids.setdefault(t, len(symbol_ids)) for t in hyp], dtype=np.int64)
    return _edit_counts(ref_ids, hyp_ids)


def _char_ids(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)


def _edit_counts(ref: np.ndarray, hyp: np.ndarray) -> dict:
    n, m = len(ref), len(hyp)
    substitutions = deletions = insertions = 0
    if n == 0 or m == 0:
        deletions, insertions = n, m
    else:
        # distance[i, j] turns ref[:i] into hyp[:j]. Row by row; the insertion term makes a row a running
        # minimum: with t[j] the best of match/substitution and deletion, d[i, j] = min_{k<=j} t[k] + j - k.
        columns = np.arange(m + 1, dtype=np.int32)
        differs = (ref[:, None] != hyp[None, :]).astype(np.int32)
        distance = np.empty((n + 1, m + 1), dtype=np.int32)
        distance[0] = columns
        for i in range(1, n + 1):
            previous, row = distance[i - 1], distance[i]
            row[0] = i
            np.minimum(previous[:-1] + differs[i - 1], previous[1:] + 1, out=row[1:])
            row -= columns
            np.minimum.accumulate(row, out=row)
            row += columns
        # Walk back from the end, preferring a match or substitution, then a deletion, then an insertion.
        i, j = n, m
        while i > 0 and j > 0:
            here = distance.item(i, j)
            differ = differs.item(i - 1, j - 1)
            if here == distance.item(i - 1, j - 1) + differ:
                substitutions += differ
                i -= 1
                j -= 1
            elif here == distance.item(i - 1, j) + 1:
                deletions += 1
                i -= 1
            else:
                insertions += 1
                j -= 1
        deletions += i
        insertions += j
    return {
        "ref": n,
        "hyp": m,
        "errors": substitutions + deletions + insertions,
        "substitutions": substitutions,
        "deletions": deletions,
        "insertions": insertions,
    }


def error_rate(counts: dict) -> float | None:
    """100 * errors / reference length; for an empty reference 0.0 if there are no errors, else None."""
    if counts["ref"]:
        return 100.0 * counts["errors"] / counts["ref"]
    return 0.0 if counts["errors"] == 0 else None


def score_utterance(ref: str, hyp: str, ignore_spaces: bool = False) -> dict:
    """WER and CER of one hypothesis against its reference, with their counts (both in NFC first)."""
    ref, hyp = unicodedata.normalize("NFC", ref), unicodedata.normalize("NFC", hyp)
    words = edit_counts(ref.split(), hyp.split())
    separator = "" if ignore_spaces else " "
    chars = _edit_counts(_char_ids(separator.join(ref.split())), _char_ids(separator.join(hyp.split())))
    return {"wer": error_rate(words), "cer": error_rate(chars), "words": words, "chars": chars}


class CorpusScorer:
    """Corpus WER and CER summed one utterance at a time: only the running edit counts are kept, never the texts,
    so a stream of any length (`mms asr --ref`) is scored in constant memory.

        scorer = CorpusScorer()
        for ref, hyp in pairs:
            scorer.add(ref, hyp)
        scorer.summary()  # as score(refs, hyps, per_utterance=False)
    """

    def __init__(self, ignore_spaces: bool = False):
        self.ignore_spaces = ignore_spaces
        self.utterances = 0
        self.totals = {"words": dict.fromkeys(COUNTS, 0), "chars": dict.fromkeys(COUNTS, 0)}

    def add(self, ref: str, hyp: str | None) -> dict:
        """Score one utterance (a hypothesis None, an input that failed, scores as empty) and add its counts;
        returns its score_utterance dict."""
        number = self.utterances + 1
        if not isinstance(ref, str):
            raise ScoringError(f"reference {number} is {type(ref).__name__}, not text")
        hyp = "" if hyp is None else hyp
        if not isinstance(hyp, str):
            raise ScoringError(f"hypothesis {number} is {type(hyp).__name__}, not text")
        result = score_utterance(ref, hyp, self.ignore_spaces)
        for level, totals in self.totals.items():
            for key in COUNTS:
                totals[key] += result[level][key]
        self.utterances = number
        return result

    def summary(self) -> dict:
        """{"utterances", "wer", "cer", "cer_spaces", "words", "chars"} of everything added so far."""
        return {
            "utterances": self.utterances,
            "wer": error_rate(self.totals["words"]),
            "cer": error_rate(self.totals["chars"]),
            "cer_spaces": "ignored" if self.ignore_spaces else "counted",
            "words": dict(self.totals["words"]),
            "chars": dict(self.totals["chars"]),
        }


def score(refs: Sequence[str], hyps: Sequence[str | None], ignore_spaces: bool = False,
          per_utterance: bool = True) -> dict:
    """Corpus WER and CER (percent) of `hyps` against `refs`, aligned by position (a CorpusScorer over the pairs).

    A hypothesis None (an input that failed) scores as empty. The result:
      {"utterances": N, "wer": float|None, "cer": float|None, "cer_spaces": "counted"|"ignored",
       "words": {ref, hyp, errors, substitutions, deletions, insertions}, "chars": {...},
       "per_utterance": [{"index", "ref", "hyp", "wer", "cer", "words", "chars"}, ...]}
    (per_utterance only when asked for).
    """
    if len(refs) != len(hyps):
        raise ScoringError(f"{len(refs)} references but {len(hyps)} hypotheses; they must pair up one to one")
    scorer = CorpusScorer(ignore_spaces)
    utterances = []
    for index, (ref, hyp) in enumerate(zip(refs, hyps)):
        result = scorer.add(ref, hyp)
        if per_utterance:
            utterances.append({"index": index, "ref": ref, "hyp": "" if hyp is None else hyp, **result})
    summary = scorer.summary()
    if per_utterance:
        summary["per_utterance"] = utterances
    return summary


def format_summary(result: dict) -> str:
    """One line for people, e.g. "WER 12.50% (25 errors / 200 words: 15 sub, 5 del, 5 ins),
    CER 4.10% (...) over 10 utterances"."""

    def part(name, rate, counts, unit):
        shown = "n/a" if rate is None else f"{rate:.2f}%"
        return (f"{name} {shown} ({counts['errors']} errors / {counts['ref']} {unit}: "
                f"{counts['substitutions']} sub, {counts['deletions']} del, {counts['insertions']} ins)")

    spaces = ", spaces ignored" if result.get("cer_spaces") == "ignored" else ""
    return (f"{part('WER', result['wer'], result['words'], 'words')}, "
            f"{part('CER', result['cer'], result['chars'], 'chars' + spaces)} "
            f"over {result['utterances']} utterances")


# ---------------------------------------------------------------------------------------------------
# Reading references (or hypotheses)


def letters_to_words(units: str) -> str:
    """fairseq's `letter` post-processing: "h e l l o | w o r l d |" -> "hello world"."""
    return " ".join(units.replace(" ", "").replace("|", " ").split())


def texts_from_items(items: Sequence[Item], source: str = "manifest") -> list[str]:
    """The `text` of each manifest item; ScoringError naming the first item without one."""
    for number, item in enumerate(items, start=1):
        if item.text is None:
            raise ScoringError(f"{source}: entry {number} ({item.audio}) has no text")
    return [item.text for item in items]


def read_texts(path: str | os.PathLike, count: int | None = None) -> list[str]:
    """One text per input, in input order, from `path`:

    * .jsonl: JSON lines with a "text" field (an mms manifest, or the jsonl results of `mms asr`);
    * .json: a JSON array of records with "text" (the json results of `mms asr`), or JSON lines;
    * .tsv: the tsv results of `mms asr` (their text column), or a fairseq manifest, whose transcripts are the
      .wrd file beside it;
    * .ltr: fairseq letter transcripts ("h e l l o | w o r l d |"), turned into words;
    * anything else (.wrd, .txt, ...): one text per line; an empty line is an empty text. Where every line
      holds a tab (`mms asr -f txt` of several inputs: `audio<TAB>text`), the text is what follows the first.
    JSON records that all carry an integer "index" (the results of `mms asr`, resumed ones too) are put in
    index order.
    count: how many inputs there are; a different number of texts is an error.
    Raises ScoringError (one line, naming the file) for anything unreadable.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    content = read_text(path, ScoringError)

    if suffix == ".tsv" and content.startswith("audio\tlang\tduration\ttext\t"):  # `mms asr -f tsv` results
        rows = [line.rstrip("\r").split("\t") for line in content.split("\n")[1:] if line.strip()]
        if any(len(row) < 4 for row in rows):
            raise ScoringError(f"{path}: a row without the text column; expected `mms asr -f tsv` results")
        texts = [row[3] for row in rows]
    elif suffix == ".tsv":
        try:
            items = read_manifest(path)
        except ManifestError as error:
            raise ScoringError(str(error)) from None
        if items[0].text is None:
            words = os.path.splitext(path)[0] + ".wrd"
            raise ScoringError(f"{path}: no transcripts; expected {words} with one line per entry")
        texts = texts_from_items(items, path)
    elif suffix in (".json", ".jsonl"):
        texts = _json_texts(path, content)[0]
    else:
        texts = content.split("\n")
        if texts[-1] == "":
            texts.pop()  # the final newline ends the last line; it does not start another
        texts = [line[:-1] if line.endswith("\r") else line for line in texts]
        if texts and all(_names_audio(line) for line in texts):
            # `mms asr -f txt` of several inputs: `audio<TAB>text` per line (its texts hold no tabs)
            texts = [line.split("\t", 1)[1] for line in texts]
        if suffix == ".ltr":
            texts = [letters_to_words(line) for line in texts]
    if count is not None and len(texts) != count:
        raise ScoringError(f"{path}: {len(texts)} texts for {count} inputs; the file must have one per input")
    return texts


def pair_by_audio(ref_path, hyp_path, hyps: list[str], log=lambda line: None) -> list[str]:
    """The hypotheses in the references' order when both files name their audio (JSON results, manifests) and
    name the same files in another order (a reversed or shuffled manifest was scored line by line against
    results, silently); a note when they name different files; else `hyps` as they are."""
    refs_audio, hyps_audio = read_audio_names(ref_path), read_audio_names(hyp_path)
    if refs_audio is None or hyps_audio is None or refs_audio == hyps_audio:
        return hyps
    if sorted(refs_audio) == sorted(hyps_audio) and len(set(refs_audio)) == len(refs_audio):
        where = {audio: i for i, audio in enumerate(hyps_audio)}
        log(f"note: {hyp_path} lists the audio of {ref_path} in another order: paired by audio file")
        return [hyps[where[audio]] for audio in refs_audio]
    line = next(i for i, (a, b) in enumerate(zip(refs_audio, hyps_audio)) if a != b)
    log(f"note: paired line by line, but entry {line + 1} is of {refs_audio[line]} in {ref_path} and of "
        f"{hyps_audio[line]} in {hyp_path}")
    return hyps


def read_audio_names(path: str | os.PathLike) -> list[str] | None:
    """The audio file each text of a JSON or JSON-lines file (`mms asr` results, a manifest) is of, in read_texts'
    order, as real paths where the file is found (relative to the working folder or to the JSON file); None where
    the file is of another kind or some record names no audio."""
    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() not in (".json", ".jsonl"):
        return None
    audios = _json_texts(path, read_text(path, ScoringError))[1]
    if audios is None:
        return None
    here = os.path.dirname(os.path.abspath(path))
    found = []
    for audio in audios:
        candidates = [audio, os.path.join(here, audio)]
        found.append(next((os.path.realpath(c) for c in candidates if os.path.exists(c)), audio))
    return found


def _names_audio(line: str) -> bool:
    """Whether a text line is `audio<TAB>text` (`mms asr -f txt` of several inputs): a tab, and before it a file
    name with a suffix (or `<array N>`). A reference that merely holds a tab is text: its words are scored."""
    first, tab, _ = line.partition("\t")
    if not tab:
        return False
    if first.startswith("<array ") and first.endswith(">"):
        return True
    suffix = os.path.splitext(first)[1]
    return 1 < len(suffix) <= 6 and suffix[1:].isalnum() and " " not in suffix


def _json_texts(path: str, content: str) -> tuple[list[str], list[str] | None]:
    """The "text" of each record of a JSON array, or of JSON lines, and its "audio" (or "audio_filepath") where
    every record has one (else None)."""
    try:
        document = json.loads(content)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, list):
        records = list(enumerate(document, start=1))
        where = "record"
    else:
        records = []
        for number, line in enumerate(content.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise ScoringError(
                    f"{path}:{number}: bad JSON ({error.msg}); expected one JSON object per line"
                ) from None
        where = "line"
    texts = []
    for number, record in records:
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise ScoringError(f"{path}: {where} {number} has no 'text' string")
        texts.append(text)
    audios = [record.get("audio", record.get("audio_filepath")) for _, record in records]
    audios = audios if audios and all(isinstance(a, str) for a in audios) else None
    indices = [record.get("index") for _, record in records]
    if texts and all(type(i) is int for i in indices):
        # results of `mms asr` carry the input's index: a resumed or merged run lists them in the order they
        # finished, not in input order
        placed = [None] * len(texts)
        order = [0] * len(texts)
        for k, ((number, _), index) in enumerate(zip(records, indices)):
            if not 0 <= index < len(texts) or placed[index] is not None:
                raise ScoringError(f"{path}: {where} {number} has index {index}, "
                                   + ("again" if 0 <= index < len(texts) else f"for {len(texts)} results"))
            placed[index], order[index] = texts[k], k
        texts = placed
        audios = None if audios is None else [audios[k] for k in order]
    return texts, audios
