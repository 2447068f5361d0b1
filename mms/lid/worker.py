"""The LID worker of corpus runs (mms.engines): the same object in the local engine and in each Ray actor."""

from __future__ import annotations

from typing import Iterator

from mms.lid.identifier import LID
from mms.manifest import Item
from mms.options import LIDOptions


class Worker:
    """settings: model, dict_path, device, dtype, langs (candidates or None), names, options (LIDOptions)."""

    def __init__(self, settings: dict):
        self.lid = LID.load(settings.get("model"), device=settings.get("device", "auto"),
                            dtype=settings.get("dtype", "auto"), dict_path=settings.get("dict_path"),
                            options=LIDOptions(**settings.get("options", {})))
        self.langs, self.names = settings.get("langs"), settings.get("names", False)
        self.lid.candidates(self.langs)  # unknown --langs codes fail here, before any output is written

    @property
    def precision(self):
        """The dtype the model runs in (what --dtype auto chose here); recorded in run.json."""
        return self.lid.runner.dtype

    def describe(self) -> str:
        lid, ckpt = self.lid, self.lid.checkpoint
        activation = ckpt.config.classifier_activation
        return (f"{ckpt.format} model {ckpt.path}, {len(lid.labels)} languages, "
                f"{'head with ' + activation if activation else 'plain head'}, device {lid.runner.device}, "
                f"dtype {str(lid.runner.dtype).replace('torch.', '')}")

    def run(self, rows: list[dict]) -> Iterator[dict]:
        results = self.lid.identify_iter([Item(row["audio"], error=row.get("error")) for row in rows],
                                         langs=self.langs, names=self.names)
        for row, result in zip(rows, results):
            yield {**result.to_dict(), "index": row["index"]}

    def close(self) -> None:
        pass
