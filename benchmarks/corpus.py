"""Corpus engines on this machine: the same inputs through the local engine and through `--engine ray` with 1
and 2 model actors (the shipped demo model, `mms asr --output-dir`), audio seconds per second for each, and
Ray's start-up cost (ray.init of a local cluster) measured apart. The reference is the local engine in the same
run; the target is Ray with one actor at >= 0.8x the local engine once the cluster is up.

    python benchmarks/corpus.py                 # 240 inputs (~15 min of audio): a few minutes on 2 cores
    python benchmarks/corpus.py --inputs 60
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=240)
    args = parser.parse_args()

    import soundfile

    from mms.cli import main as mms

    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.wav"))
    inputs = [examples[i % len(examples)] for i in range(args.inputs)]
    audio_seconds = sum(soundfile.info(path).duration for path in inputs)
    with tempfile.TemporaryDirectory() as folder:
        manifest = os.path.join(folder, "corpus.txt")
        Path(manifest).write_text("\n".join(inputs) + "\n")

        def run(name: str, *extra: str) -> tuple[float, float]:
            """(seconds of the whole run, seconds from its first record to its last)."""
            import threading

            out = os.path.join(folder, name)
            first, stop = [], threading.Event()

            def watch():  # when does the first record reach a part file?
                while not stop.is_set() and not first:
                    if os.path.isdir(out) and any(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)
                                                  if f.startswith("part-")):
                        first.append(time.perf_counter())
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch)
            watcher.start()
            start = time.perf_counter()
            status = mms(["asr", "--model", "demo", "--lang", "eng", "--manifest", manifest, "--device", "cpu",
                          "--output-dir", out, *extra])
            end = time.perf_counter()
            stop.set()
            watcher.join()
            if status not in (0, 1):
                sys.exit(f"{name}: mms asr failed ({status})")
            return end - start, end - (first[0] if first else start)

        local = run("local")
        import ray

        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        start = time.perf_counter()
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 _temp_dir=os.path.join(folder, "ray"))
        startup = time.perf_counter() - start
        one = run("ray1", "--engine", "ray", "--workers", "1", "--cpus-per-worker", "2")
        two = run("ray2", "--engine", "ray", "--workers", "2", "--cpus-per-worker", "1")
        start = time.perf_counter()
        ray.shutdown()
        shutdown = time.perf_counter() - start

    print(f"{args.inputs} inputs, {audio_seconds:.0f} s of audio, demo model, CPU ({os.cpu_count()} cores)")
    print("whole run: start-up (imports, model load; in the actors for Ray) included; once started: from the first "
          "record to the last (audio of all but the first input)")
    print(f"{'engine':<28}{'seconds':>9}{'audio s / s':>13}{'vs local':>10}{'once started':>14}{'vs local':>10}")
    steady = audio_seconds * (args.inputs - 1) / args.inputs
    for name, (whole, running) in (("local (one process)", local), ("ray, 1 actor (2 CPUs)", one),
                                   ("ray, 2 actors (1 CPU each)", two)):
        print(f"{name:<28}{whole:9.1f}{audio_seconds / whole:13.1f}{local[0] / whole:9.2f}x"
              f"{steady / running:14.1f}{local[1] / running:9.2f}x")
    print(f"ray.init of a local cluster: {startup:.1f} s; ray.shutdown: {shutdown:.1f} s (not in the rows above; "
          f"the rows include each run's model load, in the actors for Ray)")


if __name__ == "__main__":
    main()
