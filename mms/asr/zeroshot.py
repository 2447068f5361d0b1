"""MMS zero-shot ASR (mms-zeroshot-300m): one CTC model that writes uroman characters, turned into any language by a
word list. The reference is the mms-meta/mms-zeroshot Space and fairseq's examples/mms/zero_shot (see
docs/zeroshot.md):

  * lexicon: the word list gets MMS text normalisation, each distinct word is romanised with uroman on its own,
    the romanisation is reduced to [a-z'] (norm_uroman), spaces are dropped, and the word is spelled one letter per
    token plus `|`: `úwangaba  u w a n g a b a |`. The decoder writes the lexicon's words, i.e. the word list's own
    spelling (normalised), never the romanisation;
  * decoding: flashlight's lexicon beam search with no LM (word score -3.5) or with an n-gram LM (word score -0.18,
    LM weight 1.48), beam 500, token beam 50;
  * auto LM: when the word list repeats a word (sentences, not a list), a smoothed unigram LM of it (the Space's
    formula, log10), written with a dummy bigram so KenLM loads it.

No torch here: mms lexicon --uroman uses it too.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mms.errors import MMSError

# the Space's constants (WORD_SCORE_DEFAULT_IF_NOLM, WORD_SCORE_DEFAULT_IF_LM, LM_SCORE_DEFAULT) and its decoder's
PRESET_NO_LM = {"word_score": -3.5, "lm_weight": 0.0, "sil_weight": 0.0, "beam": 500, "beam_size_token": 50,
                "beam_threshold": 50.0}
PRESET_LM = {**PRESET_NO_LM, "word_score": -0.18, "lm_weight": 1.48}
SMOOTHING = 0.01  # the Space's n_smoothing


class ZeroShotError(MMSError):
    """A word list that gives no lexicon; one line."""


def norm_uroman(text: str) -> str:
    """The reference's norm_uroman: lower-case, ’ -> ', anything but [a-z' ] -> space, spaces collapsed."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub("[^a-z' ]", " ", text)
    return re.sub(" +", " ", text).strip()


def uroman_spelling(word: str, uroman_lang: str | None = None) -> list[str] | None:
    """`word` spelled in the zero-shot model's tokens, `|` last; None when it has no romanisation (the reference
    skips a blank uroman output; a romanisation with no letter left, e.g. digits, is skipped too, and reported)."""
    from mms.text.romanize import romanize

    letters = norm_uroman(romanize(word, uroman_lang)).replace(" ", "")
    return [*letters, "|"] if letters else None


def normalizer(lang: str | None):
    """MMS data-prep normalisation (mms.text.normalize); the language code refines it (script suffixes ignored)."""
    from mms.text.normalize import text_normalize

    iso = lang.split("-")[0] if lang and lang != "auto" else None
    return lambda line: text_normalize(line, iso)


@dataclass
class WordList:
    """The normalised words of a word list or text file, with their counts, and its number of non-empty lines."""

    counts: Counter
    lines: int

    @classmethod
    def read(cls, lines: Iterable[str], lang: str | None = None, normalize: bool = True) -> "WordList":
        norm = normalizer(lang) if normalize else (lambda line: " ".join(line.split()))
        counts, n = Counter(), 0
        for line in lines:
            words = norm(line).split()
            if words:
                counts.update(words)
                n += 1
        return cls(counts, n)

    @property
    def sentences(self) -> bool:
        """A word repeated: text (sentences), for which the Space builds a unigram LM; else a plain list."""
        return any(count > 1 for count in self.counts.values())


@dataclass
class UromanLexicon:
    entries: list[tuple[str, list[str]]]  # (word, spelling + "|"), most frequent first
    unspelled: list[str] = field(default_factory=list)  # words with no romanisation
    merged: int = 0  # words dropped because another word has the same spelling (dedupe)


