"""Options of `mms tts` (no torch here; mms.tts.synthesizer is imported only to run)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mms.command import (add_common_options, add_corpus_options, add_device_options, check_engine_options, non_negative, positive, say, seed,
                         stream_results)
from mms.errors import MMSError
from mms.options import GPU_BATCH_TOKENS, MAX_PAUSE, SAMPLE_RATES, TTSOptions, from_namespace

EXAMPLES = """\
examples:
  mms tts --lang eng --txt "Expanding the language coverage of speech technology" --wav out.wav
  mms tts --model mms-tts/models --lang amh --file lines.txt --outdir wavs/   # one file per line, batched
  echo "some text" | mms tts --model models/eng --wav - > out.wav            # stdin to stdout
  mms tts --lang eng --txt "One. Two." --split none --wav out.wav           # the whole text at once
  mms tts --model DIR --txt "..." --speaking-rate 1.2 --noise-scale 0.5 --noise-scale-duration 0.6 --seed 7 \\
          --sample-rate 22050 --wav out.flac

Without --model, --lang picks the published voice mms-tts-<lang> (fetched on first use, then cached).
--model takes an original MMS-TTS directory (G_100000.pth, config.json, vocab.txt), a Hugging Face
mms-tts-* directory (config.json, model.safetensors, vocab.json, tokenizer_config.json), or a folder of
voices (<lang>/, mms-tts-<lang>/ or models/<lang>/) from which --lang picks one.

Text is prepared as the voice's reference does it (fairseq infer.py for original voices, transformers'
VitsTokenizer for Hugging Face ones): uroman romanisation for uroman-trained voices, case folding, and
characters outside the voice's vocabulary dropped, with a warning naming them. Long text is cut into
sentences (at most --max-chars each), synthesised in batches and joined with --pause seconds of silence;
--split none speaks each input whole, as the references do. With --file, outputs are numbered 0001.wav,
0002.wav, ... over the non-blank lines, in input order, and DIR/index.jsonl records each line's text, path,
duration and error.

