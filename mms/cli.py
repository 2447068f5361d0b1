"""`mms` command line: a thin dispatcher. Importing this module (and `mms --help`) must not import torch:
each task's options live in a light `cli.py`, and the task's heavy code is imported only to run it."""

from __future__ import annotations

import argparse
import sys

from mms import __version__


# One light module per command, each with `add_parser(commands)`; a command's heavy code is imported by its `run`.
COMMANDS = (
    "mms.asr.cli",  # mms asr
    "mms.lid.cli",  # mms lid
    "mms.tts.cli",  # mms tts
    "mms.align.cli",  # mms align
    "mms.hub_cli",  # mms models, mms langs
    "mms.lm.cli",  # mms lexicon, mms lm, mms score, mms tune
    "mms.train.cli",  # mms train-adapter, mms train
)


def add_device_options(parser: argparse.ArgumentParser, device: str = "auto", dtype: str = "auto",
                       auto_dtype: str = "bfloat16/float16 on CUDA, float32 elsewhere") -> None:
    """--device and --dtype, the same for every task (resolved by mms/device.py)."""
    parser.add_argument("--device", default=device, help="auto, cpu, cuda, cuda:N or mps (default: %(default)s)")
    parser.add_argument("--dtype", default=dtype, choices=("auto", "float32", "float16", "bfloat16"),
                        help=f"model precision (default: %(default)s: {auto_dtype})")


def add_time_offsets_option(parser: argparse.ArgumentParser) -> None:
    """--time-offsets START,END for the word/char times of asr and align (mms.decoding.ctc.shift_times)."""
    def seconds_pair(text: str) -> tuple[float, float]:
        import math

        try:
            start, end = (float(x) for x in text.split(","))
            if not (math.isfinite(start) and math.isfinite(end)):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: give two numbers of seconds, START,END (e.g. "
                                             f"--time-offsets=-0.1,-0.05)") from None
        return start, end

    parser.add_argument("--time-offsets", metavar="START,END", type=seconds_pair,
                        help="seconds added to word and character start and end times, for a model that emits "
                             "letters late (default: the model's measured \"word_time_offsets\" when its "
                             "config.json has them, as the demo model; else 0,0; negative values need the = "
                             "form: --time-offsets=-0.1,-0.05)")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="mms",
        description="Meta's Massively Multilingual Speech models, simply working: speech recognition (1,162 "
                    "languages), language identification, text to speech and forced alignment, from the original "
                    "fairseq checkpoints or the Hugging Face ones, no fairseq needed.",
        epilog="Run `mms COMMAND --help` for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"mms {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("mms: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
