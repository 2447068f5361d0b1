"""Text to speech: the Python API behind `mms tts`.

    from mms.tts import TTS
    tts = TTS.load(lang="eng")                         # the registry's voice mms-tts-eng (fetched once)
    tts = TTS.load("mms-tts/models", lang="amh")       # original layout: models/<lang>/G_100000.pth ...
    wave, sample_rate = tts.synthesize("Expanding the language coverage of speech technology.")
    for speech in tts.synthesize_iter(lines, seed=7):  # options: mms.options.TTSOptions, or its fields
        print(speech.name, speech.duration, speech.error)

How work flows: each input is cut into sentences (script-aware, at most `max_chars` each; with split="none"
the input stays whole, as fairseq's infer.py and transformers' VitsModel take it) and every sentence is turned
into ids as the voice's format does it (mms/text/tts_text.py), numbers first spelled as words of the voice's
language (mms/text/numbers.py; `numbers="as-is"` leaves them to the voice, as both references do); characters
not in the vocabulary are dropped with one warning per input. Sentences of a buffer of inputs are sorted by
length and synthesised in padded batches of at most `batch_tokens` ids (by default one sentence per pass on the
CPU, where padded batches ran slower, and GPU_BATCH_TOKENS on GPUs); each waveform is cut at its true length (the
model zeroes the padding), and an input's sentences are joined with `pause` seconds of silence. Memory is bounded
by the batch and the buffer, not by the length or number of inputs. A failing input becomes a `Speech` with
`error` set; the others carry on.

Noise: sentence j of an input is synthesised with seed `seed + j` (a random seed when none is given), so the
same text and seed give the same speech whatever else is in the batch; a one-sentence input with seed s gives
what transformers' VitsModel gives after `torch.manual_seed(s)`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np
import torch

from mms.batching import failure, in_halves, make_batches, pad
from mms.checkpoints import CheckpointError
from mms.checkpoints.vits_hf import VitsCheckpoint
from mms.checkpoints.vits_voice import find_voice
from mms.device import resolve_device, resolve_dtype
from mms.errors import MMSError
from mms.models.vits import VitsModel
from mms.options import GPU_BATCH_TOKENS, MAX_PAUSE, SAMPLE_RATES, SEED_LIMIT, TTSOptions
from mms.results import Task
from mms.text.numbers import num2words_language
from mms.text.tts_text import Prepared, TextError, split_sentences

__all__ = ["TTS", "Speech", "TextError", "build_model", "load_voice"]

log = logging.getLogger("mms.tts")

SPLITS = ("sentences", "none")
NUMBERS = ("words", "as-is")

# An input of synthesize_iter: a text, or (its line number, the text) to have results named "line N".
Text = Union[str, tuple[int, str]]


@dataclass
class Speech:
    """One input's speech, a mms.results.Result; `path` is set by the writer that saved it."""

    index: int  # 0-based position in the inputs
    text: str
    sample_rate: int
    wave: np.ndarray | None = None  # float32 mono in [-1, 1]
    error: str | None = None  # "<name>: <reason>"
    dropped: list[str] = field(default_factory=list)  # characters not in the vocabulary, once each
    line: int | None = None  # the input's line number, when the caller gave one
    path: str | None = None

    @property
    def name(self) -> str:
        return "text" if self.line is None else f"line {self.line}"

    @property
    def duration(self) -> float | None:
        return None if self.wave is None else round(self.wave.size / self.sample_rate, 3)

    def to_dict(self) -> dict:
        """The record of index.jsonl (`index`: the input's 0-based position, as in every task's records)."""
        return {"index": self.index, "line": self.line, "text": self.text, "path": self.path,
                "duration": self.duration, "error": self.error, "dropped": self.dropped}


# ---------------------------------------------------------------------------------------------------------
# Finding and loading a voice


