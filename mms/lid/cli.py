"""Options of `mms lid` (no torch here; mms.lid.identifier is imported only to run)."""

from __future__ import annotations

import argparse
import os

from mms.command import add_common_options, add_corpus_options, add_device_options, positive
from mms.errors import MMSError
from mms.files import read_text
from mms.options import LIDOptions, from_namespace
from mms.writers import formats

EXAMPLES = """\
examples:
  mms lid --model mms-lid-126/ audio1.wav audio2.mp3 --top-k 5
  mms lid --model mms1b_l126.pt manifest.tsv --format jsonl --output lid.jsonl
  mms lid --model mms-lid-126/ --langs eng,fra,deu,swh audio.wav      # only these candidates
  mms lid --model mms1b_l126.pt --window 10 lecture.flac --names       # average 10 s windows over the file
  mms lid --model mms1b_l126.pt --manifest dev.tsv --format fairseq --output out/   # out/predictions.txt

model: a Hugging Face mms-lid-* directory or an original fairseq LID checkpoint (mms1b_l126.pt ...
mms1b_l4017.pt), whose labels come from --dict, the checkpoint's task state or dict.lang.txt beside it.

inputs: audio files (wav, flac, ogg, mp3; other containers through ffmpeg), any sample rate and channel
count, and/or manifests (given with --manifest, or as arguments ending in .tsv, .jsonl, .json, .lst, .list):
a fairseq .tsv (root line, then path<TAB>samples; no .lang file needed), a JSONL manifest or a list of paths.

what is classified: the first --max-seconds of each input, or with --window S the whole input in S-second
windows whose probabilities are averaged (weighted by length). Long files are read piece by piece.

output (best first, softmax probabilities over the candidate languages):
  txt      <audio><TAB>eng 0.9812 fra 0.0101 ...  (just the predictions for a single input)
  jsonl    {"index": 0, "audio": ..., "predictions": [["eng", 0.9812], ...], "duration": 3.2}  (+ "error", "names")
  json     the same records as one JSON list
  tsv      audio, lang, probability, predictions (code:probability ...), duration, error (+ name)
  fairseq  predictions.txt of fairseq's examples/mms/lid/infer.py: one JSON list per input, in input order
           ([] for an input that failed); --output DIR/ (an existing folder, or a path ending in /) writes
           DIR/predictions.txt
Line formats are written as each input finishes; json is written at the end, atomically.

exit status: 0 every input identified, 1 some input failed (the others are still written), 2 usage error,
3 internal error (a bug; --verbose prints the traceback).
"""


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "lid", help="spoken language identification (MMS-LID, 126 to 4017 languages)",
        description="Identify the language spoken in audio files with an MMS LID model "
                    "(fairseq .pt or Hugging Face directory).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files (or manifests: .tsv, .jsonl, .json, .lst, .list)")
    p.add_argument("--model", "-m", help="Hugging Face mms-lid-* directory, fairseq LID checkpoint or published name "
                                          "(default: the registry's, mms-lid-4017; `demo`: the small model "
                                          "shipped in the package, no download)")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="language labels (fairseq's dict.lang.txt: one language per line, line i = output i); for a "
                        "Hugging Face model, instead of its config.json id2label")
    p.add_argument("--manifest", metavar="FILE", action="append", default=[],
                   help="fairseq .tsv, JSONL or list of audio paths (may be repeated)")
    p.add_argument("--top-k", "-k", type=top_k, default=LIDOptions.top_k,
                   help="how many languages to report per input, or `all` (default: %(default)s)")
    p.add_argument("--langs", metavar="CODES",
                   help="candidate languages only: comma-separated codes (eng,fra,deu) or a file of codes; "
                        "the probabilities are a softmax over these")
    p.add_argument("--max-seconds", type=positive(float),  # (no argparse default: refused with --window)
                   help="without --window: classify the first this many seconds of each input "
                        f"(default: {LIDOptions.max_seconds:g})")
    p.add_argument("--window", dest="window_seconds", type=positive(float), metavar="S",
                   default=LIDOptions.window_seconds,
                   help="classify the whole input in S-second windows and average their probabilities")
    p.add_argument("--names", action="store_true", help="add English language names (ISO 639-3) to the output")
    p.add_argument("--format", "-f", choices=formats("lid"),
                   help="output format (default: the --output file's suffix, else txt)")
    p.add_argument("--output", "-o", default="-", help="output file, or a directory for fairseq (default: stdout)")
    add_device_options(p, quantize=True)
    p.add_argument("--batch-seconds", type=positive(float), default=LIDOptions.batch_seconds,
                   help="padded audio seconds per forward pass (default: 200 on CUDA, 10 on CPU)")
    p.add_argument("--buffer-seconds", type=positive(float), default=LIDOptions.buffer_seconds,
                   help="audio read ahead and run before its results are written: a kill loses at most this much "
                        "(default: the larger of 4 batches and 600 s)")
    add_common_options(p)
    add_corpus_options(p)
    p.set_defaults(run=run)
    return p


