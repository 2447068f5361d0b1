"""Language codes of the MMS models: names, scripts, search, and which model has which language.

MMS codes are ISO 639-3 codes, some with a suffix naming a script or a dialect the model was trained on:

    fra                      French
    azj-script_latin         North Azerbaijani in Latin script (azj-script_cyrillic: in Cyrillic)
    cmn-script_simplified    Mandarin Chinese in simplified Han characters
    cak-dialect_central      Kaqchikel, central dialect

Names come from pycountry (the ISO 639-3 tables, maintained upstream), scripts from its ISO 15924 table. The
per-model language lists are the ones shipped in mms/configs/langs/ (from the published model cards) or, better,
read from a model's own files once it is downloaded (vocab.json, config.json id2label, dict.lang.txt).
"""

from __future__ import annotations

import difflib
import functools
import json
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# suffix words whose ISO 15924 name is not simply the word
SCRIPT_WORDS = {"simplified": "Hans", "traditional": "Hant", "syllabics": "Cans"}
SCRIPT_LABELS = {"Hans": "Simplified Han", "Hant": "Traditional Han"}


@dataclass(frozen=True)
class Code:
    code: str  # as given, e.g. "azj-script_latin"
    iso: str  # the ISO 639 part, e.g. "azj"
    script: str | None = None  # the suffix word, e.g. "latin"
    dialect: str | None = None  # e.g. "central"


def parse(code: str) -> Code:
    """Split an MMS code into its ISO 639 part and its script or dialect suffix."""
    iso, _, suffix = code.strip().partition("-")
    kind, _, value = suffix.partition("_")
    return Code(code.strip(), iso.lower(), value.lower() if kind == "script" and value else None,
                value.lower() if kind == "dialect" and value else None)


@functools.lru_cache(maxsize=None)
def iso_language(code: str):
    """The pycountry record of a code's ISO 639 part (3 letters, or 2 for ISO 639-1), or None."""
    import pycountry

    iso = parse(code).iso
    if len(iso) == 3:
        return pycountry.languages.get(alpha_3=iso)
    if len(iso) == 2:
        return pycountry.languages.get(alpha_2=iso)
    return None


def to_iso639_3(code: str) -> str | None:
    """"fr" -> "fra", "fra" -> "fra", "azj-script_latin" -> "azj"; None when ISO 639 does not know it."""
    language = iso_language(code)
    return None if language is None else language.alpha_3


@functools.lru_cache(maxsize=None)
def script_code(code: str) -> str | None:
    """ISO 15924 code of a -script_ suffix: azj-script_latin -> "Latn", cmn-script_simplified -> "Hans"."""
    import pycountry

    word = parse(code).script
    if word is None:
        return None
    if word in SCRIPT_WORDS:
        return SCRIPT_WORDS[word]
    # "Latin" itself before "Latin (Fraktur variant)"; "Devanagari (Nagari)" by its first word
    candidates = [s for s in pycountry.scripts if s.name.split(" (")[0].lower() == word]
    exact = [s for s in candidates if s.name.lower() == word]
    found = exact or candidates
    return found[0].alpha_4 if found else None


def script_name(code: str) -> str | None:
    """"Latin" for azj-script_latin, "Simplified Han" for cmn-script_simplified, None without a script suffix."""
    import pycountry

    alpha_4 = script_code(code)
    if alpha_4 is None:
        word = parse(code).script
        return word.capitalize() if word else None
    return SCRIPT_LABELS.get(alpha_4) or pycountry.scripts.get(alpha_4=alpha_4).name.split(" (")[0]


def language_name(code: str) -> str | None:
    """English name of an MMS language code, e.g. "North Azerbaijani (Latin script)", "Kaqchikel (central
    dialect)", "French"; None for a code ISO 639 does not know."""
    language = iso_language(code)
    if language is None:
        return None
    parts = parse(code)
    if parts.script:
        return f"{language.name} ({script_name(code)} script)"
    if parts.dialect:
        return f"{language.name} ({parts.dialect} dialect)"
    return language.name


def _names(code: str) -> list[str]:
    language = iso_language(code)
    if language is None:
        return []
    return [getattr(language, key) for key in ("name", "common_name", "inverted_name") if hasattr(language, key)]


