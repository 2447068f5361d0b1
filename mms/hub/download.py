"""Fetching model files and finding them in the cache: from the Hugging Face Hub through huggingface_hub, and the
original files by URL. File by file, resumable, and a file appears under its name only once complete.

A host that cannot be reached (no such name, nothing listening, no connection within CONNECT_TIMEOUT) is an error
at once, not after retries: it will not come back in seconds. Errors that can pass (HTTP 429/5xx, a read timeout,
a transfer cut off) keep their retries.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
import time
from pathlib import Path

from mms.checkpoints import hf_layout
from mms.checkpoints.hf_layout import adapter_filenames, adapter_languages
from mms.hub.errors import HubError, HTTPStatusError, RepositoryMissingError, UnreachableError
from mms.hub.registry import ModelInfo, human_size, licence

RETRY_WAITS = (1, 2, 4)  # seconds before each new try of a URL download that broke off
CONNECT_TIMEOUT = 4  # seconds to look up a host and connect to it (TLS included)
READ_TIMEOUT = 60  # seconds a URL download waits for data once connected
ORIGINAL_HOST = "https://dl.fbaipublicfiles.com"

# ---------------------------------------------------------------------------------------------------------
# where things are (read at call time, so a changed environment is honoured)


def cache_root() -> Path:
    """HF_HOME, as huggingface_hub resolves it."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(os.path.expandvars(os.path.expanduser(os.environ.get("HF_HOME", str(default)))))


def hub_cache() -> Path:
    """The huggingface_hub cache (HF_HUB_CACHE, else $HF_HOME/hub)."""
    path = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or str(cache_root() / "hub")
    return Path(os.path.expandvars(os.path.expanduser(path)))


def url_cache() -> Path:
    """Original (non-Hub) files: $HF_HOME/mms/<model>/."""
    return cache_root() / "mms"


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def original_url(url: str) -> str:
    """A registry URL, on the mirror MMS_FILES_ENDPOINT when one is set (like HF_ENDPOINT for the Hub)."""
    mirror = os.environ.get("MMS_FILES_ENDPOINT", "").rstrip("/")
    return mirror + url[len(ORIGINAL_HOST):] if mirror and url.startswith(ORIGINAL_HOST) else url


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in ("1", "ON", "YES", "TRUE")


def set_offline() -> None:
    """From now on in this process, use only the cache (the `--offline` option; the same as HF_HUB_OFFLINE=1)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # it reads HF_HUB_OFFLINE once, when imported
        constants.HF_HUB_OFFLINE = True


LOCAL_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.ENOSPC, errno.EDQUOT, errno.EISDIR}


def _causes(error: BaseException) -> list[BaseException]:
    """An exception and the ones it was raised from (or while handling, unless `from None`), outermost first."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ if error.__cause__ is not None else (
            None if error.__suppress_context__ else error.__context__)
    return chain


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


# ---------------------------------------------------------------------------------------------------------
# Hugging Face Hub


def _alternatives(spec: str) -> tuple[list[str], bool]:
    """A registry file spec: "a|b" (the first the repo has), "x?" (optional) -> (names, optional)."""
    return spec.rstrip("?").split("|"), spec.endswith("?")


def hf_files(info: ModelInfo, langs=()) -> list[tuple[list[str], bool, str | None]]:
    """(alternative names, optional, language) of the files `info` needs for `langs`, in fetching order: the small
    files, then the adapters (a missing language fails before the big download), then the weights."""
    files = [(*_alternatives(spec), None) for spec in info.files]
    if info.adapter and langs:

        files += [(list(adapter_filenames(lang)), False, lang) for lang in langs]
    if info.weights:
        files.append((*_alternatives(info.weights), None))
    return files


