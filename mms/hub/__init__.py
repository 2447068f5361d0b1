"""Model references -> local paths: a local file or directory, a published name (`mms-1b-all`, `mms-tts-amh`,
see configs/models.yaml) or a Hugging Face repo id (`facebook/mms-1b-all`).

Published models are fetched once and cached:
* from the Hugging Face Hub through huggingface_hub, in its cache (HF_HOME / HF_HUB_CACHE; HF_ENDPOINT, HF_TOKEN
  honoured), file by file, only what the run needs: for mms-1b-all the configuration, the vocabulary, the
  adapter of each language asked for and the base weights, never the other 1,161 adapters;
* or, with source "url", the original fairseq / torchaudio files from dl.fbaipublicfiles.com, into
  $HF_HOME/mms/<name>/, resumable, size-checked.
Files already in the cache are used without touching the network. With HF_HUB_OFFLINE=1 (or offline=True, or
set_offline()) nothing is fetched: a missing file is an error naming the `mms models download` command that
fetches it. A download that stops half way leaves only a `.incomplete` file, never a file a later run would take
as complete. A host that cannot be reached is an error at once, not after retries.

    registry.py   the published models (configs/models.yaml), task defaults, the shipped demo model
    download.py   files from the Hub and by URL, the cache, offline mode
    resolve.py    a reference (name, repo id, path, none) -> a local path: resolve_model
    languages.py  which model has which language, language names: for the messages of a missing language
    errors.py     HubError and its kinds (all mms.errors.MMSError)

Light to import: huggingface_hub, yaml, pycountry and the like are imported when first needed. The hub never
imports mms.langs (the language catalogue builds on mms.hub.languages).
"""

from __future__ import annotations

from mms.hub.download import (ORIGINAL_HOST, cache_root, cached_languages, cached_paths, download_url, endpoint,
                              hf_snapshot, hub_cache, is_offline, original_url,
                              progress_bar_class, set_offline, show_licence_notice, unpack, url_cache, url_folder,
                              url_path)
from mms.hub.errors import (HTTPStatusError, HubError, MissingLanguageError, NotCachedError, RepositoryMissingError,
                            UnreachableError)
from mms.hub.registry import (DEMO, DEMO_TASKS, LOCAL_FORMS, SOURCES, TASKS, USABLE_FOR, ModelInfo, default_model,
                              defaults, demo_model, fetch_command, find_model, human_size, licence, registry)
from mms.hub.resolve import fetch, resolve_model

__all__ = [
    "DEMO", "DEMO_TASKS", "HTTPStatusError", "HubError", "LOCAL_FORMS", "MissingLanguageError", "ModelInfo",
    "NotCachedError", "ORIGINAL_HOST", "RepositoryMissingError", "SOURCES", "TASKS", "USABLE_FOR",
    "UnreachableError", "cache_root", "cached_languages", "cached_paths", "default_model", "defaults", "demo_model",
    "download_url", "endpoint", "fetch", "fetch_command", "find_model", "hf_snapshot", "hub_cache", "human_size",
    "is_offline", "licence", "original_url", "progress_bar_class", "registry",
    "resolve_model", "set_offline", "show_licence_notice", "unpack", "url_cache", "url_folder", "url_path",
]