def _fold(text: str) -> str:
    """Lower case, accents and punctuation removed: "K'iche'" -> "kiche"."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if c.isalnum() or c == " ")


# ---------------------------------------------------------------------------------------------------------
# per-model lists


def read_list(path: Path) -> list[str]:
    """One code per line (first field), '#' comments and blank lines ignored."""
    codes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            codes.append(line.split()[0])
    return codes


@functools.lru_cache(maxsize=None)
def shipped_languages(list_name: str) -> tuple[str, ...] | None:
    """A language list shipped with the package (mms/configs/langs/<list_name>.txt), or None."""
    resource = resources.files("mms").joinpath(f"configs/langs/{list_name}.txt")
    if not resource.is_file():
        return None
    with resources.as_file(resource) as path:
        return tuple(read_list(path))


def languages_at(path: str | Path) -> list[str] | None:
    """The languages a local model holds, read from its own files: a Hugging Face directory's nested vocab.json
    or adapter files (ASR) or config.json id2label (LID); a fairseq LID checkpoint's dict.lang.txt beside it.
    None when the files do not say (a fairseq ASR .pt keeps its languages inside the pickle)."""
    path = Path(path)
    try:
        if path.is_dir():
            vocab = path / "vocab.json"
            if vocab.is_file():
                data = json.loads(vocab.read_text(encoding="utf-8"))
                if data and all(isinstance(v, dict) for v in data.values()):
                    return sorted(data)
            adapters = {p.name.split(".")[1] for p in path.glob("adapter.*.*") if p.suffix in (".safetensors", ".bin")}
            if adapters:
                return sorted(adapters)
            config = path / "config.json"
            if config.is_file():
                id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label") or {}
                labels = [id2label[k] for k in sorted(id2label, key=int)]
                if labels and not all(label.startswith("LABEL_") for label in labels):
                    return labels
            return None
        dict_file = path.with_name("dict.lang.txt")
        if path.suffix == ".pt" and dict_file.is_file():
            return read_list(dict_file)
    except (OSError, ValueError):
        return None
    return None


def model_languages(model: str | Path) -> list[str] | None:
    """Languages of a model: a local path's own files; for a published name, its cached download's files
    (authoritative), else the list shipped with the package; None when neither is known."""
    from mms import hub

    if Path(model).expanduser().exists():
        return languages_at(Path(model).expanduser())
    info = hub.find_model(str(model))
    if info is None:
        raise ValueError(f"unknown model '{model}' (see: mms models list)")
    return known_languages(info)


def known_languages(info) -> list[str] | None:
    """Languages of a registry model (mms.hub.ModelInfo): cached files first, then the shipped list."""
    from mms import hub

    if info.per_language:
        return None
    for path in hub.cached_paths(info):
        languages = languages_at(path)
        if languages:
            return languages
    shipped = shipped_languages(info.langs) if info.langs else None
    return list(shipped) if shipped is not None else None


def catalogue(task: str | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """code -> registry models that have it (those whose list is known), and the models whose list is not."""
    from mms import hub

    by_code: dict[str, list[str]] = {}
    unknown = []
    for info in hub.registry().values():
        if task and info.task != task:
            continue
        languages = known_languages(info)
        if languages is None:
            if not info.per_language and info.task in ("asr", "lid"):
                unknown.append(info.name)
            continue
        for code in languages:
            by_code.setdefault(code, []).append(info.name)
    return by_code, unknown


def models_with(code: str, task: str | None = None) -> list[str]:
    """Registry models (with a known list) that have this exact code."""
    return catalogue(task)[0].get(code, [])


def close_codes(code: str, languages) -> list[str]:
    """Codes of `languages` near `code`: its script/dialect variants, the same ISO language, similar spellings."""
    base = to_iso639_3(code) or parse(code).iso
    same = [c for c in languages if parse(c).iso == base and c != code]
    similar = difflib.get_close_matches(code, list(languages), n=5, cutoff=0.75)
    return list(dict.fromkeys(same + similar))[:8]


def unknown_language_message(model: str, lang: str, languages) -> str:
    """One line: the model lacks `lang`; near codes it has; the models that do have it."""
    name = language_name(lang)
    described = f"'{lang}'" + (f" ({name})" if name else " (not an ISO 639-3 code)")
    message = f"{model} has no language {described} ({len(languages)} languages)"
    close = close_codes(lang, languages)
    if close:
        message += f"; close: {', '.join(close)}"
    others = [m for m in models_with(lang) if m != model]
    if others:
        message += f"; models that have it: {', '.join(others)}"
    return message + f" (see: mms langs --search {parse(lang).iso})"


# ---------------------------------------------------------------------------------------------------------
# search


@dataclass
class Language:
    code: str
    name: str | None
    script: str | None
    models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "script": self.script, "models": self.models}


def describe(code: str, models: list[str] | None = None) -> Language:
    return Language(code, language_name(code), script_name(code), list(models or []))


def matches(code: str, query: str) -> int:
    """0 when `code` does not match `query`; else a rank (lower is better): 1 the code itself, 2 its ISO
    language (also through a 2-letter code), 3 a name starting with the query, 4 a word of a name starting
    with it. Names are compared without case, accents or punctuation ("kiche" finds K'iche')."""
    q = query.strip().lower()
    if not q:
        return 4
    if code.lower() == q:
        return 1
    parts = parse(code)
    if parts.iso == q:
        return 2
    if len(q) in (2, 3) and q.isalpha() and to_iso639_3(q) is not None and to_iso639_3(q) == to_iso639_3(code):
        return 2
    fq = _fold(q)
    names = [_fold(n) for n in _names(code)] + [_fold(language_name(code) or "")]
    if parts.dialect:
        names.append(parts.dialect)
    if any(n.startswith(fq) for n in names):
        return 3
    if any(f" {fq}" in f" {n}" for n in names):  # at the start of a word: "swahili" in "Congo Swahili"
        return 4
    return 0


def search(query: str = "", task: str | None = None, model: str | Path | None = None,
           languages=None) -> list[Language]:
    """Languages matching `query` (a code, an ISO 639-1/3 code, or part of an English name), best first.

    Searched: `languages` if given, else the languages of `model`, else those of every registry model (for
    `task`) whose list is known. Each result names the registry models that have it."""
    by_code, _ = catalogue(task)
    if languages is None and model is not None:
        languages = model_languages(model)
        if languages is None:
            raise ValueError(f"the language list of {model} is not known until it is downloaded "
                             f"(mms models download {model})")
    pool = list(languages) if languages is not None else list(by_code)
    ranked = sorted((rank, code) for code in pool if (rank := matches(code, query)))
    if ranked and ranked[0][0] <= 2:  # the query is a code: not also every name containing those letters
        ranked = [(rank, code) for rank, code in ranked if rank <= 2]
    return [describe(code, by_code.get(code)) for _, code in ranked]
