"""Memory of a corpus run: does `mms asr` (or `mms lid`) stay flat as the number of inputs grows?

One whole `mms ... --format jsonl --output FILE` process over N short inputs (a fairseq .tsv manifest listing
a few synthetic 0.2-0.6 s wav files over and over, so N costs no disk), with the shipped demo model. The
process's resident memory (VmRSS) is sampled every 50 ms; the benchmark prints it when the output holds 10%
of the records and at the end, and their ratio: the reference is the same process early in the same run, so a
pipeline that kept every result would show the ratio growing with N.

    python benchmarks/memory.py                       # mms asr, 10,000 inputs: about two minutes on 2 cores
    python benchmarks/memory.py --task lid --inputs 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("asr", "lid"), default="asr")
    parser.add_argument("--inputs", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        names = []
        for i, seconds in enumerate((0.2, 0.3, 0.45, 0.6)):
            name = f"utt{i}.wav"
            soundfile.write(os.path.join(folder, name), 0.1 * rng.standard_normal(int(seconds * 16000)), 16000)
            names.append((name, int(seconds * 16000)))
        manifest = os.path.join(folder, "corpus.tsv")
        with open(manifest, "w") as f:
            f.write(folder + "\n")
            for n in range(args.inputs):
                f.write("%s\t%d\n" % names[n % len(names)])
        out = os.path.join(folder, "out.jsonl")
        command = [sys.executable, "-m", "mms", args.task, "--model", "demo", "--manifest", manifest,
                   "--format", "jsonl", "--output", out, "--device", "cpu"]
        if args.task == "asr":
            command += ["--lang", "eng"]
        start = time.perf_counter()
        proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        early = peak = 0.0
        samples = []
        while proc.poll() is None:
            rss = rss_mib(proc.pid)
            if rss:
                done = sum(1 for _ in open(out)) if os.path.exists(out) else 0
                samples.append((done, rss))
                peak = max(peak, rss)
                if not early and done >= args.inputs // 10:
                    early = rss
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"mms {args.task} failed ({proc.returncode}): {proc.stderr.read()}")
        done = sum(1 for _ in open(out))
        late = max(rss for n, rss in samples if n >= 0.9 * args.inputs) if samples else float("nan")
    print(f"mms {args.task}, demo model, {args.inputs} inputs of 0.2-0.6 s, jsonl to a file: {done} records in "
          f"{elapsed:.1f} s")
    print(f"  RSS at 10% of the records   {early:8.1f} MiB")
    print(f"  RSS from 90% to the end     {late:8.1f} MiB   (peak {peak:.1f} MiB)")
    print(f"  ratio late / early          {late / early:8.3f}")


if __name__ == "__main__":
    main()
