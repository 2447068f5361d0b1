"""ASR throughput and long-file memory: this toolkit against transformers, on the same random MMS-shaped model.

    python benchmarks/asr.py [--layers 4] [--utterances 20] [--device cpu] [--dtype float32]
                             [--batch-seconds 200] [--hf-batch 4] [--repeats 1] [--quick]

The model has MMS-1B's real layer shapes (hidden 1280, FFN 5120, 16 heads, adapters) but only --layers
transformer layers (MMS-1B has 48) and random weights, so its transcripts are gibberish, but the same gibberish
from both implementations. The audio is synthetic (seeded), written as 16 kHz wav files.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SR = 16000


def synth(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-ish: a few drifting tones, amplitude-modulated at syllable rate, plus noise."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(np.sin(2 * np.pi * (f + 30 * np.sin(2 * np.pi * 0.5 * t)) * t) for f in rng.uniform(100, 3000, 3))
    wave = wave * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t) ** 2) + 0.1 * rng.standard_normal(t.size)
    return (0.2 * wave / np.abs(wave).max()).astype(np.float32)


def write_model(layers: int, out: Path) -> Path:
    from tests.factory import mms1b_config, random_model, write_hf

    return write_hf(random_model(mms1b_config(layers=layers), {"eng": 40}, seed=0), out)


def run_mms(model_dir, paths, warmup, args):
    from mms.asr import ASR

    asr = ASR.load(model_dir, lang="eng", device=args.device, dtype=args.dtype, batch_seconds=args.batch_seconds)
    asr.transcribe([warmup])

    def once():
        results = asr.transcribe(paths)
        bad = [r.error for r in results if r.error]
        assert not bad, bad
        return [r.text for r in results]
    return best_of(once, args.repeats)


def run_transformers(model_dir, paths, warmup, args):
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    dtype = getattr(torch, args.dtype)
    model = Wav2Vec2ForCTC.from_pretrained(model_dir, target_lang="eng", dtype=dtype).to(args.device).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(model_dir)
    tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(model_dir, target_lang="eng")

    @torch.inference_mode()
    def transcribe(batch_paths):
        texts = []
        for i in range(0, len(batch_paths), args.hf_batch):
            waves = [soundfile.read(p, dtype="float32")[0] for p in batch_paths[i:i + args.hf_batch]]
            inputs = extractor(waves, sampling_rate=SR, padding=True, return_attention_mask=True, return_tensors="pt")
            logits = model(inputs.input_values.to(args.device, dtype),
                           attention_mask=inputs.attention_mask.to(args.device)).logits
            texts += tokenizer.batch_decode(logits.argmax(-1).cpu())
        return texts

    transcribe([warmup])
    return best_of(lambda: transcribe(paths), args.repeats)


def cpu_seconds():
    return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + system, all threads


def best_of(fn, repeats):
    """(wall seconds, CPU seconds, output) of the fastest of `repeats` runs."""
    best = (float("inf"), 0.0, None)
    for _ in range(max(1, repeats)):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start, cpu = time.perf_counter(), cpu_seconds()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - start, cpu_seconds() - cpu, out), key=lambda r: r[0])
    return best


def memory_child(model_dir, path, device, dtype, batch_seconds):
    """Run in a fresh process: peak RSS after loading the model, then after transcribing one long file."""
    from mms.asr import ASR

    def peak_mib():
        # Linux folds the pre-exec address space (the forking parent's, here: the benchmark with its models
        # loaded) into ru_maxrss at exec, so prefer this process's own high-water mark, VmHWM.
        try:
            status = Path("/proc/self/status").read_text()
            return int(status.split("VmHWM:")[1].split()[0]) / 1024
        except (OSError, IndexError):
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)

    asr = ASR.load(model_dir, lang="eng", device=device, dtype=dtype, batch_seconds=batch_seconds)
    loaded = peak_mib()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    [result] = asr.transcribe([path])
    assert result.error is None, result.error
    print(json.dumps({"loaded": loaded, "peak": peak_mib(), "seconds": time.perf_counter() - start,
                      "cpu": cpu_seconds() - cpu_start}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4, help="transformer layers (MMS-1B: 48)")
    p.add_argument("--utterances", type=int, default=None, help="default 20 (--quick: 8)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--batch-seconds", type=float, default=200.0, help="mms batch size in seconds of padded audio")
    p.add_argument("--hf-batch", type=int, default=4, help="utterances per transformers batch (input order)")
    p.add_argument("--repeats", type=int, default=1, help="timed passes; the best is reported")
    p.add_argument("--memory-layers", type=int, default=2, help="layers of the model used for the long files")
    p.add_argument("--memory-minutes", default=None, help="comma-separated (default 10,60; --quick: 1,5)")
    p.add_argument("--quick", action="store_true", help="fewer utterances, shorter long files")
    p.add_argument("--memory-child", nargs=2, metavar=("MODEL", "WAV"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        return memory_child(*args.memory_child, args.device, args.dtype, args.batch_seconds)
    n_utt = args.utterances or (8 if args.quick else 20)
    minutes = [float(m) for m in (args.memory_minutes or ("1,5" if args.quick else "10,60")).split(",")]

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()

    with tempfile.TemporaryDirectory(prefix="mms-bench-") as tmp:
        tmp = Path(tmp)
        print(f"model: random MMS-1B shapes, {args.layers} layers (MMS-1B: 48); device {args.device}, {args.dtype}, "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
        model_dir = write_model(args.layers, tmp / "model")
        rng = np.random.default_rng(0)
        paths, total = [], 0.0
        for i, seconds in enumerate(rng.uniform(2, 20, n_utt)):
            paths.append(str(tmp / f"utt{i:03d}.wav"))
            soundfile.write(paths[-1], synth(seconds, rng), SR)
            total += seconds
        warmup = str(tmp / "warmup.wav")  # one short file, run once by each before timing
        soundfile.write(warmup, synth(2, rng), SR)
        print(f"audio: {n_utt} utterances, 2-20 s, {total:.1f} s in all", flush=True)

        mms_time, mms_cpu, mms_texts = run_mms(model_dir, paths, warmup, args)
        hf_time, hf_cpu, hf_texts = run_transformers(model_dir, paths, warmup, args)
        same = sum(a.strip() == b.strip() for a, b in zip(mms_texts, hf_texts))
        hf_name = f"transformers Wav2Vec2ForCTC {transformers.__version__}"
        print(f"\nthroughput (end to end, incl. reading files; best of {args.repeats})")
        print(f"  {'implementation':<48} {'seconds':>8} {'cpu s':>7} {'audio s/s':>10}")
        print(f"  {'mms ASR.transcribe (batch ' + f'{args.batch_seconds:g} s)':<48} {mms_time:8.2f} {mms_cpu:7.1f} {total / mms_time:10.2f}")
        print(f"  {hf_name + f' (batch {args.hf_batch})':<48} {hf_time:8.2f} {hf_cpu:7.1f} {total / hf_time:10.2f}")
        print(f"  ratio mms / transformers (throughput): {hf_time / mms_time:.2f}x (by CPU time: {hf_cpu / mms_cpu:.2f}x)")
        print(f"  transcripts equal: {same}/{n_utt}", flush=True)

        mem_dir = write_model(args.memory_layers, tmp / "memory-model")
        print(f"\npeak memory, one long file per fresh process ({args.memory_layers}-layer model, "
              f"batch {args.batch_seconds:g} s; RSS = VmHWM)")
        print(f"  {'audio':>8} {'wave MiB':>9} {'RSS after load':>15} {'peak RSS':>9} {'growth':>9} {'seconds':>8} {'cpu s':>7} {'audio s/s':>10}")
        for m in minutes:
            wav = tmp / f"long-{m:g}min.wav"
            soundfile.write(wav, np.tile(synth(60, np.random.default_rng(1)), int(np.ceil(m)))[:int(m * 60 * SR)], SR)
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(mem_dir), str(wav),
                                  "--device", args.device, "--dtype", args.dtype,
                                  "--batch-seconds", str(args.batch_seconds)],
                                 capture_output=True, text=True)
            if out.returncode:
                print(f"  {m:>6g} m  failed:\n{out.stderr[-2000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            wave_mib = m * 60 * SR * 4 / 2**20
            print(f"  {m:>6g} m {wave_mib:9.1f} {r['loaded']:11.0f} MiB {r['peak']:5.0f} MiB "
                  f"{r['peak'] - r['loaded']:5.0f} MiB {r['seconds']:8.1f} {r['cpu']:7.1f} {m * 60 / r['seconds']:10.2f}", flush=True)
            wav.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