exit status: 0 every input synthesised, 1 some input failed (the others are still written), 2 usage error,
3 internal error (a bug; --verbose prints the traceback).
"""


def pause_seconds(text: str) -> float:
    value = non_negative(float)(text)
    if value > MAX_PAUSE:
        raise argparse.ArgumentTypeError(f"at most {MAX_PAUSE:g} seconds, got {text}")
    return value


def sample_rate(text: str) -> int:
    value = positive(int)(text)
    low, high = SAMPLE_RATES
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"a sample rate from {low} to {high} Hz, got {text}")
    return value


def add_parser(commands) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "tts", help="text to speech (MMS-TTS VITS voices, original or Hugging Face)",
        description="Synthesise speech with an MMS-TTS voice (VITS), from an original or Hugging Face checkpoint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", "--model-dir", "-m", dest="model",
                   help="voice directory (original or Hugging Face), a folder of voices with --lang, or a "
                        "published name (see mms models list) (default: mms-tts-<lang>; `demo`: the small English "
                        "voice shipped in the package, no download)")
    p.add_argument("--lang", "-l", help="ISO 639-3 code of the voice, e.g. eng, amh, ron (without --model: the "
                                        "voice mms-tts-<lang>; picks a voice from a folder of voices; needed for "
                                        "the Romanian ț fix)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--txt", "-t", metavar="TEXT", help="the text to speak; - or none: read standard input")
    source.add_argument("--file", "-f", metavar="FILE", help="text file, one input per line (- for stdin)")
    p.add_argument("--wav", "-o", metavar="PATH", help="output file for a single text: .wav or .flac, - for stdout")
    p.add_argument("--outdir", metavar="DIR", help="output folder: numbered files plus index.jsonl")
    p.add_argument("--format", choices=("wav", "flac"),
                   help="output format (default: from the --wav suffix, else wav)")
    p.add_argument("--float", dest="float_wav", action="store_true",
                   help="write 32-bit float wav instead of 16-bit PCM")
    p.add_argument("--sample-rate", type=sample_rate, metavar="HZ",
                   help="resample the output (default: the voice's, 16000)")
    p.add_argument("--speaking-rate", type=positive(float), metavar="X",
                   help="speed: >1 faster, <1 slower (default: 1.0)")
    p.add_argument("--noise-scale", type=non_negative(float), metavar="X",
                   help="voice variation (default: the voice's config, 0.667 in MMS voices; 0 = none)")
    p.add_argument("--noise-scale-duration", type=non_negative(float), metavar="X",
                   help="rhythm variation (default: the voice's config, 0.8 in MMS voices; 0 = none)")
    p.add_argument("--seed", type=seed, metavar="N", help="random seed: the same text and seed give the same speech")
    p.add_argument("--split", choices=("sentences", "none"), default=TTSOptions.split,
                   help="sentences: cut long text into sentences joined with --pause; none: speak each input "
                        "whole, as fairseq's infer.py and transformers do (default: %(default)s)")
    # (no argparse defaults: --split none refuses them when given; check_usage fills them in)
    p.add_argument("--pause", type=pause_seconds, metavar="SECONDS",
                   help=f"seconds of silence between sentences (default: {TTSOptions.pause})")
    p.add_argument("--max-chars", type=positive(int), metavar="N",
                   help=f"longest sentence synthesised at once, in characters (default: {TTSOptions.max_chars})")
    p.add_argument("--numbers", choices=("words", "as-is"), default=TTSOptions.numbers,
                   help="words: numbers written in digits are spoken as words of the voice's language (num2words; "
                        "\"21st\", \"3.5\", \"1,000\"); as-is: left to the voice, as fairseq and transformers do "
                        "(voices without digits skip them) (default: %(default)s)")
    p.add_argument("--batch-tokens", type=positive(int), metavar="N", default=TTSOptions.batch_tokens,
                   help="padded input ids per forward pass; memory grows with it (default: one sentence per pass "
                        f"on the CPU, where batches ran slower; {GPU_BATCH_TOKENS} on GPUs)")
    add_device_options(p, auto_dtype="float32")
    add_common_options(p)
    add_corpus_options(p, index="--outdir DIR's index.jsonl")
    p.set_defaults(run=run)
    return p


def read_stdin() -> str:
    """Standard input as text, checked as --file is: UTF-8, a byte-order mark dropped."""
    if getattr(sys.stdin, "buffer", None) is None:  # a text stream in its place (a caller's, a test's)
        return sys.stdin.read().removeprefix("\ufeff")
    try:
        return sys.stdin.buffer.read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise MMSError(f"standard input: cannot read text ({e})") from None


def text_lines(text: str) -> list[str]:
    """Lines as an editor numbers them: split at \\n, \\r\\n and \\r only (str.splitlines also splits at U+2028,
    U+2029, NEL, VT and FF, which would shift every line number after them)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_inputs(args) -> list:
    """The text for --txt or standard input, or (line number, text) of every non-blank --file line."""
    if args.txt is not None and args.txt != "-":
        if not args.txt.strip():
            raise MMSError("--txt: empty text")
        return [args.txt]
    if args.file is None:  # --txt - or neither: the text on standard input, one input
        if sys.stdin.isatty():
            raise MMSError("no text: give --txt, --file, or pipe text on standard input")
        text = read_stdin()
        if not text.strip():
            raise MMSError("standard input: empty text")
        return [text]
    if args.file == "-":
        lines = text_lines(read_stdin())
    else:
        try:
            with open(args.file, encoding="utf-8-sig", newline="") as f:  # (a byte-order mark is not text)
                lines = text_lines(f.read())
        except (OSError, UnicodeDecodeError) as e:
            raise MMSError(f"{args.file}: cannot read text ({getattr(e, 'strerror', None) or e})") from None
    inputs = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    if not inputs:
        raise MMSError(f"{args.file}: no text (every line is blank)")
    return inputs


def check_usage(args) -> None:
    if args.split == "none" and (args.pause is not None or args.max_chars is not None):
        raise MMSError("--pause and --max-chars apply to --split sentences; --split none speaks each input whole")
    args.pause = TTSOptions.pause if args.pause is None else args.pause
    args.max_chars = TTSOptions.max_chars if args.max_chars is None else args.max_chars
    if args.output_dir is not None and args.outdir is not None:
        raise MMSError("give either --outdir or --output-dir (a corpus run's folder), not both")
    outdir = args.outdir or args.output_dir
    if args.wav is None and outdir is None:
        raise MMSError("give --wav FILE (- for standard output) or --outdir DIR")
    if args.wav is not None and outdir is not None:
        raise MMSError(f"give either --wav or {'--outdir' if args.outdir is not None else '--output-dir'}, not both")
    if args.progress and outdir is None:
        raise MMSError("--progress shows the progress of a folder of outputs: give --outdir or --output-dir")
    if (args.resume or args.shard or args.engine != "local") and outdir is None:
        raise MMSError("--resume, --shard and --engine work on a folder of outputs: give --outdir or --output-dir")
    check_engine_options(args)
    if args.file is not None and args.wav is not None:
        raise MMSError("--file writes one output per line: use --outdir DIR instead of --wav")
    if args.wav not in (None, "-") and args.format is None and not args.wav.lower().endswith((".wav", ".flac")):
        raise MMSError(f"{args.wav}: cannot tell the audio format from the suffix; use .wav or .flac, or --format")
    suffix = os.path.splitext(args.wav or "")[1].lower()[1:]
    if args.format is not None and suffix in ("wav", "flac") and suffix != args.format:
        raise MMSError(f"{args.wav}: --format {args.format} would write {args.format.upper()} into a .{suffix} file; "
                       f"leave out --format, or name the file .{args.format}")
    if args.wav not in (None, "-"):
        from mms.files import check_writable

        check_writable(args.wav)  # before the voice loads: a usage error, not a failed synthesis
    if args.float_wav and (args.format == "flac" or (args.format is None and (args.wav or "").lower().endswith(".flac"))):
        raise MMSError("--float applies to wav output (flac stores integer samples)")


