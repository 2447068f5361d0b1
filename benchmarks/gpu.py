"""GPU inference at full MMS-1B size, measured: mms (ModelRunner) against transformers' Wav2Vec2ForCTC in one run.

    python benchmarks/gpu.py                              # CUDA, 48 layers: a few minutes on one GPU
    python benchmarks/gpu.py --compile                    # also torch.compile'd mms models
    python benchmarks/gpu.py --device cpu --layers 2      # dry run of the whole script on a CPU (tested)

A random-weight model of the full MMS-1B shape (48 layers, 1280 wide, 16 heads, FFN 5120, per-language adapters;
weights drawn on the device, nothing downloaded) is built once and given to both implementations in each dtype.
Printed, per dtype (float32, bfloat16, float16; on a CPU float32 and bfloat16):
  * real-time factor at batch 1 (forward seconds / audio seconds, one --seconds input, best of --repeats);
  * batched throughput in audio seconds per second over --utterances inputs of 2-16 s, run as `mms asr` runs them
    (ModelRunner: length-sorted batches of --batch-seconds of padded audio, pinned memory, non-blocking copies,
    padding masks into SDPA); transformers gets the very same batches with an attention mask;
  * peak GPU memory of each (torch.cuda.max_memory_allocated);
  * the logit difference to float32 on the same device, and to a CPU float32 run (CUDA float32 vs CPU float32).
The script ends with the device's name, torch and transformers versions and the date, and takes under 8 minutes
on one recent GPU (most of it building the models).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SR = 16000


def random_state(cfg, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Canonical weights drawn on the device (seconds for a billion weights on a GPU): norms near 1, small biases,
    matrices scaled by 1/sqrt(fan-in)."""
    from mms.models.wav2vec2 import build_model

    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.device("meta"):
        shapes = {name: value.shape for name, value in build_model(cfg).state_dict().items()}
    state = {}
    for name, shape in shapes.items():
        value = torch.randn(shape, generator=generator, device=device)
        if name.endswith(".weight") and len(shape) == 1:
            value = 1 + 0.2 * value
        elif name.endswith(".bias"):
            value = 0.1 * value
        else:
            value = value / float(np.prod(shape[1:])) ** 0.5
        state[name] = value
    return state


def build_mms(cfg, state, device, dtype, compile_: bool):
    from mms.checkpoints import Checkpoint
    from mms.models.wav2vec2 import build_model
    from mms.runner import ModelRunner

    with torch.device("meta"):
        model = build_model(cfg)
    model.load_state_dict(state, assign=True)
    model = model.to(device, dtype).eval()
    if compile_:
        model = torch.compile(model, dynamic=True)
    checkpoint = Checkpoint(format="random", path="random MMS-1B shape", config=cfg, state_dict={}, lang="eng")
    return ModelRunner(checkpoint, device, dtype, model=model)


def batcher(cfg, device, dtype):
    """A ModelRunner without a model: its batches and padding, for transformers."""
    from mms.checkpoints import Checkpoint
    from mms.runner import ModelRunner

    checkpoint = Checkpoint(format="random", path="random MMS-1B shape", config=cfg, state_dict={}, lang="eng")
    return ModelRunner(checkpoint, device, dtype, model=torch.nn.Module())


def build_transformers(cfg, state, device, dtype):
    import transformers

    from tests.factory import hf_config

    with torch.device("meta"):
        model = transformers.Wav2Vec2ForCTC(hf_config(cfg, vocab_size=cfg.vocab_size, target_lang=None))
    hf_state = dict(state)
    pos = "wav2vec2.encoder.pos_conv_embed.conv."
    weight = hf_state.pop(pos + "weight")  # weight norm over dim 2: g = ||v|| makes g * v / ||v|| = v
    hf_state[pos + "parametrizations.weight.original0"] = torch.linalg.vector_norm(weight, dim=(0, 1), keepdim=True)
    hf_state[pos + "parametrizations.weight.original1"] = weight
    hf_state["wav2vec2.masked_spec_embed"] = torch.zeros(cfg.hidden_size)
    model.load_state_dict(hf_state, strict=True, assign=True)
    return model.to(device, dtype).eval()


