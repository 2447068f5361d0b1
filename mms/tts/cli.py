"""Options of `mms tts` (no torch here; mms.tts.synthesizer is imported only to run)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from mms.cli import add_device_options

EXAMPLES = """\
examples:
  mms tts --model mms-tts-eng --txt "Expanding the language coverage of speech technology" --wav out.wav
  mms tts --model mms-tts/models --lang amh --file lines.txt --outdir wavs/   # one file per line, batched
  echo "some text" | mms tts --model models/eng --wav - > out.wav            # stdin to stdout
  mms tts --model DIR --txt "..." --speaking-rate 1.2 --noise-scale 0.5 --noise-scale-duration 0.6 --seed 7 \\
          --sample-rate 22050 --wav out.flac

--model takes an original MMS-TTS directory (G_100000.pth, config.json, vocab.txt), a Hugging Face
mms-tts-* directory (config.json, model.safetensors, vocab.json, tokenizer_config.json), or a folder of
voices (<lang>/, mms-tts-<lang>/ or models/<lang>/) from which --lang picks one.

Text is prepared as the voice's reference does it (fairseq infer.py for original voices, transformers'
VitsTokenizer for Hugging Face ones): uroman romanisation for uroman-trained voices, case folding, and
characters outside the voice's vocabulary dropped, with a warning naming them. Long text is cut into
sentences (at most --max-chars each), synthesised in batches and joined with --pause seconds of silence.
With --file, outputs are numbered 0001.wav, 0002.wav, ... over the non-blank lines, in input order, and
DIR/index.jsonl records each line's text, path, duration and error.

