"""Speech recognition: the Python API behind `mms asr`.

    from mms.asr import ASR
    asr = ASR.load("path/to/mms-1b-all", lang="fra", device="cpu")
    for result in asr.transcribe(["a.wav", "b.flac"]):
        print(result.audio, result.text)

How work flows: inputs are decoded (in a background thread) into a buffer of about `buffer_seconds` of audio;
each waveform is normalised as its checkpoint specifies and cut into windows (long inputs: `chunk_seconds`
windows with `context_seconds` of extra audio on each side, whose frames are thrown away); windows are grouped
by language (one adapter swap per group), sorted by length and batched up to `batch_seconds` of padded audio;
the model's best label and log-probability per frame are written into each input's frame arrays; finished
inputs are decoded and returned in input order. Memory is bounded by the buffer and the batch, not by the
number or length of inputs (a one-hour input keeps 2 numbers per 20 ms frame besides its waveform).
A failing input becomes a result with `error` set; the others carry on.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np
import torch

from mms.audio import SAMPLE_RATE, AudioError, load_audio
from mms.batching import input_name, make_batches, prefetch
from mms.checkpoints import Checkpoint, CheckpointError, check_language, instantiate, load_checkpoint
from mms.decoding.ctc import Hypothesis, greedy_decode, shift_times
from mms.device import default_batch_seconds, resolve_device, resolve_dtype
from mms.manifest import Item
from mms.models.wav2vec2 import Wav2Vec2ForCTC, conv_output_lengths, receptive_field, total_stride
from mms.text.vocab import Vocabulary

if TYPE_CHECKING:
    from mms.decoding.beam import BeamOptions

log = logging.getLogger("mms.asr")


@dataclass
class Transcript:
    audio: str
    lang: str | None
    text: str = ""
    duration: float | None = None
    error: str | None = None
    hypothesis: Hypothesis | None = field(default=None, repr=False)
    words: list[dict] | None = None
    chars: list[dict] | None = None
    emissions: np.ndarray | None = field(default=None, repr=False)  # [T, V] raw logits, when asked for

    def to_dict(self) -> dict:
        record = {"audio": self.audio, "lang": self.lang, "text": self.text, "duration": self.duration}
        if self.hypothesis is not None and self.hypothesis.score is not None:
            record["score"] = round(self.hypothesis.score, 4)
        if self.words is not None:
            record["words"] = self.words
        if self.chars is not None:
            record["chars"] = self.chars
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass
class _Job:
    """One input on its way through the buffer."""

    index: int
    name: str
    lang: str | None
    wave: np.ndarray | None = None
    error: str | None = None
    frame_ids: np.ndarray | None = None  # best label per frame
    frame_scores: np.ndarray | None = None  # its log-probability
    emissions: np.ndarray | None = None  # raw logits per frame, kept for beam search or on request
    vocab: Vocabulary | None = None  # of the language it was run in


@dataclass
class Window:
    start: int  # samples [start, end) of the input
    end: int
    keep_from: int  # frames [keep_from, keep_to) of the window's output are kept ...
    keep_to: int
    out_at: int  # ... and written from this frame of the input on


def plan_windows(n_samples: int, chunk: int, context: int, kernels, strides) -> list[Window]:
    """Cut an input into windows whose kept frames tile the input's frames exactly.

    Frame f of the input sees samples [f*stride, f*stride + field). A window starting at a multiple of the
    stride therefore yields the same frame grid; each keeps `chunk` samples' worth of frames and sees `context`
    samples more on both sides (attention is global, so context is what keeps chunk edges accurate).
    """
    stride = total_stride(strides)
    field_ = receptive_field(kernels, strides)
    total = conv_output_lengths(n_samples, kernels, strides)
    chunk_frames = max(1, chunk // stride)
    context = (context // stride) * stride
    if total <= chunk_frames + 2 * (context // stride):
        return [Window(0, n_samples, 0, total, 0)] if total > 0 else []
    windows = []
    for first in range(0, total, chunk_frames):
        last = min(first + chunk_frames, total)
        start = max(0, first * stride - context)
        end = min(n_samples, last * stride + (field_ - stride) + context)
        local = first - start // stride
        windows.append(Window(start, end, local, local + (last - first), first))
    return windows


def add_adapters(checkpoint: Checkpoint, adapter_dir: str | Path) -> None:
    """Add the languages of a `mms train-adapter` output directory (adapter.<lang>.safetensors + vocab.json)
    to the checkpoint's own adapters; a language in both is taken from `adapter_dir`."""
    from mms.checkpoints import Adapters
    from mms.checkpoints.huggingface import hf_adapters, read_json

    folder = Path(adapter_dir)
    if not (folder / "vocab.json").is_file():
        raise CheckpointError(f"{folder}: no vocab.json (not an adapter directory written by mms train-adapter)")
    if not checkpoint.config.adapter_attn_dim:
        raise CheckpointError(f"{checkpoint.path}: this model has no adapter layers, so --adapter cannot be used")
    tokenizer = folder / "tokenizer_config.json"
    extra = hf_adapters(folder, read_json(folder / "vocab.json"), read_json(tokenizer) if tokenizer.exists() else {},
                        None)
    own = checkpoint.adapters
    if own is None and checkpoint.lang and checkpoint.vocab is not None:  # a single-language model keeps its own
        weights = {k: v for k, v in checkpoint.state_dict.items() if ".adapter_layer." in k or k.startswith("lm_head.")}
        own = Adapters([checkpoint.lang], lambda code: (weights, checkpoint.vocab), checkpoint.path)

    def load_fn(code: str):
        return extra.load(code) if code in extra.languages else own.load(code)

    languages = sorted(set(extra.languages) | set(own.languages if own else []))
    checkpoint.adapters = Adapters(languages, load_fn, f"{own.source if own else checkpoint.path} + {folder}")


