"""Corpus runs: how a task's inputs are split, resumed, run and written, on one machine or many.

Every task has one worker class (mms/<task>/worker.py: `Worker(settings)`, `worker.run(rows)` yielding one
JSON record per row, with the row's `index`); the local engine (here) and the Ray engine (mms.engines.ray)
call the same object, so every engine writes the same records for the same inputs.

    rows      [{"index": i, "audio": ..., "lang": ..., ...}]: every input of the full list, numbered from 0
    settings  everything a worker needs to load its model (JSON-able); the part that changes results is
              stored in run.json beside the output, and a resume with other settings is refused
    --shard K/N           the rows whose index i has i % N == K
    --output FILE --resume   skip the rows with a finished record (no error) in FILE, append the others
    --output-dir DIR      DIR/run.json + DIR/part-*.jsonl (one part per shard or Ray worker); resumes by default
    mms merge DIR         one record per input, in index order, the last good record of an input winning

No torch here: workers import their task when they are built.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
from typing import Iterable, Iterator

from mms.errors import MMSError
from mms.files import json_text, write_text_atomic

WORKERS = {"asr": "mms.asr.worker:Worker", "lid": "mms.lid.worker:Worker", "tts": "mms.tts.worker:Worker",
           "align": "mms.align.worker:Worker"}
# settings that change no result, left out of run.json: speed, and where the outputs go (`mms tts --outdir`: the
# same folder spelt otherwise, or from another working directory, is the same run)
PERFORMANCE_SETTINGS = frozenset({"device", "batch_seconds", "buffer_seconds", "decode_workers", "batch_tokens",
                                  "outdir"})


class CorpusError(MMSError):
    """A corpus run that cannot start: a bad --shard, a resume whose settings differ, no parts to merge."""


def make_worker(task: str, settings: dict):
    module, name = WORKERS[task].split(":")
    return getattr(importlib.import_module(module), name)(settings)


# -- shards ------------------------------------------------------------------------------------------------
def parse_shard(text: str | None, environ=os.environ) -> tuple[int, int]:
    """--shard K/N -> (K, N); "auto": SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, else RANK/WORLD_SIZE
    (torchrun), else 0/1; None: 0/1."""
    if text is None:
        return 0, 1
    source = None  # the variables an "auto" shard was computed from, for its error messages
    if text == "auto":
        for k, n in (("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"), ("RANK", "WORLD_SIZE")):
            if environ.get(k) is None:
                continue
            if environ.get(n) is None:  # one shard's worth silently running everything would be worse
                raise CorpusError(f"--shard auto: {k} is set but not {n}; give --shard K/N")
            first = environ.get("SLURM_ARRAY_TASK_MIN", "0") if k.startswith("SLURM") else "0"
            if k.startswith("SLURM") and environ.get("SLURM_ARRAY_TASK_STEP", "1") != "1":
                raise CorpusError(f"--shard auto: a SLURM array with a step (SLURM_ARRAY_TASK_STEP="
                                  f"{environ['SLURM_ARRAY_TASK_STEP']}) is not supported; use --array=A-B or "
                                  f"--shard K/N")
            try:  # `--array=1-16` numbers its tasks from 1
                text = f"{int(environ[k]) - int(first)}/{environ[n]}"
            except ValueError:
                raise CorpusError(f"--shard auto: {k}={environ[k]!r} is not a whole number") from None
            source = (f"--shard auto ({k}={environ[k]}, {n}={environ[n]}"
                      + (f", SLURM_ARRAY_TASK_MIN={first}" if k.startswith("SLURM") else "") + ")")
            break
        else:
            return 0, 1
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise CorpusError(f"--shard {text!r}: give K/N with 0 <= K < N (e.g. 3/16), or auto") from None
    if not 0 <= k < n:
        if source:
            raise CorpusError(f"{source}: makes shard {k} of {n}, outside 0..{n - 1} (does the array start at "
                              f"SLURM_ARRAY_TASK_MIN?)")
        raise CorpusError(f"--shard {text!r}: K must be at least 0 and less than N")
    return k, n


def shard_rows(rows: list[dict], k: int, n: int) -> list[dict]:
    return [row for row in rows if row["index"] % n == k]


# -- records on disk ---------------------------------------------------------------------------------------
def read_records(path: str, repair: bool = False) -> list[dict]:
    """The whole records of a jsonl file; a partial last line (a killed writer) is ignored, and with `repair`
    cut off the file so that appending continues on a line of its own."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    records = []
    for n, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise CorpusError(f"{path}:{n}: not a JSON record (not an output of mms?)") from None
        if not isinstance(record, dict) or not isinstance(record.get("index"), int):
            raise CorpusError(f"{path}:{n}: a record without `index` (written by an older mms?)")
        records.append(record)
    return records


