"""What every `mms` command shares (no torch here): common options, the one way a command reports errors, and
the loop that streams a task's results into a writer.

Exit status, the same for every command:
    0  every input done
    1  some input failed (each named in a one-line error; the others are written)
    2  a usage, input-file, model or output error (one line), before or instead of any result
    3  a bug: an unexpected exception, reported in one line (`--verbose` prints the traceback)
  130  interrupted
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Iterable

from mms.errors import MMSError

BUG = 3


def add_device_options(parser: argparse.ArgumentParser, device: str = "auto", dtype: str = "auto",
                       auto_dtype: str = "bfloat16/float16 on CUDA, bfloat16 on CPUs with native bf16 (avx512_bf16/AMX), float32 elsewhere", quantize: bool = False) -> None:
    """--device and --dtype, the same for every task (resolved by mms/device.py)."""
    parser.add_argument("--device", default=device, help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--dtype", default=dtype, choices=("auto", "float32", "float16", "bfloat16"),
                        help=f"model precision (default: %(default)s: {auto_dtype})")
    if quantize:
        parser.add_argument("--quantize", choices=("int8",), default=None,
                            help="int8: dynamic int8 linear layers on the CPU (faster on CPUs with VNNI or AMX, slightly "
                                 "less exact; see docs/performance.md)")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """--offline and --verbose, on every task command."""
    parser.add_argument("--offline", action="store_true",
                        help="use only models already on disk or in the cache, never the network (as HF_HUB_OFFLINE=1)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print model, device and progress to stderr (and the traceback of an internal error)")


MAX_TIME_OFFSET = 1.0  # seconds: --time-offsets beyond this is not an emission lag


def seconds_pair(text: str) -> tuple[float, float]:
    try:
        start, end = (float(x) for x in text.split(","))
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two numbers of seconds, START,END (e.g. "
                                         f"--time-offsets=-0.1,-0.05)") from None
    if max(abs(start), abs(end)) > MAX_TIME_OFFSET:  # times are kept inside the audio: words would pile at an end
        raise argparse.ArgumentTypeError(f"{text!r}: offsets of a model's emission lag are tenths of a second; "
                                         f"at most {MAX_TIME_OFFSET:g} s either way")
    return start, end


def add_time_offsets_option(parser: argparse.ArgumentParser) -> None:
    """--time-offsets START,END for the word/char times of asr and align (mms.results.shift_times)."""
    parser.add_argument("--time-offsets", metavar="START,END", type=seconds_pair,
                        help="seconds added to word and character start and end times, for a model that emits "
                             "letters late (default: the model's measured \"word_time_offsets\" when its "
                             "config.json has them, as the demo model; else 0,0; negative values need the = "
                             "form: --time-offsets=-0.1,-0.05)")


def positive(kind, zero: bool = False):
    """An argparse type: a finite number of `kind` greater than 0 (`zero`: or equal to 0)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{' whole' if kind is int else ''} number: {text!r}") from None
        if not (value >= 0 if zero else value > 0) or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {'0 or more' if zero else 'positive'}, got {text}")
        return value

    return parse


def finite(text: str) -> float:
    """An argparse type: a finite number (a weight or score; negative values need the = form: --lm-weight=-1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def score_or_minus_infinity(text: str) -> float:
    """An argparse type: a finite number or -inf (a score that forbids what it scores)."""
    if text.strip().lower() in ("-inf", "-infinity"):
        return -math.inf
    return finite(text)


def seed(text: str) -> int:
    """An argparse type: a random seed, a whole number from 0 to 2**62."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    from mms.options import SEED_LIMIT

    if not 0 <= value <= SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**62, got {text}")
    return value


def config_values(parser: argparse.ArgumentParser, values: dict, source: str) -> dict:
    """Option values read from a file (`--config`), parsed as their flags parse them: the same types, ranges and
    choices, so a value the command line refuses is refused here too; -> the parsed values. An MMSError names
    the file, the option and the reason."""
    parsed = dict(values)
    for action in parser._actions:
        name, value = action.dest, values.get(action.dest)
        if not action.option_strings or value is None:
            continue
        try:
            if action.type is not None:
                if isinstance(value, (bool, dict)):
                    raise argparse.ArgumentTypeError(f"not a value of this option: {value!r}")
                value = action.type(",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))
            if action.choices is not None and value not in action.choices:
                raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(map(str, action.choices))}")
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise MMSError(f"{source}: {name}: {e}") from None
        parsed[name] = value
    return parsed


