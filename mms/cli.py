"""`mms` command line: a thin dispatcher. Importing this module (and `mms --help`) must not import torch:
each task's options live in a light `cli.py`, and the task's heavy code is imported only to run it."""

from __future__ import annotations

import argparse

from mms import __version__


# One light module per command, each with `add_parser(commands)`; a command's heavy code is imported by its `run`.
COMMANDS = (
    "mms.asr.cli",  # mms asr, mms tune-rerank
    "mms.lid.cli",  # mms lid
    "mms.tts.cli",  # mms tts
    "mms.align.cli",  # mms align
    "mms.hub_cli",  # mms models, mms langs
    "mms.lm.cli",  # mms lexicon, mms lm, mms score, mms tune
    "mms.train.cli",  # mms train-adapter, mms train
    "mms.engines.cli",  # mms merge
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one `--help` away), as every other error, and
    options are never abbreviated: `mms tts --output F` would otherwise be taken for --output-dir and write a
    folder named F."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # (subcommand parsers are built with this class too)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = Parser(
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
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
    except KeyboardInterrupt:  # Ctrl-C while the commands' modules load: no traceback (execute handles later ones)
        import sys

        print("mms: interrupted", file=sys.stderr)
        return 130
    if unknown:  # said by the command's own parser: `mms align: error: ...` and its --help
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        (commands.choices.get(args.command) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 2
    from mms.command import execute

    return execute(args)


if __name__ == "__main__":
    raise SystemExit(main())
