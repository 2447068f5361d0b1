"""ASR speed: whole `mms asr` processes against transformers' model-card recipe, on the same random MMS-1B-shaped
model and the same files, then how close the model's own GFLOP/s come to this machine's measured matmul peak.

    python benchmarks/asr.py [--layers 4] [--utterances 16] [--rounds 3] [--configs float32,auto,int8]
                             [--quick] [--memory-minutes 10,60]

The model has MMS-1B's real layer shapes (hidden 1280, FFN 5120, 16 heads, adapters) but only --layers
transformer layers (MMS-1B has 48) and random weights, so its transcripts are gibberish, but the same gibberish
from both implementations. The audio is synthetic (seeded), 2-16 s, written as 16 kHz wav files.

Throughput: every configuration is one fresh process over all the files, timed from its start to its exit (start-up,
imports, model load, audio decoding, inference, output), so both sides pay their start-up:
  * transformers: the model-card path (AutoProcessor + Wav2Vec2ForCTC.from_pretrained(target_lang=...), one file
    at a time, argmax, processor.decode), in float32;
  * mms: `mms asr --model DIR --lang eng --device cpu` with `--dtype float32`, `--dtype auto` (bfloat16 on CPUs
    with native bf16) and `--dtype auto --quantize int8`.
The configurations run interleaved, one after the other, for --rounds rounds, so a busy machine slows them alike;
the ratios are per round (transformers' time / mms's time in the same round), median over the rounds.

Efficiency: in this process, the best of several [1024 x 1280] @ [1280 x 5120] products per dtype (float32,
bfloat16, and the int8 kernel of mms.quantize) is the measured peak; the mms model's forward pass on one 15 s
input, counted in FLOPs (convolutions, linear layers, attention), gives its achieved GFLOP/s, for the whole model
and for the transformer layers alone.

Memory (--memory-minutes, default none; --quick: 1,5): peak RSS of one long file per fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SR = 16000

# transformers' model card (facebook/mms-1b-all), one file at a time; prints one JSON list of transcripts
MODEL_CARD = r"""
import json, sys, soundfile, torch
from transformers import AutoProcessor, Wav2Vec2ForCTC
model_dir, files = sys.argv[1], sys.argv[2:]
processor = AutoProcessor.from_pretrained(model_dir, target_lang="eng")
model = Wav2Vec2ForCTC.from_pretrained(model_dir, target_lang="eng", ignore_mismatched_sizes=True).eval()
texts = []
for path in files:
    audio, _ = soundfile.read(path, dtype="float32")
    inputs = processor(audio, sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    texts.append(processor.decode(torch.argmax(logits, dim=-1)[0]))
print(json.dumps(texts))
"""

CONFIGS = {  # name -> extra `mms asr` arguments
    "float32": ["--dtype", "float32"],
    "auto": ["--dtype", "auto"],
    "int8": ["--dtype", "auto", "--quantize", "int8"],
}


def synth(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-ish: a few drifting tones, amplitude-modulated at syllable rate, plus noise."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * (f + 30 * np.sin(2 * np.pi * 0.5 * t)) * t) for f in rng.uniform(100, 3000, 3))
    wave = wave * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t) ** 2) + 0.1 * rng.standard_normal(t.size)
    return (0.2 * wave / np.abs(wave).max()).astype(np.float32)


def write_model(layers: int, out: Path) -> Path:
    from tests.factory import mms1b_config, random_model, write_hf

    return write_hf(random_model(mms1b_config(layers=layers), {"eng": 40}, seed=0), out)


def timed_process(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the process and its threads, stdout) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:6])} ... failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def run_transformers(model_dir: Path, paths: list[str]) -> tuple[float, float, list[str]]:
    wall, cpu, out = timed_process([sys.executable, "-c", MODEL_CARD, str(model_dir), *paths])
    return wall, cpu, json.loads(out.strip().splitlines()[-1])


def run_mms(model_dir: Path, paths: list[str], extra: list[str], out_file: Path) -> tuple[float, float, list[str]]:
    wall, cpu, _ = timed_process([sys.executable, "-m", "mms", "asr", "--model", str(model_dir), "--lang", "eng",
                                  "--device", "cpu", "--format", "jsonl", "--output", str(out_file), *extra, *paths])
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    return wall, cpu, [r["text"] for r in sorted(records, key=lambda r: r["index"])]


def cer(ref: str, hyp: str) -> float:
    """Character edit distance / reference length (the gibberish of the random model, compared between runs)."""
    prev = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        cur = [i]
        for j, b in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = cur
    return prev[-1] / max(len(ref), 1)


# -- efficiency ------------------------------------------------------------------------------------------------

def model_flops(cfg, n_samples: int) -> tuple[float, float]:
    """(whole model, transformer layers) multiply-add FLOPs of one input of n_samples, batch 1."""
    t, flops, in_dim = n_samples, 0.0, 1
    for dim, k, s in zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride):
        t = (t - k) // s + 1
        flops += 2.0 * t * dim * in_dim * k
        in_dim = dim
    d, f = cfg.hidden_size, cfg.intermediate_size
    flops += 2.0 * t * in_dim * d  # feature projection
    flops += 2.0 * t * d * (d // cfg.num_conv_pos_embedding_groups) * cfg.num_conv_pos_embeddings
    layer = 2.0 * t * d * (4 * d + 2 * f) + 4.0 * t * t * d + 4.0 * t * d * (cfg.adapter_attn_dim or 0)
    layers = layer * cfg.num_hidden_layers
    return flops + layers + 2.0 * t * d * (cfg.vocab_size or 0), layers


def best_seconds(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peaks(repeats: int = 10) -> dict[str, float]:
    """GFLOP/s of the best [1024 x 1280] @ [1280 x 5120] product in float32, bfloat16 and int8 (mms.quantize)."""
    import torch

    from mms.quantize import Int8Linear, available

    m, k, n = 1024, 1280, 5120
    flops = 2.0 * m * k * n
    a, b = torch.randn(m, k), torch.randn(k, n)
    peaks = {}
    with torch.inference_mode():
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            x, y = a.to(dtype), b.to(dtype)
            peaks[name] = flops / best_seconds(lambda: torch.matmul(x, y), repeats) / 1e9
        if available():
            layer = Int8Linear(b.t().contiguous(), None)
            q = torch.randint(0, 256, (m, k), dtype=torch.uint8)
            kernel = torch.ops.onednn.qlinear_pointwise
            peaks["int8"] = flops / best_seconds(lambda: kernel(q, 1.0, 128, layer.packed, layer.scale, layer.zero_point,
                                                                None, 1.0, 0, torch.float32, "none", [], "none"),
                                                 repeats) / 1e9
    return peaks


def efficiency(model_dir: Path, configs: list[str], repeats: int) -> None:
    import torch

    from mms.checkpoints import load_checkpoint
    from mms.runner import ModelRunner

    peaks = matmul_peaks()
    print(f"\nmatmul peak ([1024 x 1280] @ [1280 x 5120], best of 10, {torch.get_num_threads()} threads): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))
    wave = synth(15.0, np.random.default_rng(3))
    print(f"  {'mms config':<10} {'dtype':<9} {'forward s':>9} {'model GFLOP/s':>14} {'layers GFLOP/s':>15} "
          f"{'peak':>8} {'model/peak':>10} {'layers/peak':>11}")
    for name in configs:
        quantize = "int8" if name == "int8" else None
        runner = ModelRunner(load_checkpoint(model_dir), "cpu", "float32" if name == "float32" else "auto",
                             quantize=quantize)
        runner.set_language("eng")
        x = runner.standardize(wave)
        total, layers = model_flops(runner.config, x.size)
        seconds = best_seconds(lambda: runner.forward([x]), repeats)
        model = runner.model.wav2vec2
        with torch.inference_mode():
            hidden = model.feature_projection(model.feature_extractor(
                torch.from_numpy(x)[None].to(runner.dtype)).transpose(1, 2))
            residual = hidden.float()
            layer_seconds = best_seconds(lambda: [layer(residual, None, runner.dtype) for layer in model.encoder.layers],
                                         repeats)
        peak_name = "int8" if quantize else {torch.float32: "float32", torch.bfloat16: "bfloat16"}.get(runner.dtype)
        peak = peaks.get(peak_name, float("nan"))
        print(f"  {name:<10} {str(runner.dtype).replace('torch.', ''):<9} {seconds:9.2f} {total / seconds / 1e9:14.0f} "
              f"{layers / layer_seconds / 1e9:15.0f} {peak_name:>8} {total / seconds / 1e9 / peak:10.0%} "
              f"{layers / layer_seconds / 1e9 / peak:11.0%}", flush=True)


# -- memory of long files -------------------------------------------------------------------------------------

def memory_child(model_dir, path, dtype, quantize):
    """Run in a fresh process: peak RSS after loading the model, then after transcribing one long file."""
    from mms.asr import ASR

    def peak_mib():
        status = Path("/proc/self/status").read_text()  # VmHWM: this process's own high-water mark
        return int(status.split("VmHWM:")[1].split()[0]) / 1024

    asr = ASR.load(model_dir, lang="eng", device="cpu", dtype=dtype, quantize=quantize)
    loaded = peak_mib()
    start = time.perf_counter()
    [result] = asr.transcribe([path])
    assert result.error is None, result.error
    print(json.dumps({"loaded": loaded, "peak": peak_mib(), "seconds": time.perf_counter() - start}))


def memory(tmp: Path, layers: int, minutes: list[float], dtype: str) -> None:
    mem_dir = write_model(layers, tmp / "memory-model")
    print(f"\npeak memory, one long file per fresh process ({layers}-layer model, --dtype {dtype}; RSS = VmHWM)")
    print(f"  {'audio':>8} {'wave MiB':>9} {'RSS after load':>15} {'peak RSS':>9} {'growth':>9} {'seconds':>8}")
    for m in minutes:
        wav = tmp / f"long-{m:g}min.wav"
        soundfile.write(wav, np.tile(synth(60, np.random.default_rng(1)), int(np.ceil(m)))[:int(m * 60 * SR)], SR)
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(mem_dir), str(wav), dtype],
                             capture_output=True, text=True)
        wav.unlink()
        if out.returncode:
            print(f"  {m:>6g} m  failed:\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {m:>6g} m {m * 60 * SR * 4 / 2**20:9.1f} {r['loaded']:11.0f} MiB {r['peak']:5.0f} MiB "
              f"{r['peak'] - r['loaded']:5.0f} MiB {r['seconds']:8.1f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4, help="transformer layers (MMS-1B: 48)")
    p.add_argument("--utterances", type=int, default=None, help="default 16 (--quick: 8)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds of every configuration (default 3; "
                                                             "--quick: 1)")
    p.add_argument("--configs", default="float32,auto,int8", help="mms configurations: float32, auto, int8")
    p.add_argument("--no-transformers", action="store_true", help="mms processes only")
    p.add_argument("--no-efficiency", action="store_true", help="skip the GFLOP/s part")
    p.add_argument("--memory-layers", type=int, default=2, help="layers of the model used for the long files")
    p.add_argument("--memory-minutes", default=None, help="comma-separated minutes of long files (default: none; "
                                                          "--quick: 1,5)")
    p.add_argument("--quick", action="store_true", help="8 utterances, one round, 1- and 5-minute files")
    p.add_argument("--memory-child", nargs=3, metavar=("MODEL", "WAV", "DTYPE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        model_dir, wav, dtype = args.memory_child
        return memory_child(model_dir, wav, dtype, None)
    n_utt = args.utterances or (8 if args.quick else 16)
    rounds = args.rounds or (1 if args.quick else 3)
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        p.error(f"unknown --configs {', '.join(sorted(unknown))} (use {', '.join(CONFIGS)})")
    minutes = args.memory_minutes if args.memory_minutes is not None else ("1,5" if args.quick else "")
    minutes = [float(m) for m in minutes.split(",") if m]

    import torch
    import transformers

    from mms.device import auto_dtype, cpu_name, cpu_native_bf16

    with tempfile.TemporaryDirectory(prefix="mms-bench-") as tmp:
        tmp = Path(tmp)
        print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs, native bf16: {cpu_native_bf16()} "
              f"(--dtype auto = {str(auto_dtype(torch.device('cpu'))).replace('torch.', '')}); torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads; transformers {transformers.__version__}")
        print(f"model: random MMS-1B shapes, {args.layers} layers (MMS-1B: 48)", flush=True)
        model_dir = write_model(args.layers, tmp / "model")
        rng = np.random.default_rng(0)
        paths, total = [], 0.0
        for i, seconds in enumerate(rng.uniform(2, 16, n_utt)):
            paths.append(str(tmp / f"utt{i:03d}.wav"))
            soundfile.write(paths[-1], synth(seconds, rng), SR)
            total += seconds
        print(f"audio: {n_utt} utterances, 2-16 s, {total:.1f} s in all; {rounds} interleaved round(s), whole "
              f"processes", flush=True)

        names = ([] if args.no_transformers else ["transformers"]) + configs
        times = {name: [] for name in names}
        texts = {}
        for r in range(rounds):
            for name in names:
                if name == "transformers":
                    wall, cpu, out = run_transformers(model_dir, paths)
                else:
                    wall, cpu, out = run_mms(model_dir, paths, CONFIGS[name], tmp / f"{name}.jsonl")
                times[name].append((wall, cpu))
                texts[name] = out
                print(f"  round {r + 1}: {name:<13} {wall:7.2f} s  (CPU {cpu:6.1f} s)", flush=True)

        print(f"\nthroughput (whole processes; median and best of {rounds}; ratio: transformers / mms per round, "
              f"median)")
        print(f"  {'process':<52} {'median s':>9} {'best s':>7} {'CPU s':>6} {'audio s/s':>10} {'vs transformers':>16}")
        for name in names:
            walls = [w for w, _ in times[name]]
            label = ("transformers model card, float32, 1 file at a time" if name == "transformers" else
                     f"mms asr {' '.join(CONFIGS[name])}")
            ratio = ""
            if name != "transformers" and "transformers" in times:
                ratio = f"{statistics.median(h[0] / m[0] for h, m in zip(times['transformers'], times[name])):.2f}x"
            print(f"  {label:<52} {statistics.median(walls):9.2f} {min(walls):7.2f} "
                  f"{statistics.median(c for _, c in times[name]):6.1f} {total / statistics.median(walls):10.2f} "
                  f"{ratio:>16}")
        reference = texts.get("transformers", texts.get("float32"))
        for name in configs if reference is not None else []:  # nothing to compare with: neither side ran
            same = sum(a.strip() == b.strip() for a, b in zip(reference, texts[name]))
            gap = statistics.mean(cer(a, b) for a, b in zip(reference, texts[name]))
            print(f"  {name}: transcripts equal to {'transformers' if 'transformers' in texts else 'float32'}'s: "
                  f"{same}/{n_utt}, mean character difference {100 * gap:.2f}%")

        if not args.no_efficiency:
            efficiency(model_dir, configs, repeats=3)
        if minutes:
            memory(tmp, args.memory_layers, minutes, "auto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
