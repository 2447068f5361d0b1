"""The ASR worker of corpus runs (mms.engines): the same object in the local engine and in each Ray actor."""

from __future__ import annotations

import sys
from typing import Iterator

from mms.asr.transcriber import ASR
from mms.manifest import Item
from mms.options import ASROptions


class Worker:
    """settings: model, lang, dict_path, tokenizer, adapter_dir, lid_model, device, dtype, input_langs, timestamps,
    options (ASROptions fields), beam (BeamOptions fields or None)."""

    def __init__(self, settings: dict):
        beam = None
        if settings.get("beam"):
            from mms.decoding.beam import BeamOptions

            beam = BeamOptions(**settings["beam"])
        self.asr = ASR.load(settings.get("model"), lang=settings.get("lang"), device=settings.get("device", "auto"),
                            dtype=settings.get("dtype", "auto"), dict_path=settings.get("dict_path"),
                            input_langs=settings.get("input_langs", ()), tokenizer=settings.get("tokenizer"),
                            options=ASROptions(**settings.get("options", {})), beam=beam,
                            adapter_dir=settings.get("adapter_dir"), lid_model=settings.get("lid_model"))
        self.timestamps = settings.get("timestamps")
        lang = settings.get("lang")
        if self.asr.checkpoint.language_free and lang and lang != "auto":
            print(f"mms asr: note: this model transcribes every language with one output layer: --lang {lang} is "
                  f"recorded with each result but does not change it", file=sys.stderr)

    def describe(self) -> str:
        asr, ckpt = self.asr, self.asr.checkpoint
        languages = "one output layer for every language" if ckpt.language_free else f"{len(asr.languages)} languages"
        return (f"{ckpt.format} model {ckpt.path}, {languages}, lang {asr.lang}, device {asr.device}, dtype "
                f"{str(asr.dtype).replace('torch.', '')}")

    def run(self, rows: list[dict]) -> Iterator[dict]:
        items = [Item(row["audio"], row.get("lang"), row.get("text")) for row in rows]
        for row, result in zip(rows, self.asr.transcribe_iter(items, timestamps=self.timestamps)):
            yield {**result.to_dict(), "index": row["index"]}

    def close(self) -> None:
        self.asr.close()
