"""N-gram language models: building ARPA files (mms.lm.kneser_ney), reading and scoring them (mms.lm.arpa),
and WER/CER scoring (mms.lm.scoring). Only the small file helpers below live here; nothing heavy is imported."""

from __future__ import annotations

import os


def open_input(path: str | os.PathLike, error: type[Exception]):
    """open(path, "rb"), raising `error` with one line naming the file when it cannot be opened."""
    path = os.fspath(path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a text file") from None
    except OSError as os_error:
        raise error(f"{path}: cannot read ({os_error.strerror})") from None


def read_text(path: str | os.PathLike, error: type[Exception]) -> str:
    """The whole of a UTF-8 text file, a byte order mark dropped; `error` (one line) when it cannot be."""
    with open_input(path, error) as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as decode_error:
        raise error(f"{os.fspath(path)}: not UTF-8 text ({decode_error.reason})") from None
