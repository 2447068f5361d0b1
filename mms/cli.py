"""`mms` command line: a thin dispatcher. Importing this module (and `mms --help`) must not import torch:
each task's options live in a light `cli.py`, and the task's heavy code is imported only to run it."""

from __future__ import annotations

import argparse
import sys

from mms import __version__


def build_parser() -> argparse.ArgumentParser:
    from mms.asr import cli as asr_cli

    parser = argparse.ArgumentParser(
        prog="mms",
        description="Meta's Massively Multilingual Speech models, simply working: speech recognition in 1,162 "
                    "languages from fairseq or Hugging Face checkpoints, no fairseq needed.",
        epilog="Run `mms COMMAND --help` for a command's options and examples.")
    parser.add_argument("--version", action="version", version=f"mms {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    asr_cli.add_parser(commands)
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
