"""The ASR worker of corpus runs (mms.engines): the same object in the local engine and in each Ray actor."""

from __future__ import annotations

import sys
from typing import Iterator

from mms.asr.transcriber import ASR
from mms.errors import MMSError
from mms.manifest import Item
from mms.options import ASROptions


class Worker:
    """settings: model, lang, dict_path, tokenizer, adapter_dir, lid_model, device, dtype, input_langs, timestamps,
    options (ASROptions fields), beam (BeamOptions fields or None)."""

    def __init__(self, settings: dict):
        beam, self._folder = None, None
        if settings.get("zeroshot"):
            beam = self._zeroshot(settings)
        elif settings.get("beam"):
            from mms.decoding.beam import BeamOptions

            beam = BeamOptions(**settings["beam"])
        self.asr = ASR.load(settings.get("model"), lang=settings.get("lang"), device=settings.get("device", "auto"),
                            dtype=settings.get("dtype", "auto"), dict_path=settings.get("dict_path"),
                            input_langs=settings.get("input_langs", ()), tokenizer=settings.get("tokenizer"),
                            options=ASROptions(**settings.get("options", {})), beam=beam,
                            adapter_dir=settings.get("adapter_dir"), lid_model=settings.get("lid_model"),
                            rerank=self._rerank(settings))
        if self.asr.vocab is not None and self.asr.vocab.romanized and beam is None:
            print("mms asr: note: this zero-shot model writes romanised (uroman) characters, not the language's own "
                  "spelling: give --words WORDS.txt for words of a word list", file=sys.stderr)
        if settings.get("beam") and not settings.get("zeroshot") and self.asr.vocab is not None:
            from mms.decoding.beam import lm_mismatch

            mismatch = lm_mismatch(self.asr.vocab, beam)
            if mismatch:
                print(f"mms asr: warning: {mismatch}", file=sys.stderr)
        self.timestamps = settings.get("timestamps")
        lang = settings.get("lang")
        if (lang is None and self.asr.lang is not None and not settings.get("input_langs")
                and not self.asr.checkpoint.language_free
                and len(self.asr.languages) > 1):  # transformers' behaviour, but said: a wrong guess is silent
            print(f"mms asr: note: no --lang: every input is transcribed as '{self.asr.lang}', the model's default "
                  "language; give --lang CODE, or --lang auto to identify each input's language first",
                  file=sys.stderr)
        if self.asr.checkpoint.language_free and lang and lang != "auto":
            from mms.hub.languages import check_code

            check_code(lang)  # recorded with every result: a typo would be too
            if not settings.get("zeroshot"):  # (with --words, --lang picks the word list's normalisation rules)
                print(f"mms asr: note: this model transcribes every language with one output layer: --lang {lang} "
                      f"is recorded with each result but does not change it", file=sys.stderr)

    @staticmethod
    def _rerank(settings: dict):
        """--rerank: (N, weights, the zero-shot ASR when the uasr feature counts)."""
        r = settings.get("rerank")
        if not r:
            return None
        from mms.asr.rerank import RerankWeights

        weights = RerankWeights(dict(r["weights"]), plugins=dict(r.get("plugins") or {}))
        zeroshot = None
        if weights.weights.get("uasr"):
            zeroshot = ASR.load(r["zeroshot_model"], device=settings.get("device", "auto"),
                                dtype=settings.get("dtype", "auto"))
            if not (zeroshot.checkpoint.language_free and zeroshot.vocab is not None and zeroshot.vocab.romanized):
                zeroshot.close()
                raise MMSError(f"--zeroshot-model {r['zeroshot_model']}: not a uroman zero-shot model (one output layer "
                               f"of uroman letters for every language, as mms-zeroshot-300m); the uasr feature "
                               f"scores candidates in uroman letters")
        return r["n"], weights, zeroshot

    @staticmethod
    def _check_romanized(settings: dict) -> None:
        """--words spells the list in uroman letters: only a model that writes them can use it (another model
        failed on the spelled lexicon, naming a temporary file)."""
        from mms.checkpoints import CheckpointError, load_vocabulary
        from mms.hub import resolve_model

        model = settings.get("model")
        try:
            vocab = load_vocabulary(resolve_model(model, task="asr", lang=[]), None, settings.get("dict_path"))
        except (CheckpointError, OSError):  # (said again, better, when the model loads)
            return
        if not vocab.romanized:
            raise MMSError(f"--words needs the MMS zero-shot model, which writes uroman letters (mms-zeroshot-300m); "
                           f"{model or 'the default model'} does not: for its own letters give --lexicon (made with "
                           f"`mms lexicon --model ...`), with or without --lm")

    def _zeroshot(self, settings: dict):
        """--words: the uroman lexicon (and unigram LM) in a folder of this worker, and the reference presets for
        the knobs the user left unset."""
        import tempfile

        from mms.asr import zeroshot
        from mms.decoding.beam import BeamOptions

        z = settings["zeroshot"]
        self._check_romanized(settings)
        beam = dict(settings.get("beam") or {})
        self._folder = tempfile.TemporaryDirectory(prefix="mms-zeroshot-")
        prepared = zeroshot.prepare(z["words"], self._folder.name, settings.get("lang"), z.get("uroman_lang"),
                                    beam.get("lm"), z.get("auto_lm"))
        print(f"mms asr: {prepared.summary}", file=sys.stderr)
        beam.update(lm=prepared.lm, lexicon=prepared.lexicon, unit_lm=False)
        for knob, value in zeroshot.preset(prepared.lm is not None).items():
            if beam.get(knob) is None:
                beam[knob] = value
        if prepared.lm is not None and beam["lm_weight"] == 0:
            source = "automatic unigram LM" if prepared.auto_lm else f"LM {prepared.lm}"
            print(f"mms asr: warning: LM weight 0 (a preset tuned without an LM?): the {source} has no effect; give "
                  "--lm-weight, or a preset tuned with the LM", file=sys.stderr)
        return BeamOptions(**beam)

    @property
    def precision(self):
        """The dtype the model runs in (what --dtype auto chose here); recorded in run.json."""
        return self.asr.dtype

    def describe(self) -> str:
        asr, ckpt = self.asr, self.asr.checkpoint
        languages = "one output layer for every language" if ckpt.language_free else f"{len(asr.languages)} languages"
        return (f"{ckpt.format} model {ckpt.path}, {languages}, lang {asr.lang}, device {asr.device}, dtype "
                f"{str(asr.dtype).replace('torch.', '')}")

    def run(self, rows: list[dict]) -> Iterator[dict]:
        # --lang auto identifies every input, a manifest's `lang` column too (the reference of an LID evaluation)
        items = [Item(row["audio"], None if self.asr.auto else row.get("lang"), row.get("text"), row.get("error"))
                 for row in rows]
        for row, result in zip(rows, self.asr.transcribe_iter(items, timestamps=self.timestamps)):
            yield {**result.to_dict(), "index": row["index"]}

    def close(self) -> None:
        self.asr.close()
        if self._folder is not None:
            self._folder.cleanup()