def cached_file(repo: str, names: list[str], revision: str = "main") -> str | None:
    """The cached path of the first of `names` that is cached; "" when every one is known (from the cache) not to
    exist; None when not cached."""
    from huggingface_hub import try_to_load_from_cache

    absent = 0
    for name in names:
        found = try_to_load_from_cache(repo, name, cache_dir=hub_cache(), revision=revision)
        if isinstance(found, str):
            return found
        absent += found is not None  # _CACHED_NO_EXIST
    return "" if absent == len(names) else None


@functools.lru_cache(maxsize=16)  # a snapshot folder is one commit: its vocab.json never changes
def has_adapters(snapshot: Path) -> bool:
    """A vocab.json nested by language means per-language adapters; a flat one, a single-language model (an
    unreadable one: assume adapters, the download will tell)."""
    vocab = hf_layout.read_vocab(snapshot)
    return vocab is None or hf_layout.vocab_languages(vocab) is not None


def hf_snapshot(info: ModelInfo, langs=(), repo: str | None = None) -> Path | None:
    """The cached snapshot directory holding every file the model needs for `langs`, or None."""
    repo = repo or info.repo(langs[0] if langs else None)
    if not repo or "{" in repo:
        return None
    snapshot = None
    for names, optional, lang in hf_files(info, list(langs)):
        if lang is not None and snapshot is not None and not has_adapters(snapshot):
            continue
        found = cached_file(repo, names, "main")
        if not found and not optional:
            return None  # a required file not cached, or known not to exist
        if found:
            snapshot = Path(found).parent
    return snapshot


def hf_file(repo: str, names: list[str], revision: str = "main", refresh: bool = False,
            force: bool = False) -> str | None:
    """The local path of the first of `names` that `repo` has at `revision`: cached, else downloaded now. None when
    the repo has none of them. `refresh`: ask the Hub even when cached; `force`: download it again even so."""
    refresh = refresh or force
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

    if not refresh:
        found = cached_file(repo, names, revision)
        if found:
            return found
    _fail_fast_session()
    for name in names:
        if not refresh and cached_file(repo, [name], revision) == "":
            continue  # known (from an earlier run) not to be in the repo
        show_licence_notice()
        try:
            path = _hub_download(repo, name, revision, force)
        except RemoteEntryNotFoundError:  # a 404 for this file (not "cannot reach the Hub")
            continue
        except RepositoryNotFoundError:
            raise RepositoryMissingError(f"no repository {repo} on {endpoint()} (or a private one: set HF_TOKEN)") \
                from None
        except Exception as e:  # noqa: BLE001 - HTTP, protocol and file errors from huggingface_hub's stack
            causes = _causes(e)
            local = next((c for c in causes if isinstance(c, OSError) and c.errno in LOCAL_ERRNOS), None)
            if local is not None:  # the cache folder, not the network: retrying would not help
                raise HubError(f"{repo}/{name}: cannot write the model cache {hub_cache()} ({local.strerror}: "
                               f"{local.filename}); make it writable, or set HF_HOME (or HF_HUB_CACHE) to a folder "
                               f"that is") from None
            cached = cached_file(repo, [name], revision) if refresh and not force else None
            if cached:  # --refresh with the Hub out of reach: the cached revision, as huggingface_hub does
                return cached
            error = UnreachableError if isinstance(e, UnreachableError) else HubError
            # the innermost cause says what happened (an HTTP status, a reset); the outer ones say "check your
            # connection" whatever it was
            raise error(f"{repo}/{name}: download failed ({_first_line(causes[-1])}); run the same command again to "
                        f"retry (without network: --offline or HF_HUB_OFFLINE=1 uses only the cache)") from None
        _check_content(f"{endpoint()}/{repo}/{name}", Path(path))
        return path
    return None


