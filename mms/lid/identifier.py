"""Spoken language identification: the Python API behind `mms lid`.

    from mms.lid import LID
    lid = LID.load("mms-lid-126/", device="cpu")                    # or a fairseq mms1b_l126.pt
    results = lid.identify(["a.wav", wave_16k], top_k=3, langs=["eng", "fra", "deu"])
    results[0].predictions                                           # [("eng", 0.93), ("deu", 0.05), ...]

What is classified: each input's first `max_seconds` (30 s by default) or, with `window_seconds`, every
consecutive window of that length over the whole input, their posteriors averaged (weighted by each window's
length). Each classified piece is standardised on its own (zero mean, unit variance, if the checkpoint says
so): for the model it is one utterance, as a file is for fairseq's lid/infer.py and transformers.

How work flows: a background thread decodes the inputs piece by piece (a long file is never held whole) into
a buffer of about `buffer_seconds` of audio; the buffered pieces of many inputs are sorted by length and
batched up to `batch_seconds` of padded audio; each piece's softmax (over the candidate languages only, when
`langs` is given) is added to its input's tally; finished inputs are returned in input order. Memory is
bounded by the buffer and the batch, whatever the number or length of the inputs. A failing input becomes a
result with `error` set; the others carry on.
"""

from __future__ import annotations

import difflib
import itertools
import math
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import soundfile
import soxr
import torch

from mms.batching import input_name, make_batches
from mms.audio import SAMPLE_RATE, AudioError, audio_info, load_audio
from mms.checkpoints import Checkpoint, CheckpointError, UnknownLanguageError, instantiate, load_checkpoint
from mms.device import default_batch_seconds, resolve_device, resolve_dtype
from mms.langs import close_codes, matches
from mms.lid import BATCH_SECONDS, MAX_SECONDS, TOP_K
from mms.models.wav2vec2 import receptive_field


@dataclass
class LanguageResult:
    audio: str
    predictions: list[tuple[str, float]] = field(default_factory=list)  # (label, probability), best first
    duration: float | None = None  # seconds of the input
    seconds: float = 0.0  # seconds of it that were classified
    error: str | None = None

    @property
    def lang(self) -> str | None:
        return self.predictions[0][0] if self.predictions else None

    @property
    def probability(self) -> float | None:
        return self.predictions[0][1] if self.predictions else None

    def to_dict(self) -> dict:
        record = {"audio": self.audio, "predictions": [[label, float(f"{p:.6g}")] for label, p in self.predictions],
                  "duration": None if self.duration is None else round(self.duration, 3)}
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass
class _Piece:
    """What the reading thread hands over: a standardised piece of input `index`, or that input's end or error."""

    index: int
    name: str
    wave: np.ndarray | None = None
    end: bool = False
    duration: float | None = None
    error: str | None = None


@dataclass
class _Tally:
    """One input's posteriors summed over its pieces, each weighted by its samples."""

    name: str
    posterior: np.ndarray | None = None
    samples: int = 0
    queued: int = 0  # pieces still waiting in the buffer
    ended: bool = False
    duration: float | None = None
    error: str | None = None