class ASR:
    def __init__(self, checkpoint: Checkpoint, device="auto", dtype="auto", lang: str | None = None,
                 batch_seconds: float | None = None, chunk_seconds: float = 30.0, context_seconds: float = 5.0,
                 buffer_seconds: float | None = None, beam: "BeamOptions | None" = None, decode_workers: int = 1,
                 extra_adapters: str | Path | None = None, time_offsets: tuple[float, float] | None = None):
        if checkpoint.config.vocab_size is None:
            raise CheckpointError(f"{checkpoint.path}: not a CTC speech recognition model (no output layer)")
        if extra_adapters is not None:
            add_adapters(checkpoint, extra_adapters)
        self.checkpoint = checkpoint
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model: Wav2Vec2ForCTC = instantiate(checkpoint, self.device, self.dtype)
        self.vocab: Vocabulary | None = checkpoint.vocab
        self.lang: str | None = checkpoint.lang
        # seconds added to word/char start and end times (a model's measured emission lag; see shift_times)
        self.time_offsets = checkpoint.word_time_offsets if time_offsets is None else tuple(time_offsets)
        batch_seconds = batch_seconds or default_batch_seconds(self.device)
        self.batch_samples = int(batch_seconds * SAMPLE_RATE)
        self.chunk_samples = int(chunk_seconds * SAMPLE_RATE)
        self.context_samples = int(context_seconds * SAMPLE_RATE)
        self.buffer_samples = int((buffer_seconds or max(4 * batch_seconds, 600.0)) * SAMPLE_RATE)
        self._adapter_cache: OrderedDict[str, tuple[dict, Vocabulary]] = OrderedDict()
        self.beam = None
        if lang is not None:
            self.set_language(lang)
        if beam is not None:
            from mms.decoding.beam import DecoderPool

            self.beam = DecoderPool(beam, decode_workers)
            if self.vocab is not None:
                self.beam.check(self.vocab)  # a bad LM or lexicon fails here, before any audio

    def close(self) -> None:
        """Stop the beam-search worker processes (if any)."""
        if self.beam is not None:
            self.beam.close()

    @classmethod
    def load(cls, model: str | Path | None = None, lang: str | None = None, device="auto", dtype="auto",
             dict_path: str | Path | None = None, **options) -> "ASR":
        """`model`: a Hugging Face MMS directory or a fairseq .pt file (see mms.checkpoints), or a published name
        or Hugging Face repo id, fetched once with the adapter of `lang` only (see mms.hub); None: mms-1b-all."""
        from mms.hub import resolve_model

        path = resolve_model(model, task="asr", lang=lang)
        return cls(load_checkpoint(path, dict_path), device, dtype, lang, **options)

    # -- languages -----------------------------------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        return self.checkpoint.languages

    def set_language(self, lang: str) -> None:
        """Swap in a language's adapter and output layer; the 1B base model stays loaded."""
        if lang == self.lang and self.vocab is not None:
            return
        adapters = self.checkpoint.adapters
        if adapters is None:
            if self.vocab is None:
                raise CheckpointError(f"{self.checkpoint.path}: no vocabulary (give a dict file with --dict)")
            self.lang = lang  # a single-language model: the code is only recorded
            return
        check_language(lang, adapters.languages, adapters.source)
        if lang not in self._adapter_cache:
            weights, vocab = adapters.load(lang)
            self._adapter_cache[lang] = ({k: v.to(self.device, self.dtype) for k, v in weights.items()}, vocab)
            while len(self._adapter_cache) > 8:  # ~2M weights each for MMS-1B
                self._adapter_cache.popitem(last=False)
        self._adapter_cache.move_to_end(lang)
        weights, vocab = self._adapter_cache[lang]
        if len(vocab) != weights["lm_head.weight"].shape[0]:
            raise CheckpointError(f"{self.checkpoint.path}: vocabulary of '{lang}' has {len(vocab)} symbols, "
                                  f"its output layer {weights['lm_head.weight'].shape[0]}")
        self.model.load_adapter(weights)
        self.vocab, self.lang = vocab, lang

    # -- transcription -------------------------------------------------------------------------------------
    def transcribe(self, inputs: Iterable, lang: str | None = None, timestamps: str | None = None) -> list[Transcript]:
        return list(self.transcribe_iter(inputs, lang, timestamps))

    def transcribe_iter(self, inputs: Iterable, lang: str | None = None,
                        timestamps: str | None = None, keep_emissions: bool = False) -> Iterator[Transcript]:
        """Inputs: paths, mms.manifest.Item (with their own `lang`), or 16 kHz float arrays.
        Yields one Transcript per input, in input order. timestamps: None, "word" or "char".
        keep_emissions: attach each input's raw logits [T, V] (e.g. to tune LM weights on them)."""
        default_lang = lang or self.lang
        jobs = prefetch(lambda pair: self._prepare(pair[0], pair[1], default_lang), enumerate(inputs), ahead=16)
        # one buffer of decoding (beam search in worker processes) overlaps the next buffer's model work
        pending: list = []
        for buffer in self._buffers(jobs):
            self._run(buffer, keep_emissions)
            submitted = [(job, self._decode(job, keep_emissions)) for job in buffer]
            for job, decoding in pending:
                yield self._finish(job, decoding, timestamps)
            pending = submitted
        for job, decoding in pending:
            yield self._finish(job, decoding, timestamps)

    def _buffers(self, jobs: Iterable[_Job]) -> Iterator[list[_Job]]:
        buffer, buffered = [], 0
        for job in jobs:
            buffer.append(job)
            buffered += 0 if job.wave is None else job.wave.size
            if buffered >= self.buffer_samples:
                yield buffer
                buffer, buffered = [], 0
        if buffer:
            yield buffer

    def _prepare(self, i: int, source, default_lang: str | None) -> _Job:
        name = input_name(source, i)
        job = _Job(i, name, source.lang if isinstance(source, Item) and source.lang else default_lang)
        try:
            if isinstance(source, np.ndarray):
                wave = np.ascontiguousarray(source, dtype=np.float32).reshape(-1)
                if wave.size == 0 or not np.isfinite(wave).all():
                    raise AudioError(name, "empty audio or NaN/infinite samples")
            else:
                wave = load_audio(name)
            if self.checkpoint.normalize:
                # per-utterance standardisation over the whole input (before any windowing), in float32
                wave = (wave - wave.mean()) / np.sqrt(wave.var() + self.checkpoint.normalize_eps)
            job.wave = wave.astype(np.float32, copy=False)
        except AudioError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001 - one bad input must not stop the others
            job.error = f"{name}: {type(e).__name__}: {e}"
        return job

    def _run(self, jobs: list[_Job], keep_emissions: bool = False) -> None:
        """The acoustic model over every window of a buffer, grouped by language."""
        cfg = self.checkpoint.config
        by_lang: dict[str | None, list[_Job]] = {}
        for job in jobs:
            if not job.error:
                by_lang.setdefault(job.lang, []).append(job)
        for lang, group in by_lang.items():
            try:
                self._select_language(lang)
            except (CheckpointError, ValueError) as e:
                for job in group:
                    job.error = f"{job.name}: {e}"
                continue
            windows = []
            for job in group:
                job.vocab = self.vocab
                n_frames = conv_output_lengths(job.wave.size, cfg.conv_kernel, cfg.conv_stride)
                job.frame_ids = np.zeros(n_frames, dtype=np.int32)
                job.frame_scores = np.zeros(n_frames, dtype=np.float32)
                if self.beam is not None or keep_emissions:
                    job.emissions = np.zeros((n_frames, len(self.vocab)), dtype=np.float32)
                windows += [(job, w) for w in plan_windows(job.wave.size, self.chunk_samples, self.context_samples,
                                                           cfg.conv_kernel, cfg.conv_stride)]
            lengths = [w.end - w.start for _, w in windows]
            same_length = cfg.feat_extract_norm == "group"  # GroupNorm statistics would see the padding
            for batch in make_batches(lengths, self.batch_samples, same_length):
                self._run_batch([windows[i] for i in batch])

    def _select_language(self, lang: str | None) -> None:
        if lang is None:
            if self.vocab is None or (self.checkpoint.adapters is not None and self.lang is None):
                raise CheckpointError(f"no language given; this model has {len(self.languages)} "
                                      f"(use --lang, e.g. {', '.join(self.languages[:5])})")
            return
        self.set_language(lang)

    def _run_batch(self, batch: list[tuple[_Job, Window]]) -> None:
        live = [(job, w) for job, w in batch if not job.error]
        if not live:
            return
        try:
            outputs = self.forward([job.wave[w.start:w.end] for job, w in live],
                                   logits=live[0][0].emissions is not None)
        except (RuntimeError, MemoryError) as e:  # out of memory, mostly: retry in halves, then per input
            if len(live) > 1:
                half = len(live) // 2
                self._run_batch(live[:half])
                self._run_batch(live[half:])
            else:
                job = live[0][0]
                job.error = f"{job.name}: model failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            return
        for (job, w), (ids, scores, logits) in zip(live, outputs):
            kept, out = slice(w.keep_from, w.keep_to), slice(w.out_at, w.out_at + w.keep_to - w.keep_from)
            job.frame_ids[out], job.frame_scores[out] = ids[kept], scores[kept]
            if logits is not None:
                job.emissions[out] = logits[kept]

    @torch.inference_mode()
    def forward(self, waves: list[np.ndarray], logits: bool = False) -> list[tuple]:
        """A padded batch of (normalised) waveforms -> per input (best label, its log-probability, and with
        `logits` the raw logits [T, V] that beam search reads) per valid frame."""
        lengths = [w.size for w in waves]
        batch = torch.zeros(len(waves), max(lengths), dtype=torch.float32)
        for row, wave in zip(batch, waves):
            row[:wave.size] = torch.from_numpy(wave)
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        batch = batch.to(self.device, self.dtype, non_blocking=True)
        output, frame_lengths = self.model(batch, torch.tensor(lengths, device=self.device))
        output = output.float()
        best, ids = output.log_softmax(-1).max(-1)
        ids, best, frame_lengths = ids.int().cpu().numpy(), best.cpu().numpy(), frame_lengths.cpu().tolist()
        output = output.cpu().numpy() if logits else None
        return [(ids[i, :n], best[i, :n], None if output is None else output[i, :n])
                for i, n in enumerate(frame_lengths)]

    def _decode(self, job: _Job, keep_emissions: bool = False):
        """A Hypothesis (greedy), a Future of one (beam search), or None for a failed input."""
        if job.error:
            return None
        if self.beam is not None:
            emissions = job.emissions
            if not keep_emissions:
                job.emissions = None  # the decoder holds them now
            return self.beam.submit(job.vocab, emissions)
        return greedy_decode(job.frame_ids, job.vocab, score=float(job.frame_scores.sum()))

    def _finish(self, job: _Job, decoding, timestamps: str | None) -> Transcript:
        duration = None if job.wave is None else round(job.wave.size / SAMPLE_RATE, 3)
        if decoding is not None and not isinstance(decoding, Hypothesis):
            try:
                decoding = decoding.result()
            except Exception as e:  # noqa: BLE001 - a failed decode is this input's error
                job.error = f"{job.name}: beam search failed ({type(e).__name__}: {e})"
        if job.error:
            return Transcript(job.name, job.lang, duration=duration, error=job.error)
        vocab, hyp = job.vocab, decoding
        words = hyp.words(vocab, self.seconds_per_frame) if timestamps in ("word", "char") else None
        chars = hyp.chars(vocab, self.seconds_per_frame) if timestamps == "char" else None
        for timed in (words, chars):
            if timed:
                shift_times(timed, *self.time_offsets, duration if duration is not None else float("inf"))
        emissions = job.emissions
        job.wave = job.frame_ids = job.frame_scores = job.emissions = None  # free the buffer early
        return Transcript(job.name, job.lang or self.lang, hyp.text, duration, None, hyp, words, chars, emissions)

    @property
    def seconds_per_frame(self) -> float:
        return total_stride(self.checkpoint.config.conv_stride) / SAMPLE_RATE
