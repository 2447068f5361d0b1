"""Language codes of the MMS models: names, scripts, search, and which model has which language.

MMS codes are ISO 639-3 codes, some with a suffix naming a script or a dialect the model was trained on:

    fra                      French
    azj-script_latin         North Azerbaijani in Latin script (azj-script_cyrillic: in Cyrillic)
    cmn-script_simplified    Mandarin Chinese in simplified Han characters
    cak-dialect_central      Kaqchikel, central dialect

Names come from pycountry (the ISO 639-3 tables, maintained upstream), scripts from its ISO 15924 table. The
per-model language lists are the ones shipped in mms/configs/langs/ (from the published model cards) or, better,
read from a model's own files once it is downloaded (vocab.json, config.json id2label, dict.lang.txt).

Codes, names and the per-model lists are in mms.hub.languages (the hub names languages in its errors and must not
import this module); this module adds the search over them and re-exports them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from mms.hub import DEMO, HubError, NotCachedError, demo_model, find_model
from mms.hub.registry import looks_like_path, unknown_model
# codes, names and per-model lists live with the model hub, which names them in its errors; re-exported here
from mms.hub.languages import (SCRIPT_LABELS, SCRIPT_WORDS, Code, catalogue, close_codes, iso_language,  # noqa: F401
                               known_languages, language_name, languages_at, models_with, parse, read_list,
                               script_code, script_name, shipped_languages, to_iso639_3, unknown_language_message)


def _names(code: str) -> list[str]:
    language = iso_language(code)
    if language is None:
        return []
    return [getattr(language, key) for key in ("name", "common_name", "inverted_name") if hasattr(language, key)]


def _fold(text: str) -> str:
    """Lower case, accents and punctuation removed: "K'iche'" -> "kiche"."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if c.isalnum() or c == " ")


def model_languages(model: str | Path, task: str | None = None) -> list[str] | None:
    """Languages of a model: a local path's own files; for a published name, its cached download's files
    (authoritative), else the list shipped with the package; None when neither is known. `task` picks which of
    the demo models (the ASR model and its LID head know four languages, the TTS voice one)."""
    if Path(model).expanduser().exists():
        return languages_at(Path(model).expanduser())
    if str(model) == DEMO:
        return languages_at(demo_model(task or "asr"))
    if looks_like_path(str(model)):
        raise HubError(f"{model}: no such model file or directory")
    info = find_model(str(model))
    if info is None:
        raise HubError(unknown_model(str(model)))
    return known_languages(info)


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
    `task`) whose list is known. Each result names the registry models that have it (`model` first, when given)."""
    by_code, _ = catalogue(task)
    if languages is None and model is not None:
        languages = model_languages(model, task)
        if languages is None and Path(model).expanduser().exists():
            raise HubError(f"{model}: its files do not list its languages" + (
                " (a fairseq .pt keeps its adapters' languages inside the checkpoint: `mms asr --model FILE --lang "
                "xx` names them; a zero-shot or Omnilingual ASR file has one output layer for every language)"
                if str(model).endswith(".pt") else ""))
        info = find_model(str(model)) if languages is None else None
        if info is not None and info.any_language:
            raise HubError(f"{model} has no language list: it transcribes any language from a word list "
                           f"(`mms asr --model {model} --words WORDS.txt`; docs/zeroshot.md)")
        if languages is None:
            raise NotCachedError(f"the language list of {model} is not known until it is downloaded "
                           f"(mms models download {model})")
    pool = list(languages) if languages is not None else list(by_code)
    ranked = sorted((rank, code) for code in pool if (rank := matches(code, query)))
    if ranked and ranked[0][0] <= 2:  # the query is a code: not also every name containing those letters
        ranked = [(rank, code) for rank, code in ranked if rank <= 2]
    if model is None:
        return [describe(code, by_code.get(code)) for _, code in ranked]
    # the model asked about has each of its languages, first; then the registry models that also have it
    return [describe(code, [str(model)] + [m for m in by_code.get(code) or [] if m != str(model)])
            for _, code in ranked]