def output_format(args: argparse.Namespace, choices: tuple[str, ...]) -> str:
    """--format as given, else the one --output's suffix names (out.jsonl, subs.srt), else txt: `-o out.jsonl`
    alone wrote plain text into a .jsonl file, which --resume then refused."""
    if args.format is None:
        suffix = os.path.splitext(str(args.output or ""))[1].lstrip(".").lower()
        args.format = suffix if suffix in choices and suffix != "fairseq" else "txt"
    return args.format


def non_negative(kind):
    """An argparse type: a finite number of `kind`, 0 or more."""
    return positive(kind, zero=True)


def say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr)


def error(prog: str, message: str) -> None:
    """The one-line error of a command (`mms asr: error: a.wav: cannot decode audio (...)`)."""
    lines = str(message).strip().splitlines() or [""]
    print(f"{prog}: error: {lines[0]}", file=sys.stderr)


class _LayerWarnings(logging.Handler):
    """The audio and manifest layers' warnings (a file cut off, a .wrd that does not match its .tsv) as
    `<command>: warning: ...` lines on the standard error of the moment, like the command's own messages (Python
    printed them bare, or as a UserWarning with its source line). `execute` names the command while it runs."""

    prog: str | None = None
    loggers = ("mms.audio", "mms.manifest", "mms.checkpoints")

    def emit(self, record):
        if logging.getLogger().handlers:  # logging set up (the trainers, an application): printed there
            return
        # outside a command (library use): bare, as Python's last-resort handler would print it
        print(f"{self.prog}: warning: {record.getMessage()}" if self.prog else record.getMessage(), file=sys.stderr)


_LAYER_WARNINGS = _LayerWarnings()


