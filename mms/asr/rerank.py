"""N-best LID + ASR re-ranking (fairseq examples/mms/lid_rerank; Yan et al. 2024, arXiv:2409.18428).

Per input: LID's N most probable languages that the ASR model has an adapter for; a greedy transcript in each; per
candidate the features below; the candidate with the largest weighted sum wins (the first, i.e. the more probable
LID language, on ties). Features, as the reference defines them (docs/zeroshot.md):

  slid  ln P_LID(language | audio), LID's softmax over all its classes (not renormalised over the N)
  wlid  ln P(language | text) of a text LID model (fastText NLLB-LID): not computed here, always 0
  asr   sum over frames of max log_softmax: the log-probability of the greedy frame path
  lm    a 7B LLM's log-probability of the text (MaLA-500): not computed here, always 0
  uasr  Viterbi best-path log-probability of the romanised transcript under the zero-shot model; ln(1e-9) when
        it cannot be aligned
  len   number of characters of the transcript

Candidates whose transcription fails are dropped (the reference writes empty scores, which then abort).
"""

from __future__ import annotations

import ast
import math
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
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    n: int | None = None  # the N they were tuned for (informative)
    extra: dict = field(default_factory=dict)  # dev results, models: written back as they were read

    def score(self, features: dict[str, float]) -> float:
        return sum(w * features.get(name, 0.0) for name, w in self.weights.items() if w)

    def to_dict(self) -> dict:
        return {"features": {name: float(self.weights.get(name, 0.0)) for name in FEATURES},
                **({"n": self.n} if self.n else {}), **self.extra}


def load_weights(path: str | Path) -> RerankWeights:
    """A weights file: YAML/JSON `{features: {slid: w, ...}, n: N, ...}` (what `mms tune-rerank` writes), or fairseq's
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
    if isinstance(data, dict) and isinstance(data.get("weights"), (list, tuple)):
        values = data["weights"]
        if len(values) != len(FEATURES) or not all(isinstance(v, (int, float)) for v in values):
            raise RerankError(f"{path}: 'weights' must be {len(FEATURES)} numbers ({', '.join(FEATURES)})")
        extra = {k: v for k, v in data.items() if k != "weights"}
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
    n = data.get("n")
    return RerankWeights(weights, int(n) if n else None, {k: v for k, v in data.items() if k not in ("features", "n")})


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

def transcribe_reranked(asr, items: list, n: int, weights: RerankWeights, zeroshot_model=None, timestamps=None,
                        failed=None):
    """Yield one Transcript per item: the best of its N candidate languages (see the module docstring).
    `asr`: an mms.asr.ASR with adapters; `zeroshot_model`: an ASR of the zero-shot model, needed for `uasr`;
    `failed(audio, error, index)`: the Transcript of an input that failed (passed in: the transcriber imports this
    module)."""
    from mms.asr.auto import identify_candidates
    from mms.manifest import Item

    languages = None if asr.checkpoint.language_free else asr.languages
    candidates = identify_candidates(items, languages, asr.lid_model, n, asr.device, asr.dtype)
    if asr.fetch_adapters is not None:
        asr.fetch_adapters({adapter for found in candidates if isinstance(found, list) for adapter, _, _ in found})
    expanded = [Item(item.audio, adapter, item.text) for item, found in zip(items, candidates)
                if isinstance(found, list) for adapter, _, _ in found]
    results = asr._transcribe(expanded, None, timestamps, False)
    uses_uasr = bool(weights.weights.get("uasr"))
    if uses_uasr and zeroshot_model is None:
        raise RerankError("the uasr feature needs the zero-shot model (--zeroshot-model)")
    zs_results = (zeroshot_model.transcribe_iter([item for item, found in zip(items, candidates)
                                                  if isinstance(found, list)], keep_emissions=True)
                  if uses_uasr else None)
    for index, (item, found) in enumerate(zip(items, candidates)):
        if not isinstance(found, list):
            yield failed(item.audio, found, index)
            continue
        hyps = [next(results) for _ in found]
        zs = next(zs_results) if zs_results is not None else None
        zs_log_probs = log_softmax(zs.emissions) if zs is not None and zs.emissions is not None else None
        rows = []
        for (adapter, code, probability), hyp in zip(found, hyps):
            if hyp.error:
                continue
            text = hyp.text.strip()
            features = {"slid": math.log(max(probability, 1e-300)), "wlid": 0.0, "asr": float(hyp.hypothesis.score),
                        "lm": 0.0, "len": float(len(text))}
            if uses_uasr:
                targets = uroman_targets(text, code, zeroshot_model.vocab.tokens) if zs_log_probs is not None else None
                features["uasr"] = (viterbi_score(zs_log_probs, targets, zeroshot_model.vocab.blank) if targets
                                    else UASR_FAILED)
            rows.append((hyp, code, probability, features, weights.score(features)))
        if not rows:
            yield failed(item.audio, hyps[0].error if hyps else f"{item.audio}: no candidate", index)
            continue
        best = rows[select([row[4] for row in rows])]
        result, code, probability, _, _ = best
        result.index = index
        result.lid = {"lid_lang": code, "lang_probability": round(probability, 4)}
        result.candidates = [{"lang": r.lang, "lid_lang": c, "text": r.text,
                              "features": {k: round(v, 4) for k, v in f.items()}, "score": round(s, 4)}
                             for r, c, _, f, s in rows]
        yield result
