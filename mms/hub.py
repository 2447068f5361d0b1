"""Model references -> local paths: a local file or directory, a published name (`mms-1b-all`, `mms-tts-amh`,
see configs/models.yaml) or a Hugging Face repo id (`facebook/mms-1b-all`).

Published models are fetched once and cached:
* from the Hugging Face Hub through huggingface_hub, in its cache (HF_HOME / HF_HUB_CACHE; HF_ENDPOINT, HF_TOKEN
  honoured), file by file, only what the run needs: for mms-1b-all the configuration, the vocabulary, the
  adapter of each language asked for and the base weights, never the other 1,161 adapters;
* or, with source "url", the original fairseq / torchaudio files from dl.fbaipublicfiles.com, into
  $HF_HOME/mms/<name>/, resumable, size-checked.
Files already in the cache are used without touching the network. With HF_HUB_OFFLINE=1 (or offline=True) nothing
is fetched: a missing file is an error naming the `mms models download` command that fetches it. A download
that stops half way leaves only a `.incomplete` file, never a file a later run would take as complete.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

TASKS = ("asr", "lid", "tts", "align", "pretrained")
SOURCES = ("hf", "url")
# a model of another task that a task can use: align runs on any CTC model (ASR adapters included)
USABLE_FOR = {"align": ("align", "asr")}
LOCAL_FORMS = {  # what a local model of each task looks like, for "not found" messages
    "asr": "a Hugging Face MMS directory or a fairseq .pt file",
    "lid": "a Hugging Face mms-lid-* directory or a fairseq LID .pt file with dict.lang.txt",
    "tts": "an MMS-TTS voice directory (G_*.pth, config.json, vocab.txt) or a Hugging Face mms-tts-* directory",
    "align": "the MMS alignment model (.pt with its dictionary) or an MMS ASR model",
}
RETRY_WAITS = (1, 2, 4)  # seconds before each new try of a URL download that broke off


class HubError(ValueError):
    """A model that cannot be found, fetched or used; the message says which and what to do."""


class NotCachedError(HubError):
    """Offline, and the model (or one of its files) is not in the cache."""


class MissingLanguageError(HubError):
    """The model has no such language."""


class RepositoryMissingError(HubError):
    """No such repository on the Hub (or a private one)."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    task: str
    description: str = ""
    hf: str | None = None  # repo id; "{lang}" in it: one repo per language
    files: tuple[str, ...] = ()  # "a|b": first the repo has; "x?": optional
    adapter: str | None = None  # per-language file spec with "{lang}"
    weights: str | None = None
    url: tuple[str, ...] = ()
    source: str = "hf"
    format: dict = field(default_factory=dict)
    languages: int | None = None
    langs: str | None = None  # shipped list name (configs/langs/<langs>.txt)
    params: float | None = None
    per_language: bool = False
    lang: str | None = None  # per-language models named with their language: mms-tts-amh -> "amh"

    def repo(self, lang: str | None = None) -> str | None:
        return self.hf.format(lang=lang or self.lang) if self.hf and self.per_language else self.hf

    @property
    def size_text(self) -> str:
        return "" if not self.params else human_size(4 * self.params)