def load_voice(model: str | Path | None = None, lang: str | None = None) -> VitsCheckpoint:
    """The voice `model` names (see TTS.load); without `model`, the registry's default voice for `lang`."""
    from mms.checkpoints import vits_hf, vits_original
    from mms.hub import DEMO, resolve_model

    if model is None and lang is None:
        raise MMSError("no voice chosen: give --lang (e.g. --lang eng for the voice mms-tts-eng) or --model")
    fmt, directory = find_voice(resolve_model(model, task="tts", lang=lang), lang)
    if fmt == "huggingface":
        try:
            return vits_hf.load(directory, lang)
        except CheckpointError as e:
            if model != DEMO:
                raise
            raise CheckpointError(str(e).replace(str(directory), DEMO)) from None  # as the user named it
    if lang is None and re.fullmatch(r"[a-z]{3}", directory.name):
        lang = directory.name  # the repo's models/<iso>/ layout; infer.py needs it for Romanian
    return vits_original.load(directory, lang)


def build_model(checkpoint: VitsCheckpoint, device: torch.device, dtype: torch.dtype) -> VitsModel:
    """The canonical model with the checkpoint's weights; one-line errors when they do not fit the config."""
    try:
        with torch.device("meta"):
            model = VitsModel(checkpoint.config)
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{checkpoint.path}: unusable VITS configuration ({type(e).__name__}: {e})") from None
    expected, state = model.state_dict(), checkpoint.state_dict
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{checkpoint.path}: weights do not fit a VITS generator: "
                              f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, param in expected.items():
        if state[name].shape != param.shape:
            raise CheckpointError(f"{checkpoint.path}: {name} has shape {tuple(state[name].shape)}, the "
                                  f"configuration implies {tuple(param.shape)}")
    model.load_state_dict(state, strict=True, assign=True)
    model = model.to(device, dtype).eval()
    model.duration_predictor.float()  # 0.4M weights; its spline flows break down in 16-bit floats
    return model


# ---------------------------------------------------------------------------------------------------------
# Synthesis


@dataclass
class _Job:
    index: int
    text: str
    line: int | None
    sentences: list[Prepared] = field(default_factory=list)
    waves: list[np.ndarray | None] = field(default_factory=list)
    seed: int = 0
    error: str | None = None  # the reason, without the input's name
    dropped: list[str] = field(default_factory=list)


