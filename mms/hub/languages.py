"""Which languages the published models have, and what the codes are called: what the hub needs to stop a run
that asks a model for a language it lacks, with a message naming the language, the close codes the model has
and the models that have it. mms.langs builds the searchable catalogue on top of this.

MMS codes are ISO 639-3 codes, some with a suffix naming a script or a dialect (azj-script_latin,
cak-dialect_central). Names come from pycountry (ISO 639-3), scripts from its ISO 15924 table. A model's list is
read from its own files once it is downloaded (vocab.json, config.json id2label, dict.lang.txt), else taken from
those shipped in mms/configs/langs/ (from the published model cards).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mms.checkpoints import hf_layout
from mms.hub.download import cached_languages, cached_paths
from mms.hub.errors import MissingLanguageError
from mms.hub.registry import ModelInfo, registry

# suffix words whose ISO 15924 name is not simply the word
SCRIPT_WORDS = {"simplified": "Hans", "traditional": "Hant", "syllabics": "Cans"}
SCRIPT_LABELS = {"Hans": "Simplified Han", "Hant": "Traditional Han"}


@dataclass(frozen=True)
class Code:
    code: str  # as given, e.g. "azj-script_latin"
    iso: str  # the ISO 639 part, e.g. "azj"
    script: str | None = None  # the suffix word, e.g. "latin" (or ISO 15924, "Latn", in eng_Latn)
    dialect: str | None = None  # e.g. "central" (or a variety, "gherd" in lld_Latn_gherd)


OMNI_CODE = re.compile(r"([a-z]{2,3})_([A-Z][a-z]{3})(?:_(\w+))?")  # eng_Latn, lld_Latn_gherd (Omnilingual ASR)


def parse(code: str) -> Code:
    """Split an MMS code into its ISO 639 part and its script or dialect suffix; Omnilingual ASR's codes
    (ISO 639-3 _ ISO 15924 script [_ variety]) too."""
    omni = OMNI_CODE.fullmatch(code.strip())
    if omni:
        iso, alpha_4, variety = omni.groups()
        return Code(code.strip(), iso, alpha_4, variety)
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


def check_code(lang: str, option: str = "--lang") -> None:
    """An MMSError unless `lang` is an ISO 639 code (a script or dialect suffix allowed), for the options no model's
    language list checks: normalisation and uroman rules, a language-free model's records (a typo picked no rules,
    silently)."""
    if to_iso639_3(lang) is None:
        from mms.errors import MMSError

        raise MMSError(f"{option} {lang}: not an ISO 639 language code (e.g. eng, fra; `mms langs NAME` finds one)")


@functools.lru_cache(maxsize=None)
def script_code(code: str) -> str | None:
    """ISO 15924 code of a -script_ suffix: azj-script_latin -> "Latn", cmn-script_simplified -> "Hans"."""
    import pycountry

    word = parse(code).script
    if word is None:
        return None
    if re.fullmatch(r"[A-Z][a-z]{3}", word):  # already ISO 15924 (Omnilingual ASR's codes)
        return word if pycountry.scripts.get(alpha_4=word) else None
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
        variety = f", {parts.dialect}" if parts.dialect else ""  # lld_Latn_gherd
        return f"{language.name} ({script_name(code)} script{variety})"
    if parts.dialect:
        return f"{language.name} ({parts.dialect} dialect)"
    return language.name


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

            languages = hf_layout.vocab_languages(hf_layout.read_vocab(path)) or sorted(
                hf_layout.adapter_languages(path))
            if languages:
                return languages
            config = path / "config.json"
            if config.is_file():
                values = json.loads(config.read_text(encoding="utf-8"))
                if values.get("model_type") == "vits":  # a TTS voice: one language, in its tokenizer config
                    tokenizer = path / "tokenizer_config.json"
                    voice = json.loads(tokenizer.read_text(encoding="utf-8")) if tokenizer.is_file() else {}
                    return [voice["language"]] if isinstance(voice.get("language"), str) else None
                id2label = values.get("id2label") or {}
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


def known_languages(info: ModelInfo) -> list[str] | None:
    """Languages of a registry model: cached files first, then the shipped list; None when neither says."""
    if info.per_language:  # one model per language: a voice named with its language speaks that one
        return [info.lang] if info.lang else None
    for path in cached_paths(info):
        languages = languages_at(path)
        if languages:
            return languages
    shipped = shipped_languages(info.langs) if info.langs else None
    return list(shipped) if shipped is not None else None


def catalogue(task: str | None = None) -> tuple[dict[str, list[str]], list[str]]:
    """code -> registry models that have it (those whose list is known), and the models whose list is not."""
    by_code: dict[str, list[str]] = {}
    unknown = []
    for info in registry().values():
        if task and info.task != task:
            continue
        if info.any_language:  # (not "known once downloaded": it has no list)
            continue
        languages = known_languages(info)
        if languages is None and info.per_language:  # the family's list is not shipped: its downloaded voices
            languages = cached_languages(info) or None
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


# ---------------------------------------------------------------------------------------------------------
# a language a model lacks


def close_codes(code: str, languages) -> list[str]:
    """Codes of `languages` near `code`: its script/dialect variants, the same ISO language, similar spellings."""
    base = to_iso639_3(code) or parse(code).iso
    same = [c for c in languages if parse(c).iso == base and c != code]
    similar = difflib.get_close_matches(code, list(languages), n=5, cutoff=0.75)
    return list(dict.fromkeys(same + similar))[:8]


def models_that_have(code: str, task: str | None, model: str) -> str:
    """"; models that have it: ..." naming (at most 8) registry models of `task` other than `model` that have
    `code`, or a script/dialect variant of its language (named with it: "omniasr-ctc-300m (aze_Latn)"); "" if none."""
    base = to_iso639_3(code) or parse(code).iso
    found: dict[str, str] = {}
    for candidate, models in sorted(catalogue(task)[0].items(), key=lambda item: item[0] != code):
        if candidate == code or parse(candidate).iso == base:
            for name in models:
                if name != model:
                    found.setdefault(name, candidate)
    others = [name if variant == code else f"{name} ({variant})" for name, variant in found.items()]
    return f"; models that have it: {', '.join(others[:8])}" if others else ""


def unknown_language_message(model: str, lang: str, languages, task: str | None = None) -> str:
    """One line: the model lacks `lang`; near codes it has; the models of the same task that do have it."""
    name = language_name(lang)
    described = f"'{lang}'" + (f" ({name})" if name else " (not an ISO 639-3 code)")
    message = f"{model} has no language {described} ({len(languages)} language codes)"
    close = close_codes(lang, languages)
    if close:
        message += f"; close: {', '.join(close)}"
    return message + models_that_have(lang, task, model) + f" (see: mms langs --search {parse(lang).iso})"


def check_languages(info: ModelInfo, langs: list[str], known: list[str] | None) -> None:
    """MissingLanguageError for the first of `langs` that the model's list `known` lacks (None: not known)."""
    for lang in langs:
        if known is not None and lang not in known:
            raise MissingLanguageError(unknown_language_message(info.name, lang, known, info.task))


def missing_language(info: ModelInfo, lang: str, why: str) -> MissingLanguageError:
    """The error for a per-language model or file that does not exist for `lang`; `why` says what is missing."""
    name = language_name(lang)
    message = f"{info.name} has no language '{lang}'" + (f" ({name})" if name else "") + f": {why}"
    return MissingLanguageError(message + models_that_have(lang, info.task, info.name))
