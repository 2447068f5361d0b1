"""Memory of a corpus run: does `mms asr` (or `mms lid`) stay flat as the number of inputs grows?

One whole `mms ... --format jsonl --output FILE` process over N short inputs (a fairseq .tsv manifest listing
a few synthetic 0.2-0.6 s wav files over and over, so N costs no disk), with the shipped demo model. The
process's resident memory (VmRSS) is sampled every 50 ms; the benchmark prints it when the output holds 10%,
30%, ... 90% of the records, and the ratio of the last to the first: the reference is the same process early in
the same run, so a pipeline that kept every result would show RSS growing with the records.

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
        peak = 0.0
        samples, done, offset = [], 0, 0
        while proc.poll() is None:
            rss = rss_mib(proc.pid)
            if rss:
                if os.path.exists(out):  # count the new lines only: re-reading the whole file would cost O(n^2)
                    with open(out, "rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                    done, offset = done + chunk.count(b"\n"), offset + len(chunk)
                samples.append((done, rss))
                peak = max(peak, rss)
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"mms {args.task} failed ({proc.returncode}): {proc.stderr.read()}")
        done = sum(1 for _ in open(out))
    def rss_at(fraction: float) -> float:
        later = [rss for n, rss in samples if n >= fraction * args.inputs]
        return later[0] if later else float("nan")

    print(f"mms {args.task}, demo model, {args.inputs} inputs of 0.2-0.6 s, jsonl to a file: {done} records in "
          f"{elapsed:.1f} s")
    for tenth in (1, 3, 5, 7, 9):
        print(f"  RSS when {tenth * 10:2d}% of the records are written   {rss_at(tenth / 10):8.1f} MiB")
    print(f"  peak RSS (start-up and exit included)      {peak:8.1f} MiB")
    print(f"  ratio RSS at 90% / RSS at 10%               {rss_at(0.9) / rss_at(0.1):8.3f}")


if __name__ == "__main__":
    main()
