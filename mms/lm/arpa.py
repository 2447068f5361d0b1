"""Reading an ARPA n-gram model and scoring with it in plain Python, with KenLM's semantics.

For checks and small models (tests, brute-force decoding references): everything is held in dicts.
Decoding uses KenLM through flashlight-text instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mms.errors import MMSError
from mms.files import read_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# KenLM's log10 probability for an unknown word when the model has no <unk>.
MISSING_UNK_LOG10 = -100.0


class ArpaError(MMSError):
    """An ARPA file that cannot be read; str() is one line, "file:line: reason"."""


class ArpaLM:
    """An ARPA model: log10 probabilities and backoffs keyed by tuples of words, oldest first."""

    def __init__(self, log10_probs: dict[tuple[str, ...], float], log10_backoffs: dict[tuple[str, ...], float]):
        self.log10_probs = log10_probs
        self.log10_backoffs = log10_backoffs
        self.order = max(len(gram) for gram in log10_probs)
        self.vocabulary = [gram[0] for gram in log10_probs if len(gram) == 1]
        self._known = set(self.vocabulary)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "ArpaLM":
        path = os.fspath(path)
        lines = read_text(path, ArpaError).splitlines()

        def fail(line_number, reason):
            raise ArpaError(f"{path}:{line_number}: {reason}")

        declared = {}  # order -> count from the \data\ header
        probs, backoffs = {}, {}
        section = None  # None before \data\, 0 in the header, n in the \n-grams: section
        found = {}
        for line_number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line:
                continue
            if line == "\\data\\":
                section = 0
            elif line == "\\end\\":
                break
            elif line.startswith("\\") and line.endswith("-grams:"):
                try:
                    section = int(line[1:-len("-grams:")])
                except ValueError:
                    fail(line_number, f"bad section header {line!r}")
                if section not in declared:
                    fail(line_number, f"section {line} is not declared in the \\data\\ header")
                found[section] = 0
            elif section is None:
                continue  # text before \data\ is a comment
            elif section == 0:
                if not line.startswith("ngram ") or "=" not in line:
                    fail(line_number, f"expected 'ngram N=count' in the header, got {line!r}")
                order, count = line[len("ngram "):].split("=", 1)
                try:
                    declared[int(order)] = int(count)
                except ValueError:
                    fail(line_number, f"bad header line {line!r}")
            else:
                fields = line.split()
                if len(fields) not in (section + 1, section + 2):
                    fail(line_number, f"expected log10 prob, {section} words and an optional backoff")
                gram = tuple(fields[1:section + 1])
                try:
                    probs[gram] = float(fields[0])
                    if len(fields) == section + 2:
                        backoffs[gram] = float(fields[-1])
                except ValueError:
                    fail(line_number, "log10 probability or backoff is not a number")
                found[section] += 1
        else:
            raise ArpaError(f"{path}: no \\end\\ line (truncated file?)")
        if not declared:
            raise ArpaError(f"{path}: no \\data\\ header; not an ARPA file")
        for order, count in declared.items():
            if found.get(order, 0) != count:
                raise ArpaError(f"{path}: header declares {count} {order}-grams, the file has {found.get(order, 0)}")
        if 1 not in declared or declared[1] == 0:
            raise ArpaError(f"{path}: no unigrams")
        return cls(probs, backoffs)

    def log10_prob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 p(word | context), context oldest first. Unknown words (also in the context) are <unk>;
        a model without <unk> gives them MISSING_UNK_LOG10, as KenLM does."""
        if word not in self._known:
            if UNK not in self._known:
                return MISSING_UNK_LOG10
            word = UNK
        context = tuple(w if w in self._known else UNK for w in context)
        context = context[-(self.order - 1):] if self.order > 1 else ()
        backoff = 0.0
        while True:
            probability = self.log10_probs.get(context + (word,))
            if probability is not None:
                return backoff + probability
            # An n-gram the model does not list: back off. A context it does not list weighs 1.
            backoff += self.log10_backoffs.get(context, 0.0)
            context = context[1:]

    def sentence_log10(self, words: str | Sequence[str], eos: bool = True) -> float:
        """log10 probability of a sentence after <s> (a string is split on whitespace), with </s>."""
        if isinstance(words, str):
            words = words.split()
        history = [BOS]
        total = 0.0
        for word in list(words) + ([EOS] if eos else []):
            total += self.log10_prob(word, history)
            history.append(word)
        return total