def finished(records: Iterable[dict]) -> set[int]:
    """Indices with a good record (no error)."""
    return {r["index"] for r in records if not r.get("error")}


def best_records(records: Iterable[dict]) -> list[dict]:
    """One record per index, in index order: the last good one, else the last error."""
    best: dict[int, dict] = {}
    for record in records:
        old = best.get(record["index"])
        if old is None or not record.get("error") or old.get("error"):
            best[record["index"]] = record
    return [best[i] for i in sorted(best)]


def part_files(directory: str) -> list[str]:
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.startswith("part-") and name.endswith(".jsonl"))


# -- run.json ----------------------------------------------------------------------------------------------
def run_description(task: str, settings: dict, rows: list[dict]) -> dict:
    """What run.json stores: the task, the settings that change results, and the input list's size and digest
    (a resume over another input list would number its inputs differently)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps([row.get("audio"), row.get("text"), row.get("lang")]).encode())
    return {"task": task, "settings": result_settings(settings), "inputs": len(rows),
            "inputs_sha256": digest.hexdigest()}


def result_settings(settings: dict) -> dict:
    """`settings` without those that change no result, at the top and in nested option groups (a task's
    "options": batch_seconds, decode_workers, ...)."""
    return {k: result_settings(v) if isinstance(v, dict) else v for k, v in sorted(settings.items())
            if k not in PERFORMANCE_SETTINGS}


def _flat(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


# Settings added to a task after runs were made without them, with the behaviour those runs had: such a run resumes
# with that value (`mms tts --numbers as-is`), and is refused, naming it, with another.
ADDED_SETTINGS = {"options.numbers": "as-is"}
# Settings whose values name one behaviour two ways: `mms tts --format wav` is the default, None.
SAME_VALUES = {"audio_format": {"wav": None}}


def check_run(path: str, description: dict, has_records: bool = False) -> bool:
    """Whether run.json is still to be written (True: there is none, nor any record); a CorpusError when an
    existing one describes another run, or when records are there without one (whose run they are of cannot be
    told: a resume would mix them with this run's)."""
    if not os.path.exists(path):
        if has_records:
            raise CorpusError(f"{path}: missing, and the output already holds records, of a run that cannot be "
                              f"told to be this one; use another output, or remove those records to start over")
        return True
    old = read_run(path)
    changed = [f"task ({old.get('task')!r} -> {description['task']!r})"] if old.get("task") != description["task"] \
        else []
    if old.get("inputs") != description["inputs"]:
        changed.append(f"number of inputs ({old.get('inputs')} -> {description['inputs']})")
    elif old.get("inputs_sha256") != description["inputs_sha256"]:
        changed.append("the inputs (their files, order, texts or languages)")
    # compared without performance settings (a run.json of an earlier version may hold nested ones), and named
    # one changed value at a time
    old_settings, new_settings = _flat(result_settings(old.get("settings", {}))), _flat(description["settings"])
    for key, before in ADDED_SETTINGS.items():  # a run started before the setting existed ran as it says
        if key in new_settings:
            old_settings.setdefault(key, before)
    for settings in (old_settings, new_settings):  # one value spelt two ways (by earlier versions too)
        for key, spellings in SAME_VALUES.items():
            if key in settings and settings[key] in spellings:
                settings[key] = spellings[settings[key]]
    if old.get("precision"):  # what --dtype resolved to is compared (after the model loads), not its spelling:
        old_settings.pop("dtype", None)  # auto on a bf16 machine continues as bfloat16 on another
        asked = new_settings.pop("dtype", None)
        if asked not in (None, "auto") and not description.get("precision") and asked != old["precision"]:
            changed.append(f"dtype ({old['precision']!r} -> {asked!r})")  # known before the model loads (and under
            # Ray, whose driver never loads it)
    changed += [f"{key} ({old_settings.get(key)!r} -> {new_settings.get(key)!r})"
                for key in sorted(set(old_settings) | set(new_settings))
                if old_settings.get(key) != new_settings.get(key)]
    if old.get("precision") and description.get("precision") and old["precision"] != description["precision"]:
        # (recorded by local runs once the model is loaded: what --dtype auto chose on that machine)
        changed.append(f"precision ({old['precision']!r} -> {description['precision']!r}; --dtype "
                       f"{old['precision']} continues it)")
    if changed:
        raise CorpusError(f"{path}: this output was started with other settings or inputs: "
                          f"{', '.join(changed)}; use the same ones to resume, or another output")
    return False


def record_precision(description: dict, worker, existing: str | None) -> None:
    """Once the model has loaded: the precision it runs in here (--dtype auto: bfloat16 on one machine, float32 on
    another) into the run's description, checked against the run continued (`existing`: its run.json)."""
    description["precision"] = str(worker.precision).replace("torch.", "")
    if existing:
        check_run(existing, description)


def read_run(path: str) -> dict:
    """An existing run.json; anything else (not JSON, not what write_run writes) is a CorpusError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            run = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorpusError(f"{path}: not a run description (JSON)") from None
    except OSError as e:
        raise CorpusError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not (isinstance(run, dict) and isinstance(run.get("task"), str) and type(run.get("inputs")) is int
            and run["inputs"] >= 0 and isinstance(run.get("settings", {}), dict)):
        raise CorpusError(f"{path}: not a run description of mms (it needs task, inputs and settings)")
    return run


def write_run(path: str, description: dict, claim: bool = False) -> None:
    """run.json for a new run, replacing one of an earlier run; or, `claim`, for a run that found none when it
    started: written only if still absent. Shards of one run start together (a SLURM array): the first to get
    here describes the run, the others are checked against it as a resume is, so that shards started with other
    settings cannot write into one output."""
    text = json_text(description, indent=1) + "\n"
    if not claim:
        return write_text_atomic(path, text)
    import errno
    import tempfile

    handle, staged = tempfile.mkstemp(prefix="run.json.", suffix=".tmp", dir=os.path.dirname(path) or ".")
    with os.fdopen(handle, "w", encoding="utf-8") as f:  # (a random name: shards on other hosts share pids)
        f.write(text)
    try:
        os.link(staged, path)  # atomic, and refused when the name exists (local disks and NFS alike)
    except FileExistsError:
        check_run(path, description)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV):
            raise
        write_text_atomic(path, text)  # a filesystem without hard links
    finally:
        os.unlink(staged)


# -- progress ----------------------------------------------------------------------------------------------
class Progress:
    """One bar for the run: audio hours done / total (when every input's length is known), rate and ETA;
    per-worker rates in its postfix under Ray. Shown on a terminal, or everywhere with --progress."""

    def __init__(self, rows: list[dict], enabled: bool | None = None):
        from tqdm import tqdm

        disable = (not sys.stderr.isatty()) if enabled is None else not enabled
        self.seconds = {row["index"]: row.get("seconds") for row in rows}
        if not disable and any(s is None for s in self.seconds.values()) and "audio" in (rows or [{}])[0]:
            from mms.audio import audio_info  # the total from the files' headers (None when unknown)

            self.seconds = {row["index"]: row.get("seconds") or audio_info(row["audio"]) for row in rows}
        known = all(s is not None for s in self.seconds.values()) and rows
        self.in_hours = bool(known)
        total = sum(self.seconds.values()) / 3600 if known else len(rows)
        self.bar = tqdm(total=total, unit="h" if known else "input", disable=disable, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} h [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
                        if known else None, file=sys.stderr)
        self.workers: dict[str, float] = {}

    def update(self, index: int, worker: str | None = None, seconds: float | None = None) -> None:
        seconds = self.seconds.get(index) if seconds is None else seconds
        step = (seconds or 0.0) / 3600 if self.in_hours else 1
        self.bar.update(step)
        if worker is not None:
            self.workers[worker] = self.workers.get(worker, 0.0) + (seconds or 0.0)
            elapsed = max(self.bar.format_dict["elapsed"], 1e-9)
            self.bar.set_postfix_str(" ".join(f"{w[:6]} {s / elapsed:.1f}x" for w, s in sorted(self.workers.items())),
                                     refresh=False)

    def close(self) -> None:
        self.bar.close()


# -- the local engine --------------------------------------------------------------------------------------
def run_local(worker, rows: list[dict]) -> Iterator[dict]:
    """The records of `rows`, in row order, from one worker in this process (closed at the end)."""
    try:
        yield from worker.run(rows)
    finally:
        worker.close()
