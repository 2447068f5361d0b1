"""`mms tune`: pick --lm-weight and --word-score on a dev set.

The acoustic model runs once per dev file (emissions cached as .npy under ~/.cache/mms/emissions, keyed by
model, language and audio file), then every setting is a beam search over the cached emissions in worker
processes; the best WER wins and is written as a YAML preset for `mms asr --config`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np


class TuneError(ValueError):
    pass


def parse_range(text: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise TuneError(f"{name} {text!r}: expected LO:HI, e.g. 0:5") from None
    return min(lo, hi), max(lo, hi)


def settings(args) -> list[tuple[float, float]]:
    (w0, w1), (s0, s1) = parse_range(args.lm_weight, "--lm-weight"), parse_range(args.word_score, "--word-score")
    if args.grid:
        n = max(args.grid, 1)
        return [(float(w), float(s)) for w in np.linspace(w0, w1, n) for s in np.linspace(s0, s1, n)]
    rng = np.random.default_rng(args.seed)
    return [(round(float(rng.uniform(w0, w1)), 3), round(float(rng.uniform(s0, s1)), 3))
            for _ in range(max(args.trials, 1))]


def cache_key(model: str, lang: str | None, dict_path: str | None, audio: str) -> str:
    parts = []
    for path in (model, dict_path, audio):
        if path:
            stat = Path(path).stat()
            parts.append([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps([parts, lang]).encode()).hexdigest()[:32]


def dev_emissions(args, items) -> list[np.ndarray | None]:
    """Emissions per dev item (None for an input that failed), from the cache where possible."""
    cache = Path(args.cache or Path.home() / ".cache" / "mms" / "emissions")
    cache.mkdir(parents=True, exist_ok=True)
    keys = [cache / f"{cache_key(args.model, args.lang, args.dict_path, item.audio)}.npy"
            if Path(item.audio).exists() else None for item in items]
    missing = [i for i, key in enumerate(keys) if key is None or not key.exists()]
    if missing:
        from mms.asr.transcriber import ASR

        asr = ASR.load(args.model, lang=args.lang, device=args.device, dtype=args.dtype, dict_path=args.dict_path)
        print(f"mms tune: computing emissions of {len(missing)} dev files", file=sys.stderr)
        for i, result in zip(missing, asr.transcribe_iter([items[i] for i in missing], keep_emissions=True)):
            if result.error:
                print(f"mms tune: error: {result.error}", file=sys.stderr)
                continue
            tmp = keys[i].with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, result.emissions)
            os.replace(tmp, keys[i])
    return [np.load(key) if key is not None and key.exists() else None for key in keys]


def tune(args) -> int:
    from mms.checkpoints import CheckpointError, load_vocabulary
    from mms.decoding.beam import BeamOptions, BeamSearchError, DecoderPool
    from mms.lm.scoring import ScoringError, read_texts, score, texts_from_items
    from mms.manifest import ManifestError, read_manifest
    from mms.outputs import write_text_atomic

    try:
        items = read_manifest(args.manifest)
        refs = read_texts(args.ref, len(items)) if args.ref else texts_from_items(items, args.manifest)
        langs = {item.lang for item in items if item.lang} | ({args.lang} if args.lang else set())
        if len(langs) > 1:
            raise TuneError(f"the dev set mixes languages ({', '.join(sorted(langs))}); tune one language at a time")
        args.lang = next(iter(langs), None)
        vocab = load_vocabulary(args.model, args.lang, args.dict_path)
        base = BeamOptions(lm=args.lm, lexicon=args.lexicon, unit_lm=args.unit_lm, beam=args.beam,
                           beam_size_token=args.beam_size_token, beam_threshold=args.beam_threshold)
        pool = DecoderPool(base, args.decode_workers)
        pool.check(vocab)
    except (ManifestError, ScoringError, CheckpointError, BeamSearchError) as e:
        raise TuneError(str(e)) from None

    try:
        emissions = dev_emissions(args, items)
        results = []
        for n, (lm_weight, word_score) in enumerate(settings(args), 1):
            options = replace(base, lm_weight=lm_weight, word_score=word_score)
            futures = [pool.submit(vocab, e, options) if e is not None else None for e in emissions]
            hyps = [f.result().text if f is not None else None for f in futures]
            wer = score(refs, hyps, per_utterance=False)["wer"]
            results.append((wer if wer is not None else float("inf"), lm_weight, word_score))
            print(f"mms tune: [{n}] lm_weight {lm_weight:.3f} word_score {word_score:.3f}  WER {wer:.2f}",
                  file=sys.stderr)
    finally:
        pool.close()
    wer, lm_weight, word_score = min(results)
    preset = (f"# mms tune: WER {wer:.2f} on {args.manifest} ({len(items)} utterances), {len(results)} settings\n"
              f"lm_weight: {lm_weight}\nword_score: {word_score}\nbeam: {args.beam}\n"
              f"beam_size_token: {'null' if args.beam_size_token is None else args.beam_size_token}\n"
              f"beam_threshold: {args.beam_threshold}\n")
    write_text_atomic(args.output, preset)
    print(f"mms tune: best WER {wer:.2f} with lm_weight {lm_weight} word_score {word_score}", file=sys.stderr)
    return 0
