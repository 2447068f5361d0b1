"""`mms tune-rerank`: the weights of N-best LID + ASR re-ranking (mms.asr.rerank), searched on a dev set.

    result = tune_rerank("dev.tsv", refs="dev.wrd", ref_langs="dev.lang", n=10)
    write_text_atomic("rerank.yaml", weights_yaml(result))      # for mms asr --rerank-weights

How: the models run once per dev file. LID's N best languages with an adapter, a greedy transcript in each (the
features slid, asr, len) and, when the uasr feature is on, the zero-shot model's alignment score of each transcript
are cached as JSON under ~/.cache/mms/rerank (keyed by the models' and the audio file's paths, sizes and times), so
a rerun with other search settings, more trials or a smaller N runs no model. The text features lm and wlid
(mms.asr.rerank_features) are computed from the cached transcripts on each run. Then the reference's random search
(fairseq examples/mms/lid_rerank/rerank/tune_coefficients.py): slid and wlid weights from U[0, 100), asr, lm and
uasr from U[0, 10), len from U[-0.5, 0.5), 10,000 draws (seeded here; the reference is unseeded), features that are
off weigh 0. Each draw's corpus error is computed at once for all draws with numpy over the cached feature matrix.
The draw with the lowest corpus error wins; ties go to the higher LID accuracy, then to the earlier draw; draw 0 is
LID alone (slid 1), so the result is never worse on dev than no re-ranking.

Error rate, as the reference's: both texts lower-cased, the characters . , ? ! : ) ( - deleted, words compared
(characters, spaces dropped, when the reference language is one of CER_LANGS), edit distances (mms.scoring)
summed over the corpus and divided by the summed reference length. LID accuracy compares the chosen language with the
reference LANGUAGE of each file (the reference's tuning script compares it with the reference transcript, a bug).
A dev file with no candidate counts as an empty transcript and a wrong language.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mms.asr.rerank import CER_LANGS, FEATURES, RerankError, RerankWeights, dump_weights

# the reference's search ranges (tune_coefficients.py: --slid_scale 100 ... --len_scale 1, len centred on 0)
RANGES = {"slid": (0.0, 100.0), "wlid": (0.0, 100.0), "asr": (0.0, 10.0), "lm": (0.0, 10.0), "uasr": (0.0, 10.0),
          "len": (-0.5, 0.5)}
DEFAULT_FEATURES = ("slid", "asr", "uasr", "len")
PUNCTUATION = str.maketrans("", "", ".,?!:)(-")  # deleted before scoring, as the reference
CACHE_VERSION = 1


class TuneRerankError(RerankError):
    """A dev set, reference file or setting that cannot be used; one line."""


# -- the dev set -------------------------------------------------------------------------------------------------

def iso(code: str) -> str | None:
    """The ISO 639-3 code of a language code (`cmn-script_simplified` -> `cmn`, `en` -> `eng`), None if unknown."""
    from mms.hub.languages import to_iso639_3

    return to_iso639_3(code) if code and code.strip() else None


def read_dev_set(manifest: str | os.PathLike, refs=None, ref_langs=None):
    """(items, references, reference languages) of a dev set. `refs`: a file (any format of mms.scoring.read_texts)
    or a list; None: the manifest's text. `ref_langs`: a file with one language code per line, or a list; None: the
    manifest's `lang` (JSONL). Every code must be a known ISO 639 code."""
    from mms.manifest import read_manifest
    from mms.scoring import read_texts, texts_from_items

    items = read_manifest(manifest)
    if refs is None:
        references = texts_from_items(items, str(manifest))
    elif isinstance(refs, (str, os.PathLike)):
        references = read_texts(refs, len(items))
    else:
        references = list(refs)
    if len(references) != len(items):
        raise TuneRerankError(f"{len(references)} references for {len(items)} dev files; they must pair up one to one")
    where = str(manifest)
    if ref_langs is None:
        langs = [item.lang for item in items]
        missing = next((i for i, lang in enumerate(langs, 1) if not lang), None)
        if missing is not None:
            raise TuneRerankError(f"{manifest}: entry {missing} has no language: give --ref-lang FILE (one code per "
                                  "line) or a `lang` in each JSONL record")
    elif isinstance(ref_langs, (str, os.PathLike)):
        from mms.files import read_text

        where = str(ref_langs)
        langs = [line.strip() for line in read_text(ref_langs, TuneRerankError).splitlines()]
        while langs and not langs[-1]:
            langs.pop()
        if len(langs) != len(items):
            raise TuneRerankError(f"{ref_langs}: {len(langs)} languages for {len(items)} dev files; the file must have "
                                  "one code per dev file")
    else:
        langs = list(ref_langs)
        if len(langs) != len(items):
            raise TuneRerankError(f"{len(langs)} reference languages for {len(items)} dev files")
    for number, lang in enumerate(langs, 1):
        if not lang or iso(lang) is None:
            raise TuneRerankError(f"{where}:{number}: unknown language code {lang!r} (expected an ISO 639-3 code "
                                  "such as eng, or an MMS code such as cmn-script_simplified)")
    return items, references, langs


