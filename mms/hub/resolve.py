"""Model references -> local paths: a local file or directory, the shipped `demo`, a published name (`mms-1b-all`,
`mms-tts-amh`) or a Hugging Face repo id (`facebook/mms-1b-all`); no reference: the registry's default for the
task. A published model is fetched with only the files the run needs, after its languages were checked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mms.checkpoints.hf_layout import adapter_filenames, adapter_languages
from mms.hub import languages as catalogue
from mms.hub.download import (cached_file, cached_languages, download_url, forget, has_adapters, hf_file, hf_files,
                              hf_snapshot, hub_cache, is_offline, original_url, show_licence_notice, unpack, url_folder,
                              url_path)
from mms.hub.errors import HubError, HTTPStatusError, NotCachedError, RepositoryMissingError
from mms.hub.registry import (DEMO, LOCAL_FORMS, SOURCES, USABLE_FOR, ModelInfo, default_model, demo_model,
                              fetch_command, find_model, near_miss, registry)


def resolve_model(reference: str | Path | None = None, task: str = "asr", lang: str | list[str] | None = None, *,
                  offline: bool | None = None, source: str | None = None, refresh: bool = False,
                  vocabulary_only: bool = False) -> Path:
    """A local path for `reference`: itself when it exists; else the cached (or now fetched) files of a published
    name or Hugging Face repo id. None: the registry's default model for `task` (for tts the voice family
    mms-tts: the voice of `lang`). `lang`: the language(s) the run needs (for adapter models only those adapters
    are fetched; for per-language models, the voice). `source`: "hf" or "url" (original files); default per
    model. `refresh`: ask the Hub for a newer revision even when the files are cached. `vocabulary_only`: a Hugging
    Face model's small files only (vocab.json holds every language's vocabulary), not its weights or adapters."""
    if reference is None:
        reference = default_model(task)
    path = Path(reference).expanduser()
    name = str(reference)
    # a local path wins, except a folder that merely shares a model's name and holds no model (`mkdir demo`)
    if path.exists() and not (path.is_dir() and (name == DEMO or name in registry()) and not _holds_model(path)):
        return path
    if name == DEMO:
        return demo_model(task)
    info = find_model(name, task)  # (None for `models/tiny-mmz` beside a folder `models`: a mistyped path)
    if info is None:
        from mms.checkpoints import CheckpointError

        raise CheckpointError(f"{reference}: no such model file or directory, published model name "
                              f"({near_miss(name)}see: mms models list) or Hugging Face repo id (for {task}: "
                              f"{LOCAL_FORMS.get(task, LOCAL_FORMS['asr'])})")
    if info.task not in USABLE_FOR.get(task, (task,)):
        raise HubError(f"{info.name} is a {info.task} model, not a {task} model (default for {task}: "
                       f"{default_model(task)}; see: mms models list --task {task})")
    return fetch(info, lang, offline=offline, source=source, refresh=refresh, vocabulary_only=vocabulary_only)


def _holds_model(folder: Path) -> bool:
    """Whether a folder holds files of some model format (config.json, weights, a checkpoint)."""
    return any(p.name == "config.json" or p.suffix in (".pt", ".pth", ".safetensors", ".bin") for p in folder.iterdir())


def fetch(info: ModelInfo, lang=None, *, offline: bool | None = None, source: str | None = None,
          refresh: bool = False, vocabulary_only: bool = False, force: bool = False) -> Path:
    """The local path of a registry model with the files for `lang` (see resolve_model). `force`: fetch every file
    again, cached or not (a damaged download)."""
    langs = _languages(info, lang)
    if force and is_offline(offline):
        raise HubError("--force fetches the files again: it needs the network (offline mode is on)")
    if source is None and info.source == "hf" and info.url and not (force or refresh or vocabulary_only):
        # by name, with no source asked for: the original files fetched earlier (--source url) count as cached
        original = url_path(info, langs)
        if original is not None and hf_snapshot(info, langs) is None:
            return original
    source = source or info.source
    if source not in SOURCES:
        raise HubError(f"unknown source '{source}' (choose: {', '.join(SOURCES)})")
    if source == "hf" and not info.hf:
        raise HubError(f"{info.name} is not on the Hugging Face Hub (use --source url)")
    if source == "url" and not info.url:
        raise HubError(f"{info.name} has no original download (use --source hf)")
    if langs and info.adapter:  # before any download: the known list (cached files or shipped list)
        catalogue.check_languages(info, langs, catalogue.known_languages(info))
    if source == "url":  # the original files: the vocabulary is inside the checkpoint
        return _fetch_url_model(info, langs, is_offline(offline), force)
    if vocabulary_only:  # (mms lexicon): a few kB instead of the weights' GB
        snapshot = _fetch_hf_model(replace(info, weights=None, adapter=None), [], is_offline(offline), refresh)
        _check_model_languages(info, snapshot, langs)
        return snapshot
    return _fetch_hf_model(info, langs, is_offline(offline), refresh, force)


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


def _check_model_languages(info: ModelInfo, snapshot: Path | None, langs: list[str]) -> None:
    """The model's own list (vocab.json) is the authority: a language it lacks is named before the weights
    are fetched."""
    if snapshot is not None and info.adapter and langs:
        catalogue.check_languages(info, langs, catalogue.languages_at(snapshot))


def _fetch_hf_model(info: ModelInfo, langs: list[str], offline: bool, refresh: bool, force: bool = False) -> Path:
    repo = info.repo(langs[0] if info.per_language else None)
    # (offline, --refresh cannot ask the Hub: the cache is the answer)
    cached = None if (refresh and not offline) or force else hf_snapshot(info, langs, repo)
    if cached is not None:
        _check_model_languages(info, cached, langs)
        return cached
    if offline:
        missing = [names[0] for names, optional, _ in hf_files(info, langs)
                   if not optional and cached_file(repo, names) is None]
        # (the vocabulary alone, for mms lexicon: not the download of the whole model, GBs for a few kB)
        hint = ("run the command once online: it fetches only those files, a few kB" if info.weights is None
                else f"fetch with: {fetch_command(info, langs, 'hf')}")
        raise NotCachedError(f"{info.name}: {', '.join(missing)} not in the cache ({hub_cache()}) and offline mode "
                             f"is on; {hint}")
    # adapters fetched before, from the commit a --refresh may move on from
    kept = cached_languages(info) if (refresh or force) and info.adapter and not info.per_language else []
    revision, snapshot, checked = "main", None, False
    for names, optional, lang in hf_files(info, langs):
        if snapshot is not None and lang is not None and not checked:
            _check_model_languages(info, snapshot, langs)  # before the adapters and the big weights
            checked = True
        if lang is not None and snapshot is not None and not has_adapters(snapshot):
            continue  # a single-language model (flat vocab.json): --lang is only recorded
        try:
            path = hf_file(repo, names, revision, refresh, force)
        except RepositoryMissingError as e:
            if info.per_language:  # one repo per language: no repo, no such language
                raise catalogue.missing_language(info, langs[0], str(e)) from None
            raise
        if path:
            snapshot = Path(path).parent
            revision = snapshot.name  # every further file from the commit of the first (cached or fetched)
        elif lang is not None:
            raise catalogue.missing_language(info, lang, f"{repo} has no {' or '.join(names)}")
        elif not optional:
            raise HubError(f"{repo} has no {' or '.join(names)}")
    for lang in kept:  # a new commit's snapshot holds only what this run fetched: the others come along (a blob
        # that did not change is linked, not downloaded), or an offline run would find them gone
        if lang not in langs and snapshot is not None and lang not in adapter_languages(snapshot):
            try:
                hf_file(repo, list(adapter_filenames(lang)), revision, refresh=True)
            except HubError:  # (an adapter the new commit lacks, or a failure: the run's own files are there)
                continue
    return snapshot


def _fetch_url_model(info: ModelInfo, langs: list[str], offline: bool, force: bool = False) -> Path:
    lang = langs[0] if info.per_language else None
    cached = None if force else url_path(info, langs)
    if cached is not None:
        return cached
    paths = []
    for url in info.url:
        url = url.format(lang=lang)
        path = url_folder(info, lang) / url.rsplit("/", 1)[-1]
        if force:
            forget(path)
        if not path.exists():
            if offline:
                raise NotCachedError(f"{info.name}: {path.name} not in the cache ({path.parent}) and offline mode is "
                                     f"on; fetch with: {fetch_command(info, langs, 'url')}")
            if not info.licence:  # the CC-BY-NC notice is for the MMS weights, not Omnilingual ASR's (Apache-2.0)
                show_licence_notice()
            try:
                download_url(original_url(url), path)
            except HTTPStatusError as e:
                if info.per_language and e.status == 404:
                    raise catalogue.missing_language(info, lang, f"{url} does not exist") from None
                raise
        paths.append(path)
    if paths[0].name.endswith(".tar.gz"):
        return unpack(paths[0])
    return paths[0]
