"""`mms tune`: pick --lm-weight and --word-score (--sil-weight for a unit LM) on a dev set.

    result = tune("mms-1b-all", "dev.jsonl", "lm.bin", lexicon="lexicon.txt", lang="yor")
    write_text_atomic("yor-lm.yaml", preset_yaml(result))
    tune("mms-zeroshot-300m", "dev.jsonl", None, lexicon="lexicon.txt")   # lexicon only: the word score alone

The acoustic model runs once per dev file (mms.runner; emissions cached as .npy under
~/.cache/mms/emissions, keyed by model, language and audio file), then every setting is a beam search over the
cached emissions in worker processes; the best WER wins, and preset_yaml() writes it for `mms asr --config`.
Without an LM (a lexicon alone, e.g. the zero-shot model's uroman lexicon) the decoder scores every word 0
(flashlight's ZeroLM): the LM weight does nothing, is fixed at 0, and only the word score is searched.
With a unit (character) LM and no lexicon, flashlight's LexiconFreeDecoder has no word score at all (its options
are the LM weight and the silence score), so the silence weight is searched in its place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from mms.errors import MMSError


class TuneError(MMSError):
    pass


@dataclass
class TuneSettings:
    """What is searched and how each setting is decoded (the defaults of `mms tune`)."""

    lm_weight: tuple[float, float] = (0.0, 5.0)  # range searched
    word_score: tuple[float, float] = (-3.0, 3.0)  # range searched (word LM, or a lexicon alone)
    sil_weight: tuple[float, float] = (-3.0, 3.0)  # range searched instead of word_score with a unit LM
    metric: str = "wer"  # what the best setting minimises: "wer" or "cer"
    trials: int = 20  # random settings tried ...
    grid: int | None = None  # ... or an N x N grid of the ranges instead
    seed: int = 0  # of the random settings
    beam: int = 100
    beam_size_token: int | None = None
    beam_threshold: float = 50.0
    decode_workers: int = 2  # beam-search processes (0: in this process)


def parse_range(text: str, name: str) -> tuple[float, float]:
    """"LO:HI" -> (lo, hi), in order; TuneError naming the option otherwise."""
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise TuneError(f"{name} {text!r}: expected LO:HI, e.g. 0:5") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise TuneError(f"{name} {text!r}: the range must be finite numbers")
    return min(lo, hi), max(lo, hi)


def searched(unit_lm: bool) -> str:
    """The option searched beside the LM weight: the lexicon-free decoder (unit LM) has no word score."""
    return "sil_weight" if unit_lm else "word_score"


def trial_settings(settings: TuneSettings, name: str = "word_score") -> list[tuple[float, float]]:
    """The (lm_weight, value of `name`) pairs to try, `name` being the option searched beside the LM weight
    (searched()): a grid, or random ones from the seed."""
    import numpy as np

    (w0, w1), (s0, s1) = settings.lm_weight, getattr(settings, name)
    if settings.grid:
        n = max(settings.grid, 1)
        lm_weights = [w0] if w0 == w1 else np.linspace(w0, w1, n)  # a fixed LM weight (no LM): one row
        return [(float(w), float(s)) for w in lm_weights for s in np.linspace(s0, s1, n)]
    rng = np.random.default_rng(settings.seed)
    return [(round(float(rng.uniform(w0, w1)), 3), round(float(rng.uniform(s0, s1)), 3))
            for _ in range(max(settings.trials, 1))]


def cache_key(model: str, lang: str | None, dict_path: str | None, audio: str, precision: str = "") -> str:
    """The files (by path, size and time), the language and where and in what the model ran ("cpu bfloat16":
    emissions of another dtype differ by up to a tenth of a logit)."""
    parts = []
    for path in (model, dict_path, audio):
        if path:
            stat = Path(path).stat()
            parts.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps([parts, lang] + ([precision] if precision else [])).encode()).hexdigest()[:32]


def dev_emissions(model: str, lang: str | None, dict_path: str | None, audios: Sequence[str], cache: Path,
                  device="auto", dtype="auto", log: Callable[[str], None] = lambda line: None) -> list:
    """Raw CTC logits [T, V] per dev file (None for an input that failed), from the cache where possible; the
    model is loaded only when some file is not cached."""
    import numpy as np

    from mms.device import precision_name

    cache.mkdir(parents=True, exist_ok=True)
    precision = precision_name(device, dtype)
    keys = [cache / f"{cache_key(model, lang, dict_path, audio, precision)}.npy" if Path(audio).exists() else None
            for audio in audios]
    missing = [i for i, key in enumerate(keys) if key is None or not key.exists()]
    if missing:
        runner = load_runner(model, lang, dict_path, device, dtype)
        log(f"computing emissions of {len(missing)} dev files")
        for i in missing:
            try:
                emissions = file_emissions(runner, audios[i])
            except MMSError as e:  # audio that cannot be read: its error names the file
                log(f"error: {e}")
                continue
            except (RuntimeError, MemoryError) as e:  # the model failed on it (out of memory, mostly)
                log(f"error: {audios[i]}: model failed ({type(e).__name__}: {(str(e).splitlines() or [''])[0]})")
                continue
            tmp = keys[i].with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, emissions)
            os.replace(tmp, keys[i])
    return [np.load(key) if key is not None and key.exists() else None for key in keys]


def load_runner(model: str, lang: str | None, dict_path: str | None, device, dtype):
    """The model, in `lang`, as mms.asr runs it."""
    from mms.checkpoints import load_checkpoint
    from mms.runner import ModelRunner

    checkpoint = load_checkpoint(model, dict_path)
    if checkpoint.config.vocab_size is None:
        raise TuneError(f"{checkpoint.path}: not a CTC speech recognition model (no output layer)")
    runner = ModelRunner(checkpoint, device, dtype)
    runner.select_language(lang)
    return runner


def file_emissions(runner, audio: str):
    """One file's raw logits [T, V], windowed and batched as `mms asr` does (mms.options.ASROptions)."""
    import numpy as np

    from mms.audio import load_audio
    from mms.options import ASROptions

    wave = runner.standardize(load_audio(audio))
    if runner.frames(wave.size) <= 0:  # too short for one frame: no emissions, an empty hypothesis
        return np.zeros((0, len(runner.vocab)), dtype=np.float32)
    options = ASROptions()
    return runner.emissions(wave, options.chunk_seconds, options.context_seconds, options.batch_seconds)


