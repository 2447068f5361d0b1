"""--engine ray: the same task as a Ray Data pipeline (pip install "mms[ray]"; Ray is imported only here).

    rows (paths, no audio) -> ray.data.from_items -> map_batches(RayWorker, ActorPoolStrategy(MIN, MAX))

Each actor builds the task's worker once (the model loads once per actor), decodes audio itself (audio never
travels through the object store), writes its records to its own DIR/part-ray-<id>.jsonl, flushed per record
(a killed run keeps them), and returns only (index, seconds, error, worker) for the progress bar. A failing
input is a record with `error`, never an exception: Ray would abort the whole dataset on one (its
max_errored_blocks is 0) or silently drop the block. Ray restarts an actor that dies and re-runs its batch;
records it had written twice are resolved by `mms merge` (the last good record wins).
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from mms.engines import CorpusError, Progress, make_worker
from mms.files import json_text

ROWS_PER_CALL = 64  # large calls give the worker's length sorting material


class RayWorker:
    def __init__(self, task: str, settings: dict, output_dir: str):
        import logging

        # an actor is its own process: the library's warnings (a cut-off file, dropped characters) printed as the
        # command prints them, on the actor's stderr, which --verbose forwards to the driver
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"mms {task}: warning: %(message)s"))
        logging.getLogger("mms").addHandler(handler)
        self.worker = make_worker(task, settings)
        self.id = uuid.uuid4().hex[:8]
        self.part = open(os.path.join(output_dir, f"part-ray-{self.id}.jsonl"), "a", encoding="utf-8")

    def __call__(self, batch: dict) -> dict:
        rows = [json.loads(row) for row in batch["row"]]
        out = {"index": [], "seconds": [], "error": [], "worker": []}
        for record in self.worker.run(rows):
            self.part.write(json_text(record) + "\n")
            self.part.flush()
            out["index"].append(record["index"])
            out["seconds"].append(float(record.get("duration") or 0.0))
            out["error"].append(record.get("error") or "")
            out["worker"].append(self.id)
        return out


def workers(text: str) -> tuple[int, int]:
    """--workers N or MIN:MAX."""
    try:
        low, _, high = str(text).partition(":")
        low, high = int(low), int(high or low)
    except ValueError:
        raise CorpusError(f"--workers {text!r}: give a number of actors, or MIN:MAX") from None
    if not 1 <= low <= high:
        raise CorpusError(f"--workers {text!r}: at least 1 actor, and MIN <= MAX")
    return low, high


def require_ray():
    """The ray module, or the one-line error that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - (a Ray install without Ray Data)
    except ImportError:
        raise CorpusError('--engine ray needs Ray: pip install "mms[ray]"') from None
    return ray


def run_ray(task: str, settings: dict, rows: list[dict], output_dir: str, args) -> int:
    ray = require_ray()
    low, high = workers(args.workers)
    if not args.verbose:  # Ray Data's own progress lines and logs; our bar and errors say what matters
        import logging

        logging.getLogger("ray").setLevel(logging.WARNING)
    started_here = not ray.is_initialized()
    if started_here:
        if args.ray_address:
            ray.init(address=args.ray_address, log_to_driver=args.verbose, logging_level="WARNING")
        else:
            # more logical CPUs than cores: with exactly the cores, the read tasks starve beside the actors (a hang
            # measured on 2 cores); the actors themselves still ask for --cpus-per-worker each
            ray.init(num_cpus=max(4, 2 * (os.cpu_count() or 1)), include_dashboard=False, log_to_driver=args.verbose,
                     logging_level="WARNING")
    ray.data.DataContext.get_current().enable_progress_bars = False
    prog, failed = f"mms {task}", 0
    progress = Progress(rows, getattr(args, "progress", None))
    try:
        # each row travels as one JSON string: Arrow would turn a column of None (no --lang per input) into NaN.
        # Calls of ROWS_PER_CALL rows, fewer where the inputs would not give every actor one
        per_call = max(1, min(ROWS_PER_CALL, -(-len(rows) // high)))
        dataset = ray.data.from_items([{"row": json.dumps(row)} for row in rows]).map_batches(
            RayWorker, fn_constructor_args=(task, settings, output_dir), batch_size=per_call,
            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high), num_cpus=args.cpus_per_worker,
            num_gpus=args.gpus_per_worker or None, batch_format="numpy")
        if args.verbose:
            print(f"{prog}: Ray: {low}{'' if low == high else f'-{high}'} actors of {args.cpus_per_worker} CPU "
                      f"and {args.gpus_per_worker} GPU, {len(rows)} inputs", file=sys.stderr)
        for row in dataset.iter_rows():
            progress.update(int(row["index"]), worker=str(row["worker"]), seconds=float(row["seconds"]))
            if row["error"]:
                failed += 1
                print(f"{prog}: error: {row['error']}", file=sys.stderr)
    finally:
        progress.close()
        if started_here:
            ray.shutdown()
    return 1 if failed else 0
