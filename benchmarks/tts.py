"""TTS speed: mms (mms.tts.TTS, as `mms tts` runs it) against transformers' VitsModel, same voice, same text.

    python benchmarks/tts.py [--rounds 3] [--repeats 3] [--threads N]

The voice is a random-weight VITS of the real mms-tts-* shapes (hidden 192, 6 layers, HiFi-GAN 512 channels,
upsampling 8x8x2x2; tests/tts_factory.py draws it, nothing is downloaded), written as a Hugging Face directory
that both load. Each side runs in its own fresh process (so one's process-wide settings never help the other):
it loads the voice, synthesises the text once to warm up, then --repeats times with seed 3; the real-time factor
is the best synthesis time over the audio's duration. mms runs the text whole (split "none", what VitsModel takes,
so the two waveforms must agree: their difference is printed) and, as `mms tts` does by default, cut into
sentences, synthesised one per pass (the CPU default), and also as one padded batch (`--batch-tokens 1000`,
the GPU default). The sides alternate for --rounds rounds; the ratio is per round
(transformers' RTF / mms's), median over rounds. The process's whole wall time (imports, load, all syntheses)
is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = ("Expanding the language coverage of speech technology has the potential to improve access to information "
        "for many more people. Many of the world's languages are in danger of disappearing, and the limitations "
        "of current speech technology only accelerate this trend. We hope to make a small contribution to preserve "
        "this diversity.").lower()


def child(side: str, voice: str, out: Path, repeats: int) -> None:
    """One side in this fresh process: {"load", "runs": [(seconds, audio seconds)...], ...} as JSON on stdout."""
    started = time.perf_counter()
    import torch

    if side == "transformers":
        import transformers

        transformers.logging.set_verbosity_error()
        model = transformers.VitsModel.from_pretrained(voice).eval()
        tokenizer = transformers.VitsTokenizer.from_pretrained(voice)
        rate = model.config.sampling_rate

        def synthesize():
            torch.manual_seed(3)
            with torch.no_grad():
                return model(**tokenizer(TEXT, return_tensors="pt")).waveform[0].numpy()
        variants = {"whole": synthesize}
    else:
        from mms.tts import TTS

        tts = TTS.load(voice, device="cpu")
        rate = tts.sample_rate
        variants = {"whole": lambda: tts.synthesize(TEXT, seed=3, split="none")[0],
                    "sentences": lambda: tts.synthesize(TEXT, seed=3)[0],
                    "batch": lambda: tts.synthesize(TEXT, seed=3, batch_tokens=1000)[0]}
    loaded = time.perf_counter() - started
    result = {"load": loaded, "threads": torch.get_num_threads()}
    for name, fn in variants.items():
        wave = fn()  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            wave = fn()
            best = min(best, time.perf_counter() - start)
        result[name] = {"seconds": best, "audio": wave.size / rate}
        if name == "whole":
            np.save(out, wave)
    result["process"] = time.perf_counter() - started
    print(json.dumps(result))


def make_voice(folder: Path) -> Path:
    import transformers

    from tests.tts_factory import TINY, random_voice, write_hf

    defaults = transformers.VitsConfig()  # mms-tts-eng's shapes
    voice = random_voice(seed=0, **{key: getattr(defaults, key) for key in TINY})
    return write_hf(voice, folder / "mms-tts-random")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="timed syntheses per process; the best counts")
    p.add_argument("--threads", type=int, default=None, help="torch threads of both sides (default: torch's)")
    p.add_argument("--child", nargs=4, metavar=("SIDE", "VOICE", "OUT", "REPEATS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        side, voice, out, repeats = args.child
        return child(side, voice, Path(out), int(repeats))

    import torch
    import transformers

    from mms.device import cpu_name

    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory(prefix="mms-tts-bench-") as tmp:
        tmp = Path(tmp)
        voice = make_voice(tmp)
        print(f"CPU: {cpu_name()}; torch {torch.__version__}, transformers {transformers.__version__}")
        print(f"voice: random weights, mms-tts-* shapes; text: {len(TEXT)} characters, 3 sentences; {args.rounds} "
              f"rounds, each side a fresh process, best of {args.repeats} syntheses", flush=True)
        results = {"mms": [], "transformers": []}
        for r in range(args.rounds):
            for side in results:
                out = subprocess.run([sys.executable, __file__, "--child", side, str(voice), str(tmp / f"{side}.npy"),
                                      str(args.repeats)], capture_output=True, text=True, env=env)
                if out.returncode:
                    raise SystemExit(f"{side} failed:\n{out.stderr[-3000:]}")
                results[side].append(json.loads(out.stdout.strip().splitlines()[-1]))
                run = results[side][-1]
                print(f"  round {r + 1}: {side:<13} RTF {run['whole']['seconds'] / run['whole']['audio']:.3f}"
                      f"  (process {run['process']:.1f} s, {run['threads']} threads)", flush=True)
        ours, theirs = np.load(tmp / "mms.npy"), np.load(tmp / "transformers.npy")
        same = ours.shape == theirs.shape
        gap = float(np.abs(ours - theirs).max()) if same else float("nan")

    def rtf(run, name):
        return run[name]["seconds"] / run[name]["audio"]

    audio = results["mms"][0]["whole"]["audio"]
    print(f"\nreal-time factor (synthesis seconds / audio seconds; {audio:.1f} s of audio; lower is faster)")
    print(f"  {'':<48} {'RTF median':>10} {'best':>7} {'process s':>10} {'vs transformers':>16}")
    rows = [("transformers VitsModel, whole text", "transformers", "whole"),
            ("mms TTS, whole text (split none)", "mms", "whole"),
            ("mms TTS, sentences (default; CPU: one per pass)", "mms", "sentences"),
            ("mms TTS, sentences in one padded batch", "mms", "batch")]
    for label, side, name in rows:
        values = [rtf(run, name) for run in results[side]]
        ratio = "" if side == "transformers" else \
            f"{statistics.median(rtf(t, 'whole') / rtf(m, name) for t, m in zip(results['transformers'], results['mms'])):.2f}x"
        print(f"  {label:<48} {statistics.median(values):10.3f} {min(values):7.3f} "
              f"{statistics.median(run['process'] for run in results[side]):10.1f} {ratio:>16}")
    print(f"  whole-text waveforms: {'same length' if same else 'different lengths'}, max |difference| {gap:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