def tune(model: str, manifest: str, lm: str | None, *, lexicon: str | None = None, lang: str | None = None,
         refs: str | os.PathLike | Sequence[str] | None = None, dict_path: str | None = None, unit_lm: bool = False,
         settings: TuneSettings | None = None, device="auto", dtype="auto", cache: str | os.PathLike | None = None,
         log: Callable[[str], None] = lambda line: None) -> dict:
    """Search LM weight and word score for the lowest WER (settings.metric) of `lm` (and `lexicon`) on the dev set
    `manifest`; `lm` None: a lexicon alone, only the word score is searched (LM weight 0); `unit_lm` without a
    lexicon: LM weight and silence weight (the lexicon-free decoder has no word score).

    model: a path, published name or repo id (mms.hub.resolve_model). refs: a file of references (any format of
    mms.scoring.read_texts) or a list of them; None: the manifest's text. cache: the emission cache directory
    (default ~/.cache/mms/emissions). log: called with each progress line. Returns
    {"wer", "cer", "lm_weight", "word_score" (or "sil_weight": "searched" names which), "searched", "metric",
     "beam", "beam_size_token", "beam_threshold", "manifest", "utterances",
     "trials": [{"lm_weight", "word_score", "wer", "cer"}, ...]}, the winner first (see preset_yaml).
    Raises an MMSError (one line) for an unusable manifest, reference file, model, LM or lexicon.
    """
    from mms.checkpoints import load_vocabulary
    from mms.decoding.beam import BeamOptions, DecoderPool, lm_mismatch
    from mms.hub import resolve_model
    from mms.scoring import read_texts, score, texts_from_items
    from mms.manifest import read_manifest

    settings = settings or TuneSettings()
    if settings.metric not in ("wer", "cer"):
        raise TuneError(f"metric {settings.metric!r}: expected wer or cer")
    if lm is None:
        if not lexicon or unit_lm:
            raise TuneError("without --lm, give --lexicon (lexicon-only beam search searches the word score alone)")
        settings = replace(settings, lm_weight=(0.0, 0.0))
    items = read_manifest(manifest)
    if refs is None:
        refs = texts_from_items(items, manifest)
    elif isinstance(refs, (str, os.PathLike)):
        refs = read_texts(refs, len(items))
    elif len(refs) != len(items):
        raise TuneError(f"{len(refs)} references for {len(items)} dev files; they must pair up one to one")
    in_manifest = {item.lang for item in items if item.lang}
    if lang and in_manifest and in_manifest != {lang}:
        raise TuneError(f"--lang {lang}, but the dev set is in {', '.join(sorted(in_manifest))}; tune one language "
                        f"at a time")
    langs = in_manifest | ({lang} if lang else set())
    if len(langs) > 1:
        raise TuneError(f"the dev set mixes languages ({', '.join(sorted(langs))}); tune one language at a time")
    lang = next(iter(langs), None)
    # references with capitals or punctuation, which MMS models never write: both sides scored normalised, as
    # `mms asr --ref` scores on its second line and the trainers score their dev sets
    from mms.text.normalize import normalize_transcript

    normalized = [normalize_transcript(ref, lang) for ref in refs]
    normalize = normalized != list(refs)
    if normalize:
        refs = normalized
        log("scored against the references normalised as MMS transcripts are (lower case, no punctuation)")
    model = str(resolve_model(model, task="asr", lang=lang))
    vocab = load_vocabulary(model, lang, dict_path)
    base = BeamOptions(lm=None if lm is None else str(lm), lexicon=None if lexicon is None else str(lexicon),
                       unit_lm=unit_lm, beam=settings.beam, beam_size_token=settings.beam_size_token,
                       beam_threshold=settings.beam_threshold)
    name = searched(unit_lm and not lexicon)
    pool = DecoderPool(base, settings.decode_workers)
    try:
        pool.check(vocab)  # a bad LM or lexicon fails before the model runs
        mismatch = lm_mismatch(vocab, base)
        if mismatch:
            log(f"warning: {mismatch}")
        cache = Path(cache) if cache else Path.home() / ".cache" / "mms" / "emissions"
        if cache.exists() and not cache.is_dir():
            raise TuneError(f"--cache {cache}: is a file; give a folder")
        emissions = dev_emissions(model, lang, dict_path, [item.audio for item in items], cache, device, dtype, log)
        trials = []
        for n, (lm_weight, value) in enumerate(trial_settings(settings, name), 1):
            options = replace(base, lm_weight=lm_weight, **{name: value})
            futures = [pool.submit(vocab, e, options) if e is not None else None for e in emissions]
            hyps = [f.result().text if f is not None else None for f in futures]
            if normalize:
                hyps = [normalize_transcript(h, lang) if h is not None else None for h in hyps]
            scores = score(refs, hyps, per_utterance=False)
            trials.append({"lm_weight": lm_weight, name: value,
                           **{m: float("inf") if scores[m] is None else scores[m] for m in ("wer", "cer")}})
            log(f"[{n}] lm_weight {lm_weight:.3f} {name} {value:.3f}  WER {trials[-1]['wer']:.2f} "
                f"CER {trials[-1]['cer']:.2f}")
    finally:
        pool.close()
    trials.sort(key=lambda t: (t[settings.metric], t["lm_weight"], t[name]))
    best = trials[0]
    return {**best, "searched": name, "metric": settings.metric, "lm": None if lm is None else str(lm),
            "beam": settings.beam, "beam_size_token": settings.beam_size_token,
            "beam_threshold": settings.beam_threshold, "manifest": str(manifest), "utterances": len(items),
            "trials": trials}


def preset_yaml(result: dict) -> str:
    """The winner of tune() as a preset for `mms asr --config`."""
    size = result["beam_size_token"]
    no_lm = "; no LM (lexicon only): no lm_weight set" if "lm" in result and result["lm"] is None else ""
    name = result["searched"]
    return (f"# mms tune: WER {result['wer']:.2f}, CER {result['cer']:.2f} on {result['manifest']} "
            f"({result['utterances']} utterances), {len(result['trials'])} settings, lowest {result['metric']}{no_lm}\n"
            + ("" if no_lm else f"lm_weight: {result['lm_weight']}\n")  # (0 would switch off a later run's LM)
            + f"{name}: {result[name]}\nbeam: {result['beam']}\n"
            f"beam_size_token: {'null' if size is None else size}\n"
            f"beam_threshold: {result['beam_threshold']}\n")
