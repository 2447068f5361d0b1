"""Forced-alignment speed and memory: mms.align.forced_align against a plain full-trellis Viterbi.

    python benchmarks/align.py                      # T = 180,000 frames (1 h), L = 50,000 targets, V = 32
    python benchmarks/align.py --frames 18000 --targets 5000 --audio-seconds 600

Reference: torchaudio.functional.forced_align when it is importable (not a dependency), else a straightforward
full-trellis implementation (numpy, one vectorised step per frame over all 2L+1 states, an int8 back-pointer
for every cell, as torchaudio's CPU kernel keeps them), run on a 10x smaller problem that it can hold and
extrapolated by trellis cells (time) and back-pointer bytes (memory). Each measurement runs in a fresh
process, so peak memory (max RSS above the process's baseline after imports) is its own.
Also: emission throughput of the aligner's windowed, batched forward on random audio with a tiny model.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def problem(frames: int, targets: int, classes: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    lp = torch.randn(frames, classes, generator=g).log_softmax(-1)
    return lp, torch.randint(1, classes, (targets,), generator=g)


def full_trellis(lp: np.ndarray, tgt: np.ndarray, blank: int = 0) -> np.ndarray:
    """Whole-trellis Viterbi: T x S int8 back-pointers, torchaudio's tie rules."""
    n_frames, n_states = lp.shape[0], 2 * tgt.size + 1
    ext = np.full(n_states, blank)
    ext[1::2] = tgt
    skip = np.full(n_states, -np.inf, dtype=np.float32)
    skip[3::2] = np.where(tgt[1:] != tgt[:-1], 0, -np.inf)
    back = np.zeros((n_frames, n_states), dtype=np.int8)
    alpha = np.full(n_states + 2, -np.inf, dtype=np.float32)
    alpha[2:4] = lp[0, ext[:2]]
    for t in range(1, n_frames):
        stay, step, jump = alpha[2:], alpha[1:-1], alpha[:-2] + skip
        best = np.maximum(stay, step)
        choice = (step > stay).astype(np.int8)
        choice[jump > best] = 2
        new = np.full_like(alpha, -np.inf)
        new[2:] = np.maximum(best, jump) + lp[t, ext]
        back[t], alpha = choice, new
    s = n_states - 1 if alpha[-1] > alpha[-2] else n_states - 2
    path = np.empty(n_frames, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        path[t] = ext[s]
        s -= int(back[t, s])
    return path


def measure(kind: str, frames: int, targets: int, classes: int) -> dict:
    import torch

    lp, tgt = problem(frames, targets, classes)
    if kind == "mms":
        from mms.align import viterbi

        viterbi.forced_align(lp[:64], tgt[:8])  # compile (numba) outside the timing
        base = rss_mb()
        start = time.perf_counter()
        labels, _ = viterbi.forced_align(lp, tgt)
        backend = "numba" if viterbi.numba is not None else "torch"
    elif kind == "torchaudio":
        import torchaudio.functional as F

        base = rss_mb()
        start = time.perf_counter()
        labels, _ = F.forced_align(lp[None], tgt[None].int(), blank=0)
        backend = "torchaudio"
    else:
        lp_np, tgt_np = lp.numpy(), tgt.numpy()
        base = rss_mb()
        start = time.perf_counter()
        labels = full_trellis(lp_np, tgt_np)
        backend = "numpy full trellis"
    seconds = time.perf_counter() - start
    return {"kind": kind, "backend": backend, "frames": frames, "targets": targets, "seconds": seconds,
            "peak_mb": rss_mb() - base, "path_checksum": int(np.asarray(labels).reshape(-1)[::997].sum())}


def run_child(kind: str, frames: int, targets: int, classes: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--frames", str(frames), "--targets",
                          str(targets), "--classes", str(classes)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def emission_throughput(seconds: float) -> dict:
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from mms.align.aligner import Aligner
    from mms.checkpoints import Checkpoint
    from mms.options import AlignOptions
    from mms.text.vocab import Vocabulary
    from tests.factory import ALIGNMENT_TOKENS, alignment_config, random_model

    model = random_model(alignment_config(), {"x": len(ALIGNMENT_TOKENS)}, seed=0)
    ckpt = Checkpoint("torchaudio", "<tiny>", model.cfg, model.canonical_state(),
                      Vocabulary(list(ALIGNMENT_TOKENS)), normalize=False)
    aligner = Aligner(ckpt, device="cpu", options=AlignOptions(batch_seconds=120))
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    start = time.perf_counter()
    with torch.inference_mode():
        emissions, _ = aligner.emissions(wave)
    elapsed = time.perf_counter() - start
    return {"audio_seconds": seconds, "seconds": elapsed, "frames": emissions.shape[0],
            "realtime_factor": seconds / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=180_000)
    parser.add_argument("--targets", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--audio-seconds", type=float, default=3600.0, help="emission throughput (0: skip)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.frames, args.targets, args.classes)))
        return

    ours = run_child("mms", args.frames, args.targets, args.classes)
    print(f"mms forced_align ({ours['backend']}): T={args.frames} L={args.targets} V={args.classes}: "
          f"{ours['seconds']:.2f} s, peak +{ours['peak_mb']:.0f} MB")
    try:
        import torchaudio.functional  # noqa: F401

        ref = run_child("torchaudio", args.frames, args.targets, args.classes)
        ref_seconds, ref_mb, label = ref["seconds"], ref["peak_mb"], "torchaudio.functional.forced_align"
    except (ImportError, subprocess.CalledProcessError):
        small_t, small_l = args.frames // 10, args.targets // 10
        ref = run_child("numpy", small_t, small_l, args.classes)
        scale = (args.frames * (2 * args.targets + 1)) / (small_t * (2 * small_l + 1))
        check = run_child("mms", small_t, small_l, args.classes)
        same = "same path" if check["path_checksum"] == ref["path_checksum"] else "PATHS DIFFER"
        print(f"reference, numpy full trellis at T={small_t} L={small_l}: {ref['seconds']:.2f} s, peak "
              f"+{ref['peak_mb']:.0f} MB ({same} as mms there: {check['seconds']:.2f} s, +{check['peak_mb']:.0f} MB)")
        ref_seconds, ref_mb = ref["seconds"] * scale, ref["peak_mb"] * scale
        label = f"numpy full trellis, extrapolated x{scale:.0f} cells"
    print(f"reference ({label}): {ref_seconds:.1f} s, {ref_mb:.0f} MB")
    print(f"ratio: time {ref_seconds / ours['seconds']:.1f}x faster, memory {ref_mb / max(ours['peak_mb'], 1):.0f}x "
          f"smaller")
    if args.audio_seconds > 0:
        e = emission_throughput(args.audio_seconds)
        print(f"emissions, tiny model, {e['audio_seconds']:.0f} s of audio on CPU: {e['seconds']:.1f} s "
              f"({e['realtime_factor']:.0f}x real time, {e['frames']} frames)")


if __name__ == "__main__":
    main()