def error_tokens(text: str, lang: str | None) -> list[str]:
    """The reference's scoring units: lower case, . , ? ! : ) ( - deleted; characters (no spaces) for CER_LANGS;
    in NFC, as mms.scoring compares texts."""
    text = unicodedata.normalize("NFC", (text or "").lower().translate(PUNCTUATION))
    if lang and (iso(lang) in CER_LANGS or lang.split("-")[0] in CER_LANGS):
        return list("".join(text.split()))
    return text.split()


# -- candidate features, cached ----------------------------------------------------------------------------------

def file_identity(path: str | os.PathLike | None):
    """Path, size and modification time of a file; of a directory, those of its files other than per-language
    adapters (fetching an adapter later does not change the model)."""
    if not path:
        return None
    path = Path(path).resolve()
    if path.is_dir():
        return [str(path), sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir()
                                  if p.is_file() and not p.name.startswith((".", "adapter.")))]
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps([CACHE_VERSION, *parts], default=str).encode()).hexdigest()[:32]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None


def load_asr(model, lid_model, device, dtype, dict_path=None):
    """The ASR model in `lang="auto"` mode with its LID model (only LID's N best adapters are fetched)."""
    from mms.asr.transcriber import ASR

    return ASR.load(model, lang="auto", lid_model=lid_model, device=device, dtype=dtype, dict_path=dict_path)


def load_zeroshot(model, device, dtype):
    from mms.asr.transcriber import ASR

    return ASR.load(model or "mms-zeroshot-300m", device=device, dtype=dtype)