@functools.lru_cache(maxsize=1)
def _registry_data() -> dict:
    import yaml

    return yaml.safe_load(resources.files("mms").joinpath("configs/models.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def registry() -> dict[str, ModelInfo]:
    """The published models by name, in configs/models.yaml order (do not modify the dict)."""
    models = {}
    for name, entry in _registry_data()["models"].items():
        entry = dict(entry)
        for key in ("files", "url"):
            entry[key] = tuple(entry.get(key) or ())
        models[name] = ModelInfo(name=name, **entry)
    return models


def defaults() -> dict[str, str]:
    """task -> name of the model a command uses without --model."""
    return dict(_registry_data()["defaults"])


def default_model(task: str) -> str:
    return defaults()[task]


def licence() -> tuple[str, str]:
    data = _registry_data()
    return data["licence"], data["licence_url"]


def find_model(reference: str, task: str | None = None) -> ModelInfo | None:
    """A registry entry for a name (`mms-1b-all`), a per-language name (`mms-tts-amh`: entry mms-tts with
    `lang` "amh") or a known repo id (`facebook/mms-1b-all`); any other `owner/name` becomes an ad-hoc
    entry with the file layout of `task`'s default model. None when `reference` is none of these."""
    models = registry()
    if reference in models:
        return models[reference]
    for info in models.values():
        if info.per_language:
            for prefix in (info.name + "-", (info.hf or "").split("{")[0]):
                if prefix and reference.startswith(prefix) and len(reference) > len(prefix):
                    return replace(info, lang=reference[len(prefix):])
        elif info.hf and reference == info.hf:
            return info
    if _looks_like_repo_id(reference):
        template = models[default_model(task or "asr")]
        return replace(template, name=reference, hf=reference, url=(), source="hf", languages=None, langs=None,
                       per_language=False, params=None, format={"hf": "huggingface"},
                       description=f"Hugging Face repo {reference}")
    return None


def _looks_like_repo_id(reference: str) -> bool:
    owner, slash, name = reference.partition("/")
    return bool(slash and owner and name and "/" not in name and not reference.startswith(".")
                and not reference.endswith((".pt", ".pth", ".bin", ".safetensors")))


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


ORIGINAL_HOST = "https://dl.fbaipublicfiles.com"


def original_url(url: str) -> str:
    """A registry URL, on the mirror MMS_FILES_ENDPOINT when one is set (like HF_ENDPOINT for the Hub)."""
    mirror = os.environ.get("MMS_FILES_ENDPOINT", "").rstrip("/")
    return mirror + url[len(ORIGINAL_HOST):] if mirror and url.startswith(ORIGINAL_HOST) else url


def is_offline(offline: bool | None = None) -> bool:
    if offline is not None:
        return offline
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in ("1", "ON", "YES", "TRUE")


def fetch_command(info: ModelInfo, langs=(), source: str | None = None) -> str:
    """The command that fetches this model (for messages)."""
    lang = info.lang
    name = f"{info.name}-{lang}" if lang else info.name
    command = f"mms models download {name}"
    if langs and not lang:
        command += f" --lang {','.join(langs)}"
    if info.name not in registry() and not lang:
        command += f" --task {info.task}"
    if source and source != info.source:
        command += f" --source {source}"
    return command


# ---------------------------------------------------------------------------------------------------------
# resolving


def resolve_model(reference: str | Path | None = None, task: str = "asr", lang: str | list[str] | None = None, *,
                  offline: bool | None = None, source: str | None = None, refresh: bool = False) -> Path:
    """A local path for `reference`: itself when it exists; else the cached (or now fetched) files of a published
    name or Hugging Face repo id. None: the registry's default model for `task`. `lang`: the language(s) the run
    needs (for adapter models only those adapters are fetched; for per-language models, the voice). `source`:
    "hf" or "url" (original files); default per model. `refresh`: ask the Hub for a newer revision even when
    the files are cached."""
    if reference is None:
        reference = default_model(task)
    path = Path(reference).expanduser()
    if path.exists():
        return path
    if str(reference) == DEMO:
        return demo_model(task)
    info = find_model(str(reference), task)
    if info is None:
        from mms.checkpoints import CheckpointError

        raise CheckpointError(f"{reference}: no such model file or directory, published model name (see: mms models "
                              f"list) or Hugging Face repo id (for {task}: {LOCAL_FORMS.get(task, LOCAL_FORMS['asr'])})")
    if info.task not in USABLE_FOR.get(task, (task,)):
        raise HubError(f"{info.name} is a {info.task} model, not a {task} model (default for {task}: "
                       f"{default_model(task)}; see: mms models list --task {task})")
    return fetch(info, lang, offline=offline, source=source, refresh=refresh)


DEMO = "demo"  # the small model shipped inside the package (scripts/make_demo_models.py): no download


def demo_model(task: str) -> Path:
    """The shipped demo model's directory for `task`: ASR (and alignment) at configs/demo, LID at configs/demo/lid."""
    path = Path(str(resources.files("mms").joinpath("configs", "demo")))
    if task == "lid":
        path = path / "lid"
    if task not in ("asr", "align", "lid") or not (path / "config.json").exists():
        raise HubError(f"demo: no shipped demo model for {task} in {path} (build it with "
                       f"scripts/make_demo_models.py)")
    return path


def _languages(info: ModelInfo, lang) -> list[str]:
    langs = lang.split(",") if isinstance(lang, str) else list(lang or [])
    # "auto": the language is chosen later, by language identification; its adapter is fetched then
    langs = list(dict.fromkeys(x for x in langs if x and x != "auto"))
    if info.per_language:
        if info.lang:
            return [info.lang]
        if len(langs) != 1:
            raise HubError(f"{info.name} has one model per language: give exactly one language "
                           f"(e.g. --lang eng, or --model {info.name}-eng)")
    return langs


def fetch(info: ModelInfo, lang=None, *, offline: bool | None = None, source: str | None = None,
          refresh: bool = False) -> Path:
    """The local path of a registry model with the files for `lang` (see resolve_model)."""
    langs = _languages(info, lang)
    source = source or info.source
    if source not in SOURCES:
        raise HubError(f"unknown source '{source}' (choose: {', '.join(SOURCES)})")
    if source == "hf" and not info.hf:
        raise HubError(f"{info.name} is not on the Hugging Face Hub (use --source url)")
    if source == "url" and not info.url:
        raise HubError(f"{info.name} has no original download (use --source hf)")
    _check_language_list(info, langs)
    if source == "url":
        return _fetch_url_model(info, langs, is_offline(offline))
    return _fetch_hf_model(info, langs, is_offline(offline), refresh)


def _check_language_list(info: ModelInfo, langs: list[str]) -> None:
    """Before any download: a language the model's known list (cached files or shipped list) lacks. Only
    for adapter models (for the others the language does not change what is fetched)."""
    if not langs or not info.adapter:
        return
    from mms import langs as catalogue

    known = catalogue.known_languages(info)
    for lang in langs:
        if known is not None and lang not in known:
            raise MissingLanguageError(catalogue.unknown_language_message(info.name, lang, known))


# ---------------------------------------------------------------------------------------------------------
# Hugging Face Hub


def _alternatives(spec: str, lang: str | None = None) -> tuple[list[str], bool]:
    optional = spec.endswith("?")
    names = spec.rstrip("?").format(lang=lang).split("|")
    return names, optional


def _cached_file(repo: str, spec: str, revision: str, lang: str | None = None) -> str | None:
    """The cached path of the first alternative of `spec` that is cached; "" when every alternative is known
    (from the cache) not to exist; None when not cached."""
    from huggingface_hub import try_to_load_from_cache

    names, _ = _alternatives(spec, lang)
    absent = 0
    for name in names:
        found = try_to_load_from_cache(repo, name, cache_dir=hub_cache(), revision=revision)
        if isinstance(found, str):
            return found
        absent += found is not None  # _CACHED_NO_EXIST
    return "" if absent == len(names) else None


def _hf_specs(info: ModelInfo, langs: list[str]) -> list[tuple[str, str | None]]:
    """(file spec, language) in fetching order: small files, then adapters, then the weights."""
    specs = [(spec, None) for spec in info.files]
    if info.adapter:
        specs += [(info.adapter, lang) for lang in langs]
    if info.weights:
        specs.append((info.weights, None))
    return specs


def hf_snapshot(info: ModelInfo, langs=(), repo: str | None = None) -> Path | None:
    """The cached snapshot directory holding every file the model needs for `langs`, or None."""
    repo = repo or info.repo(langs[0] if langs else None)
    if not repo or "{" in repo:
        return None
    snapshot = None
    for spec, lang in _hf_specs(info, list(langs)):
        if lang is not None and snapshot is not None and not _has_adapters(snapshot):
            continue
        found = _cached_file(repo, spec, "main", lang)
        if not found and not spec.endswith("?"):
            return None  # a required file not cached, or known not to exist
        if found:
            snapshot = Path(found).parent
    return snapshot


def _fetch_hf_model(info: ModelInfo, langs: list[str], offline: bool, refresh: bool) -> Path:
    repo = info.repo(langs[0] if info.per_language else None)
    cached = None if refresh else hf_snapshot(info, langs, repo)
    if cached is not None:
        _check_model_languages(info, cached, langs)
        return cached
    if offline:
        missing = []
        for spec, lang in _hf_specs(info, langs):
            if not spec.endswith("?") and _cached_file(repo, spec, "main", lang) is None:
                missing.append(_alternatives(spec, lang)[0][0])
        raise NotCachedError(f"{info.name}: {', '.join(missing)} not in the cache ({hub_cache()}) and offline mode "
                             f"is on; fetch with: {fetch_command(info, langs)}")
    revision, snapshot, checked = "main", None, False
    for spec, lang in _hf_specs(info, langs):
        if snapshot is not None and spec not in info.files and not checked:
            _check_model_languages(info, snapshot, langs)  # before the adapters and the big weights
            checked = True
        if lang is not None and snapshot is not None and not _has_adapters(snapshot):
            continue  # a single-language model (flat vocab.json): --lang is only recorded
        try:
            path = _hf_file(info, repo, spec, revision, lang, refresh)
        except RepositoryMissingError as e:
            if info.per_language:  # one repo per language: no repo, no such language
                raise _missing_language(info, langs[0], str(e)) from None
            raise
        if path:
            snapshot = Path(path).parent
            revision = snapshot.name  # every further file from the commit of the first (cached or fetched)
    return snapshot


def _hf_file(info: ModelInfo, repo: str, spec: str, revision: str, lang: str | None, refresh: bool) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError

    if not refresh:
        found = _cached_file(repo, spec, revision, lang)
        if found:
            return found
    names, optional = _alternatives(spec, lang)
    for name in names:
        if not refresh and _cached_file(repo, name, revision) == "":
            continue  # known (from an earlier run) not to be in the repo
        show_licence_notice()
        try:
            path = hf_hub_download(repo, name, revision=revision, cache_dir=hub_cache(), endpoint=endpoint(),
                                   tqdm_class=progress_bar_class())
            licence_notice_seen()
            return path
        except RemoteEntryNotFoundError:  # a 404 for this file (not "cannot reach the Hub")
            continue
        except RepositoryNotFoundError:
            raise RepositoryMissingError(f"no repository {repo} on {endpoint()} (or a private one: set HF_TOKEN)") \
                from None
        except Exception as e:  # noqa: BLE001 - HTTP, protocol and file errors from huggingface_hub's stack
            raise HubError(f"{repo}/{name}: download failed ({_first_line(e)}); run the same command again "
                           f"to retry (without network: HF_HUB_OFFLINE=1 uses only the cache)") from None
    if optional:
        return None
    if lang is not None:
        raise _missing_language(info, lang, f"{repo} has no {' or '.join(names)}")
    raise HubError(f"{repo} has no {' or '.join(names)}")


@functools.lru_cache(maxsize=16)  # a snapshot folder is one commit: its vocab.json never changes
def _has_adapters(snapshot: Path) -> bool:
    """A nested vocab.json ({lang: {token: id}}) means per-language adapters; a flat one, one language."""
    import json

    vocab = snapshot / "vocab.json"
    try:
        data = json.loads(vocab.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return bool(data) and all(isinstance(v, dict) for v in data.values())


def _check_model_languages(info: ModelInfo, snapshot: Path | None, langs: list[str]) -> None:
    """The model's own list (vocab.json) is the authority: a language it lacks is named before the weights
    are fetched."""
    if snapshot is None or not info.adapter or not langs:
        return
    from mms import langs as catalogue

    known = catalogue.languages_at(snapshot)
    for lang in langs:
        if known is not None and lang not in known:
            raise MissingLanguageError(catalogue.unknown_language_message(info.name, lang, known))


def _missing_language(info: ModelInfo, lang: str, why: str) -> MissingLanguageError:
    from mms import langs as catalogue

    name = catalogue.language_name(lang)
    others = [m for m in catalogue.models_with(lang) if m != info.name]
    message = f"{info.name} has no language '{lang}'" + (f" ({name})" if name else "") + f": {why}"
    if others:
        message += f"; models that have it: {', '.join(others)}"
    return MissingLanguageError(message)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


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


def _fetch_url_model(info: ModelInfo, langs: list[str], offline: bool) -> Path:
    lang = langs[0] if info.per_language else None
    cached = url_path(info, langs)
    if cached is not None:
        return cached
    paths = []
    for url in info.url:
        url = url.format(lang=lang)
        path = url_folder(info, lang) / url.rsplit("/", 1)[-1]
        if not path.exists():
            if offline:
                raise NotCachedError(f"{info.name}: {path.name} not in the cache ({path.parent}) and offline mode is "
                                     f"on; fetch with: {fetch_command(info, langs, 'url')}")
            show_licence_notice()
            try:
                download_url(original_url(url), path)
                licence_notice_seen()
            except HTTPStatusError as e:
                if info.per_language and e.status == 404:
                    raise _missing_language(info, lang, f"{url} does not exist") from None
                raise
        paths.append(path)
    if paths[0].name.endswith(".tar.gz"):
        return unpack(paths[0])
    return paths[0]


def download_url(url: str, dest: str | Path, expected_size: int | None = None, retries: int = len(RETRY_WAITS),
                 progress: bool = True) -> Path:
    """Fetch `url` into `dest`, resuming a `.incomplete` file left by an earlier try (HTTP Range), checking the
    size against the server's Content-Length (and `expected_size` when given); `dest` appears only complete."""
    import http.client

    from huggingface_hub.utils import WeakFileLock

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".incomplete")
    with WeakFileLock(str(dest) + ".lock"):
        if dest.exists():
            return dest
        for attempt in range(retries + 1):
            try:
                _transfer(url, partial, expected_size, progress)
                break
            except (OSError, http.client.HTTPException, _ShortRead) as e:
                kept = partial.stat().st_size if partial.exists() else 0
                if attempt == retries:
                    raise HubError(f"{url}: download broke off ({_first_line(e)}); {human_size(kept)} kept in "
                                   f"{partial}: run the same command again to resume") from None
                time.sleep(RETRY_WAITS[min(attempt, len(RETRY_WAITS) - 1)])
        os.replace(partial, dest)
    return dest


class _ShortRead(Exception):
    pass


class HTTPStatusError(HubError):
    def __init__(self, url: str, status: int, reason: str):
        super().__init__(f"{url}: HTTP {status} {reason}")
        self.status = status


def _transfer(url: str, partial: Path, expected_size: int | None, progress: bool) -> None:
    import urllib.error
    import urllib.request

    from mms import __version__

    have = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": f"mms/{__version__}", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send from there: the file changed; start again
            partial.unlink()
            return _transfer(url, partial, expected_size, progress)
        raise HTTPStatusError(url, e.code, e.reason) from None
    with response:
        start = have if response.status == 206 else 0  # a server that ignores Range sends the whole file
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
        raise _ShortRead(f"received {size} of {want} bytes")


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
    """The weights' licence, before downloading, until a download into this cache has succeeded."""
    global _licence_notice_printed
    if _licence_notice_printed or (url_cache() / ".licence-notice-shown").exists():
        return
    name, url = licence()
    print(f"mms: the MMS model weights are published by Meta under {name} (non-commercial use only): {url} "
          f"(this notice is shown once)", file=sys.stderr)
    _licence_notice_printed = True


def licence_notice_seen() -> None:
    marker = url_cache() / ".licence-notice-shown"
    if _licence_notice_printed and not marker.exists():
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:
            pass


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
            names, _ = _alternatives(info.adapter, "*")
            return sorted({p.name.split(".")[1] for n in names for p in snapshot.glob(n)})
    return []


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""
