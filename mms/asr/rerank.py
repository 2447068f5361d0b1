"""N-best LID + ASR re-ranking (fairseq examples/mms/lid_rerank; Yan et al. 2024, arXiv:2409.18428).

Per input: LID's N most probable languages that the ASR model has an adapter for; a greedy transcript in each; per
candidate the features below; the candidate with the largest weighted sum wins (the first, i.e. the more probable
LID language, on ties). Features, as the reference defines them (docs/zeroshot.md):

  slid  ln P_LID(language | audio), LID's softmax over all its classes (not renormalised over the N)
  wlid  ln P(language | text) of a text LID model (fastText, e.g. NLLB-LID; mms.asr.rerank_features): optional,
        0 unless configured
  asr   sum over frames of max log_softmax: the log-probability of the greedy frame path
  lm    ln P(text) of a language model; the reference's is the 7B LLM MaLA-500, here an optional per-language KenLM
        n-gram stand-in (mms.asr.rerank_features), 0 unless configured
  uasr  Viterbi best-path log-probability of the romanised transcript under the zero-shot model; ln(1e-9) when
        it cannot be aligned
  len   number of characters of the transcript

A feature is computed only when its weight is not 0 (slid, asr and len always: they cost nothing). Candidates whose
transcription fails are dropped (the reference writes empty scores, which then abort).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mms.errors import MMSError

FEATURES = ("slid", "wlid", "asr", "lm", "uasr", "len")  # fairseq's best_coefficients order
UASR_FAILED = math.log(1e-9)  # falign.py's score of a transcript it cannot align
CER_LANGS = {"adx", "bod", "cmn", "dzo", "jpn", "khg", "khm", "lao", "mya", "tha", "yue"}  # scored per character
# without a tuned file: LID's probability alone, i.e. what --lang auto does without re-ranking
DEFAULT_WEIGHTS = {"slid": 1.0}


class RerankError(MMSError):
    pass


@dataclass
class RerankWeights:
    """Feature weights (absent = 0), the N they were tuned for, what else the file recorded (`extra`), and the
    text-feature plug-ins (`plugins`: {"lm": {lang: ARPA path}, "wlid": fastText model path}, see
    mms.asr.rerank_features)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    n: int | None = None  # the N they were tuned for (informative)
    extra: dict = field(default_factory=dict)  # dev results, models: written back as they were read
    plugins: dict = field(default_factory=dict)

    def score(self, features: dict[str, float]) -> float:
        return sum(w * features.get(name, 0.0) for name, w in self.weights.items() if w)

    def used(self, name: str) -> bool:
        return bool(self.weights.get(name))

    def to_dict(self) -> dict:
        return {"features": {name: float(self.weights.get(name, 0.0)) for name in FEATURES},
                **({"n": self.n} if self.n else {}), **({"plugins": self.plugins} if self.plugins else {}),
                **self.extra}


def load_weights(path: str | Path) -> RerankWeights:
    """A weights file: YAML/JSON `{features: {slid: w, ...}, n: N, plugins: {lm: {LANG: FILE}, wlid: FILE}, ...}`
    (what `mms tune-rerank` writes; `plugins` optional), or fairseq's
    best_coefficients (a Python dict literal with "weights": [slid, wlid, asr, lm, uasr, len]), read with
    ast.literal_eval, never eval."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RerankError(f"{path}: cannot read ({e})") from None
    data = None
    if text.lstrip().startswith("{"):  # a dict literal (fairseq), or YAML flow style (read below)
        try:
            data = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            data = None
            if re.search(r"['\"]weights['\"]\s*:", text):  # fairseq's form, with more than plain values in it
                raise RerankError(f"{path}: a fairseq best_coefficients file must be a plain Python literal (numbers, "
                                  f"strings, lists, dicts); it holds an expression (a call such as float('nan')?), "
                                  f"which is never evaluated") from None
    if isinstance(data, dict) and isinstance(data.get("weights"), (list, tuple)):
        values = data["weights"]
        if len(values) != len(FEATURES) or not all(isinstance(v, (int, float)) for v in values):
            raise RerankError(f"{path}: 'weights' must be {len(FEATURES)} numbers ({', '.join(FEATURES)})")
        extra = {k: v for k, v in data.items() if k != "weights"}
        if not all(math.isfinite(v) for v in values):
            raise RerankError(f"{path}: 'weights' must be finite numbers")
        return RerankWeights(dict(zip(FEATURES, map(float, values))), extra={"fairseq": extra} if extra else {})
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RerankError(f"{path}: not YAML or a fairseq best_coefficients file ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise RerankError(f"{path}: expected a mapping with `features: {{slid: w, asr: w, ...}}`")
    unknown = sorted(set(data["features"]) - set(FEATURES))
    if unknown:
        raise RerankError(f"{path}: unknown features {', '.join(map(str, unknown))} (known: {', '.join(FEATURES)})")
    try:
        weights = {name: float(w) for name, w in data["features"].items()}
    except (TypeError, ValueError):
        raise RerankError(f"{path}: feature weights must be numbers") from None
    bad = sorted(name for name, w in weights.items() if not math.isfinite(w))
    if bad:
        raise RerankError(f"{path}: the weight of {', '.join(bad)} is not a finite number")
    n, plugins = data.get("n"), data.get("plugins") or {}
    if n is not None and (type(n) is not int or n < 1):
        raise RerankError(f"{path}: `n` (the candidates re-ranked) must be a whole number from 1, not {n!r}")
    if not isinstance(plugins, dict):
        raise RerankError(f"{path}: `plugins` must be a mapping {{lm: {{LANG: FILE}}, wlid: FILE}}")
    return RerankWeights(weights, n,
                         {k: v for k, v in data.items() if k not in ("features", "n", "plugins")}, dict(plugins))


def dump_weights(weights: RerankWeights) -> str:
    import yaml

    return yaml.safe_dump(weights.to_dict(), sort_keys=False)


def select(scores: list[float]) -> int:
    """The index of the best candidate; the first one on ties (the more probable LID language)."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


