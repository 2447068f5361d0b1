"""`mms asr --lang auto`: identify each input's language with an MMS LID model, then transcribe it with the
matching adapter.

LID models label plain ISO 639-3 codes (`cmn`, `srp`, `aze`); ASR adapters may carry a script or dialect
(`cmn-script_simplified`, `srp-script_latin`, `azj-script_latin`). The most probable language that has an
adapter wins; its probability is recorded with the transcript.
"""

from __future__ import annotations

import gc

from mms.manifest import Item

# fairseq examples/mms/lid_rerank's mapping of LID codes to the adapters MMS uses for them
PREFERRED_ADAPTER = {"cmn": "cmn-script_simplified", "srp": "srp-script_latin", "urd": "urd-script_arabic",
                     "uzb": "uzb-script_latin", "yue": "yue-script_traditional", "aze": "azj-script_latin",
                     "kmr": "kmr-script_latin"}


def own_lid_model(asr_model) -> str | None:
    """The LID head that comes with an ASR model, used for `--lang auto` when no --lid-model is given: the demo's,
    or the `lid/` folder `mms train --lid` writes beside a model it trains; None for others (the registry's LID
    model then)."""
    from pathlib import Path

    from mms.hub import DEMO

    if asr_model is None:
        return None
    if str(asr_model) == DEMO:
        return DEMO
    folder = Path(asr_model) / "lid"
    return str(folder) if (folder / "config.json").is_file() else None


def adapter_for(code: str, languages: list[str] | set[str]) -> str | None:
    """The ASR adapter for a LID label: the same code, a preferred script variant, or the first variant."""
    if code in languages:
        return code
    preferred = PREFERRED_ADAPTER.get(code)
    if preferred in languages:
        return preferred
    variants = sorted(lang for lang in languages if lang.startswith(code + "-"))
    return variants[0] if variants else None


def choose(predictions: list[tuple[str, float]], languages) -> tuple[str, str, float] | None:
    """(adapter, LID label, probability) of the most probable language the ASR model can transcribe; `languages`
    None: a model without per-language adapters (Omnilingual ASR), which transcribes LID's first choice."""
    if languages is None:
        return (predictions[0][0], predictions[0][0], predictions[0][1]) if predictions else None
    for code, probability in predictions:
        adapter = adapter_for(code, languages)
        if adapter is not None:
            return adapter, code, probability
    return None


def identify_languages(items: list[Item], asr_languages: list[str] | None, lid_model, device="auto", dtype="auto",
                       dict_path=None) -> list[tuple[str | None, dict]]:
    """Per item (the adapter to transcribe it with, {"lid_lang", "lang_probability"}) or (None, {"error"}).
    Only that much is kept per input (not LID's full posteriors), and the LID model is released before
    returning."""
    from mms.lid import LID

    lid = LID.load(lid_model, device=device, dtype=dtype, dict_path=dict_path)
    languages, chosen = (None if asr_languages is None else set(asr_languages)), []
    try:
        for item, result in zip(items, lid.identify_iter(items, top_k="all")):
            if result.error:
                chosen.append((None, {"error": result.error}))
                continue
            pick = choose(result.predictions, languages)
            if pick is None:
                chosen.append((None, {"error": f"{result.audio}: language identified as {result.lang} "
                                               f"({result.probability:.2f}), for which the ASR model has no adapter"}))
                continue
            adapter, code, probability = pick
            chosen.append((adapter, {"lid_lang": code, "lang_probability": round(probability, 4)}))
    finally:
        del lid
        gc.collect()
    return chosen


def identify_candidates(items: list[Item], asr_languages: list[str] | None, lid_model, n: int, device="auto",
                        dtype="auto", dict_path=None) -> list:
    """Per item the N most probable languages that have an adapter, as [(adapter, LID label, probability)], or a
    one-line error. A label whose adapter an earlier label already took is skipped. The LID model is released
    before returning."""
    from mms.lid import LID

    lid = LID.load(lid_model, device=device, dtype=dtype, dict_path=dict_path)
    languages, found = (None if asr_languages is None else set(asr_languages)), []
    try:
        for item, result in zip(items, lid.identify_iter(items, top_k="all")):
            if result.error:
                found.append(result.error)
                continue
            picks, taken = [], set()
            for code, probability in result.predictions:
                adapter = code if languages is None else adapter_for(code, languages)
                if adapter is not None and adapter not in taken:
                    picks.append((adapter, code, probability))
                    taken.add(adapter)
                if len(picks) == n:
                    break
            found.append(picks or f"{item.audio}: none of the identified languages has an adapter in the ASR model")
    finally:
        del lid
        gc.collect()
    return found