def read_langs(value: str) -> list[str]:
    """--langs: a file of codes (one per line, or separated by commas/spaces; # comments) or the codes."""
    source = f"--langs {value!r}"
    if os.path.isfile(value):
        source = f"--langs {value}"
        value = " ".join(line.split("#")[0] for line in read_text(value, MMSError).splitlines())
    elif os.path.isdir(value):
        raise MMSError(f"--langs {value}: is a directory; give a file of language codes or the codes")
    codes = [code for code in value.replace(",", " ").split() if code]
    if not codes:
        raise MMSError(f"{source}: no language codes")
    return codes


def describe(record) -> str:
    code, probability = record["predictions"][0]
    return f"{record.name}: {code} {probability:.3f}"


def top_k(text: str):
    """--top-k: a positive whole number, or "all" (every candidate, as LIDOptions(top_k="all"))."""
    return "all" if text.strip().lower() == "all" else positive(int)(text)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from mms.command import output_format, run_corpus
    from mms.manifest import collect_inputs

    output_format(args, formats("lid"))
    if args.window_seconds is not None and args.max_seconds is not None:
        raise MMSError("--max-seconds limits what is classified without --window; --window classifies the whole "
                       "input: give one of the two")
    if args.names and args.format == "fairseq":
        raise MMSError("--names: the fairseq predictions format has no place for names; use jsonl, json, txt or tsv")
    args.max_seconds = LIDOptions.max_seconds if args.max_seconds is None else args.max_seconds
    items = collect_inputs(args.audio, args.manifest, keep_bad_lines=True)
    if not items:
        raise MMSError("no inputs: give audio files or a manifest")
    settings = {"model": args.model, "dict_path": args.dict_path, "device": args.device, "dtype": args.dtype,
                "langs": read_langs(args.langs) if args.langs is not None else None, "names": args.names,
                "options": asdict(from_namespace(LIDOptions, args))}
    rows = [{"index": i, "audio": item.audio, **({"error": item.error} if item.error is not None else {})}
            for i, item in enumerate(items)]
    partial = {"count": 0, "first": None}  # inputs of which only the first --max-seconds were classified

    def observe(record):
        if record.get("classified_seconds") is not None:
            partial["count"] += 1
            partial["first"] = partial["first"] or record.get("audio")

    status = run_corpus(args, "lid", settings, rows, args.format, {"single": len(items) == 1, "names": args.names},
                        observe, describe=describe)
    if partial["count"]:
        from mms.command import say

        count = partial["count"]
        say("mms lid", f"note: {count} input{'s are' if count > 1 else ' is'} longer than --max-seconds "
                       f"{args.max_seconds:g}: only {args.max_seconds:g} s were classified, the first that are not "
                       f"silence (e.g. {partial['first']}); --window S classifies the whole input")
    return status