def synth(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 3000, 3)) + 0.1 * rng.standard_normal(t.size)
    wave = (wave - wave.mean()) / (wave.std() + 1e-5)
    return wave.astype(np.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(fn, device, repeats: int) -> float:
    fn()  # warm-up (kernel selection, compilation)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    """Peak device memory since reset_peak; NaN on a CPU (a process's RSS peak is not per model)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def mms_batched(runner, waves, batch_seconds: float):
    """Every wave through ModelRunner.run as `mms asr` runs them; returns the logits per input (on the device)."""
    out = [None] * len(waves)

    def use(batch, logits, frames):
        for i, row, n in zip(batch, logits, frames):
            out[i] = row[:n]

    def fail(i, reason):
        raise RuntimeError(reason)

    runner.run(list(range(len(waves))), lambda i: waves[i], use, fail, runner.batch_samples(batch_seconds))
    return out


def hf_batched(model, runner, waves, batch_seconds: float, device, dtype):
    """transformers on the very batches ModelRunner forms, with its attention mask."""
    out = [None] * len(waves)
    with torch.inference_mode():
        for order in runner.batches([w.size for w in waves], runner.batch_samples(batch_seconds)):
            batch, lengths = runner.pad([waves[i] for i in order])
            mask = torch.arange(batch.shape[1], device=device)[None] < lengths[:, None]
            logits = model(batch.to(dtype), attention_mask=mask.long()).logits
            frames = runner.frames(lengths).tolist()
            for i, row, n in zip(order, logits, frames):
                out[i] = row[:n]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--layers", type=int, default=48, help="transformer layers (MMS-1B: 48)")
    p.add_argument("--dtypes", default=None, help="default: float32,bfloat16,float16 (CPU: float32,bfloat16)")
    p.add_argument("--seconds", type=float, default=15.0, help="length of the batch-1 input")
    p.add_argument("--utterances", type=int, default=64, help="inputs of 2-16 s for the batched throughput")
    p.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio per batch (mms asr on CUDA: 200)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    p.add_argument("--compile", action="store_true", help="also torch.compile the mms model (adds compile time)")
    p.add_argument("--no-transformers", action="store_true")
    p.add_argument("--cpu-reference-seconds", type=float, default=4.0,
                   help="input length of the CUDA float32 vs CPU float32 comparison")
    args = p.parse_args()
    started = time.perf_counter()

    from mms.device import cpu_name, resolve_device
    from tests.factory import mms1b_config

    device = resolve_device(args.device)
    dtypes = (args.dtypes or ("float32,bfloat16,float16" if device.type == "cuda" else "float32,bfloat16")).split(",")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU {cpu_name()}, {torch.get_num_threads()} threads"
    try:
        import transformers

        versions = f"torch {torch.__version__}, transformers {transformers.__version__}"
    except ImportError:
        args.no_transformers, versions = True, f"torch {torch.__version__}, no transformers"
    print(f"device: {name}; {versions}; {datetime.date.today().isoformat()}", flush=True)

    cfg = mms1b_config(layers=args.layers)
    # drawn on the device, kept on the CPU: every model is copied from it, so each peak below is its own
    state = {k: v.cpu() for k, v in random_state(cfg, device).items()}
    n_params = sum(v.numel() for v in state.values())
    print(f"model: random MMS-1B shape, {args.layers} layers, {n_params / 1e6:.0f}M weights "
          f"(built in {time.perf_counter() - started:.0f} s)", flush=True)
    rng = np.random.default_rng(0)
    single = synth(args.seconds, rng)
    waves = [synth(s, rng) for s in rng.uniform(2, 16, args.utterances)]
    total = sum(w.size for w in waves) / SR
    print(f"inputs: one {args.seconds:g} s input (batch 1); {args.utterances} of 2-16 s, {total:.0f} s in all, "
          f"batches of {args.batch_seconds:g} s padded audio", flush=True)

    rows, reference = [], None
    short = single[:int(args.cpu_reference_seconds * SR)]
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        variants = [("mms", False)] + ([("mms compiled", True)] if args.compile else [])
        for label, compile_ in variants:
            reset_peak(device)
            runner = build_mms(cfg, state, device, dtype, compile_)
            with torch.inference_mode():
                rtf = best_of(lambda: runner.forward([single]), device, args.repeats) / args.seconds
                seconds = best_of(lambda: mms_batched(runner, waves, args.batch_seconds), device, args.repeats)
                logits = runner.forward([short])[0][0].float().cpu()
            row = {"impl": label, "dtype": dtype_name, "rtf": rtf, "throughput": total / seconds,
                   "peak": peak_gib(device)}
            if dtype_name == "float32" and not compile_:
                reference = logits
            if reference is not None:
                row["diff"] = (logits - reference).abs().max().item()
                row["agree"] = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
            rows.append(row)
            print(f"  {label} {dtype_name}: batch-1 RTF {rtf:.4f}, batched {row['throughput']:.0f} audio s/s, peak "
                  f"{row['peak']:.2f} GiB", flush=True)
            del runner
        if not args.no_transformers:
            reset_peak(device)
            model = build_transformers(cfg, state, device, dtype)
            runner = batcher(cfg, device, dtype)
            x = torch.from_numpy(single)[None].to(device, dtype)
            with torch.inference_mode():
                rtf = best_of(lambda: model(x).logits, device, args.repeats) / args.seconds
                seconds = best_of(lambda: hf_batched(model, runner, waves, args.batch_seconds, device, dtype), device,
                                  args.repeats)
                logits = model(torch.from_numpy(short)[None].to(device, dtype)).logits[0].float().cpu()
            row = {"impl": "transformers", "dtype": dtype_name, "rtf": rtf, "throughput": total / seconds,
                   "peak": peak_gib(device)}
            if reference is not None:
                row["diff"] = (logits - reference).abs().max().item()
                row["agree"] = (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()
            rows.append(row)
            print(f"  transformers {dtype_name}: batch-1 RTF {rtf:.4f}, batched {row['throughput']:.0f} audio s/s, "
                  f"peak {row['peak']:.2f} GiB", flush=True)
            del model, runner
        if device.type == "cuda":
            torch.cuda.empty_cache()

    cpu_diff = None
    if device.type == "cuda" and reference is not None:
        runner = build_mms(cfg, state, torch.device("cpu"), torch.float32, False)
        cpu_logits = runner.forward([short])[0][0]
        cpu_diff = (reference - cpu_logits).abs().max().item()

    print(f"\n{'implementation':<14} {'dtype':<9} {'RTF batch 1':>11} {'batched s/s':>11} {'peak GiB':>9} "
          f"{'max |dlogit| vs fp32':>21} {'argmax agree':>12}")
    for r in rows:
        diff = f"{r['diff']:.2e}" if "diff" in r else "-"
        agree = f"{100 * r['agree']:.1f}%" if "agree" in r else "-"
        print(f"{r['impl']:<14} {r['dtype']:<9} {r['rtf']:11.4f} {r['throughput']:11.0f} {r['peak']:9.2f} "
              f"{diff:>21} {agree:>12}")
    for dtype_name in dtypes:
        ours = [r for r in rows if r["impl"] == "mms" and r["dtype"] == dtype_name]
        theirs = [r for r in rows if r["impl"] == "transformers" and r["dtype"] == dtype_name]
        if ours and theirs:
            print(f"mms / transformers, {dtype_name}: batch 1 {theirs[0]['rtf'] / ours[0]['rtf']:.2f}x, batched "
                  f"{ours[0]['throughput'] / theirs[0]['throughput']:.2f}x")
    if cpu_diff is not None:
        print(f"CUDA float32 vs CPU float32 (mms, {args.cpu_reference_seconds:g} s input): max |dlogit| {cpu_diff:.2e} "
              f"(TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 {torch.backends.cudnn.allow_tf32})")
    print(f"{name}; {versions}; {datetime.date.today().isoformat()}; {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
