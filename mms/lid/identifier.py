"""Spoken language identification: the Python API behind `mms lid`.

    from mms.lid import LID
    from mms.options import LIDOptions
    lid = LID.load("mms-lid-126/", device="cpu")                    # or a fairseq mms1b_l126.pt
    results = lid.identify(["a.wav", wave_16k], top_k=3, langs=["eng", "fra", "deu"])
    results[0].predictions                                           # [("eng", 0.93), ("deu", 0.05), ...]
    LID.load("mms-lid-126/", options=LIDOptions(window_seconds=10))  # average 10 s windows over each input

What is classified: each input's first `max_seconds` (30 s by default; the first such piece that is not silence,
so that a recording opening with silence is identified by its speech) or, with `window_seconds`, every
consecutive window of that length over the whole input, their posteriors averaged (weighted by each window's
length). Each classified piece is standardised on its own (zero mean, unit variance, if the checkpoint says
so): for the model it is one utterance, as a file is for fairseq's lid/infer.py and transformers.

How work flows: a background thread (mms.batching.run_ahead) decodes the inputs piece by piece
(mms.audio.stream_audio: a long file is never held whole) into a buffer of audio; the buffered pieces of many
inputs go through the model runner (mms.runner: length-sorted batches of `batch_seconds` of padded
audio, out-of-memory halving); each piece's softmax (over the candidate languages only, when `langs` is
given) is added to its input's tally; finished inputs are yielded in input order. Memory is bounded by the
buffer and the batch, whatever the number or length of the inputs. A failing input becomes a result with
`error` set; the others carry on.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from mms.audio import SAMPLE_RATE, AudioError, array_waveform, audio_info, stream_audio
from mms.batching import INPUT_TYPES, check_inputs, input_name, release_memory, run_ahead
from mms.checkpoints import Checkpoint, CheckpointError, UnknownLanguageError, load_checkpoint
from mms.errors import MMSError
from mms.langs import close_codes, language_name, matches
from mms.manifest import Item
from mms.runner import ModelRunner
from mms.options import LIDOptions
from mms.results import Task

BUFFER_SECONDS = 600.0  # audio decoded ahead and scored together, at least (and at least 4 batches)


@dataclass
class LanguageResult:
    index: int  # the input's 0-based position in the inputs
    audio: str  # the input's name: its path, or "<array i>"
    predictions: list[tuple[str, float]] = field(default_factory=list)  # (label, probability), best first
    duration: float | None = None  # seconds of the input
    seconds: float = 0.0  # seconds of it that were classified
    error: str | None = None
    names: list[str | None] | None = None  # English names of the predicted languages (identify(names=True))

    @property
    def name(self) -> str:
        return self.audio

    @property
    def lang(self) -> str | None:
        return self.predictions[0][0] if self.predictions else None

    @property
    def probability(self) -> float | None:
        return self.predictions[0][1] if self.predictions else None

    def to_dict(self) -> dict:
        record = {"index": self.index, "audio": self.audio, "predictions": [[label, float(f"{p:.6g}")] for label, p in self.predictions],
                  "duration": None if self.duration is None else round(self.duration, 3)}
        if self.error is not None:
            record["error"] = self.error
        if self.names is not None:
            record["names"] = self.names
        if self.duration is not None and self.predictions and self.seconds < self.duration - 0.01:
            record["classified_seconds"] = round(self.seconds, 3)  # only the input's beginning (max_seconds)
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

    index: int
    name: str
    posterior: np.ndarray | None = None
    samples: int = 0
    queued: int = 0  # pieces still waiting in the buffer
    ended: bool = False
    duration: float | None = None
    error: str | None = None


class LID(Task):
    def __init__(self, checkpoint: Checkpoint, device="auto", dtype="auto", options: LIDOptions | None = None):
        cfg = checkpoint.config
        if not cfg.num_labels:
            raise CheckpointError(f"{checkpoint.path}: not a language identification model (no classification head)")
        if not checkpoint.labels or len(checkpoint.labels) != cfg.num_labels:
            raise CheckpointError(f"{checkpoint.path}: no label for each of the model's {cfg.num_labels} outputs")
        self.options = options = options or LIDOptions()
        for name in ("max_seconds", "window_seconds", "batch_seconds", "buffer_seconds"):
            value = getattr(options, name)
            if value is not None and not (isinstance(value, numbers.Real) and 0 < value < math.inf):
                raise MMSError(f"{name} must be a positive finite number, got {value!r}")
        self._top_k(None)  # checks options.top_k before the model is built
        self.checkpoint = checkpoint
        self.labels: list[str] = list(checkpoint.labels)
        self.runner = ModelRunner(checkpoint, device, dtype, quantize=options.quantize)
        self.windowed = options.window_seconds is not None
        self.piece_samples = int((options.window_seconds or options.max_seconds) * SAMPLE_RATE)
        if self.piece_samples < self.runner.min_samples:  # not the audio's fault: no window could be classified
            flag, name = ("--window", "window_seconds") if self.windowed else ("--max-seconds", "max_seconds")
            raise MMSError(f"{flag} ({name}) {getattr(options, name)}: shorter than the model's one frame of output "
                           f"({self.runner.min_samples / SAMPLE_RATE:.3f} s)")
        self.batch_samples = self.runner.batch_samples(options.batch_seconds)
        self.buffer_samples = (int(options.buffer_seconds * SAMPLE_RATE) if options.buffer_seconds else
                               max(4 * self.batch_samples, int(BUFFER_SECONDS * SAMPLE_RATE)))

    @classmethod
    def load(cls, model: str | Path | None = None, device="auto", dtype="auto", dict_path: str | Path | None = None,
             options: LIDOptions | None = None) -> "LID":
        """`model`: a Hugging Face mms-lid-* directory, a fairseq LID .pt file (labels from `dict_path`, the
        checkpoint's task state or dict.lang.txt beside it) or a published name (None: the registry's)."""
        from mms.hub import resolve_model

        path = Path(resolve_model(model, task="lid"))
        if path.is_dir() and (path / "lid" / "config.json").is_file():
            # an ASR model with its LID head beside it (`mms train --lid` writes <out>/lid/, as the demo has)
            path = path / "lid"
        return cls(load_checkpoint(path, dict_path), device, dtype, options)

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

    def _top_k(self, top_k: int | str | None) -> int | None:
        """How many predictions a result gets: None -> options.top_k; "all" -> every candidate (returned as None)."""
        top_k = self.options.top_k if top_k is None else top_k
        if top_k == "all":
            return None
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise MMSError(f"top_k must be a positive integer or 'all', got {top_k!r}")
        return int(top_k)

    # -- identification ------------------------------------------------------------------------------------
    def identify(self, inputs: Iterable, top_k: int | str | None = None, langs: Iterable[str] | str | None = None,
                 names: bool = False) -> list[LanguageResult]:
        return list(self.identify_iter(inputs, top_k, langs, names))

    def identify_iter(self, inputs: Iterable, top_k: int | str | None = None,
                      langs: Iterable[str] | str | None = None, names: bool = False) -> Iterator[LanguageResult]:
        """Inputs: paths, mms.manifest.Item, or 1-D float arrays already at 16 kHz. Yields one LanguageResult per
        input, in input order: the `top_k` most probable languages (None: options.top_k; "all": every
        candidate), best first, with softmax probabilities over the candidates (`langs`, default all the model's
        labels); with `names`, their English names too. Bad `top_k` or `langs` raise here, before any audio
        is read."""
        check_inputs(inputs)
        top_k = self._top_k(top_k)
        columns = self.candidates(langs)
        return self._identify(inputs, top_k, columns, names)

    def _identify(self, inputs: Iterable, top_k: int | None, columns: list[int],
                  names: bool) -> Iterator[LanguageResult]:
        tallies: dict[int, _Tally] = {}
        buffer: list[tuple[_Tally, np.ndarray]] = []
        buffered, next_out = 0, 0
        for piece in run_ahead(self._pieces(inputs), ahead=16):
            tally = tallies.setdefault(piece.index, _Tally(piece.index, piece.name))
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
                release_memory()
            while next_out in tallies and tallies[next_out].ended and not tallies[next_out].queued:
                yield self._result(tallies.pop(next_out), top_k, columns, names)
                next_out += 1
        self._score(buffer, columns)
        while next_out in tallies:
            yield self._result(tallies.pop(next_out), top_k, columns, names)
            next_out += 1

    def _pieces(self, inputs: Iterable) -> Iterator[_Piece]:
        """Runs on the reading thread: every input's pieces, then its end (or its error)."""
        min_samples = self.runner.min_samples  # one frame of output
        for i, source in enumerate(inputs):
            name = input_name(source, i)
            try:
                duration, pieces = self._read(source, name)
                used = seen = 0
                try:
                    for raw in pieces if self.windowed else _first_sound(pieces, min_samples):
                        seen += raw.size
                        if raw.size < min_samples:
                            if used:
                                continue  # a last window too short for one frame of output
                            raise AudioError(name, f"too short to classify ({raw.size} samples at 16 kHz, at "
                                                   f"least {min_samples} needed)")
                        used += raw.size
                        yield _Piece(i, name, wave=self.runner.standardize(raw))
                finally:
                    getattr(pieces, "close", lambda: None)()  # stop reading the file there
                if self.windowed or duration is None:  # read whole: what it held (a damaged file, less than its
                    duration = seen / SAMPLE_RATE  # header says)
                yield _Piece(i, name, end=True, duration=duration)
            except AudioError as e:
                yield _Piece(i, name, end=True, error=str(e))
            except Exception as e:  # noqa: BLE001 - one bad input must not stop the others
                yield _Piece(i, name, end=True, error=f"{name}: {type(e).__name__}: {e}")

    def _read(self, source, name: str) -> tuple[float | None, Iterator[np.ndarray]]:
        """(duration in seconds if known, consecutive raw 16 kHz pieces of `piece_samples`, the last shorter)."""
        if isinstance(source, Item) and source.error is not None:  # a manifest line that could not be read
            raise AudioError(name, source.error)
        if not isinstance(source, INPUT_TYPES):
            raise AudioError(name, "not an audio path, mms.manifest.Item or 16 kHz array")
        if isinstance(source, np.ndarray):
            wave = array_waveform(source, name)
            step = self.piece_samples
            return wave.size / SAMPLE_RATE, (wave[i:i + step] for i in range(0, wave.size, step))
        return audio_info(name), stream_audio(name, self.piece_samples)

    def _score(self, buffer: list[tuple[_Tally, np.ndarray]], columns: list[int]) -> None:
        """Every buffered piece of an input that has not failed through the model; its softmax into its tally."""
        def use(batch: list[tuple[_Tally, np.ndarray]], logits, frames) -> None:
            probs = logits.cpu()[:, columns].softmax(-1).double().numpy()
            for (tally, wave), p in zip(batch, probs):
                tally.posterior = p * wave.size if tally.posterior is None else tally.posterior + p * wave.size
                tally.samples += wave.size

        def fail(item: tuple[_Tally, np.ndarray], reason: str) -> None:
            tally = item[0]
            tally.error = tally.error or f"{tally.name}: {reason}"

        live = [(tally, wave) for tally, wave in buffer if tally.error is None]
        self.runner.run(live, lambda item: item[1], use, fail, self.batch_samples)
        for tally, _ in buffer:
            tally.queued = 0

    def logits(self, waves: Sequence[np.ndarray]):
        """Raw classifier outputs [B, num_labels] (a float32 torch tensor on the CPU) of model-ready 16 kHz
        waveforms (`lid.runner.standardize(wave)`); padding is masked (pooling averages each input's own frames)."""
        return self.runner.forward(waves)[0].cpu()

    def _result(self, tally: _Tally, top_k: int | None, columns: list[int], names: bool) -> LanguageResult:
        if tally.error or not tally.samples:
            return LanguageResult(tally.index, tally.name, duration=tally.duration,
                                  error=tally.error or f"{tally.name}: no audio", names=[] if names else None)
        posterior = tally.posterior / tally.samples
        best = np.argsort(-posterior, kind="stable")[:top_k]
        predictions = [(self.labels[columns[j]], float(posterior[j])) for j in best]
        return LanguageResult(tally.index, tally.name, predictions, tally.duration, tally.samples / SAMPLE_RATE,
                              names=[language_name(code) for code, _ in predictions] if names else None)


# ---------------------------------------------------------------------------------------------------------
# Unknown candidate codes


SILENCE_RMS = 1e-3  # -60 dBFS: a piece this quiet holds no speech to identify


def _first_sound(pieces: Iterator[np.ndarray], min_samples: int) -> Iterator[np.ndarray]:
    """Without windows, the first piece that is not silence: a recording that opens with a minute of silence is
    identified by its speech, not by its silence (which models call some language with confidence); the first
    piece when every one is silent."""
    first = None
    for raw in pieces:
        first = raw if first is None else first
        if raw.size >= min_samples and float(np.sqrt(np.mean(np.square(raw, dtype=np.float64)))) >= SILENCE_RMS:
            yield raw
            return
    if first is not None:
        yield first


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