def _hub_download(repo: str, name: str, revision: str, force: bool) -> str:
    """hf_hub_download. With `force`, the snapshot's link to the cached file is moved aside for the download
    (huggingface_hub 2.4 keeps a link to the old blob when the new one's ETag differs, so a damaged file could
    never be replaced) and put back if the download fails (a model that worked offline keeps working)."""
    from huggingface_hub import hf_hub_download

    stale = cached_file(repo, [name], revision) if force else None
    aside = f"{stale}.mms-replaced" if stale else None
    if aside:
        os.replace(stale, aside)
    try:
        return hf_hub_download(repo, name, revision=revision, cache_dir=hub_cache(), endpoint=endpoint(),
                               tqdm_class=progress_bar_class(), force_download=force)
    except BaseException:
        if aside and not os.path.lexists(stale):
            os.replace(aside, stale)
        raise
    finally:
        if aside and os.path.lexists(aside):
            os.unlink(aside)


_unreachable: dict[tuple, tuple[float, str]] = {}  # (host, port) -> when and why connecting to it failed
UNREACHABLE_FOR = 30  # seconds a host that could not be connected to is not tried again


class _FailFastTransport:
    """Under huggingface_hub's HTTP client: connecting takes CONNECT_TIMEOUT at most, and a failure to connect
    raises UnreachableError. huggingface_hub retries a request for a file that is not cached 6 times over ~25 s
    whatever failed; an error it does not know, it does not retry. A host that failed is not tried again for
    UNREACHABLE_FOR seconds: huggingface_hub's own first request (its agent list) must not double the wait. Every
    other error (HTTP 429/5xx, a read timeout, a transfer cut off) passes through unchanged, with its retries."""

    def __init__(self, inner):
        self.inner = inner

    def handle_request(self, request):
        import httpx2

        host = (request.url.host, request.url.port)
        failed = _unreachable.get(host)
        if failed is not None and time.monotonic() - failed[0] < UNREACHABLE_FOR:
            raise UnreachableError(failed[1])
        timeout = dict(request.extensions.get("timeout") or {})
        timeout["connect"] = min(timeout.get("connect") or CONNECT_TIMEOUT, CONNECT_TIMEOUT)
        request.extensions["timeout"] = timeout
        try:
            return self.inner.handle_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as e:  # name lookup, TCP or TLS: nothing was sent
            where = request.url.host + (f":{request.url.port}" if request.url.port else "")
            _unreachable[host] = (time.monotonic(), f"cannot connect to {where}: {_first_line(e)}")
            raise UnreachableError(_unreachable[host][1]) from None

    def close(self) -> None:
        self.inner.close()


def _fail_fast_session() -> None:
    """Put _FailFastTransport under huggingface_hub's shared client (again, after it has made a new one)."""
    from huggingface_hub import get_session

    client = get_session()
    transport = getattr(client, "_transport", None)  # httpx has no public way to wrap a client's transport
    if transport is not None and not isinstance(transport, _FailFastTransport):
        client._transport = _FailFastTransport(transport)


# ---------------------------------------------------------------------------------------------------------
# original files by URL


def url_folder(info: ModelInfo, lang: str | None = None) -> Path:
    folder = url_cache() / info.name
    return folder / lang if info.per_language and lang else folder


def url_path(info: ModelInfo, langs=()) -> Path | None:
    """The cached path of a model's original files (the first file, or an unpacked archive's folder), or None."""
    lang = info.lang or (langs[0] if langs else None)
    if info.per_language and not lang:
        return None
    paths = []
    for url in info.url:
        path = url_folder(info, lang) / url.format(lang=lang).rsplit("/", 1)[-1]
        if not path.exists():
            return None
        paths.append(path)
    if not paths:
        return None
    return _unpacked(paths[0]) if paths[0].name.endswith(".tar.gz") else paths[0]