def dev_candidates(audios: Sequence[str], n: int, *, model=None, lid_model=None, zeroshot_model=None,
                   uasr: bool = True, dict_path=None, device="auto", dtype="auto",
                   cache: str | os.PathLike | None = None, log: Callable[[str], None] = lambda line: None) -> list:
    """Per dev file its candidates, [{"lang" (adapter), "lid_lang", "probability", "text", "slid", "asr", "len"
    (, "uasr")}] in LID order (at most n), or a one-line error. From the cache where possible: the ASR and LID models
    are loaded only when some file is not cached (or was cached with a smaller N), the zero-shot model only when the
    uasr feature is on and some file has no uasr value of this zero-shot model yet."""
    from mms.asr.rerank import log_softmax, nbest_candidates, nbest_languages, uasr_feature
    from mms.hub import resolve_model
    from mms.manifest import Item

    if lid_model is None:
        from mms.asr.auto import own_lid_model

        lid_model = own_lid_model(model)
    cache = Path(cache) if cache else Path.home() / ".cache" / "mms" / "rerank"
    cache.mkdir(parents=True, exist_ok=True)
    models = [file_identity(resolve_model(model, task="asr", lang=[])),
              file_identity(resolve_model(lid_model, task="lid")), file_identity(dict_path)]
    from mms.device import precision_name

    precision = precision_name(device, dtype)  # (candidates found in another dtype may differ)
    paths = [cache / f"{cache_key(models, file_identity(audio), precision)}.json" if Path(audio).is_file() else None
             for audio in audios]
    entries = [_read_json(path) if path is not None else None for path in paths]
    errors: dict[int, str] = {i: f"{audio}: no such file" for i, audio in enumerate(audios) if paths[i] is None}
    missing = [i for i, entry in enumerate(entries) if i not in errors and (entry is None or entry["n"] < n)]
    if missing:
        log(f"computing the {n}-best candidates of {len(missing)} dev files (LID, then greedy ASR in each language)")
        asr = load_asr(model, lid_model, device, dtype, dict_path)
        try:
            items = [Item(audios[i]) for i in missing]
            found = nbest_languages(asr, items, n)
            for i, rows in zip(missing, nbest_candidates(asr, items, found)):
                if not isinstance(rows, list):
                    errors[i] = rows
                    continue
                entries[i] = {"version": CACHE_VERSION, "audio": audios[i], "n": n, "uasr": {}, "candidates": [
                    {"lang": r.adapter, "lid_lang": r.code, "probability": r.probability, "text": r.text,
                     **{k: r.features[k] for k in ("slid", "asr", "len")}} for r in rows]}
                _write_json(paths[i], entries[i])
        finally:
            asr.close()
    if uasr:
        zs_key = cache_key(file_identity(resolve_model(zeroshot_model or "mms-zeroshot-300m", task="asr")))
        need = [i for i, entry in enumerate(entries) if i not in errors and entry is not None
                and len(entry["uasr"].get(zs_key, [])) < len(entry["candidates"])]
        if need:
            log(f"computing the uasr feature of {len(need)} dev files (zero-shot model)")
            zs = load_zeroshot(zeroshot_model, device, dtype)
            try:
                results = zs.transcribe_iter([Item(audios[i]) for i in need], keep_emissions=True)
                for i, result in zip(need, results):
                    log_probs = log_softmax(result.emissions) if result.emissions is not None else None
                    entries[i]["uasr"][zs_key] = [
                        uasr_feature(log_probs, c["text"], c["lid_lang"], zs.vocab.tokens, zs.vocab.blank)
                        for c in entries[i]["candidates"]]
                    _write_json(paths[i], entries[i])
            finally:
                zs.close()
    out = []
    for i, entry in enumerate(entries):
        if i in errors or entry is None:
            out.append(errors.get(i, f"{audios[i]}: no candidate"))
            continue
        rows = []
        for j, candidate in enumerate(entry["candidates"][:n]):
            row = dict(candidate)
            if uasr:
                row["uasr"] = entry["uasr"][zs_key][j]
            rows.append(row)
        out.append(rows)
    return out


# -- the search --------------------------------------------------------------------------------------------------

@dataclass
class Tables:
    """A dev set's candidates as arrays: features [U, N, 6] (FEATURES order, 0 where off or padded), valid [U, N],
    errors [U, N] (edit errors of each candidate's text), correct [U, N] (its language is the reference language);
    and the constants: reference length of the whole set, errors and count of files without candidates."""

    features: np.ndarray
    valid: np.ndarray
    errors: np.ndarray
    correct: np.ndarray
    ref_length: int
    failed_errors: int
    failed: int

    @property
    def files(self) -> int:
        return len(self.valid) + self.failed

    def rates(self, errors, correct):
        """(LID accuracy in [0, 1], corpus error rate in %) of chosen candidates' summed errors and correct LIDs."""
        wer = 100.0 * (errors + self.failed_errors) / self.ref_length
        return correct / self.files, wer


def build_tables(candidates: list, references: Sequence[str], ref_langs: Sequence[str], enabled: Sequence[str],
                 text_features: dict | None = None) -> Tables:
    """`candidates`: dev_candidates() (dicts with the features; errors as strings). `enabled`: the features whose
    values count (the others are 0). `text_features`: name -> callable(text, lang, adapter) for lm and wlid."""
    from mms.scoring import edit_counts

    text_features = text_features or {}
    kept = [i for i, rows in enumerate(candidates) if isinstance(rows, list) and rows]
    width = max((len(candidates[i]) for i in kept), default=1)
    features = np.zeros((len(kept), width, len(FEATURES)))
    valid = np.zeros((len(kept), width), bool)
    errors = np.zeros((len(kept), width), np.int64)
    correct = np.zeros((len(kept), width), bool)
    columns = {name: k for k, name in enumerate(FEATURES)}
    ref_tokens = [error_tokens(ref, lang) for ref, lang in zip(references, ref_langs)]
    for u, i in enumerate(kept):
        for j, c in enumerate(candidates[i]):
            valid[u, j] = True
            values = dict(c)
            for name, feature in text_features.items():
                if name in enabled:
                    values[name] = float(feature(c["text"], c["lid_lang"], c["lang"]))
            for name in enabled:
                features[u, j, columns[name]] = float(values.get(name, 0.0))
            errors[u, j] = edit_counts(ref_tokens[i], error_tokens(c["text"], ref_langs[i]))["errors"]
            correct[u, j] = iso(c["lid_lang"]) == iso(ref_langs[i])
    failed = sorted(set(range(len(candidates))) - set(kept))
    ref_length = sum(len(tokens) for tokens in ref_tokens)
    if ref_length == 0:
        raise TuneRerankError("the references are empty: nothing to score")
    return Tables(features, valid, errors, correct, ref_length, sum(len(ref_tokens[i]) for i in failed), len(failed))