class TTS(Task):
    def __init__(self, checkpoint: VitsCheckpoint, device="auto", dtype="auto", options: TTSOptions | None = None):
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        # VITS is small (36M weights) and its spline flows want float32: "auto" keeps float32 on GPUs too
        self.dtype = torch.float32 if dtype == "auto" else resolve_dtype(dtype, self.device)
        self.model = build_model(checkpoint, self.device, self.dtype)
        self.text = checkpoint.text
        self.options = check_options(options or TTSOptions())

    @classmethod
    def load(cls, model: str | Path | None = None, lang: str | None = None, device="auto", dtype="auto",
             options: TTSOptions | None = None) -> "TTS":
        """`model`: a Hugging Face mms-tts-* directory, an original MMS-TTS directory (G_*.pth, config.json,
        vocab.txt), a folder of voices plus `lang`, or a published name (mms.hub: `mms-tts` plus `lang`).
        None: the registry's default voice for `lang` (mms-tts-<lang>)."""
        return cls(load_voice(model, lang), device, dtype, options)

    @property
    def sample_rate(self) -> int:
        return self.checkpoint.config.sampling_rate

    @property
    def lang(self) -> str | None:
        return self.checkpoint.lang

    def describe(self) -> str:
        """One line for -v: the voice, its layout and language, the sample rate, device and dtype."""
        lang = self.lang or "not recorded (the voice's folder does not name it)"
        return (f"{self.checkpoint.format} voice {self.checkpoint.path}, lang {lang}, {self.sample_rate} Hz, "
                f"device {self.device}, dtype {str(self.dtype).replace('torch.', '')}")

    def prepare(self, text: str, options: TTSOptions | None = None) -> tuple[list[Prepared], list[str]]:
        """Sentences of `text` as ids (the whole text as one with options.split "none"), and the characters
        dropped as not in the vocabulary (once each)."""
        options = options or self.options
        if not text or not text.strip():
            raise TextError("empty text")
        # Whole: the outer whitespace goes (a piped text's newline), which changes no id: both references
        # strip the text after dropping unknown characters.
        if options.numbers == "words":
            text = self.text.spell_numbers(text)
        pieces = split_sentences(text, options.max_chars) if options.split == "sentences" else [text.strip()]
        sentences, dropped = [], {}
        for piece in pieces:
            prepared = self.text.prepare(piece)
            dropped.update(dict.fromkeys(prepared.dropped))
            if prepared.text:  # with no letter left, fairseq's ids would still be one blank
                sentences.append(prepared)
        if not sentences:
            error = TextError(f"no character of the text is in the voice's vocabulary (dropped: "
                              f"{_show(list(dropped))})" if dropped else
                              f"nothing to speak: {text.strip()!r} holds no letter (only marks read as word breaks)")
            error.dropped = list(dropped)  # for the input's record, as a spoken input's
            raise error
        return sentences, list(dropped)

    def synthesize(self, text: str, options: TTSOptions | None = None, **overrides) -> tuple[np.ndarray, int]:
        """One text -> (float32 waveform, sample rate). Raises TextError for unusable text."""
        speech = next(self.synthesize_iter([text], options, **overrides))
        if speech.error:
            raise TextError(speech.error)
        return speech.wave, speech.sample_rate

    def synthesize_iter(self, texts: Iterable[Text], options: TTSOptions | None = None,
                        **overrides) -> Iterator[Speech]:
        """One Speech per text, in input order, lazily. A text may be given as (line number, text) to name its
        result "line N". `options` (default: the TTS's own) and `overrides` (its fields: seed=7, split="none",
        speaking_rate, noise_scale, noise_scale_duration, sample_rate, ...) set the synthesis (mms.options)."""
        if isinstance(texts, (str, bytes)):  # (it was read as one text per character)
            raise TypeError(f"texts: give an iterable of texts, e.g. [{texts!r}]; for one text, synthesize(text)")
        options = check_options(replace(options or self.options, **overrides))  # here, not at the first next()
        if options.batch_tokens is None:
            options = replace(options, batch_tokens=1 if self.device.type == "cpu" else GPU_BATCH_TOKENS)
        return self._synthesize(texts, options)

    def _synthesize(self, texts: Iterable[Text], options: TTSOptions) -> Iterator[Speech]:
        buffer, buffered = [], 0
        for index, item in enumerate(texts):
            line, text = item if isinstance(item, tuple) else (None, item)
            job = self._prepare(index, line, text, options)
            buffer.append(job)
            buffered += sum(len(s.ids) for s in job.sentences)
            if buffered >= 8 * options.batch_tokens:
                yield from self._run(buffer, options)
                buffer, buffered = [], 0
        yield from self._run(buffer, options)

    def _prepare(self, index: int, line: int | None, text: str, options: TTSOptions) -> _Job:
        job = _Job(index, text, line)
        try:
            job.sentences, job.dropped = self.prepare(text, options)
        except TextError as e:
            job.error, job.dropped = str(e), getattr(e, "dropped", [])
        except Exception as e:  # noqa: BLE001 - e.g. romanisation failing on one input must not stop the others
            job.error = f"cannot prepare the text ({type(e).__name__}: {e})"
        job.waves = [None] * len(job.sentences)
        job.seed = int(torch.randint(0, 2 ** 62, ())) if options.seed is None else options.seed
        if job.dropped and not job.error:
            log.warning("%s: dropped characters not in the vocabulary of the voice: %s%s",
                        _label(text), _show(job.dropped), self._digits_hint(job.dropped, options))
        return job

    def _digits_hint(self, dropped: list[str], options: TTSOptions) -> str:
        if not any(ch.isdecimal() for ch in dropped):  # (not ² or ¾: never spelled)
            return ""
        if options.numbers == "as-is":
            return " (--numbers words speaks numbers as words)"
        if num2words_language(self.lang) is not None:
            return ""
        return (f" (numbers are spoken as words in the languages num2words knows; not in this voice's "
                f"language, {self.lang or 'which its folder does not name'})")

    def _run(self, jobs: list[_Job], options: TTSOptions) -> Iterator[Speech]:
        items = [(job, j) for job in jobs if not job.error for j in range(len(job.sentences))]
        lengths = [len(job.sentences[j].ids) for job, j in items]
        for batch in make_batches(lengths, options.batch_tokens):
            # out of memory, mostly: the batch again in halves, down to one sentence, which then fails its input
            in_halves([items[i] for i in batch], lambda part: self._run_batch(part, options), _fail)
        for job in jobs:
            yield self._finish(job, options)

    def _run_batch(self, batch: list[tuple[_Job, int]], options: TTSOptions) -> None:
        live = [(job, j) for job, j in batch if not job.error]
        if not live:
            return
        waves = self.forward([job.sentences[j].ids for job, j in live], [job.seed + j for job, j in live],
                             options.speaking_rate, options.noise_scale, options.noise_scale_duration)
        for (job, j), wave in zip(live, waves):
            job.waves[j] = wave

    @torch.inference_mode()
    def forward(self, id_lists: list[list[int]], seeds: list[int], speaking_rate: float | None = None,
                noise_scale: float | None = None, noise_scale_duration: float | None = None) -> list[np.ndarray]:
        """A padded batch of id sequences -> one float32 waveform per sequence, cut at its length."""
        ids, lengths = pad(id_lists, dtype=np.int64)
        waves, sample_lengths = self.model(torch.from_numpy(ids).to(self.device), torch.tensor(lengths),
                                           seeds=seeds, speaking_rate=speaking_rate, noise_scale=noise_scale,
                                           noise_scale_duration=noise_scale_duration)
        waves = waves.float().cpu().numpy()
        return [waves[i, :n] for i, n in enumerate(sample_lengths.tolist())]

    def _finish(self, job: _Job, options: TTSOptions) -> Speech:
        rate = options.sample_rate or self.sample_rate
        speech = Speech(job.index, job.text, rate, dropped=job.dropped, line=job.line)
        if job.error:
            speech.error = f"{speech.name}: {job.error}"
            return speech
        gap = np.zeros(int(round(options.pause * self.sample_rate)), dtype=np.float32)
        parts = []
        for j, wave in enumerate(job.waves):
            parts += [gap, wave] if j else [wave]
        wave = np.concatenate(parts).astype(np.float32, copy=False)
        if rate != self.sample_rate:
            import soxr

            wave = soxr.resample(wave, self.sample_rate, rate, quality="HQ").astype(np.float32, copy=False)
        speech.wave = wave
        return speech