def download_url(url: str, dest: str | Path, expected_size: int | None = None, retries: int = len(RETRY_WAITS),
                 progress: bool = True) -> Path:
    """Fetch `url` into `dest`, resuming a `.incomplete` file left by an earlier try (HTTP Range), checking the
    size against the server's Content-Length (and `expected_size` when given); `dest` appears only complete."""
    from huggingface_hub.utils import WeakFileLock

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".incomplete")
    with WeakFileLock(str(dest) + ".lock"):
        if dest.exists():
            return dest
        try:
            _download(url, partial, expected_size, retries, progress)
        finally:  # a validator outlives only the part it validates
            if not partial.exists():
                _validator_file(partial).unlink(missing_ok=True)
        os.replace(partial, dest)
        _validator_file(partial).unlink(missing_ok=True)
    return dest


def _download(url: str, partial: Path, expected_size: int | None, retries: int, progress: bool) -> None:
    """`partial` complete and checked, else an error (a busy server and a broken transfer are tried again)."""
    import http.client

    for attempt in range(retries + 1):
        try:
            _transfer(url, partial, expected_size, progress)
            break
        except HTTPStatusError as e:  # a busy server (429, 5xx) is tried again; not found, forbidden are final
            if attempt == retries or (e.status != 429 and e.status < 500):
                raise
            time.sleep(RETRY_WAITS[min(attempt, len(RETRY_WAITS) - 1)])
        except (OSError, http.client.HTTPException) as e:  # not UnreachableError: no retry for that
            kept = partial.stat().st_size if partial.exists() else 0
            if attempt == retries:
                raise HubError(f"{url}: download broke off ({_first_line(e)}); {human_size(kept)} kept in "
                               f"{partial}: run the same command again to resume") from None
            time.sleep(RETRY_WAITS[min(attempt, len(RETRY_WAITS) - 1)])
    _check_content(url, partial)


def _validator_file(partial: Path) -> Path:
    """Where the ETag (or Last-Modified) of a file being downloaded is kept, to resume only that same file."""
    return partial.with_name(partial.name + ".etag")


ZIP_OR_PICKLE, GZIP = (b"PK\x03\x04", b"\x80"), (b"\x1f\x8b",)
MAGIC = {".pt": ("a PyTorch checkpoint", ZIP_OR_PICKLE), ".pth": ("a PyTorch checkpoint", ZIP_OR_PICKLE),
         ".gz": ("a gzip archive", GZIP)}  # what a file of that suffix is, and its possible first bytes


def _check_content(url: str, path: Path) -> None:
    """A file received whole is still refused when it is not what its name says: a web page (a captive portal, a
    mirror's "not found" page sent with status 200), or a checkpoint or archive without its format's first bytes.
    It is deleted (a Hub snapshot's link and the blob it points to): kept, it would be taken for the model on every
    later run."""
    with open(path, "rb") as f:
        head = f.read(512)
    kind, magic = MAGIC.get(os.path.splitext(url.rsplit("/", 1)[-1])[1].lower(), (None, ()))
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html", b"<head")):
        what = "a web page"
    elif magic and not head.startswith(magic):
        what = f"a file that is not {kind} (it begins {head[:8]!r})"
    else:
        return
    path.resolve().unlink()
    path.unlink(missing_ok=True)
    raise HubError(f"{url}: the server sent {what}, not the model file; nothing kept (a proxy or login page? "
                   f"HF_ENDPOINT or MMS_FILES_ENDPOINT set to a wrong mirror?)")


