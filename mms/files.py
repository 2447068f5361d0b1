"""Atomic file writes: a reader never sees a half-written file, and a failure leaves an existing file untouched.
The lowest layer of the package (no mms imports)."""

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
