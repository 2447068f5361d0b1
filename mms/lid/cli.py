"""Options of `mms lid` and its output formats (no torch here; mms.lid.identifier is imported only to run)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from mms.cli import add_device_options
from mms.lid import BATCH_SECONDS, MAX_SECONDS, TOP_K

FORMATS = ("txt", "jsonl", "json", "tsv", "fairseq")

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
  jsonl    {"audio": ..., "predictions": [["eng", 0.9812], ...], "duration": 3.2}  (+ "names", "error")
  json     the same records as one JSON list
  tsv      audio, lang, probability, predictions (code:probability ...), duration, error (+ name)
  fairseq  predictions.txt of fairseq's examples/mms/lid/infer.py: one JSON list per input, in input order
           ([] for an input that failed); --output DIR writes DIR/predictions.txt

exit status: 0 every input identified, 1 some input failed (the others are still written), 2 usage error.
"""


def positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "lid", help="spoken language identification (MMS-LID, 126 to 4017 languages)",
        description="Identify the language spoken in audio files with an MMS LID model "
                    "(fairseq .pt or Hugging Face directory).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files (or manifests: .tsv, .jsonl, .json, .lst, .list)")
    p.add_argument("--model", "-m", help="Hugging Face mms-lid-* directory, fairseq LID checkpoint or published name "
                                          "(default: the registry's, mms-lid-4017)")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="fairseq LID labels file (dict.lang.txt: one language per line, line i = output i)")
    p.add_argument("--manifest", metavar="FILE", action="append", default=[],
                   help="fairseq .tsv, JSONL or list of audio paths (may be repeated)")
    p.add_argument("--top-k", "-k", type=positive(int), default=TOP_K,
                   help="how many languages to report per input (default: %(default)s)")
    p.add_argument("--langs", metavar="CODES",
                   help="candidate languages only: comma-separated codes (eng,fra,deu) or a file of codes; "
                        "the probabilities are a softmax over these")
    p.add_argument("--max-seconds", type=positive(float), default=MAX_SECONDS,
                   help="without --window: classify the first this many seconds of each input "
                        "(default: %(default)s)")
    p.add_argument("--window", type=positive(float), metavar="S",
                   help="classify the whole input in S-second windows and average their probabilities")
    p.add_argument("--names", action="store_true", help="add English language names (ISO 639-3) to the output")
    p.add_argument("--format", "-f", choices=FORMATS, default="txt", help="output format (default: %(default)s)")
    p.add_argument("--output", "-o", default="-", help="output file, written atomically (default: stdout)")
    add_device_options(p)
    p.add_argument("--batch-seconds", type=positive(float), default=BATCH_SECONDS,
                   help="padded audio seconds per forward pass (default: 200 on CUDA, 30 on CPU)")
    p.add_argument("--verbose", "-v", action="store_true", help="print model, device and progress to stderr")
    p.set_defaults(run=run)
    return p


def error(message: str) -> None:
    print(f"mms lid: error: {message}", file=sys.stderr)


def read_langs(value: str) -> list[str]:
    """--langs: a file of codes (one per line, or separated by commas/spaces; # comments) or the codes."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8-sig") as f:
            value = " ".join(line.split("#")[0] for line in f)
    return [code for code in value.replace(",", " ").split() if code]


def run(args: argparse.Namespace) -> int:
    from mms.manifest import ManifestError, collect_inputs

    try:
        items = collect_inputs(args.audio, args.manifest)
    except ManifestError as e:
        error(str(e))
        return 2
    if not items:
        error("no inputs: give audio files or a manifest")
        return 2
    try:
        langs = read_langs(args.langs) if args.langs is not None else None
    except OSError as e:
        error(f"--langs {args.langs}: {e.strerror or e}")
        return 2

    from mms.checkpoints import CheckpointError
    from mms.lid.identifier import LID
    from mms.outputs import write_text_atomic

    try:
        lid = LID.load(args.model, device=args.device, dtype=args.dtype, dict_path=args.dict_path,
                       max_seconds=args.max_seconds, window_seconds=args.window, batch_seconds=args.batch_seconds)
        results = lid.identify_iter(items, top_k=args.top_k, langs=langs)
    except (CheckpointError, ValueError, OSError) as e:
        error(str(e))
        return 2
    if args.verbose:
        ckpt = lid.checkpoint
        print(f"mms lid: {ckpt.format} model {ckpt.path}, {len(lid.labels)} languages, "
              f"{'head with ' + ckpt.config.classifier_activation if ckpt.config.classifier_activation else 'plain head'}, "
              f"device {lid.device}, dtype {str(lid.dtype).replace('torch.', '')}", file=sys.stderr)

    records, failed = [], 0
    for n, result in enumerate(results, 1):
        if result.error:
            failed += 1
            error(result.error)
        elif args.verbose:
            print(f"mms lid: [{n}/{len(items)}] {result.audio}: {result.lang} {result.probability:.3f}",
                  file=sys.stderr)
        records.append(result.to_dict())
    if args.names:
        from mms.langs import language_name

        for record in records:
            record["names"] = [language_name(code) for code, _ in record["predictions"]]
    output = args.output
    if args.format == "fairseq" and output != "-" and os.path.isdir(output):
        output = os.path.join(output, "predictions.txt")  # as fairseq's --output-path
    try:
        write_text_atomic(output, format_records(records, args.format))
    except OSError as e:
        error(f"{output}: cannot write output ({e.strerror or e})")
        return 2
    return 1 if failed else 0


def format_records(records: list[dict], fmt: str) -> str:
    """LID records (LanguageResult.to_dict(), maybe with "names") in one of FORMATS."""
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
    elif fmt == "fairseq":
        lines = [json.dumps(r["predictions"]) for r in records]
    elif fmt == "tsv":
        named = any("names" in r for r in records)
        lines = ["\t".join(("audio", "lang") + (("name",) if named else ()) +
                           ("probability", "predictions", "duration", "error"))]
        for r in records:
            top = r["predictions"][0] if r["predictions"] else ("", "")
            row = [r["audio"], top[0]] + ([(r["names"][0] or "") if r["predictions"] else ""] if named else [])
            row += [str(top[1]), " ".join(f"{code}:{p}" for code, p in r["predictions"]),
                    "" if r["duration"] is None else f"{r['duration']:.3f}", r.get("error") or ""]
            lines.append("\t".join(field.replace("\t", " ").replace("\n", " ") for field in row))
    else:
        lines = [txt_line(r, with_audio=len(records) > 1) for r in records]
    return "".join(line + "\n" for line in lines)


def txt_line(record: dict, with_audio: bool) -> str:
    names = record.get("names") or [None] * len(record["predictions"])
    text = " ".join(f"{code}{f' ({name})' if name else ''} {p:.4f}"
                    for (code, p), name in zip(record["predictions"], names))
    if record.get("error"):
        text = f"error: {record['error']}"
    return f"{record['audio']}\t{text}" if with_audio else text
