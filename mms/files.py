"""Files: atomic writes (a reader never sees a half-written file, and a failure leaves an existing file untouched)
and reading text files with one-line errors. The lowest layer of the package (no mms imports)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Iterator


def ensure_parent(path: str | os.PathLike) -> str:
    """Make the folder `path` goes in (and its parents); -> that folder. A file where a folder must be is an
    OSError naming `path` and the file, not makedirs' bare "File exists" on the folder."""
    path = os.fspath(path)
    directory = existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder", path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None
    return directory


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to `path`; move it onto `path` on success.

    The temporary file is not created here, so the writer creates it with normal permissions (mkstemp would
    make it 0600). Parent directories are created. An OSError names `path`, never the temporary file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if is_special(path):  # /dev/null, a pipe (`-o >(gzip > x.gz)`): written as it is; replacing it would destroy it
        yield path
        return
    path = os.path.realpath(path)  # through a symbolic link: the file it points to is replaced, the link stays
    directory = ensure_parent(path)
    temp_path = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        yield temp_path
        os.replace(temp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temp_path)
        if isinstance(e, OSError) and e.filename == temp_path:  # the user knows the output, not the temporary file
            raise OSError(e.errno, e.strerror, path) from None
        raise


def is_special(path: str | os.PathLike) -> bool:
    """Whether `path` exists and is neither a regular file nor a folder: a device, a FIFO or a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def check_writable(path: str | os.PathLike) -> None:
    """Raise the OSError (naming `path`) that writing `path` atomically would meet: a folder in its place, or a
    parent folder that cannot be made or written. For outputs written only at the end of a long run."""
    path = os.fspath(path)
    if path == "-":
        return
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    if is_special(path):
        if not os.access(path, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return
    directory = ensure_parent(os.path.realpath(path))
    probe = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    try:
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise OSError(e.errno, e.strerror, path) from None


def json_text(value, **options) -> str:
    """json.dumps with readable non-ASCII text; a file name that is not UTF-8 on disk (Python holds its bytes as
    lone surrogates, which no UTF-8 file can hold) makes the whole value ASCII-escaped instead ("caf\\udce9.wav"),
    still valid JSON, which reads back as the same name."""
    import json

    # U+2028/U+2029 escaped: valid raw in JSON, but line readers (Python's str.splitlines, JavaScript) split there
    text = json.dumps(value, ensure_ascii=False, **options).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **options)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` as utf-8 to `path` atomically; "-" means standard output."""
    if os.fspath(path) == "-":
        if sys.stdout is None:  # started with standard output closed (`>&-`)
            raise OSError(errno.EBADF, "standard output is closed", "-")
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(path) as temp_path:
        # surrogateescape: a file name that is not UTF-8 is written back as the bytes it has on disk
        with open(temp_path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(text)


def missing_file(path: str | os.PathLike, what: str = "file") -> str | None:
    """Why `path` is not a readable regular file ("no such {what}", "is a directory, not a {what}"), or None."""
    if os.path.isfile(path):
        return None
    return f"is a directory, not a {what}" if os.path.isdir(path) else f"no such {what}"


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