class LID:
    def __init__(self, checkpoint: Checkpoint, device="auto", dtype="auto", max_seconds: float = MAX_SECONDS,
                 window_seconds: float | None = None, batch_seconds: float | None = BATCH_SECONDS,
                 buffer_seconds: float | None = None):
        cfg = checkpoint.config
        if not cfg.num_labels:
            raise CheckpointError(f"{checkpoint.path}: not a language identification model (no classification head)")
        if not checkpoint.labels or len(checkpoint.labels) != cfg.num_labels:
            raise CheckpointError(f"{checkpoint.path}: no label for each of the model's {cfg.num_labels} outputs")
        for name, value in (("max_seconds", max_seconds), ("window_seconds", window_seconds),
                            ("batch_seconds", batch_seconds), ("buffer_seconds", buffer_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.checkpoint = checkpoint
        self.labels: list[str] = list(checkpoint.labels)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = instantiate(checkpoint, self.device, self.dtype)
        self.windowed = window_seconds is not None
        self.piece_samples = int((window_seconds or max_seconds) * SAMPLE_RATE)
        batch_seconds = batch_seconds or default_batch_seconds(self.device)
        self.batch_samples = int(batch_seconds * SAMPLE_RATE)
        self.buffer_samples = int((buffer_seconds or max(4 * batch_seconds, 600.0)) * SAMPLE_RATE)
        self.min_samples = receptive_field(cfg.conv_kernel, cfg.conv_stride)  # one frame of output

    @classmethod
    def load(cls, model: str | Path | None = None, device="auto", dtype="auto", dict_path: str | Path | None = None,
             **options) -> "LID":
        """`model`: a Hugging Face mms-lid-* directory or a fairseq LID .pt file (labels from `dict_path`, the
        checkpoint's task state or dict.lang.txt beside it). Options: max_seconds, window_seconds,
        batch_seconds, buffer_seconds."""
        from mms.hub import resolve_model

        return cls(load_checkpoint(resolve_model(model, task="lid"), dict_path), device, dtype, **options)

    # -- candidates ----------------------------------------------------------------------------------------
    def candidates(self, langs: Iterable[str] | str | None = None) -> list[int]:
        """Output indices of the candidate languages (all when `langs` is None). `langs`: codes, or one string
        of codes separated by commas or spaces. Unknown codes raise UnknownLanguageError naming close matches."""
        if langs is None:
            return list(range(len(self.labels)))
        if isinstance(langs, str):
            langs = re.split(r"[,\s]+", langs)
        codes = list(dict.fromkeys(code.strip() for code in langs if code.strip()))
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = [code for code in codes if code not in index]
        if unknown:
            hints = [f"'{code}'" + (f" (close matches: {', '.join(close)})" if (close := close_labels(code, self.labels))
                                     else " (no close match)") for code in unknown]
            raise UnknownLanguageError(f"{self.checkpoint.path}: unknown language code{'s' if len(unknown) > 1 else ''}"
                                       f" {'; '.join(hints)}; the model knows {len(self.labels)} languages")
        if not codes:
            raise UnknownLanguageError("no candidate languages given")
        return [index[code] for code in codes]

    # -- identification ------------------------------------------------------------------------------------
    def identify(self, inputs: Iterable, top_k: int | None = TOP_K,
                 langs: Iterable[str] | str | None = None) -> list[LanguageResult]:
        return list(self.identify_iter(inputs, top_k, langs))

    def identify_iter(self, inputs: Iterable, top_k: int | None = TOP_K,
                      langs: Iterable[str] | str | None = None) -> Iterator[LanguageResult]:
        """Inputs: paths, mms.manifest.Item, or 1-D float arrays already at 16 kHz. Yields one LanguageResult per
        input, in input order: the `top_k` most probable languages (all candidates when None), best first, with
        softmax probabilities over the candidates (`langs`, default all the model's labels)."""
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        columns = self.candidates(langs)  # raises now, not at the first next()
        return self._identify(inputs, top_k, columns)

    def _identify(self, inputs: Iterable, top_k: int | None, columns: list[int]) -> Iterator[LanguageResult]:
        tallies: dict[int, _Tally] = {}
        buffer: list[tuple[_Tally, np.ndarray]] = []
        buffered, next_out = 0, 0
        for piece in run_ahead(self._pieces(inputs), ahead=16):
            tally = tallies.setdefault(piece.index, _Tally(piece.name))
            if piece.wave is not None:
                buffer.append((tally, piece.wave))
                tally.queued += 1
                buffered += piece.wave.size
            if piece.end:
                tally.ended, tally.duration = True, piece.duration
                tally.error = tally.error or piece.error
            if buffered >= self.buffer_samples:
                self._score(buffer, columns)
                buffer, buffered = [], 0
            while next_out in tallies and tallies[next_out].ended and not tallies[next_out].queued:
                yield self._result(tallies.pop(next_out), top_k, columns)
                next_out += 1
        self._score(buffer, columns)
        while next_out in tallies:
            yield self._result(tallies.pop(next_out), top_k, columns)
            next_out += 1

    def _pieces(self, inputs: Iterable) -> Iterator[_Piece]:
        """Runs on the reading thread: every input's pieces, then its end (or its error)."""
        for i, source in enumerate(inputs):
            name = input_name(source, i)
            try:
                duration, pieces = self._read(source, name)
                used = 0
                try:
                    for raw in pieces if self.windowed else itertools.islice(pieces, 1):
                        if raw.size < self.min_samples:
                            if used:
                                continue  # a last window too short for one frame of output
                            raise AudioError(name, f"too short to classify ({raw.size} samples at 16 kHz, at "
                                                   f"least {self.min_samples} needed)")
                        used += raw.size
                        yield _Piece(i, name, wave=self._standardise(raw))
                finally:
                    getattr(pieces, "close", lambda: None)()  # stop reading the file there
                yield _Piece(i, name, end=True, duration=duration if duration is not None else used / SAMPLE_RATE)
            except AudioError as e:
                yield _Piece(i, name, end=True, error=str(e))
            except Exception as e:  # noqa: BLE001 - one bad input must not stop the others
                yield _Piece(i, name, end=True, error=f"{name}: {type(e).__name__}: {e}")

    def _read(self, source, name: str) -> tuple[float | None, Iterator[np.ndarray]]:
        """(duration in seconds if known, consecutive raw 16 kHz pieces of `piece_samples`, the last shorter)."""
        if isinstance(source, np.ndarray):
            wave = np.asarray(source, dtype=np.float32)
            if wave.ndim != 1:
                raise AudioError(name, f"expected a 1-D waveform at 16 kHz, got an array of shape {wave.shape}")
            if wave.size == 0 or not np.isfinite(wave).all():
                raise AudioError(name, "empty audio or NaN/infinite samples")
            step = self.piece_samples
            return wave.size / SAMPLE_RATE, (wave[i:i + step] for i in range(0, wave.size, step))
        return audio_info(name), stream_audio(name, self.piece_samples)

    def _standardise(self, wave: np.ndarray) -> np.ndarray:
        if self.checkpoint.normalize:  # in float32, as transformers' feature extractor and fairseq do
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + self.checkpoint.normalize_eps)
        return wave.astype(np.float32, copy=False)

    def _score(self, buffer: list[tuple[_Tally, np.ndarray]], columns: list[int]) -> None:
        lengths = [wave.size for _, wave in buffer]
        same_length = self.checkpoint.config.feat_extract_norm == "group"  # GroupNorm statistics would see padding
        for batch in make_batches(lengths, self.batch_samples, same_length):
            self._score_batch([buffer[i] for i in batch], columns)
        for tally, _ in buffer:
            tally.queued = 0

    def _score_batch(self, items: list[tuple[_Tally, np.ndarray]], columns: list[int]) -> None:
        live = [(tally, wave) for tally, wave in items if tally.error is None]
        if not live:
            return
        try:
            logits = self.logits([wave for _, wave in live])
        except (RuntimeError, MemoryError) as e:  # out of memory, mostly: retry in halves, then per piece
            if len(live) > 1:
                self._score_batch(live[:len(live) // 2], columns)
                self._score_batch(live[len(live) // 2:], columns)
            else:
                tally = live[0][0]
                tally.error = f"{tally.name}: model failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
            return
        probs = logits[:, columns].softmax(-1).double().numpy()
        for (tally, wave), p in zip(live, probs):
            tally.posterior = p * wave.size if tally.posterior is None else tally.posterior + p * wave.size
            tally.samples += wave.size

    @torch.inference_mode()
    def logits(self, waves: Sequence[np.ndarray]) -> torch.Tensor:
        """Raw classifier outputs [B, num_labels] (float32, on the CPU) of a padded batch of standardised 16 kHz
        waveforms; padding is masked (pooling averages over each input's own frames)."""
        lengths = [wave.size for wave in waves]
        batch = torch.zeros(len(waves), max(lengths), dtype=torch.float32)
        for row, wave in zip(batch, waves):
            row[:wave.size] = torch.from_numpy(wave)
        batch = batch.to(self.device, self.dtype)
        return self.model(batch, torch.tensor(lengths, device=self.device)).float().cpu()

    def _result(self, tally: _Tally, top_k: int | None, columns: list[int]) -> LanguageResult:
        if tally.error or not tally.samples:
            return LanguageResult(tally.name, duration=tally.duration, error=tally.error or f"{tally.name}: no audio")
        posterior = tally.posterior / tally.samples
        best = np.argsort(-posterior, kind="stable")[:top_k]
        return LanguageResult(tally.name, [(self.labels[columns[j]], float(posterior[j])) for j in best],
                              tally.duration, tally.samples / SAMPLE_RATE)


# ---------------------------------------------------------------------------------------------------------
# Reading long files piece by piece


def stream_audio(path: str, block: int) -> Iterator[np.ndarray]:
    """Consecutive `block`-sample pieces (the last one shorter) of an audio file as float32 mono at 16 kHz,
    decoded piece by piece so that memory does not grow with the file (channels averaged; other rates
    resampled with soxr's streaming resampler, which gives the same samples as mms.audio.load_audio).
    Files libsndfile cannot open go through load_audio (ffmpeg, decoded whole), which also explains failures."""
    try:
        sound = soundfile.SoundFile(path)
    except Exception:  # noqa: BLE001 - missing, a directory, or a container only ffmpeg reads
        wave = load_audio(path)
        for start in range(0, wave.size, block):
            yield wave[start:start + block]
        return
    with sound:
        rate = sound.samplerate
        resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, quality="HQ")
        step = max(1, math.ceil(block * rate / SAMPLE_RATE))
        pending, total, done = np.zeros(0, np.float32), 0, False
        while not done:
            try:
                data = sound.read(step, dtype="float32", always_2d=True)
            except Exception as e:  # noqa: BLE001 - a corrupt stream past the header
                raise AudioError(path, f"cannot decode audio ({e})") from None
            done = len(data) < step
            samples = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
            if not np.isfinite(samples).all():
                raise AudioError(path, "audio contains NaN or infinite samples")
            total += samples.size
            if resampler is not None:
                samples = resampler.resample_chunk(samples, last=done)
            pending = np.concatenate([pending, samples])
            while pending.size >= block or (done and pending.size):
                yield pending[:block]
                pending = pending[block:]
        if total == 0:
            raise AudioError(path, "empty audio (0 samples)")


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def run_ahead(items: Iterator, ahead: int) -> Iterator:
    """Iterate `items` on a background thread, up to `ahead` items in advance (decoding overlaps the model).
    Stopping early stops the thread at its next item."""
    pending: queue.Queue = queue.Queue(maxsize=ahead)
    finished, stopped = object(), threading.Event()

    def put(item) -> bool:
        while not stopped.is_set():
            try:
                pending.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            put(_Raised(e))
            return
        put(finished)

    threading.Thread(target=produce, daemon=True, name="mms-lid-reader").start()
    try:
        while (item := pending.get()) is not finished:
            if isinstance(item, _Raised):
                raise item.error
            yield item
    finally:
        stopped.set()


# ---------------------------------------------------------------------------------------------------------
# Unknown candidate codes


def close_labels(code: str, labels: list[str], n: int = 5) -> list[str]:
    """Labels a mistyped or misremembered code may have meant: the same ISO language ("en" -> eng) and its
    script variants, similar spellings ("fre" -> fra), and, for longer text, labels whose English name
    matches it ("German" -> deu, "swahili" -> swh)."""
    close = close_codes(code, labels)
    close += difflib.get_close_matches(code.lower(), labels, n=n, cutoff=0.5)  # looser than close_codes
    if len(code.strip()) > 3:
        ranks = {label: matches(label, code) for label in labels}
        close += sorted((label for label, rank in ranks.items() if rank), key=ranks.get)
    return list(dict.fromkeys(close))[:n]
