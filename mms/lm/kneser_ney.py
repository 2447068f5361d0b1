"""Interpolated modified Kneser-Ney n-gram estimation, written as an ARPA file.

The estimate is the one KenLM's `lmplz` makes (Chen & Goodman's modified Kneser-Ney with lmplz's
conventions), so that a model built here and one built by `lmplz -o N --discount_fallback` agree:

* A sentence is one line, `<s> w1 ... wk </s>`, words split on whitespace. An empty line is a sentence
  too (`<s> </s>`), as lmplz counts it. The literal markers <s>, </s> and <unk> in the text are dropped
  (lmplz --skip_symbols) and counted in the stats.
* Counts: the highest order keeps raw counts. A lower-order n-gram gets its continuation count
  N1+(. w1..wn), the number of distinct words seen just before it, except n-grams that begin with <s>:
  nothing can precede those, so they keep their raw counts.
* Discounts, per order, from the count-of-counts t1..t4 of those counts (Chen & Goodman eq. 26):
  Y = t1 / (t1 + 2 t2), D_k = k - (k + 1) Y t_{k+1} / t_k for k = 1, 2, 3 (D3 serves every count >= 3).
  Where that fails (some t_k = 0, or D_k outside [0, k], as on small or artificial corpora) the order
  falls back to D = (0.5, 1, 1.5), lmplz's --discount_fallback default; the stats name those orders.
* Interpolation: p(w | h) = (a(h w) - D(a(h w))) / S(h) + gamma(h) p(w | h'), with a the counts above,
  S(h) = sum_x a(h x), gamma(h) = sum_k D_k N_k(h .) / S(h), N_k(h .) the number of distinct words after
  h with count k (3 meaning 3 or more), and h' = h without its oldest word. The unigrams are interpolated
  with the uniform distribution over the vocabulary |V|, which counts </s> and <unk> but not <s>.
* <unk> is a word seen zero times, as in lmplz's default (--interpolate_unigrams):
  p(<unk>) = gamma(unigrams) / |V|. <s> is written with log10 probability 0, as lmplz writes it; it is
  never predicted.
* Backoff weights: b(h) = gamma(h) for every n-gram h that is the context of a longer n-gram (and 1, i.e.
  log10 0, otherwise). The ARPA rule p(w | h) = b(h) p(w | h') for an n-gram it does not list then gives
  exactly the interpolated estimate, so for every context the probabilities of the words in the
  vocabulary (without <s>) sum to one.

Cost: the counts live in Python dicts keyed by tuples of word ids. On a synthetic 1M-word Zipf corpus
(20k word types, order 4, 1.4M n-grams) a build took about 10 s and 0.4 GB, growing about linearly with
the number of distinct n-grams. The lmplz path streams the corpus through lmplz and holds nothing.
"""

from __future__ import annotations

import operator
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from mms.errors import MMSError
from mms.files import atomic_path
from mms.files import open_input

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# Word ids of the markers (lmplz's numbering); corpus words get ids 3, 4, ... in order of appearance.
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
# log10 written for a zero probability or backoff, the ARPA convention.
LOG10_ZERO = -99.0

_drop_oldest = operator.itemgetter(slice(1, None))
_drop_newest = operator.itemgetter(slice(None, -1))


class LMError(MMSError):
    """A language model that cannot be built; str() is one line."""