class _Stderr:
    """sys.stderr while a command runs. Once its reader has gone (`2>&1 | head`, a log pipe that died), messages
    are dropped instead of stopping the run: the records still reach their output and the exit status still says
    how the inputs went (records written to --output FILE; those written to the same dead pipe are gone with
    it). The descriptor is pointed at /dev/null then, for the exit flush and worker processes started later
    (decoding workers started before write to the broken pipe on their own)."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._lost()

    def _lost(self) -> None:
        self.gone = True
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError):  # (a stream without a descriptor: a test's capture)
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


def execute(args: argparse.Namespace) -> int:
    """Run a parsed command (`args.run(args)`) and turn what it raises into the exit status above."""
    prog = getattr(args, "prog", None) or f"mms {args.command}"  # e.g. "mms lm build" for a sub-subcommand
    verbose = getattr(args, "verbose", False)
    _LAYER_WARNINGS.prog = prog
    for name in _LAYER_WARNINGS.loggers:
        if _LAYER_WARNINGS not in logging.getLogger(name).handlers:
            logging.getLogger(name).addHandler(_LAYER_WARNINGS)
    stderr = sys.stderr
    if not isinstance(stderr, _Stderr):
        sys.stderr = _Stderr(stderr)
    try:
        if getattr(args, "offline", False):
            from mms.hub import set_offline

            set_offline()
        return args.run(args)
    except KeyboardInterrupt:
        say(prog, "interrupted")
        return 130
    except BrokenPipeError:  # e.g. `mms asr ... | head -1`: the reader has what it wanted
        import os

        # stdout still holds unwritten bytes; point it at /dev/null so that the flush at exit does not fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MMSError as e:
        from mms.hub.download import damaged_cache_hint

        error(prog, str(e) + damaged_cache_hint(str(e)))
        return 2
    except OSError as e:  # a file that cannot be read or written, named by the OS error
        error(prog, f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e))
        return 2
    except Exception as e:  # noqa: BLE001 - a bug: one line, the traceback on request
        if verbose:
            import traceback

            traceback.print_exc()
        first = (str(e).splitlines() or [""])[0][:300]
        error(prog, f"internal error (a bug; please report it): {type(e).__name__}: {first}"
                    + ("" if verbose else " (run with --verbose for the traceback)"))
        return BUG
    finally:
        _LAYER_WARNINGS.prog = None
        sys.stderr = stderr


def stream_results(prog: str, results: Iterable, writer, total: int | None = None, verbose: bool = False,
                   describe=None) -> int:
    """Write every result as it comes, naming each failed input in a one-line error; -> exit status 0 or 1.
    `describe(result)` is the progress line printed with --verbose."""
    failed = 0
    with writer:
        for n, result in enumerate(results, 1):
            writer.write(result)
            if result.error:
                failed += 1
                error(prog, result.error)
            elif verbose:
                where = f"[{n}/{total}]" if total else f"[{n}]"
                say(prog, f"{where} {describe(result) if describe else result.name}")
    return 1 if failed else 0


def add_corpus_options(parser: argparse.ArgumentParser, output_files: bool = True, index: str | None = None) -> None:
    """Corpus runs (mms.engines; docs/corpus.md): resume, shards, output directories, the Ray engine.
    `output_files` False: the command writes a folder per input and always resumes (mms align), so it has no
    --resume or --output-dir. `index`: the command's own record file (mms tts: --outdir DIR's index.jsonl) where
    others have --output FILE."""
    group = parser.add_argument_group("corpus runs (see docs/corpus.md)")
    if output_files:
        group.add_argument("--resume", action="store_true",
                           help=f"with {index or '--output FILE (jsonl)'}: skip inputs that have a finished record in "
                                f"{'it' if index else 'FILE'}, append the others (the settings must be those of "
                                f"{'the .run.json beside it' if index else 'FILE.run.json'})")
    group.add_argument("--shard", metavar="K/N",
                       help="process only the inputs whose index i has i %% N == K; `auto`: from SLURM_ARRAY_TASK_ID/"
                            "SLURM_ARRAY_TASK_COUNT or RANK/WORLD_SIZE")
    if output_files:
        group.add_argument("--output-dir", metavar="DIR",
                           help=f"instead of {index or '--output'}: DIR/run.json and DIR/part-*.jsonl (one per "
                                "shard or worker), "
                                "resumed from whatever parts exist; `mms merge DIR` joins them")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help=f"local: this process; ray: a Ray Data pipeline of model actors (needs "
                            f"{'--output-dir' if output_files else '--manifest'} and pip install \"mms[ray]\") "
                            "(default: %(default)s)")
    group.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: start a local one)")
    group.add_argument("--workers", metavar="N|MIN:MAX", default="1",
                       help="Ray model actors: N, or MIN:MAX for an autoscaling pool (default: %(default)s)")
    group.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs per Ray actor (default: 0)")
    group.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs per Ray actor (default: 1)")
    group.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="a progress bar of audio hours done (default: on a terminal only)")


def check_engine_options(args: argparse.Namespace) -> None:
    """A CorpusError when Ray's options are given to a local run: ignored, they would leave a user who wrote them
    believing the run was spread over actors."""
    from mms.engines import CorpusError

    if getattr(args, "engine", "local") == "ray":
        return
    given = [flag for flag, is_set in (("--workers", getattr(args, "workers", "1") != "1"),
                                       ("--ray-address", bool(getattr(args, "ray_address", None))),
                                       ("--gpus-per-worker", getattr(args, "gpus_per_worker", 0.0) != 0.0),
                                       ("--cpus-per-worker", getattr(args, "cpus_per_worker", 1.0) != 1.0)) if is_set]
    if given:
        raise CorpusError(f"{', '.join(given)}: for Ray actors; add --engine ray (this run is local)")


def _shard_of(run_file: str) -> str | None:
    """The shard ("K/N") whose results an output holds, by the run description beside it; None if none is said
    (no description, or one that cannot be read: this run replaces it)."""
    from mms import engines

    try:
        shard = engines.read_run(run_file).get("shard")
    except engines.CorpusError:
        return None
    return shard if isinstance(shard, str) else None


def run_corpus(args: argparse.Namespace, task: str, settings: dict, rows: list[dict], fmt: str,
               writer_options: dict | None = None, observer=None, describe=None, started=None) -> int:
    """Run `task` over `rows` as the options of add_corpus_options say, writing records as they finish; ->
    exit status 0 or 1. `observer(record)` sees every record (e.g. to score it); `started()` is called once the
    run has started (the model loaded), before anything is written."""
    import os

    from mms import engines
    from mms.files import is_special
    from mms.results import Record
    from mms.writers import get_writer

    prog = f"mms {task}"
    refuse_to_overwrite_inputs(args.output, rows, args)
    k, n = engines.parse_shard(getattr(args, "shard", None))
    description = engines.run_description(task, settings, rows)
    output_dir, resume = getattr(args, "output_dir", None), getattr(args, "resume", False)
    engine = getattr(args, "engine", "local")
    check_engine_options(args)
    dest, append, done = args.output, False, set()
    run_file = None  # the run description to write once the run has started (a failed start leaves none)
    existing = None  # the run description of the run this one continues (resume, or another shard's)
    claim = False  # whether it is written only if still absent (a run that found none: see engines.write_run)
    if n > 1 and not output_dir and getattr(args, "outdir", None):  # shards would share (and replace) one index
        raise engines.CorpusError(f"--shard {k}/{n} with --outdir {args.outdir}: every shard would replace the "
                                  f"others' index there; give --output-dir DIR (one part per shard; `mms merge DIR` "
                                  f"joins them)")
    if n > 1 and not output_dir and args.output not in (None, "-") and not is_special(args.output):
        # each shard its own --output (out_$SLURM_ARRAY_TASK_ID.jsonl) is fine; one file for all is not
        description["shard"] = f"{k}/{n}"
        other = _shard_of(args.output + ".run.json")
        if other not in (None, description["shard"]):
            raise engines.CorpusError(f"--output {args.output}: holds the results of shard {other}, which this "
                                      f"shard ({k}/{n}) would replace; give each shard its own --output, or use "
                                      f"--output-dir DIR (one part per shard; `mms merge DIR` joins them)")
    if output_dir:
        if args.output not in (None, "-"):
            raise engines.CorpusError("give either --output or --output-dir, not both")
        if os.path.exists(output_dir) and not os.path.isdir(output_dir):
            raise engines.CorpusError(f"--output-dir {output_dir}: is a file, not a folder")
        if fmt not in ("jsonl", "txt"):  # (txt: the default, which cannot be told from one asked for)
            merged = f"--format {fmt}" if fmt == "tsv" else "--format jsonl, txt or tsv"
            raise engines.CorpusError(f"--output-dir writes jsonl parts, not {fmt}; `mms merge {output_dir} "
                                      f"{merged}` joins them")
        os.makedirs(output_dir, exist_ok=True)
        own = os.path.join(output_dir, f"part-{k:05d}-of-{n:05d}.jsonl")
        # only this shard's own part is cut back to its last whole line: another shard may be writing its part now
        # (its last line half written), and a Ray run's driver is the only writer when it starts
        records = [engines.read_records(part, repair=engine == "ray" or os.path.abspath(part) == os.path.abspath(own))
                   for part in engines.part_files(output_dir)]
        if engines.check_run(os.path.join(output_dir, "run.json"), description, any(records)):
            run_file, claim = os.path.join(output_dir, "run.json"), True
        else:
            existing = os.path.join(output_dir, "run.json")
        for part_records in records:
            done |= engines.finished(part_records)
        dest, fmt, append = own, "jsonl", True
    elif engine == "ray":
        raise engines.CorpusError("--engine ray writes one part per worker: give --output-dir DIR")
    elif resume:
        if args.output in (None, "-") or fmt != "jsonl":
            raise engines.CorpusError("--resume continues a jsonl file: give --output FILE --format jsonl "
                                      "(or use --output-dir)")
        records = engines.read_records(args.output, repair=True) if os.path.exists(args.output) else []
        if engines.check_run(args.output + ".run.json", description, bool(records)):
            run_file, claim = args.output + ".run.json", True
        else:
            existing = args.output + ".run.json"
        done = engines.finished(records)
        # an index.jsonl of an older `mms tts` names its files from the run's cwd: now, from the index, as the new
        # lines do (one convention per file)
        rebased = task == "tts" and any(isinstance(r.get("path"), str) and os.path.dirname(r["path"]) for r in records)
        if rebased:
            records = [dict(r, path=os.path.basename(r["path"])) if isinstance(r.get("path"), str) else r
                       for r in records]
        if rebased or any(r.get("error") for r in records):  # failed inputs are redone: their old records go
            from mms.files import write_text_atomic

            write_text_atomic(args.output, "".join(json_line(r) for r in records if not r.get("error")))
        append = True
    elif args.output not in (None, "-") and fmt == "jsonl" and not is_special(args.output):  # so that the file
        # can be resumed (not beside /dev/null or a pipe)
        run_file = args.output + ".run.json"
    mine = engines.shard_rows(rows, k, n)
    todo = [row for row in mine if row["index"] not in done]
    if (resume or output_dir) and len(todo) < len(mine):
        say(prog, f"resuming: {len(mine) - len(todo)} inputs done before, {len(todo)} to do")
    if not todo:
        return 0
    verbose = getattr(args, "verbose", False)
    if engine == "ray":
        from mms.engines.ray import require_ray, run_ray, workers

        require_ray()  # before the run is described: a failed start leaves no run.json to block the next one
        workers(args.workers)  # a bad --workers too
        if started is not None:
            started()
        if run_file:
            engines.write_run(run_file, description, claim)
        return run_ray(task, settings, todo, output_dir, args)  # records are in the parts: score them merged

    worker = engines.make_worker(task, settings)  # the model loads before the output is opened
    engines.record_precision(description, worker, existing)
    if started is not None:
        started()
    if run_file:
        try:
            engines.write_run(run_file, description, claim)
        except OSError as e:  # the output's folder, named: not the side file the user never asked for
            raise engines.CorpusError(f"{output_dir or dest}: cannot write the output there "
                                      f"({e.strerror or e})") from None
    if verbose:
        say(prog, worker.describe())
    writer = get_writer(task, fmt, dest, append=append, **(writer_options or {}))
    progress = engines.Progress(todo, getattr(args, "progress", None))

    def records():
        for record in engines.run_local(worker, todo):
            progress.update(record["index"], seconds=record.get("duration"))
            if observer is not None:
                observer(record)
            yield Record(record)

    try:
        return stream_results(prog, records(), writer, total=len(todo), verbose=verbose, describe=describe)
    finally:
        progress.close()


def refuse_to_overwrite_inputs(dest: str | None, rows: list[dict], args: argparse.Namespace) -> None:
    """An MMSError when the output file is one of the inputs (`-o a.wav`, `-o dev.jsonl` of `--manifest
    dev.jsonl`): writing it would destroy the input before it is read. Or when it is a folder: nothing is written
    (not even FILE.run.json) before that is said."""
    import os

    if dest in (None, "-"):
        return
    if os.path.isdir(dest) and getattr(args, "format", None) != "fairseq":  # (fairseq's LID output is a folder)
        raise MMSError(f"{dest}: is a folder; --output names a file (--output-dir DIR writes a folder)")
    from mms.files import ensure_parent

    try:  # a file where its folder must be: said naming the output, not its FILE.run.json
        ensure_parent(dest)
    except OSError as e:
        raise MMSError(f"{dest}: cannot write output ({e.strerror or e})") from None
    if not os.path.isfile(dest):
        return
    target = os.stat(dest)
    named = [getattr(args, name, None) for name in ("audio", "manifest", "ref")]
    paths = [p for value in named for p in (value if isinstance(value, list) else [value]) if isinstance(p, str)]
    for path in paths + [row["audio"] for row in rows if isinstance(row.get("audio"), str)]:
        try:
            same = os.path.samestat(os.stat(path), target)
        except OSError:
            continue
        if same:
            raise MMSError(f"{dest}: the output is an input of this run; give another --output")


def json_line(record: dict) -> str:
    from mms.files import json_text

    return json_text(record) + "\n"