def _transfer(url: str, partial: Path, expected_size: int | None, progress: bool) -> None:
    import urllib.error
    import urllib.request

    from mms import __version__

    have = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": f"mms/{__version__}", "Accept-Encoding": "identity"}
    validator_file = _validator_file(partial)
    if have:
        headers["Range"] = f"bytes={have}-"
        if validator_file.exists():  # the rest of the same file, else (changed on the server) all of the new one
            headers["If-Range"] = validator_file.read_text()
    try:
        response = _url_opener().open(urllib.request.Request(url, headers=headers), timeout=CONNECT_TIMEOUT)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send from there: the file changed; start again
            partial.unlink()
            return _transfer(url, partial, expected_size, progress)
        raise HTTPStatusError(url, e.code, e.reason) from None
    except urllib.error.URLError as e:  # raised before a request went out: no such host, nothing listening
        raise UnreachableError(f"{url}: download failed (cannot connect: {_first_line(e.reason)}); run the same "
                               f"command again to retry (without network: --offline or HF_HUB_OFFLINE=1 uses "
                               f"only the cache)") from None
    with response:
        start = have if response.status == 206 else 0  # a server that ignores Range sends the whole file
        if not start:
            etag = response.headers.get("ETag") or ""  # (a weak ETag, W/"...", cannot be an If-Range)
            validator = etag if etag.startswith('"') else response.headers.get("Last-Modified")
            validator_file.unlink(missing_ok=True)
            if validator:
                validator_file.write_text(validator)
        length = response.headers.get("Content-Length")
        total = int(length) + start if length and length.isdigit() else None
        content_range = response.headers.get("Content-Range", "")
        if response.status == 206 and content_range.rpartition("/")[2].isdigit():
            total = int(content_range.rpartition("/")[2])
        if expected_size is not None and total is not None and total != expected_size:
            partial.unlink(missing_ok=True)
            raise HubError(f"{url}: the server has {total} bytes, {expected_size} were expected; nothing kept")
        with open(partial, "ab" if start else "wb") as f, \
                progress_bar_class()(total=total, initial=start, desc=url.rsplit("/", 1)[-1], disable=not progress or None) as bar:
            while chunk := response.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    size = partial.stat().st_size
    want = expected_size if expected_size is not None else total
    if want is not None and size > want:
        partial.unlink()
        raise HubError(f"{url}: received {size} bytes, more than the {want} expected; nothing kept, run again")
    if want is not None and size < want:
        raise ConnectionError(f"received {size} of {want} bytes")  # the connection ended early: retried


@functools.lru_cache(maxsize=1)
def _url_opener():
    """urllib with CONNECT_TIMEOUT to connect (the timeout open() is given) and READ_TIMEOUT for each read after:
    a host that does not answer is given up quickly, a slow server is waited for."""
    import http.client
    import urllib.request

    class Connection(http.client.HTTPConnection):
        def connect(self):
            super().connect()
            self.sock.settimeout(READ_TIMEOUT)

    class HTTPSConnection(Connection, http.client.HTTPSConnection):
        pass

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(HTTPSConnection, req, context=self._context)

    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)


def forget(path: Path) -> None:
    """Delete a cached original file (and the folder unpacked from it), to fetch it again (--force)."""
    import shutil

    if path.name.endswith(".tar.gz"):
        shutil.rmtree(path.with_name(path.name[: -len(".tar.gz")]), ignore_errors=True)
    for stale in (path, path.with_name(path.name + ".incomplete"), path.with_name(path.name + ".incomplete.etag")):
        stale.unlink(missing_ok=True)


def _unpacked(archive: Path) -> Path | None:
    folder = archive.with_name(archive.name[: -len(".tar.gz")])
    if not folder.is_dir():
        return None
    inner = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return inner[0] if len(inner) == 1 and inner[0].is_dir() else folder


def unpack(archive: Path) -> Path:
    """Unpack `x.tar.gz` into the folder `x` beside it (atomically: a half-unpacked folder never has that name);
    the folder, or its single top-level folder."""
    import shutil
    import tarfile
    import tempfile

    found = _unpacked(archive)
    if found is not None:
        return found
    folder = archive.with_name(archive.name[: -len(".tar.gz")])
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".unpacking", dir=archive.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(work, filter="data")  # no absolute paths, links out of the folder or devices
        os.replace(work, folder)
    except (tarfile.TarError, OSError, EOFError) as e:
        shutil.rmtree(work, ignore_errors=True)
        raise HubError(f"{archive}: cannot unpack ({_first_line(e)}); delete it and fetch again") from None
    return _unpacked(archive)


# ---------------------------------------------------------------------------------------------------------
# progress, licence, cache inspection


