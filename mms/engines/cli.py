"""`mms merge`: join the parts of a corpus run (any engine, any shards) into one output (no torch here)."""

from __future__ import annotations

import argparse
import os
import sys

EXAMPLES = """\
examples:
  mms asr --manifest big.tsv --lang fra --output-dir run/ --shard 3/16      # one of 16 shards (or --shard auto)
  mms merge run/ --output all.jsonl
  mms merge run/ --output all.tsv --format tsv

One record per input, in index order; an input with several records (a redone batch, a retried shard) keeps its
last good one (or, if it never succeeded, its last error). Inputs that no part has are counted as missing (they
have no line in the output: run their shard, then merge again).

exit status: 0 every input of the run has a good record, 1 some input failed or is missing, 2 usage error,
3 internal error (a bug; --verbose prints the traceback).
"""


def add_parser(commands) -> None:
    p = commands.add_parser("merge", help="join the parts of a corpus run (--output-dir) into one output",
                            description="Join DIR/part-*.jsonl of `mms asr|lid|tts --output-dir DIR` into one "
                                        "output, one record per input in index order.",
                            epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("directory", metavar="DIR", help="the --output-dir of the run (run.json, part-*.jsonl)")
    p.add_argument("--output", "-o", default="-", help="output file (default: stdout)")
    p.add_argument("--format", "-f", choices=("jsonl", "txt", "tsv"), default="jsonl",
                   help="output format (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mms import engines
    from mms.results import Record
    from mms.writers import get_writer

    run_file = os.path.join(args.directory, "run.json")
    if not os.path.isfile(run_file):
        raise engines.CorpusError(f"{args.directory}: no run.json (not an --output-dir of mms)")
    if args.output != "-":
        out = os.path.realpath(args.output)
        if out == os.path.realpath(run_file) or out in map(os.path.realpath, engines.part_files(args.directory)) or (
                os.path.dirname(out) == os.path.realpath(args.directory) and os.path.basename(out).startswith("part-")):
            raise engines.CorpusError(f"--output {args.output}: is the run's own run.json or a part of it; give "
                                      f"a file outside its folder")
    description = engines.read_run(run_file)
    task, total = description["task"], description["inputs"]
    if task == "align" and not engines.part_files(args.directory):
        raise engines.CorpusError(f"{args.directory}: the folder of an `mms align` run, whose pairs have their own "
                                  f"folders there: nothing to merge (merge joins the part files of --output-dir "
                                  f"runs and of --engine ray)")
    records = [r for part in engines.part_files(args.directory) for r in engines.read_records(part)]
    stray = [r for r in records if not 0 <= r["index"] < total]
    if stray:  # numbered for another input list: never merged into this one
        print(f"mms merge: warning: {len(stray)} records with an index outside 0..{total - 1} ignored (parts of "
              f"another run in {args.directory}?)", file=sys.stderr)
    best = engines.best_records(r for r in records if 0 <= r["index"] < total)
    fmt = args.format
    if task in ("tts", "align") and fmt != "jsonl":
        raise engines.CorpusError(f"mms {task} records merge as jsonl only")
    if task == "tts":  # its records name their files from the run's folder: from the merged file, here
        base = os.path.dirname(os.path.abspath(args.output)) if args.output != "-" else os.getcwd()
        best = [dict(r, path=os.path.relpath(os.path.join(args.directory, r["path"]), base))
                if isinstance(r.get("path"), str) and not os.path.dirname(r["path"]) else r for r in best]
    with get_writer(task if fmt != "jsonl" else "asr", fmt, args.output, single=False) as writer:
        for record in best:
            writer.write(Record(record))
    failed = sum(1 for r in best if r.get("error"))
    missing = total - len(best)
    if failed or missing:
        said = [f"{failed} failed (their errors are in the output; the run's own command, run again, tries "
                f"them again)"] if failed else []
        said += [f"{missing} missing (no part has them: run the command of the shards that did not finish, then "
                 f"merge again)"] if missing else []
        print(f"mms merge: error: {len(best)} of {total} inputs have records; {'; '.join(said)}", file=sys.stderr)
        return 1
    return 0
