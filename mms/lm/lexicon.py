"""Lexicons for beam search: each corpus word spelled in a model's units (`hello h e l l o |`).

The corpus goes through MMS text normalisation first (mms.text.normalize, the data-prep rules the MMS models
were trained on), so that the lexicon's words look like what the model outputs. Words with a character the
model's vocabulary lacks cannot be spelled and are dropped (and counted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from mms.errors import MMSError
from mms.text.vocab import Vocabulary


class LexiconError(MMSError):
    """A corpus that cannot be read; str() is one line."""


@dataclass
class LexiconStats:
    lines: int = 0
    word_tokens: int = 0
    words: int = 0  # distinct words seen
    kept: int = 0
    dropped: int = 0  # distinct words with characters outside the vocabulary
    rare: int = 0  # distinct words seen fewer than min_count times (not spelled)
    dropped_examples: list[str] = field(default_factory=list)
    unknown_characters: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def spelling_units(vocab: Vocabulary) -> list[str]:
    """The symbols a word can be spelled with: everything but the specials and the word delimiter."""
    specials = {vocab.tokens[vocab.blank], vocab.word_delimiter, "<s>", "</s>", "<pad>", "<unk>"}
    return sorted((t for t in vocab.tokens if t not in specials), key=len, reverse=True)


def spell(word: str, units: list[str]) -> list[str] | None:
    """Greedy longest match of `word` over the units (longest first); None if some part cannot be spelled."""
    out, i = [], 0
    while i < len(word):
        for unit in units:
            if word.startswith(unit, i):
                out.append(unit)
                i += len(unit)
                break
        else:
            return None
    return out


def normalizer(lang: str | None):
    """MMS data-prep normalisation for `lang` (script/dialect suffixes ignored), or lower-casing without one."""
    if not lang:
        return lambda line: " ".join(line.lower().split())
    from mms.text.normalize import text_normalize

    iso = lang.split("-")[0]
    return lambda line: text_normalize(line, iso)


def build_lexicon(lines: Iterable[str], vocab: Vocabulary, lang: str | None = None, min_count: int = 1,
                  normalize: bool = True) -> tuple[list[tuple[str, list[str]]], LexiconStats]:
    """-> ([(word, spelling units + delimiter)], stats); most frequent words first."""
    norm = normalizer(lang) if normalize else (lambda line: line)
    counts: Counter = Counter()
    stats = LexiconStats()
    for line in lines:
        stats.lines += 1
        words = norm(line).split()
        stats.word_tokens += len(words)
        counts.update(words)
    units = spelling_units(vocab)
    known_chars = set("".join(units))
    entries, unknown = [], Counter()
    stats.words = len(counts)
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if count < min_count:
            stats.rare += 1
            continue
        spelling = spell(word, units)
        if spelling is None:
            stats.dropped += 1
            if len(stats.dropped_examples) < 10:
                stats.dropped_examples.append(word)
            unknown.update(c for c in word if c not in known_chars)
            continue
        entries.append((word, spelling + [vocab.word_delimiter]))
    stats.kept = len(entries)
    stats.unknown_characters = [c for c, _ in unknown.most_common(20)]
    return entries, stats


def lexicon_text(entries: list[tuple[str, list[str]]]) -> str:
    return "".join(f"{word}\t{' '.join(spelling)}\n" for word, spelling in entries)


def read_corpus(path: str | Path) -> Iterable[str]:
    """The lines of a UTF-8 text file; LexiconError (one line, naming the file) for bytes that are not UTF-8."""
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            yield from f
    except UnicodeDecodeError as e:
        raise LexiconError(f"{path}: not UTF-8 text ({e.reason})") from None