def build_uroman_lexicon(words: WordList, uroman_lang: str | None = None, dedupe: bool = False) -> UromanLexicon:
    """Every distinct word spelled in uroman letters, most frequent first (ties: alphabetical). `dedupe` (decoding
    without an LM, as the Space): one word per spelling, the most frequent, then the shortest."""
    entries, unspelled = [], []
    for word, _ in sorted(words.counts.items(), key=lambda item: (-item[1], item[0])):
        spelling = uroman_spelling(word, uroman_lang)
        if spelling is None:
            unspelled.append(word)
        else:
            entries.append((word, spelling))
    merged = 0
    if dedupe:
        best: dict[tuple, str] = {}
        for word, spelling in entries:
            key, kept = tuple(spelling), best.get(tuple(spelling))
            if kept is None or (words.counts[word], -len(word)) > (words.counts[kept], -len(kept)):
                best[key] = word
        kept_words = set(best.values())
        merged = len(entries) - len(kept_words)
        entries = [(w, s) for w, s in entries if w in kept_words]
    return UromanLexicon(entries, unspelled, merged)


def unigram_arpa(words: WordList) -> str:
    """The Space's unigram LM (utils/lm.py, n_smoothing 0.01): N = all word tokens + 2 per line (<s>, </s>),
    Z = (N + 1)(1 + 0.01), p(w) = (count + 0.01)/Z, p(<unk>) = 1/Z, p(<s>) = p(</s>) = (lines + 0.01)/Z, log10; plus
    the dummy bigram KenLM needs to load a unigram model (mms.decoding.beam.pseudo_bigram)."""
    from mms.decoding.beam import pseudo_bigram

    total = sum(words.counts.values()) + 2 * words.lines
    z = (total + 1) * (1 + SMOOTHING)
    probabilities = {"<unk>": 1 / z, "<s>": (words.lines + SMOOTHING) / z, "</s>": (words.lines + SMOOTHING) / z}
    for word, count in sorted(words.counts.items(), key=lambda item: (-item[1], item[0])):
        probabilities[word] = (count + SMOOTHING) / z
    lines = ["\\data\\", f"ngram 1={len(probabilities)}", "", "\\1-grams:"]
    lines += [f"{math.log10(p):.7f}\t{word}\t0" for word, p in probabilities.items()]
    lines += ["", "\\end\\", ""]
    return pseudo_bigram("\n".join(lines))


def lexicon_text(entries: list[tuple[str, list[str]]]) -> str:
    return "".join(f"{word}\t{' '.join(spelling)}\n" for word, spelling in entries)


def read_lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ZeroShotError(f"{path}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ZeroShotError(f"{path}: {e.strerror or e}") from None


@dataclass
class Prepared:
    """What `mms asr --words` decodes with: files in `folder` (the caller removes it) and a summary line."""

    lexicon: str
    lm: str | None
    auto_lm: bool
    summary: str


def prepare(words_path: str | Path, folder: str | Path, lang: str | None = None, uroman_lang: str | None = None,
            lm: str | None = None, auto_lm: bool | None = None) -> Prepared:
    """Lexicon (and, for text or `auto_lm=True`, the unigram LM) of a word list, written into `folder`. A given `lm`
    wins over the automatic one; `auto_lm=None`: when a word is repeated, as the Space decides."""
    words = WordList.read(read_lines(words_path), lang)
    if not words.counts:
        raise ZeroShotError(f"{words_path}: no words (after MMS text normalisation)")
    make_lm = lm is None and (words.sentences if auto_lm is None else auto_lm)
    lexicon = build_uroman_lexicon(words, uroman_lang, dedupe=lm is None and not make_lm)
    if not lexicon.entries:
        raise ZeroShotError(f"{words_path}: no word has a romanisation ({len(lexicon.unspelled)} words)")
    folder = Path(folder)
    (folder / "lexicon.txt").write_text(lexicon_text(lexicon.entries), encoding="utf-8")
    if make_lm:
        lm = str(folder / "unigram.arpa")
        Path(lm).write_text(unigram_arpa(words), encoding="utf-8")
    unspelled = (f"; {len(lexicon.unspelled)} without a romanisation: {' '.join(lexicon.unspelled[:10])}"
                 if lexicon.unspelled else "")
    merged = f", {lexicon.merged} sharing a spelling dropped" if lexicon.merged else ""
    source = "automatic unigram LM" if make_lm else ("LM " + str(lm) if lm else "no LM")
    summary = f"{len(lexicon.entries)} words in the lexicon{merged}, {source}{unspelled}"
    return Prepared(str(folder / "lexicon.txt"), lm, make_lm, summary)


def preset(with_lm: bool) -> dict:
    """Beam-search settings of the reference for lexicon-only (`with_lm` False) or n-gram LM decoding."""
    return dict(PRESET_LM if with_lm else PRESET_NO_LM)