@dataclass
class LMStats:
    """What build_arpa did. `to_dict()` is JSON-able."""

    order: int
    tool: str  # "python" or "lmplz"
    sentences: int = 0
    words: int = 0  # corpus tokens, without the markers
    skipped_markers: int = 0  # literal <s>, </s>, <unk> dropped from the text
    ngrams: list[int] = field(default_factory=list)  # n-gram count per order, as in the ARPA header
    discounts: list[list[float]] | None = None  # [D1, D2, D3+] per order (python estimator only)
    fallback_orders: list[int] = field(default_factory=list)  # orders that used FALLBACK_DISCOUNTS
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def build_arpa(
    sentences: Iterable[str],
    out_path: str | os.PathLike,
    order: int = 4,
    use_lmplz: bool | None = None,
) -> LMStats:
    """Estimate a modified Kneser-Ney model of `order` from `sentences` (one sentence per string) and
    write it to `out_path` as ARPA text, atomically.

    use_lmplz: None runs KenLM's `lmplz` when it is on PATH and the estimator here otherwise; True
    requires lmplz; False never uses it. Raises LMError (one line) for an empty corpus, a bad order or
    a failing lmplz.
    """
    if not isinstance(order, int) or order < 1:
        raise LMError(f"order must be a whole number >= 1, got {order!r}")
    lmplz = shutil.which("lmplz") if use_lmplz is not False else None
    if use_lmplz and lmplz is None:
        raise LMError("lmplz was asked for but is not on PATH (install KenLM, or build without lmplz)")
    started = time.perf_counter()
    if lmplz is not None:
        stats = _build_with_lmplz(lmplz, sentences, out_path, order)
    else:
        stats = _build_in_python(sentences, out_path, order)
    if order == 1:  # KenLM (and so `mms asr --lm`) refuses a unigram ARPA: add the dummy bigram it needs
        from mms.decoding.beam import pseudo_bigram

        with open(out_path, encoding="utf-8") as f:
            text = pseudo_bigram(f.read())
        with atomic_path(out_path) as temp_path, open(temp_path, "w", encoding="utf-8") as f:
            f.write(text)
    stats.seconds = time.perf_counter() - started
    return stats


def corpus_lines(path: str | os.PathLike) -> Iterator[str]:
    """The lines of a UTF-8 text file, streamed; a byte order mark is dropped.

    Raises LMError naming the file and line for a missing file or bytes that are not UTF-8.
    """
    path = os.fspath(path)
    with open_input(path, LMError) as f:
        for line_number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise LMError(f"{path}:{line_number}: not UTF-8 text ({error.reason})") from None
            if line_number == 1 and line.startswith("\ufeff"):
                line = line[1:]
            yield line


# ---------------------------------------------------------------------------------------------------
# The estimator


def _build_in_python(sentences: Iterable[str], out_path, order: int) -> LMStats:
    stats = LMStats(order=order, tool="python")
    words, tables = _count(sentences, order, stats)
    orders = _estimate(tables, vocabulary_size=len(words) - 1, stats=stats)
    stats.ngrams = [len(o.grams) for o in orders]
    _write_arpa(out_path, words, orders)
    return stats