@functools.lru_cache(maxsize=1)
def progress_bar_class():
    import tqdm

    class Bar(tqdm.tqdm):
        """A byte progress bar on stderr for every download (off with HF_HUB_DISABLE_PROGRESS_BARS=1)."""

        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            if kwargs.get("desc"):  # huggingface_hub passes the (shortened) URL: the file name says enough
                kwargs["desc"] = kwargs["desc"].rsplit("/", 1)[-1]
            kwargs.setdefault("file", sys.stderr)
            kwargs.setdefault("unit", "B")
            kwargs.setdefault("unit_scale", True)
            kwargs.setdefault("unit_divisor", 1024)
            kwargs.setdefault("dynamic_ncols", True)
            if kwargs.get("disable") is None:
                kwargs["disable"] = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").upper() in ("1", "ON", "YES",
                                                                                                  "TRUE")
            super().__init__(*args, **kwargs)

    return Bar


_licence_notice_printed = False


def show_licence_notice() -> None:
    """The weights' licence, before the first download into this cache (marked there as shown once printed)."""
    global _licence_notice_printed
    marker = url_cache() / ".licence-notice-shown"
    if _licence_notice_printed or marker.exists():
        return
    name, url = licence()
    print(f"mms: the MMS model weights are published by Meta under {name} (non-commercial use only): {url} "
          f"(this notice is shown once)", file=sys.stderr)
    _licence_notice_printed = True
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # (a read-only cache: shown again next time)
        pass


def damaged_cache_hint(message: str) -> str:
    """For an error that names a file in the model cache first (`PATH: not a readable ...`): how to fetch it
    again, since a damaged download stays in the cache and fails every run the same way. "" for other errors."""
    path = Path(message.split(": ", 1)[0]).expanduser()
    if not path.is_absolute():
        return ""
    for root, first in ((hub_cache(), "models--"), (url_cache(), "")):
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if len(parts) < 2 or not parts[0].startswith(first):
            return ""
        # models--facebook--mms-1b-all/... -> facebook/mms-1b-all; mms/<name>[/<lang>]/file -> <name>[-<lang>]
        name = parts[0][len(first):].replace("--", "/") if first else "-".join(parts[:-1][:2])
        # the options that fetch this very file again: an adapter's language (Hub), the original files' source
        if first:
            adapter = re.fullmatch(r"adapter\.(.+)\.(?:safetensors|bin)", path.name)
            options = f" --lang {adapter.group(1)}" if adapter else ""
        else:
            options = " --source url"
        return f" ({path.name} is in the model cache; if its download was damaged, fetch it again: " \
               f"mms models download {name}{options} --force)"
    return ""


def cached_paths(info: ModelInfo) -> list[Path]:
    """Cached copies of a (not per-language) model: Hub snapshot, original files; complete ones only."""
    paths = []
    if info.hf and not info.per_language:
        snapshot = hf_snapshot(info)
        if snapshot is not None:
            paths.append(snapshot)
    if info.url and not info.per_language:
        path = url_path(info)
        if path is not None:
            paths.append(path)
    return paths


def cached_languages(info: ModelInfo) -> list[str]:
    """Per-language models: the languages whose model is cached. Adapter models: the adapters cached."""
    if info.per_language:
        found = set()
        prefix = "models--" + (info.hf or "").split("{")[0].replace("/", "--")
        if info.hf and hub_cache().is_dir():
            for folder in hub_cache().glob(prefix + "*"):
                lang = folder.name[len(prefix):]
                if hf_snapshot(info, [lang], info.repo(lang)) is not None:
                    found.add(lang)
        if url_cache().joinpath(info.name).is_dir():
            found |= {p.name for p in url_cache().joinpath(info.name).iterdir()
                      if url_path(info, [p.name]) is not None}
        return sorted(found)
    if info.adapter:
        snapshot = hf_snapshot(info)
        if snapshot is not None:

            return sorted(adapter_languages(snapshot))
    return []