# -- features --------------------------------------------------------------------------------------------------

def greedy_path_score(logits: np.ndarray) -> float:
    """f3: sum over frames of max log_softmax (the greedy path's log-probability)."""
    return float(log_softmax(logits).max(-1).sum())


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def uroman_targets(text: str, lang: str | None, tokens: list[str]) -> list[int] | None:
    """The transcript as the zero-shot model spells it (mms-zs/uromanize.py): words = text.split(" ") (per character
    for CER_LANGS), each romanised and reduced to [a-z'] then `|`; a word whose romanisation is blank is left out.
    None when a letter is not in `tokens`."""
    from mms.asr.zeroshot import norm_uroman
    from mms.text.romanize import romanize

    words = list(text) if (lang or "").split("-")[0] in CER_LANGS else text.split(" ")
    units = []
    for word in words:
        if not word.strip():
            continue
        raw = romanize(word, None)
        if not raw.strip():
            continue
        units += [*norm_uroman(raw).replace(" ", ""), "|"]
    index = {t: i for i, t in enumerate(tokens)}
    if any(u not in index for u in units):
        return None
    return [index[u] for u in units]


def viterbi_score(log_probs: np.ndarray, targets: list[int], blank: int = 0) -> float:
    """f5: the best CTC path's summed log-probability of `targets` (max-product, no length normalisation);
    UASR_FAILED when there is no path (empty targets, too few frames)."""
    frames = len(log_probs)
    if not targets or frames == 0:
        return UASR_FAILED
    ext = np.full(2 * len(targets) + 1, blank)
    ext[1::2] = targets
    skip = np.zeros(len(ext), bool)  # a label may be reached from two back when it differs from that one
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(len(ext), -np.inf)
    score[0], score[1] = log_probs[0, ext[0]], log_probs[0, ext[1]]
    for t in range(1, frames):
        best = score.copy()
        best[1:] = np.maximum(best[1:], score[:-1])
        best[2:] = np.where(skip[2:], np.maximum(best[2:], score[:-2]), best[2:])
        score = best + log_probs[t, ext]
    result = max(score[-1], score[-2])
    return float(result) if np.isfinite(result) else UASR_FAILED