def _count(sentences: Iterable[str], order: int, stats: LMStats) -> tuple[list[str], list]:
    """Read the corpus; return the id -> word list and tables[n] = {n-gram ids: count} for n = 1..order,
    with the counts modified Kneser-Ney uses (raw at the highest order and for n-grams starting with <s>,
    continuation counts otherwise)."""
    vocabulary = {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID}
    word_id = vocabulary.setdefault
    highest = Counter()  # order-grams, raw counts
    # n-grams shorter than `order` that start a sentence (<s> w1 .. w_{n-1}): nothing precedes them, so
    # they are counted raw. (lmplz gets the same by padding with order-1 <s> and collapsing.)
    sentence_starts = Counter()
    # While no sentence is `order` tokens long, the (few, short) sentences are kept: if none ever is, the
    # model is rebuilt from them at the longest order they fill (an order with no n-grams has no estimate).
    short = Counter()

    def add(tokens: list[int], times: int = 1) -> None:
        if order == 1:
            for token in tokens[1:]:
                highest[(token,)] += times
            return
        if len(tokens) >= order:
            for gram in zip(*[tokens[k:] for k in range(order)]):
                highest[gram] += times
        for end in range(2, min(order, len(tokens) + 1)):
            sentence_starts[tuple(tokens[:end])] += times

    for line in sentences:
        if not isinstance(line, str):
            raise LMError(f"sentences must be strings, got {type(line).__name__}")
        ids = [word_id(word, len(vocabulary)) for word in line.split()]
        if ids and min(ids) <= EOS_ID:
            kept = [i for i in ids if i > EOS_ID]
            stats.skipped_markers += len(ids) - len(kept)
            ids = kept
        stats.sentences += 1
        stats.words += len(ids)
        tokens = [BOS_ID, *ids, EOS_ID]
        if not highest:
            short[tuple(tokens)] += 1
        add(tokens)
        if short and highest:
            short.clear()
    if stats.words == 0:
        raise LMError(
            f"the corpus has no words ({stats.sentences} lines, all empty or markers); an n-gram model "
            "needs text"
        )
    if not highest:
        order = stats.order = max(map(len, short))
        sentence_starts.clear()
        for tokens, times in short.items():
            add(list(tokens), times)

    tables = [None] * (order + 1)
    tables[order] = highest
    starts_by_order = [{} for _ in range(order + 1)]
    for gram, count in sentence_starts.items():
        starts_by_order[len(gram)][gram] = count
    for n in range(order - 1, 0, -1):
        # Each distinct (n+1)-gram v w1..wn adds one to the continuation count of w1..wn. Those never
        # start with <s> (it only stands first in an n-gram), so the two key sets are disjoint.
        table = Counter(map(_drop_oldest, tables[n + 1]))
        table.update(starts_by_order[n])
        tables[n] = table
    # <unk> and <s> are unigrams with count 0; they come first, as in lmplz's output.
    unigrams = {(UNK_ID,): 0, (BOS_ID,): 0}
    unigrams.update(tables[1])
    tables[1] = unigrams
    words = [None] * len(vocabulary)
    for word, i in vocabulary.items():
        words[i] = word
    return words, tables


@dataclass
class _Order:
    """The n-grams of one order, in a fixed sequence, and what the ARPA file says of each."""

    grams: list
    index: dict | None  # gram -> position in `grams` (kept for the order above)
    probabilities: np.ndarray
    backoffs: np.ndarray | None = None  # gamma of each gram as a context of the order above; 1 if none


def _estimate(tables: list, vocabulary_size: int, stats: LMStats) -> list[_Order]:
    """Interpolated probabilities and backoffs, lowest order first (each order needs the one below).

    Every context of an n-gram, and every n-gram minus its oldest word, is itself an (n-1)-gram of the
    model, so both are found by position in the order below, and per-context sums are bincounts.
    """
    order = len(tables) - 1
    orders = []
    stats.discounts = []
    for n in range(1, order + 1):
        table = tables[n]
        tables[n] = None  # the counts move into arrays; free the dict as we go
        grams = list(table)
        counts = np.fromiter(table.values(), dtype=np.int64, count=len(grams))
        del table
        discounts = np.array(_discounts(counts, n, stats))
        stats.discounts.append(discounts[1:].tolist())
        discount = discounts[np.minimum(counts, 3)]
        if n == 1:
            total = counts.sum()
            gamma = discount.sum() / total
            probabilities = (counts - discount) / total + gamma / vocabulary_size
            probabilities[grams.index((BOS_ID,))] = 1.0
        else:
            lower = orders[-1]
            context = np.fromiter(map(lower.index.__getitem__, map(_drop_newest, grams)), np.int64, len(grams))
            suffix = np.fromiter(map(lower.index.__getitem__, map(_drop_oldest, grams)), np.int64, len(grams))
            totals = np.bincount(context, weights=counts, minlength=len(lower.grams))
            masses = np.bincount(context, weights=discount, minlength=len(lower.grams))
            is_context = totals > 0
            gammas = np.divide(masses, totals, out=np.ones_like(masses), where=is_context)
            lower.backoffs = gammas
            if n > 2:
                orders[-2].index = None  # no longer needed
            probabilities = (counts - discount) / totals[context] + gammas[context] * lower.probabilities[suffix]
        index = dict(zip(grams, range(len(grams)))) if n < order else None
        orders.append(_Order(grams, index, probabilities))
    return orders