def draw_weights(trials: int, seed: int, enabled: Sequence[str]) -> np.ndarray:
    """[trials, 6] weights (FEATURES order) from the reference's ranges (RANGES), rounded down to 4 decimals (what
    is written is what was scored); 0 for the features not `enabled`. Seeded: the same seed gives the same draws."""
    rng = np.random.default_rng(seed)
    low = np.array([RANGES[name][0] for name in FEATURES])
    high = np.array([RANGES[name][1] for name in FEATURES])
    weights = np.floor((low + (high - low) * rng.random((trials, len(FEATURES)))) * 1e4) / 1e4  # stays in [low, high)
    weights[:, [name not in enabled for name in FEATURES]] = 0.0
    return weights


def evaluate(weights: np.ndarray, tables: Tables, chunk_values: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `weights` [D, 6]: (summed errors, number of correct languages) of the candidates it chooses
    (the largest weighted sum per file, the first on ties), computed for all D at once in chunks."""
    units, width, k = tables.features.shape
    flat = tables.features.reshape(units * width, k)
    rows = np.arange(units)[None, :]
    errors = np.zeros(len(weights), np.int64)
    correct = np.zeros(len(weights), np.int64)
    if units == 0:
        return errors, correct
    step = max(1, chunk_values // (units * width))
    for start in range(0, len(weights), step):
        block = weights[start:start + step]
        scores = (flat @ block.T).T.reshape(len(block), units, width)
        scores = np.where(tables.valid[None], scores, -np.inf)
        pick = scores.argmax(-1)
        errors[start:start + step] = tables.errors[rows, pick].sum(-1)
        correct[start:start + step] = tables.correct[rows, pick].sum(-1)
    return errors, correct


def search(tables: Tables, enabled: Sequence[str], trials: int = 10_000, seed: int = 0) -> dict:
    """The random search: draw 0 is LID alone (slid 1), then `trials` draws. Returns {"weights" {name: w}, "draw",
    "before" {lid_acc, wer}, "after" {lid_acc, wer}, "oracle_wer", "seconds"}."""
    started = time.perf_counter()
    lid_only = np.array([[1.0 if name == "slid" else 0.0 for name in FEATURES]])
    draws = np.concatenate([lid_only, draw_weights(trials, seed, enabled)])
    errors, correct = evaluate(draws, tables)
    best = int(np.lexsort((np.arange(len(draws)), -correct, errors))[0])
    seconds = time.perf_counter() - started
    before, after = tables.rates(errors[0], correct[0]), tables.rates(errors[best], correct[best])
    oracle = tables.errors.min(-1, initial=np.iinfo(np.int64).max, where=tables.valid).sum() if len(tables.valid) else 0
    return {"weights": {name: float(w) for name, w in zip(FEATURES, draws[best])}, "draw": best,
            "before": {"lid_acc": round(float(before[0]), 4), "wer": round(float(before[1]), 2)},
            "after": {"lid_acc": round(float(after[0]), 4), "wer": round(float(after[1]), 2)},
            "oracle_wer": round(float(tables.rates(oracle, 0)[1]), 2), "seconds": seconds}


# -- all of it ---------------------------------------------------------------------------------------------------

def parse_features(text: str | Sequence[str] | None, plugins: dict) -> list[str]:
    """The features searched: `text` ("slid,asr,uasr,len") or the default (DEFAULT_FEATURES, plus lm and wlid when
    their plug-ins are given)."""
    if text is None:
        names = [*DEFAULT_FEATURES, *[name for name in ("lm", "wlid") if plugins.get(name)]]
    else:
        names = [name.strip() for name in (text.split(",") if isinstance(text, str) else text) if name.strip()]
    unknown = [name for name in names if name not in FEATURES]
    if unknown:
        raise TuneRerankError(f"--features: unknown {', '.join(unknown)} (known: {', '.join(FEATURES)})")
    if not names:
        raise TuneRerankError("--features: no feature given")
    return [name for name in FEATURES if name in names]


def tune_rerank(manifest, *, refs=None, ref_langs=None, model=None, lid_model=None, zeroshot_model=None, n: int = 10,
                features=None, plugins: dict | None = None, trials: int = 10_000, seed: int = 0, dict_path=None,
                device="auto", dtype="auto", cache=None, log: Callable[[str], None] = lambda line: None) -> dict:
    """Search the re-ranking weights on a dev set (see the module docstring). `model`: the ASR model (None:
    mms-1b-all), `lid_model` (None: the registry's), `zeroshot_model` (for uasr; None: mms-zeroshot-300m); `features`:
    names or "a,b,c" (default DEFAULT_FEATURES + the plug-ins given); `plugins`: {"lm": {lang: ARPA}, "wlid": path}.
    Returns {"weights" {name: w}, "n", "features", "plugins", "models", "dev": {...}} (see weights_yaml)."""
    from mms.asr.rerank_features import build_features, check_specs

    if n < 1:
        raise TuneRerankError("--rerank N needs N >= 1")
    if trials < 1:
        raise TuneRerankError("--trials needs at least 1")
    plugins = check_specs(plugins or {})
    enabled = parse_features(features, plugins)
    plugins = {name: spec for name, spec in plugins.items() if name in enabled}
    text_features = build_features(plugins, [name for name in ("lm", "wlid") if name in enabled])
    items, references, langs = read_dev_set(manifest, refs, ref_langs)
    candidates = dev_candidates([item.audio for item in items], n, model=model, lid_model=lid_model,
                                zeroshot_model=zeroshot_model, uasr="uasr" in enabled, dict_path=dict_path,
                                device=device, dtype=dtype, cache=cache, log=log)
    for rows in candidates:
        if not isinstance(rows, list):
            log(f"error: {rows}")
    tables = build_tables(candidates, references, langs, enabled, text_features)
    if not tables.valid.any():
        raise TuneRerankError(f"{manifest}: no dev file has a candidate (every one failed)")
    missing_lm = getattr(text_features.get("lm"), "missing", 0)
    if missing_lm:
        log(f"note: {missing_lm} candidates are in a language without an LM (scored as unknown words)")
    found = search(tables, enabled, trials, seed)
    from mms.asr.auto import own_lid_model
    from mms.hub import default_model

    lid_model = lid_model or own_lid_model(model) or default_model("lid")
    models = {"asr_model": str(model or default_model("asr")), "lid_model": str(lid_model)}
    if "uasr" in enabled:
        models["zeroshot_model"] = str(zeroshot_model or "mms-zeroshot-300m")
    dev = {"manifest": str(manifest), "files": tables.files, "candidates": int(tables.valid.sum()),
           "failed": tables.failed, "trials": trials, "seed": seed, "features": enabled,
           "before": found["before"], "after": found["after"], "oracle_wer": found["oracle_wer"],
           "best_draw": found["draw"]}
    return {"weights": found["weights"], "n": n, "plugins": plugins, "models": models, "dev": dev,
            "seconds": found["seconds"]}


def result_weights(result: dict) -> RerankWeights:
    """The tuned weights as mms asr --rerank-weights reads them (the dev results and models recorded in `extra`)."""
    return RerankWeights(dict(result["weights"]), result["n"], {**result["models"], "dev": result["dev"]},
                         dict(result["plugins"]))


def weights_yaml(result: dict) -> str:
    dev = result["dev"]
    return (f"# mms tune-rerank: {dev['files']} dev files, {dev['candidates']} candidates, {dev['trials']} draws "
            f"(seed {dev['seed']}); error rate {dev['before']['wer']:.2f}% -> {dev['after']['wer']:.2f}%, "
            f"LID accuracy {100 * dev['before']['lid_acc']:.1f}% -> {100 * dev['after']['lid_acc']:.1f}%\n"
            + dump_weights(result_weights(result)))