def _fail(item: tuple[_Job, int], error: BaseException) -> None:
    item[0].error = failure(error)


def _label(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def check_options(o: TTSOptions) -> TTSOptions:
    """`o`, or an MMSError naming the first setting out of range (the command line checks its flags the same way;
    the API had divided by zero, looped forever on max_chars 0, or returned silence for a negative rate)."""
    import math
    import numbers

    def number(name, low, high=math.inf, strict_low=True, optional=True, integer=False):
        value = getattr(o, name)
        if value is None and optional:
            return
        kind = numbers.Integral if integer else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool) or not math.isfinite(value) or \
                value < low or (strict_low and value == low) or value > high:
            bound = f"{'above' if strict_low else 'at least'} {low}" + ("" if high == math.inf else f", at most {high}")
            raise MMSError(f"{name} must be a{'n integer' if integer else ' number'} {bound}, got {value!r}")
        if integer:  # a numpy integer as a Python int (torch's generators take no other)
            setattr(o, name, int(value))

    number("max_chars", 0, integer=True, optional=False)
    number("batch_tokens", 0, integer=True)
    number("pause", 0, MAX_PAUSE, strict_low=False, optional=False)
    number("speaking_rate", 0)
    number("noise_scale", 0, strict_low=False)
    number("noise_scale_duration", 0, strict_low=False)
    number("seed", 0, SEED_LIMIT, strict_low=False, integer=True)
    number("sample_rate", *SAMPLE_RATES, strict_low=False, integer=True)
    if o.split not in SPLITS:
        raise MMSError(f"unknown split {o.split!r}; choose one of {', '.join(SPLITS)}")
    if o.numbers not in NUMBERS:
        raise MMSError(f"unknown numbers {o.numbers!r}; choose one of {', '.join(NUMBERS)}")
    return o


def _show(chars: list[str]) -> str:
    return " ".join(repr(ch) for ch in chars) if chars else "none"