# -- the re-ranked transcription ----------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One of an input's N-best languages: its transcript (an mms.asr.Transcript), the adapter and LID label, LID's
    probability, and the features computed so far."""

    transcript: object
    adapter: str
    code: str
    probability: float
    features: dict[str, float]

    @property
    def text(self) -> str:
        return self.transcript.text.strip()


def nbest_languages(asr, items: list, n: int) -> list:
    """Per item its N most probable languages that `asr` has an adapter for, [(adapter, LID label, probability)], or
    a one-line error (mms.asr.auto.identify_candidates; the LID model is released before returning). The adapters
    found are fetched (a published model downloads only those)."""
    from mms.asr.auto import identify_candidates

    languages = None if asr.checkpoint.language_free else asr.languages
    found = identify_candidates(items, languages, asr.lid_model, n, asr.device, asr.dtype)
    if asr.fetch_adapters is not None:
        asr.fetch_adapters({adapter for picks in found if isinstance(picks, list) for adapter, _, _ in picks})
    return found


def nbest_candidates(asr, items: list, found: list, timestamps=None):
    """Per item, in order, lazily: its candidates (a list of Candidate with slid, asr and len; wlid, lm and uasr
    0.0), or a one-line error when it has none. `found`: nbest_languages(asr, items, n). One greedy transcription per
    (item, candidate language), grouped by language by the transcriber."""
    from mms.manifest import Item

    expanded = [Item(item.audio, adapter, item.text) for item, picks in zip(items, found)
                if isinstance(picks, list) for adapter, _, _ in picks]
    results = asr._transcribe(expanded, None, timestamps, False)
    for item, picks in zip(items, found):
        if not isinstance(picks, list):
            yield picks
            continue
        hyps = [next(results) for _ in picks]
        rows = []
        for (adapter, code, probability), hyp in zip(picks, hyps):
            if hyp.error:
                continue
            text = hyp.text.strip()
            rows.append(Candidate(hyp, adapter, code, probability, {
                "slid": math.log(max(probability, 1e-300)), "wlid": 0.0, "asr": float(hyp.hypothesis.score),
                "lm": 0.0, "uasr": 0.0, "len": float(len(text))}))
        yield rows or (hyps[0].error if hyps else f"{item.audio}: no candidate")


def uasr_feature(log_probs: np.ndarray | None, text: str, code: str, tokens: list[str], blank: int = 0) -> float:
    """f5 of one candidate: the romanised transcript's best path under the zero-shot model's log-probabilities
    (None: the zero-shot model failed on the input), UASR_FAILED when it cannot be aligned."""
    targets = uroman_targets(text, code, tokens) if log_probs is not None else None
    return viterbi_score(log_probs, targets, blank) if targets else UASR_FAILED


def add_text_features(candidates: list[Candidate], features: dict) -> None:
    """Fill the text features (`features`: name -> callable(text, lang, adapter), mms.asr.rerank_features)."""
    for candidate in candidates:
        for name, feature in features.items():
            candidate.features[name] = float(feature(candidate.text, candidate.code, candidate.adapter))


def transcribe_reranked(asr, items: list, n: int, weights: RerankWeights, zeroshot_model=None, timestamps=None,
                        failed=None):
    """Yield one Transcript per item: the best of its N candidate languages (see the module docstring).
    `asr`: an mms.asr.ASR with adapters; `zeroshot_model`: an ASR of the zero-shot model, needed for `uasr`;
    `failed(audio, error, index)`: the Transcript of an input that failed (passed in: the transcriber imports this
    module). The text features with a weight are built from `weights.plugins` before any audio is read."""
    from mms.asr.rerank_features import build_features

    uses_uasr = weights.used("uasr")
    if uses_uasr and zeroshot_model is None:
        raise RerankError("the uasr feature needs the zero-shot model (--zeroshot-model)")
    text_features = build_features(weights.plugins, [name for name in ("lm", "wlid") if weights.used(name)])
    found = nbest_languages(asr, items, n)
    zs_results = (zeroshot_model.transcribe_iter([item for item, picks in zip(items, found)
                                                  if isinstance(picks, list)], keep_emissions=True)
                  if uses_uasr else None)
    for index, (item, picks, rows) in enumerate(zip(items, found, nbest_candidates(asr, items, found, timestamps))):
        zs = next(zs_results) if zs_results is not None and isinstance(picks, list) else None
        if not isinstance(rows, list):
            yield failed(item.audio, rows, index)
            continue
        if zs is not None:
            log_probs = log_softmax(zs.emissions) if zs.emissions is not None else None
            for row in rows:
                row.features["uasr"] = uasr_feature(log_probs, row.text, row.code, zeroshot_model.vocab.tokens,
                                                    zeroshot_model.vocab.blank)
        add_text_features(rows, text_features)
        scores = [weights.score(row.features) for row in rows]
        best = rows[select(scores)]
        result = best.transcript
        result.index = index
        result.lid = {"lid_lang": best.code, "lang_probability": round(best.probability, 4)}
        result.candidates = [{"lang": r.transcript.lang, "lid_lang": r.code, "text": r.transcript.text,
                              "features": {k: round(v, 4) for k, v in r.features.items()}, "score": round(s, 4)}
                             for r, s in zip(rows, scores)]
        yield result