def _discounts(counts: np.ndarray, n: int, stats: LMStats) -> tuple[float, float, float, float]:
    """(0, D1, D2, D3+) for one order, from its count-of-counts; the fallback where they fail."""
    t = np.bincount(np.minimum(counts, 5), minlength=6).tolist()
    if all(t[k] > 0 for k in (1, 2, 3)):
        y = t[1] / (t[1] + 2 * t[2])
        discounts = [k - (k + 1) * y * t[k + 1] / t[k] for k in (1, 2, 3)]
        if all(0.0 <= d <= k for k, d in zip((1, 2, 3), discounts)):
            return (0.0, *discounts)
    stats.fallback_orders.append(n)
    return (0.0, *FALLBACK_DISCOUNTS)


def _log10(values: np.ndarray) -> np.ndarray:
    """log10, with LOG10_ZERO for zeros, and at most 0 (rounding can put a probability a hair above 1)."""
    with np.errstate(divide="ignore"):
        logs = np.log10(values)
    logs[values <= 0.0] = LOG10_ZERO
    return np.minimum(logs, 0.0)


def _write_arpa(out_path, words: list[str], orders: list[_Order]) -> None:
    word = words.__getitem__
    with atomic_path(out_path) as temp_path:
        with open(temp_path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\\data\\\n")
            for n, o in enumerate(orders, start=1):
                f.write(f"ngram {n}={len(o.grams)}\n")
            for n, o in enumerate(orders, start=1):
                f.write(f"\n\\{n}-grams:\n")
                log_probabilities = _log10(o.probabilities).tolist()
                texts = [" ".join(map(word, gram)) for gram in o.grams]
                if o.backoffs is None:
                    f.writelines(["%.8g\t%s\n" % line for line in zip(log_probabilities, texts)])
                else:
                    log_backoffs = _log10(o.backoffs).tolist()
                    f.writelines(["%.8g\t%s\t%.8g\n" % line for line in zip(log_probabilities, texts, log_backoffs)])
            f.write("\n\\end\\\n")


# ---------------------------------------------------------------------------------------------------
# KenLM's lmplz


def _build_with_lmplz(lmplz: str, sentences: Iterable[str], out_path, order: int) -> LMStats:
    """Stream the corpus through `lmplz -o N --discount_fallback --skip_symbols`.

    Lines are re-joined with single spaces, so lmplz splits words exactly as the Python estimator does.
    """
    stats = LMStats(order=order, tool="lmplz")
    command = [lmplz, "-o", str(order), "--discount_fallback", "--skip_symbols"]
    with atomic_path(out_path) as temp_path:
        with open(temp_path, "wb") as out, tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=errors)
            except OSError as error:
                raise LMError(f"cannot run {lmplz}: {error.strerror}") from None
            try:
                for line in sentences:
                    if not isinstance(line, str):
                        raise LMError(f"sentences must be strings, got {type(line).__name__}")
                    tokens = line.split()
                    kept = [t for t in tokens if t not in (BOS, EOS, UNK)]
                    stats.skipped_markers += len(tokens) - len(kept)
                    stats.sentences += 1
                    stats.words += len(kept)
                    process.stdin.write((" ".join(kept) + "\n").encode("utf-8"))
            except BrokenPipeError:
                pass  # lmplz stopped reading: its exit status and message say why
            except BaseException:
                process.kill()
                process.wait()
                raise
            finally:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
            status = process.wait()
            if status != 0:
                errors.seek(0)
                message = [line for line in errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
                reason = message[-1].strip() if message else "no message"
                raise LMError(f"lmplz failed (exit status {status}): {reason}")
        if stats.words == 0:
            raise LMError(
                f"the corpus has no words ({stats.sentences} lines, all empty or markers); an n-gram model "
                "needs text"
            )
        stats.ngrams = _arpa_header_counts(temp_path)
    return stats


def _arpa_header_counts(path: str) -> list[int]:
    counts = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                counts.append(int(line.split("=", 1)[1]))
            elif line.startswith("\\") and line.endswith("-grams:"):
                break
    return counts
