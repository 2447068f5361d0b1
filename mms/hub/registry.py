"""The published models by name, as mms/configs/models.yaml lists them, and the demo model shipped in the package."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from mms.hub.errors import HubError

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
DEMO = "demo"  # the small model shipped inside the package (scripts/make_demo_models.py): no download
DEMO_TASKS = ("asr", "lid", "align", "tts")  # the tasks it serves (tts: when its voice is shipped)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    task: str
    description: str = ""
    hf: str | None = None  # repo id; "{lang}" in it: one repo per language
    files: tuple[str, ...] = ()  # "a|b": first the repo has; "x?": optional
    adapter: str | bool | None = None  # set: per-language adapters; their file names: mms.checkpoints.hf_layout
    weights: str | None = None
    url: tuple[str, ...] = ()
    source: str = "hf"
    format: dict = field(default_factory=dict)
    languages: int | None = None
    langs: str | None = None  # shipped list name (configs/langs/<langs>.txt)
    params: float | None = None
    per_language: bool = False
    lang: str | None = None  # per-language models named with their language: mms-tts-amh -> "amh"
    licence: str | None = None  # the weights' licence where it is not the registry's (Omnilingual ASR: Apache-2.0)
    any_language: bool = False  # no language list: any language, from a word list (the zero-shot model)

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
    """task -> name of the model a command uses without --model (tts: the voice family, mms-tts-<lang>)."""
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


def near_miss(reference: str) -> str:
    """"did you mean 'mms-1b-all'? " for a near miss of a published name (or the demo), else ""."""
    import difflib

    close = difflib.get_close_matches(reference, [DEMO, *registry()], n=1, cutoff=0.8) if "/" not in reference else []
    return f"did you mean '{close[0]}'? " if close else ""


def unknown_model(reference: str) -> str:
    """The message for a name that is no model."""
    return f"unknown model '{reference}' ({near_miss(reference)}see: mms models list; or a Hugging Face repo id or " \
           f"a local path)"


def looks_like_path(reference: str) -> bool:
    """A reference written as a local path (./x, ~/x, /x), or `models/x` where `models` is a local folder: a
    path with a typo when it does not exist, not a Hub repo id to ask for."""
    return reference.startswith((".", "~", "/")) or (
        "/" in reference and Path(reference.split("/")[0]).expanduser().is_dir())


def _looks_like_repo_id(reference: str) -> bool:
    owner, slash, name = reference.partition("/")
    return bool(slash and owner and name and "/" not in name and not looks_like_path(reference)
                and not reference.endswith((".pt", ".pth", ".bin", ".safetensors")))


def fetch_command(info: ModelInfo, langs=(), source: str | None = None) -> str:
    """The command that fetches this model (for messages)."""
    lang = info.lang
    name = f"{info.name}-{lang}" if lang else info.name
    command = f"mms models download {name}"
    if langs and not lang and (info.adapter or info.per_language):  # (only these are fetched per language)
        command += f" --lang {','.join(langs)}"
    if info.name not in registry() and not lang:
        command += f" --task {info.task}"
    if source and source != info.source:
        command += f" --source {source}"
    return command


def demo_model(task: str) -> Path:
    """The shipped demo model's directory for `task`: ASR (and alignment) at configs/demo, LID at configs/demo/lid,
    the English voice at configs/demo-tts (apart: the ASR model is rebuilt as a whole)."""
    path = Path(str(resources.files("mms").joinpath("configs", "demo")))
    if task == "lid":
        path = path / "lid"
    elif task == "tts":
        path = path.with_name("demo-tts")
    if task not in DEMO_TASKS or not (path / "config.json").exists():
        raise HubError(f"demo: no shipped demo model for {task} in {path} (build it with "
                       f"scripts/make_demo_models.py)")
    return path


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""
