"""Files: atomic writes (a reader never sees a half-written file, and a failure leaves an existing file untouched)
and reading text files with one-line errors. The lowest layer of the package (no mms imports)."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to `path`; move it onto `path` on success.

    The temporary file is not created here, so the writer creates it with normal permissions (mkstemp would
    make it 0600). Parent directories are created.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temp_path = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        yield temp_path
        os.replace(temp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` as utf-8 to `path` atomically; "-" means standard output."""
    if os.fspath(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(path) as temp_path:
        with open(temp_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)


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
