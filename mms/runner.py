"""The one way a wav2vec2 model is run, shared by ASR, LID, alignment, `mms tune` and training evaluation.

    runner = ModelRunner(load_checkpoint("mms-1b-all/"), device="cpu", dtype="auto")
    runner.set_language("fra")                       # swaps a 2M-weight adapter; the base model stays
    outputs, frames = runner.forward([runner.standardize(w) for w in waves])

From a Checkpoint, a device and a dtype it builds the canonical model once, then: selects the language (an
adapter cache of the last few languages), standardises waveforms as the checkpoint says, pads a batch with its
lengths (the model masks the padding), and runs forward passes, retrying a batch that runs out of memory in
halves (mms.batching.in_halves). It never reads audio files and knows nothing of tasks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import numpy as np
import torch

from mms.audio import SAMPLE_RATE, standardize
from mms.batching import failure, in_halves, make_batches, pad
from mms.checkpoints import Checkpoint, CheckpointError, check_language, instantiate
from mms.device import default_batch_seconds, resolve_device, resolve_dtype
from mms.models.wav2vec2 import conv_output_lengths, receptive_field, total_stride
from mms.text.vocab import Vocabulary

T = TypeVar("T")

ADAPTER_CACHE = 8  # languages kept on the device (~2M weights each for MMS-1B)


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


def no_vocabulary(path) -> CheckpointError:
    """The error of a CTC model loaded without its vocabulary (a fairseq file without its dictionary beside it)."""
    return CheckpointError(f"{path}: no vocabulary (none in the checkpoint, and no dict.ltr.txt, tokens.txt or "
                           f"vocab.json beside it): give one with --dict")


class ModelRunner:
    def __init__(self, checkpoint: Checkpoint, device="auto", dtype="auto", model: torch.nn.Module | None = None,
                 quantize: str | None = None):
        """`model`: an already built model of this checkpoint (e.g. one being trained) instead of a new one;
        `quantize`: "int8" for dynamic int8 linear layers (mms.quantize)."""
        self.checkpoint = checkpoint
        self.config = checkpoint.config
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if quantize:
            from mms.quantize import check, quantize_model

            check(quantize, self.device)  # before building a model it could not run
        if model is None:
            # int8: built in the checkpoint's own dtype (memory-mapped, not copied), quantised, then the rest
            # converted: the int8 weights are made from the stored ones, and no converted copy is made of the
            # weights they replace
            stored = next((t.dtype for t in checkpoint.state_dict.values() if t.is_floating_point()), torch.float32)
            model = instantiate(checkpoint, self.device, stored if quantize else self.dtype)
        self.model = quantize_model(model, quantize, self.device).to(self.dtype) if quantize else model
        self.vocab: Vocabulary | None = checkpoint.vocab
        self.lang: str | None = checkpoint.lang
        if checkpoint.adapters is None:  # one output layer for good (with adapters: checked as a language is set)
            self._check_head()
        self._adapters: OrderedDict[str, tuple[dict, Vocabulary]] = OrderedDict()

    # -- languages -------------------------------------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        return self.checkpoint.languages

    def _check_head(self) -> None:
        """The vocabulary must fit the output layer in the model (one --dict file of another model or language would
        otherwise decode frames into symbols that do not exist)."""
        head = getattr(self.model, "lm_head", None)
        if self.vocab is not None and head is not None and len(self.vocab) != head.out_features:
            raise CheckpointError(f"{self.checkpoint.path}: the vocabulary has {len(self.vocab)} symbols, the output "
                                  f"layer {head.out_features} (a --dict file of another model or language?)")

    def set_language(self, lang: str) -> None:
        """Swap in a language's adapter and output layer; the base model stays loaded."""
        if lang == self.lang and self.vocab is not None:  # the language of the layer in the model
            self._check_head()
            return
        adapters = self.checkpoint.adapters
        if adapters is None:
            if self.vocab is None:
                raise no_vocabulary(self.checkpoint.path)
            self.lang = lang  # a single-language model: the code is only recorded
            return
        check_language(lang, adapters.languages, adapters.source)
        if lang not in self._adapters:
            weights, vocab = adapters.load(lang)
            self._adapters[lang] = ({k: v.to(self.device, self.dtype) for k, v in weights.items()}, vocab)
            while len(self._adapters) > ADAPTER_CACHE:
                self._adapters.popitem(last=False)
        self._adapters.move_to_end(lang)
        weights, vocab = self._adapters[lang]
        if len(vocab) != weights["lm_head.weight"].shape[0]:
            raise CheckpointError(f"{self.checkpoint.path}: vocabulary of '{lang}' has {len(vocab)} symbols, "
                                  f"its output layer {weights['lm_head.weight'].shape[0]}")
        try:
            self.model.load_adapter(weights)
        except ValueError as e:  # (an internal error it was)
            raise CheckpointError(f"{adapters.source}: the adapter of '{lang}' does not fit this model (made for "
                                  f"another base model?): {e}") from None
        self.vocab, self.lang = vocab, lang

    def select_language(self, lang: str | None) -> None:
        """set_language, or with None check that the model has a language to run in."""
        if lang is not None:
            self.set_language(lang)
        elif self.vocab is None and not self.languages:  # (no dictionary beside a fairseq file: nothing to choose)
            raise no_vocabulary(self.checkpoint.path)
        elif self.vocab is None or (self.checkpoint.adapters is not None and self.lang is None):
            raise CheckpointError(f"no language given; this model has {len(self.languages)} "
                                  f"(use --lang, e.g. {', '.join(self.languages[:5])})")

    # -- audio and frames ------------------------------------------------------------------------------------
    def standardize(self, wave: np.ndarray, enabled: bool | None = None) -> np.ndarray:
        """The waveform as the model expects it: float32, standardised when the checkpoint says so (or `enabled`)."""
        if self.checkpoint.normalize if enabled is None else enabled:
            return standardize(wave, self.checkpoint.normalize_eps)
        return np.asarray(wave, dtype=np.float32)

    @property
    def seconds_per_frame(self) -> float:
        return total_stride(self.config.conv_stride) / SAMPLE_RATE

    def frames(self, n_samples: int) -> int:
        """Output frames of `n_samples` of audio."""
        return conv_output_lengths(n_samples, self.config.conv_kernel, self.config.conv_stride)

    @property
    def min_samples(self) -> int:
        """The fewest samples that give one output frame."""
        return receptive_field(self.config.conv_kernel, self.config.conv_stride)

    def batch_samples(self, batch_seconds: float | None) -> int:
        return int((batch_seconds or default_batch_seconds(self.device)) * SAMPLE_RATE)

    def batches(self, lengths: list[int], max_samples: int) -> list[list[int]]:
        """Length-sorted batches; GroupNorm models (whose statistics would see the padding) get equal lengths."""
        return make_batches(lengths, max_samples, same_length=self.config.feat_extract_norm == "group")

    # -- forward passes --------------------------------------------------------------------------------------
    def pad(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """A right-padded [B, L] batch on the device in the model's dtype, and the lengths."""
        batch, lengths = pad(waves)
        batch = torch.from_numpy(batch)
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        return batch.to(self.device, self.dtype, non_blocking=True), torch.tensor(lengths, device=self.device)

    @torch.inference_mode()
    def forward(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[int] | None]:
        """A padded batch of model-ready waveforms -> (float32 outputs on the device, valid frames per input):
        CTC logits [B, T, V] and frame counts, or classifier logits [B, labels] and None."""
        batch, lengths = self.pad(waves)
        output = self.model(batch, lengths)
        if isinstance(output, tuple):
            logits, frame_lengths = output
            return logits.float(), frame_lengths.tolist()
        return output.float(), None

    def run(self, items: list[T], wave_of: Callable[[T], np.ndarray], use: Callable[[list[T], torch.Tensor, list], None],
            fail: Callable[[T, str], None], max_samples: int) -> None:
        """Every item through the model in length-sorted batches of at most `max_samples` padded samples:
        use(batch items, outputs, frame counts) per batch; a batch that fails (out of memory, mostly) is retried
        in halves, and an item that fails alone gets fail(item, one-line reason)."""
        def run_batch(batch: list[T]) -> None:
            outputs, frames = self.forward([wave_of(item) for item in batch])
            use(batch, outputs, frames)

        for order in self.batches([wave_of(item).size for item in items], max_samples):
            in_halves([items[i] for i in order], run_batch, lambda item, e: fail(item, failure(e)))

    def windows(self, n_samples: int, chunk_seconds: float, context_seconds: float) -> list[Window]:
        """The windows of a long input (see plan_windows)."""
        return plan_windows(n_samples, int(chunk_seconds * SAMPLE_RATE), int(context_seconds * SAMPLE_RATE),
                            self.config.conv_kernel, self.config.conv_stride)

    def emissions(self, wave: np.ndarray, chunk_seconds: float = 30.0, context_seconds: float = 5.0,
                  batch_seconds: float | None = None) -> np.ndarray:
        """Raw CTC logits [T, V] (float32, CPU) of one model-ready waveform of any length, run in windows."""
        windows = self.windows(wave.size, chunk_seconds, context_seconds)
        if not windows:
            raise ValueError(f"audio too short ({wave.size / SAMPLE_RATE:.3f} s) for one frame")
        out = np.zeros((self.frames(wave.size), self.model.lm_head.out_features), dtype=np.float32)

        def use(batch: list[Window], logits: torch.Tensor, frames: list) -> None:
            for w, row in zip(batch, logits.cpu().numpy()):
                out[w.out_at:w.out_at + w.keep_to - w.keep_from] = row[w.keep_from:w.keep_to]

        def fail(window: Window, reason: str) -> None:
            raise RuntimeError(reason)

        self.run(windows, lambda w: wave[w.start:w.end], use, fail, self.batch_samples(batch_seconds))
        return out
