"""Options of `mms asr` (no torch here; mms.asr.transcriber is imported only to run)."""

from __future__ import annotations

import argparse
import sys
from importlib import resources

EXAMPLES = """\
examples:
  mms asr --model mms-1b-all/ --lang fra audio1.wav audio2.flac
  mms asr --model mms1b_all.pt --lang deu --manifest dev.tsv --format jsonl --output hyps.jsonl
  mms asr --model mms1b_all.pt --dict eng.txt --lang eng talk.mp3 --timestamps word --format json

inputs: audio files (wav, flac, ogg, mp3; other containers through ffmpeg), any sample rate and channel
count, and/or --manifest: a fairseq .tsv (root line, then path<TAB>samples), a JSONL manifest
(audio_filepath or audio, optional lang and text) or a plain list of paths. A manifest `lang` column
overrides --lang for that line. Long inputs are transcribed in windows, so length is not limited.

exit status: 0 every input transcribed, 1 some input failed (the others are still written), 2 usage error.
"""


def load_defaults(config_path: str | None = None) -> dict:
    import yaml

    text = resources.files("mms").joinpath("configs/asr.yaml").read_text(encoding="utf-8")
    defaults = yaml.safe_load(text)
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as f:
                defaults.update(yaml.safe_load(f) or {})
        except (OSError, yaml.YAMLError) as e:
            raise SystemExit(f"mms asr: error: --config {config_path}: {e}")
    return defaults


def add_parser(commands) -> argparse.ArgumentParser:
    config_path = _peek_config(sys.argv)
    d = load_defaults(config_path)
    p = commands.add_parser(
        "asr", help="speech recognition (wav2vec2 CTC with per-language adapters)",
        description="Transcribe speech with an MMS CTC model (fairseq .pt or Hugging Face directory).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", nargs="*", help="audio files to transcribe")
    p.add_argument("--model", "-m", required=True,
                   help="Hugging Face MMS directory or fairseq checkpoint (.pt)")
    p.add_argument("--lang", "-l", help="language code of the adapter to use, e.g. fra, cmn-script_simplified")
    p.add_argument("--dict", dest="dict_path", metavar="FILE",
                   help="fairseq dictionary file of the language (instead of the one stored in the model)")
    p.add_argument("--manifest", metavar="FILE", help="fairseq .tsv, JSONL or list of audio paths")
    p.add_argument("--format", "-f", choices=("txt", "jsonl", "json", "tsv"), default=d["format"],
                   help="output format (default: %(default)s)")
    p.add_argument("--output", "-o", default="-", help="output file, written atomically (default: stdout)")
    p.add_argument("--timestamps", choices=("none", "word", "char"), default=d["timestamps"],
                   help="add word (and character) start/end seconds to jsonl/json output (default: %(default)s)")
    p.add_argument("--device", default=d["device"], help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    p.add_argument("--dtype", default=d["dtype"], choices=("auto", "float32", "float16", "bfloat16"),
                   help="model precision (default: %(default)s: bfloat16/float16 on CUDA, float32 elsewhere)")
    p.add_argument("--batch-seconds", type=float, default=d["batch_seconds"],
                   help="padded audio seconds per forward pass (default: %(default)s)")
    p.add_argument("--chunk-seconds", type=float, default=d["chunk_seconds"],
                   help="window length for long inputs (default: %(default)s)")
    p.add_argument("--context-seconds", type=float, default=d["context_seconds"],
                   help="extra audio each window sees on both sides (default: %(default)s)")
    p.add_argument("--config", metavar="FILE", help="YAML file of option defaults (see configs/asr.yaml)")
    p.add_argument("--verbose", "-v", action="store_true", help="print model, device and progress to stderr")
    p.set_defaults(run=run)
    return p


def _peek_config(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def error(message: str) -> None:
    print(f"mms asr: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from mms.manifest import ManifestError, items_from_paths, read_manifest

    items = items_from_paths(args.audio)
    if args.manifest:
        try:
            items += read_manifest(args.manifest)
        except ManifestError as e:
            error(str(e))
            return 2
    if not items:
        error("no inputs: give audio files or --manifest")
        return 2

    from mms.asr.transcriber import ASR
    from mms.checkpoints import CheckpointError
    from mms.outputs import format_results, write_text_atomic

    try:
        asr = ASR.load(args.model, lang=args.lang, device=args.device, dtype=args.dtype, dict_path=args.dict_path,
                       batch_seconds=args.batch_seconds, chunk_seconds=args.chunk_seconds,
                       context_seconds=args.context_seconds)
    except (CheckpointError, ValueError, OSError) as e:
        error(str(e))
        return 2
    if args.verbose:
        ckpt = asr.checkpoint
        print(f"mms asr: {ckpt.format} model {ckpt.path}, {len(asr.languages)} languages, lang {asr.lang}, "
              f"device {asr.device}, dtype {str(asr.dtype).replace('torch.', '')}", file=sys.stderr)

    timestamps = None if args.timestamps == "none" else args.timestamps
    records, failed = [], 0
    for n, result in enumerate(asr.transcribe_iter(items, timestamps=timestamps), 1):
        if result.error:
            failed += 1
            error(result.error)
        elif args.verbose:
            print(f"mms asr: [{n}/{len(items)}] {result.audio} ({result.duration:.1f} s)", file=sys.stderr)
        records.append(result.to_dict())
    try:
        write_text_atomic(args.output, format_results(records, args.format))
    except OSError as e:
        error(f"{args.output}: cannot write output ({e.strerror or e})")
        return 2
    return 1 if failed else 0