exit status: 0 every input synthesised, 1 some input failed (the others are still written), 2 usage error.
"""


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "tts", help="text to speech (MMS-TTS VITS voices, original or Hugging Face)",
        description="Synthesise speech with an MMS-TTS voice (VITS), from an original or Hugging Face checkpoint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--model-dir", "-m", dest="model", required=True,
                   help="voice directory (original or Hugging Face), a folder of voices with --lang, or a "
                        "published name (mms-tts with --lang; see mms models list)")
    p.add_argument("--lang", "-l", help="ISO 639-3 code of the voice, e.g. eng, amh, ron (picks a voice from a "
                                        "folder of voices; needed for the Romanian ț fix)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--txt", "-t", metavar="TEXT", help="the text to speak (default: read standard input)")
    source.add_argument("--file", "-f", metavar="FILE", help="text file, one input per line (- for stdin)")
    p.add_argument("--wav", "-o", metavar="PATH", help="output file for a single text: .wav or .flac, - for stdout")
    p.add_argument("--outdir", metavar="DIR", help="output folder: numbered files plus index.jsonl")
    p.add_argument("--format", choices=("wav", "flac"),
                   help="output format (default: from the --wav suffix, else wav)")
    p.add_argument("--float", dest="float_wav", action="store_true",
                   help="write 32-bit float wav instead of 16-bit PCM")
    p.add_argument("--sample-rate", type=int, metavar="HZ", help="resample the output (default: the voice's, 16000)")
    p.add_argument("--speaking-rate", type=float, metavar="X", help="speed: >1 faster, <1 slower (default: 1.0)")
    p.add_argument("--noise-scale", type=float, metavar="X", help="voice variation (default: the voice's, 0.667; 0 = none)")
    p.add_argument("--noise-scale-duration", type=float, metavar="X",
                   help="rhythm variation (default: the voice's, 0.8; 0 = none)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed: the same text and seed give the same speech")
    p.add_argument("--pause", type=float, metavar="SECONDS", default=0.2, help="seconds of silence between sentences (default: %(default)s)")
    p.add_argument("--max-chars", type=int, metavar="N", default=300,
                   help="longest sentence synthesised at once, in characters (default: %(default)s)")
    p.add_argument("--batch-tokens", type=int, metavar="N", default=1000,
                   help="padded input ids per forward pass; lower it if memory is short (default: %(default)s)")
    add_device_options(p, auto_dtype="float32")
    p.add_argument("--verbose", "-v", action="store_true", help="print voice, device and progress to stderr")
    p.set_defaults(run=run)
    return p


def error(message: str) -> None:
    print(f"mms tts: error: {message}", file=sys.stderr)


def read_inputs(args) -> list[tuple[int, str]]:
    """(line number, text) of every input: one for --txt or standard input, one per non-blank --file line."""
    if args.txt is not None:
        return [(1, args.txt)]
    if args.file is None:
        if sys.stdin.isatty():
            raise ValueError("no text: give --txt, --file, or pipe text on standard input")
        return [(1, sys.stdin.read())]
    if args.file == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            with open(args.file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{args.file}: cannot read text ({getattr(e, 'strerror', None) or e})") from None
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip()]


def check_usage(args) -> str | None:
    if args.wav is None and args.outdir is None:
        return "give --wav FILE (- for standard output) or --outdir DIR"
    if args.wav is not None and args.outdir is not None:
        return "give either --wav or --outdir, not both"
    if args.file is not None and args.wav is not None:
        return "--file writes one output per line: use --outdir DIR instead of --wav"
    if args.wav not in (None, "-") and args.format is None and not args.wav.lower().endswith((".wav", ".flac")):
        return f"{args.wav}: cannot tell the audio format from the suffix; use .wav or .flac, or --format"
    if args.float_wav and (args.format == "flac" or (args.format is None and (args.wav or "").endswith(".flac"))):
        return "--float applies to wav output (flac stores integer samples)"
    for name in ("sample_rate", "batch_tokens", "max_chars"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} must be positive"
    if args.speaking_rate is not None and args.speaking_rate <= 0:
        return "--speaking-rate must be positive"
    if args.pause < 0:
        return "--pause must not be negative"
    return None


def run(args: argparse.Namespace) -> int:
    problem = check_usage(args)
    if problem:
        error(problem)
        return 2
    try:
        inputs = read_inputs(args)
    except ValueError as e:
        error(str(e))
        return 2
    if not inputs:
        error(f"{args.file}: no text (every line is blank)")
        return 2

    from mms.audio import write_audio
    from mms.checkpoints import CheckpointError
    from mms.outputs import write_text_atomic
    from mms.tts.synthesizer import TTS

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mms tts: warning: %(message)s"))
    logger = logging.getLogger("mms.tts")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        tts = TTS.load(args.model, lang=args.lang, device=args.device, dtype=args.dtype, max_chars=args.max_chars,
                       batch_tokens=args.batch_tokens, pause=args.pause)
    except (CheckpointError, ValueError, OSError) as e:
        error(str(e))
        return 2
    if args.verbose:
        ckpt = tts.checkpoint
        print(f"mms tts: {ckpt.format} voice {ckpt.path}, lang {tts.lang}, {tts.sample_rate} Hz, "
              f"device {tts.device}, dtype {str(tts.dtype).replace('torch.', '')}", file=sys.stderr)

    fmt = args.format or ("flac" if (args.wav or "").lower().endswith(".flac") else "wav")
    subtype = "FLOAT" if args.float_wav else "PCM_16"
    width = max(4, len(str(len(inputs))))
    records, failed = [], 0
    speeches = tts.synthesize_iter([text for _, text in inputs], speaking_rate=args.speaking_rate,
                                   noise_scale=args.noise_scale, noise_scale_duration=args.noise_scale_duration,
                                   seed=args.seed, sample_rate=args.sample_rate)
    for speech in speeches:
        line = inputs[speech.index][0]
        name = f"line {line}" if args.file is not None else "text"
        path = args.wav if args.outdir is None else os.path.join(args.outdir, f"{speech.index + 1:0{width}d}.{fmt}")
        if speech.error is None:
            try:
                write_audio(path, speech.wave, speech.sample_rate, fmt=fmt, subtype=subtype)
            except (OSError, RuntimeError, ValueError) as e:
                speech.error = f"{path}: cannot write audio ({getattr(e, 'strerror', None) or e})"
        if speech.error is not None:
            failed += 1
            error(f"{name}: {speech.error}")
        elif args.verbose:
            print(f"mms tts: [{speech.index + 1}/{len(inputs)}] {path} ({speech.duration:.2f} s)", file=sys.stderr)
        records.append({"index": speech.index + 1, "line": line, "text": speech.text,
                        "path": None if speech.error else path, "duration": speech.duration,
                        "error": speech.error, "dropped": speech.dropped})
    if args.outdir is not None:
        index = os.path.join(args.outdir, "index.jsonl")
        try:
            write_text_atomic(index, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        except OSError as e:
            error(f"{index}: cannot write ({e.strerror or e})")
            return 2
    return 1 if failed else 0