def show_warnings() -> None:
    """The synthesizer's warnings (dropped characters) as `mms tts: warning: ...` lines on standard error."""
    logger = logging.getLogger("mms.tts")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mms tts: warning: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def remove_previous_outputs(outdir: str, index: str) -> None:
    """A new run (no --resume) in an --outdir of an earlier one replaces its index.jsonl: the audio files that index
    lists go too, or they would stay beside the new ones, listed nowhere. Only files inside `outdir` that the
    index names are removed."""
    from mms.engines import read_records

    root = os.path.realpath(outdir)
    removed = 0
    for record in read_records(index):
        path = record.get("path")
        if not isinstance(path, str):
            continue
        real = os.path.realpath(os.path.join(outdir, os.path.basename(path)))  # (written relative to another cwd?)
        if os.path.dirname(real) == root and os.path.isfile(real):
            os.unlink(real)
            removed += 1
    if removed:
        say("mms tts", f"note: {outdir} held a previous run (no --resume): its {removed} audio files removed")


def run(args: argparse.Namespace) -> int:
    check_usage(args)
    inputs = read_inputs(args)
    show_warnings()
    outdir = args.output_dir or args.outdir
    if outdir is not None:  # a folder of files + index.jsonl: a corpus run (resume, shards, Ray; mms.engines)
        from dataclasses import asdict

        from mms.command import run_corpus

        settings = {"model": args.model, "lang": args.lang, "device": args.device, "dtype": args.dtype,
                    "options": asdict(from_namespace(TTSOptions, args)), "outdir": outdir,
                    # (wav, the default, named or not: one setting, as run.json has it since the first version)
                    "audio_format": None if args.format == "wav" else args.format,
                    "subtype": "FLOAT" if args.float_wav else "PCM_16",
                    "count": len(inputs)}
        rows = [{"index": i, "line": line, "text": text}
                for i, (line, text) in enumerate(item if isinstance(item, tuple) else (None, item) for item in inputs)]
        # --outdir: index.jsonl in it; --output-dir: the corpus run's own part files
        args.output = os.path.join(args.outdir, "index.jsonl") if args.outdir is not None else None
        if args.output and not os.path.exists(args.output) and os.path.isdir(args.outdir) and os.listdir(args.outdir):
            # numbered files would replace the user's own 0001.wav ...: only a folder of an earlier run is reused
            raise MMSError(f"--outdir {args.outdir}: holds files but no index.jsonl of an earlier `mms tts` run; "
                           f"give a new or empty folder")
        replaced = args.output if args.output and not args.resume and os.path.exists(args.output) else None
        # the earlier run's files go once this one has started (its voice loaded): a run that fails to start
        # leaves them, and their index, as they were
        return run_corpus(args, "tts", settings, rows, "jsonl",
                          describe=lambda r: f"{os.path.join(outdir, r.get('path') or '')} ({r.get('duration') or 0:.2f} s)",
                          started=(lambda: remove_previous_outputs(args.outdir, replaced)) if replaced else None)

    from mms.tts.synthesizer import TTS
    from mms.writers import get_writer

    tts = TTS.load(args.model, lang=args.lang, device=args.device, dtype=args.dtype,
                   options=from_namespace(TTSOptions, args))
    if args.verbose:
        say("mms tts", tts.describe())
    writer = get_writer("tts", "audio", args.wav, audio_format=args.format,
                        subtype="FLOAT" if args.float_wav else "PCM_16")
    return stream_results("mms tts", tts.synthesize_iter(inputs), writer, total=len(inputs), verbose=args.verbose,
                          describe=lambda speech: f"{speech.path} ({speech.duration:.2f} s)")
