"""Speech recognition: the Python API behind `mms asr`.

    from mms.asr import ASR
    with ASR.load("path/to/mms-1b-all", lang="fra", device="cpu") as asr:
        for result in asr.transcribe_iter(["a.wav", "b.flac"]):
            print(result.audio, result.text, result.error)

How work flows: inputs are decoded (on a background thread) into a buffer of about `buffer_seconds` of audio;
each waveform is standardised as its checkpoint specifies and cut into windows (long inputs: `chunk_seconds`
windows with `context_seconds` of extra audio on each side, whose frames are thrown away); windows are grouped
by language (one adapter swap per group) and run by the shared ModelRunner in length-sorted batches of up to
`batch_seconds` of padded audio; the best label and its log-probability per frame are written into each input's
frame arrays (the waveform is then let go); finished inputs are decoded and yielded in input order. Memory is
bounded by the buffer, the read-ahead (one buffer of audio, or one input longer than that) and the batch, not by
the number of inputs. A failing input becomes a result with `error` set; the others
carry on. `lang="auto"` first identifies each input's language with an MMS LID model (mms.asr.auto).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from mms.audio import SAMPLE_RATE, AudioError, array_waveform, load_audio
from mms.batching import INPUT_TYPES, check_inputs, input_name, prefetch, release_memory
from mms.checkpoints import Checkpoint, CheckpointError, add_adapter_dir, load_checkpoint
from mms.decoding.ctc import Hypothesis, greedy_decode
from mms.errors import MMSError
from mms.manifest import Item
from mms.runner import ModelRunner, Window, no_vocabulary
from mms.options import ASROptions
from mms.results import Task, Word, shift_times
from mms.text.vocab import Vocabulary

if TYPE_CHECKING:
    from mms.decoding.beam import BeamOptions


@dataclass
class Transcript:
    audio: str
    lang: str | None
    text: str = ""
    duration: float | None = None
    error: str | None = None
    hypothesis: Hypothesis | None = field(default=None, repr=False)
    words: list[Word] | None = None
    chars: list[Word] | None = None
    emissions: np.ndarray | None = field(default=None, repr=False)  # [T, V] raw logits, when asked for
    index: int = 0
    lid: dict | None = None  # lang="auto": {"lid_lang", "lang_probability"} of the language identified
    romanized: bool = False  # the text is uroman characters (the zero-shot model decoded without --words)
    candidates: list[dict] | None = None  # --rerank: the N-best languages with their features and scores

    @property
    def name(self) -> str:
        return self.audio

    def to_dict(self) -> dict:
        record = {"index": self.index, "audio": self.audio, "lang": self.lang, "text": self.text,
                  "duration": self.duration}
        if self.lid:
            record.update(self.lid)
        if self.romanized:
            record["romanized"] = True
        if self.candidates is not None:
            record["candidates"] = self.candidates
        if self.hypothesis is not None and self.hypothesis.score is not None:
            record["score"] = round(self.hypothesis.score, 4)
        if self.words is not None:
            record["words"] = [w.to_dict() for w in self.words]
        if self.chars is not None:
            record["chars"] = [c.to_dict() for c in self.chars]
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass
class _Job:
    """One input on its way through the buffer."""

    index: int
    name: str
    lang: str | None
    wave: np.ndarray | None = None  # until the model has run over it
    samples: int = 0  # its length
    error: str | None = None
    frame_ids: np.ndarray | None = None  # best label per frame
    frame_scores: np.ndarray | None = None  # its log-probability
    emissions: np.ndarray | None = None  # raw logits per frame, kept for beam search or on request
    vocab: Vocabulary | None = None  # of the language it was run in
    lid: dict | None = None


def check_windows(o: ASROptions) -> None:
    """The long-audio windows: chunk_seconds above 0 (0 had run a 10 s input as thousands of windows), context
    at least 0, both finite (the command line checks its flags the same way)."""
    import math
    import numbers

    for name, low in (("chunk_seconds", 0.0), ("context_seconds", None), ("batch_seconds", 0.0)):
        value = getattr(o, name)
        if value is None and name == "batch_seconds":  # (the device's default)
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or \
                (value <= low if low is not None else value < 0):
            raise MMSError(f"{name} must be a finite number {'above 0' if low is not None else 'at least 0'}, "
                           f"got {value!r}")


@dataclass
class _LanguageArray:
    """An array input and the language identified for it (an Item carries a path, not samples)."""
    wave: np.ndarray
    lang: str


class ASR(Task):
    def __init__(self, checkpoint: Checkpoint, device="auto", dtype="auto", lang: str | None = None,
                 options: ASROptions | None = None, beam: "BeamOptions | None" = None,
                 adapter_dir: str | Path | None = None, lid_model=None, fetch_adapters=None, rerank=None,
                 **overrides):
        """`options` (mms.options.ASROptions) and keyword `overrides` of its fields (batch_seconds=...);
        `beam`: KenLM beam search instead of greedy decoding; `adapter_dir`: languages added by
        `mms train-adapter`; `lang="auto"`: identify each input's language with `lid_model` first;
        `fetch_adapters(langs)`: called with the languages an auto run found, before they are used."""
        if checkpoint.config.vocab_size is None:
            raise CheckpointError(f"{checkpoint.path}: not a CTC speech recognition model (no output layer)")
        if adapter_dir is not None:
            add_adapter_dir(checkpoint, adapter_dir)
        if checkpoint.vocab is None and not checkpoint.adapters:  # now, not as an error of every input
            raise no_vocabulary(checkpoint.path)
        self.options = replace(options or ASROptions(), **overrides)
        check_windows(self.options)
        self.runner = ModelRunner(checkpoint, device, dtype, quantize=self.options.quantize)
        o = self.options
        # seconds added to word/char start and end times (a model's measured emission lag; see shift_times)
        self.time_offsets = checkpoint.word_time_offsets if o.time_offsets is None else tuple(o.time_offsets)
        self.batch_samples = self.runner.batch_samples(o.batch_seconds)
        self.chunk_samples = int(o.chunk_seconds * SAMPLE_RATE)
        self.context_samples = int(o.context_seconds * SAMPLE_RATE)
        self.buffer_samples = int((o.buffer_seconds or max(4 * self.batch_samples / SAMPLE_RATE, 600.0))
                                  * SAMPLE_RATE)
        self.auto = lang == "auto"
        if self.auto and checkpoint.language_free:  # (it had fetched and run a 1B LID model for nothing)
            raise MMSError(f"{checkpoint.path}: this model transcribes every language with one output layer: the "
                           f"language cannot change its output, so --lang auto has nothing to choose; leave it out")
        self.lid_model, self.fetch_adapters = lid_model, fetch_adapters
        # lang="auto" with N-best re-ranking: (N, mms.asr.rerank.RerankWeights, zero-shot ASR or None)
        self.rerank = rerank
        self.beam = None
        if lang is not None and not self.auto:
            self.set_language(lang)
        # the default language of calls without one: what load() or set_language() chose, never the last call's
        self._lang = self.runner.lang
        if beam is not None:
            from mms.decoding.beam import DecoderPool

            self.beam = DecoderPool(beam, o.decode_workers)
            if self.vocab is not None:
                self.beam.check(self.vocab)  # a bad LM or lexicon fails here, before any audio

    @classmethod
    def load(cls, model: str | Path | None = None, lang: str | None = None, device="auto", dtype="auto",
             dict_path: str | Path | None = None, input_langs: Iterable[str | None] = (),
             tokenizer: str | Path | None = None, **options) -> "ASR":
        """`model`: a Hugging Face MMS directory or a fairseq .pt file (see mms.checkpoints), or a published name
        or Hugging Face repo id, fetched once with the adapters of `lang` and `input_langs` only (see mms.hub);
        None: mms-1b-all. `tokenizer`: the SentencePiece model of an Omnilingual ASR checkpoint (default: the .model
        beside it). Other options as ASR()."""
        from mms.asr.auto import own_lid_model
        from mms.hub import resolve_model

        trained = set()
        if options.get("adapter_dir"):  # languages the adapter directory brings are not fetched
            trained = {p.name.split(".")[1] for p in Path(options["adapter_dir"]).glob("adapter.*.*")}
        wanted = [code for code in dict.fromkeys([lang, *input_langs]) if code and code != "auto" and
                  code not in trained]
        path = resolve_model(model, task="asr", lang=wanted)
        if lang == "auto":
            options.setdefault("fetch_adapters", lambda langs: resolve_model(model, task="asr", lang=list(langs)))
            if options.get("lid_model") is None:  # the model's own LID head (the demo's: offline, as the rest)
                options["lid_model"] = own_lid_model(model)
        return cls(load_checkpoint(path, dict_path, tokenizer=tokenizer), device, dtype, lang, **options)

    def close(self) -> None:
        """Stop the beam-search worker processes (if any)."""
        if self.beam is not None:
            self.beam.close()
        if self.rerank is not None and self.rerank[2] is not None:
            self.rerank[2].close()

    # -- the model, through the shared runner ----------------------------------------------------------------
    checkpoint = property(lambda self: self.runner.checkpoint)
    model = property(lambda self: self.runner.model)
    device = property(lambda self: self.runner.device)
    dtype = property(lambda self: self.runner.dtype)
    vocab = property(lambda self: self.runner.vocab)
    lang = property(lambda self: "auto" if self.auto else self._lang)
    languages = property(lambda self: self.runner.languages)
    seconds_per_frame = property(lambda self: self.runner.seconds_per_frame)

    def set_language(self, lang: str) -> None:
        """Swap in a language's adapter and output layer; the base model stays loaded."""
        self.runner.set_language(lang)
        self.auto = False
        self._lang = lang

    # -- transcription -------------------------------------------------------------------------------------
    def transcribe(self, inputs: Iterable, lang: str | None = None, timestamps: str | None = None) -> list[Transcript]:
        return list(self.transcribe_iter(inputs, lang, timestamps))

    def transcribe_iter(self, inputs: Iterable, lang: str | None = None,
                        timestamps: str | None = None, keep_emissions: bool = False) -> Iterator[Transcript]:
        """Inputs: paths, mms.manifest.Item (with their own `lang`), or 16 kHz float arrays.
        Yields one Transcript per input, in input order. lang: for inputs without their own, "auto" to identify
        it first; timestamps: None, "word" or "char"; keep_emissions: attach each input's raw logits [T, V]
        (e.g. to tune LM weights on them)."""
        check_inputs(inputs)
        if timestamps not in (None, "word", "char"):
            raise MMSError(f"timestamps must be None, 'word' or 'char', got {timestamps!r}")
        if lang == "auto" or (lang is None and self.auto):
            return self._transcribe_auto(list(inputs), timestamps, keep_emissions)
        return self._transcribe(inputs, lang or self._lang, timestamps, keep_emissions)

    def _transcribe(self, inputs: Iterable, default_lang: str | None, timestamps: str | None,
                    keep_emissions: bool) -> Iterator[Transcript]:
        # read ahead at most one buffer's worth of audio (and 16 inputs), so that memory does not grow with
        # the number of long recordings
        jobs = prefetch(lambda pair: self._prepare(pair[0], pair[1], default_lang), enumerate(inputs), ahead=16,
                        cost=lambda job: job.samples, budget=self.buffer_samples)
        # one buffer of decoding (beam search in worker processes) overlaps the next buffer's model work; greedy
        # decoding is done at once, and its buffer's results go out before the next buffer runs (a kill loses
        # the buffer in progress only)
        pending: list = []
        for buffer in self._buffers(jobs):
            self._run(buffer, keep_emissions)
            submitted = [(job, self._decode(job, keep_emissions)) for job in buffer]
            ready, pending = (pending, submitted) if self.beam is not None else (submitted, [])
            for job, decoding in ready:
                yield self._finish(job, decoding, timestamps)
            release_memory()
        for job, decoding in pending:
            yield self._finish(job, decoding, timestamps)

    def _transcribe_auto(self, items: list, timestamps, keep_emissions) -> Iterator[Transcript]:
        from mms.asr.auto import identify_languages, own_lid_model

        arrays = {i: source for i, source in enumerate(items) if isinstance(source, np.ndarray)}
        # paths as Items; what is no input at all becomes an Item carrying its error (not a TypeError of the batch)
        items = [source if isinstance(source, (Item, np.ndarray)) else
                 Item(input_name(source, i)) if isinstance(source, INPUT_TYPES) else
                 Item(input_name(source, i), error="not an audio path, mms.manifest.Item or 16 kHz array")
                 for i, source in enumerate(items)]
        if self.rerank is not None:
            from mms.asr.rerank import transcribe_reranked

            n, weights, zeroshot = self.rerank
            items = [Item(input_name(item, i), error="re-ranking reads audio files: give a path, not an array")
                     if isinstance(item, np.ndarray) else item for i, item in enumerate(items)]
            yield from transcribe_reranked(self, items, n, weights, zeroshot, timestamps,
                                           lambda audio, error, index: Transcript(audio, None, error=error, index=index))
            return
        languages = None if self.checkpoint.language_free else self.languages
        # a model loaded with a language and asked for "auto" per call: its own LID head too, where it has one
        lid_model = self.lid_model or own_lid_model(self.checkpoint.path)
        # an Item with its own language keeps it: "auto" is the language of the inputs without one
        given = {i: item.lang for i, item in enumerate(items)
                 if isinstance(item, Item) and item.lang and item.lang != "auto" and item.error is None}
        unknown = [item for i, item in enumerate(items) if i not in given]
        identified = iter(identify_languages(unknown, languages, lid_model, self.device, self.dtype) if unknown else [])
        chosen = [(given[i], {}) if i in given else next(identified) for i in range(len(items))]
        if self.fetch_adapters is not None:
            self.fetch_adapters({lang for lang, _ in chosen if lang})
        inputs = [_LanguageArray(arrays[i], lang or "") if i in arrays else Item(item.audio, lang or "", item.text)
                  for i, (item, (lang, _)) in enumerate(zip(items, chosen))]
        for result, (lang, info) in zip(self._transcribe(inputs, None, timestamps, keep_emissions), chosen):
            if "error" in info:
                result = Transcript(result.audio, None, duration=result.duration, error=info["error"],
                                    index=result.index)
            elif info:
                result.lid = info
            yield result

    def _buffers(self, jobs: Iterable[_Job]) -> Iterator[list[_Job]]:
        buffer, buffered = [], 0
        for job in jobs:
            buffer.append(job)
            buffered += job.samples
            if buffered >= self.buffer_samples:
                yield buffer
                buffer, buffered = [], 0
        if buffer:
            yield buffer

    def _prepare(self, i: int, source, default_lang: str | None) -> _Job:
        if isinstance(source, _LanguageArray):  # an array whose language --lang auto identified
            source, default_lang = source.wave, source.lang
        name = input_name(source, i)
        job = _Job(i, name, source.lang if isinstance(source, Item) and source.lang is not None else default_lang)
        if job.lang == "":  # lang="auto" found no language for it: its error comes from the LID pass
            job.error = f"{name}: no language"
            return job
        if isinstance(source, Item) and source.error is not None:  # a manifest line that could not be read
            job.error = str(AudioError(name, source.error))
            return job
        try:
            if not isinstance(source, INPUT_TYPES):
                raise AudioError(name, "not an audio path, mms.manifest.Item or 16 kHz array")
            if isinstance(source, np.ndarray):
                wave = array_waveform(source, name)
            else:
                wave = load_audio(name)
            if self.runner.frames(wave.size) < 1:  # an empty transcript would pass for speech without words
                raise AudioError(name, f"too short ({wave.size / SAMPLE_RATE:.3f} s) for one frame of the model")
            # per-utterance standardisation over the whole input (before any windowing), in float32
            job.wave = self.runner.standardize(wave)
            job.samples = job.wave.size
        except AudioError as e:
            job.error = str(e)
        except Exception as e:  # noqa: BLE001 - one bad input must not stop the others
            job.error = f"{name}: {type(e).__name__}: {e}"
        return job

    def _run(self, jobs: list[_Job], keep_emissions: bool = False) -> None:
        """The acoustic model over every window of a buffer, grouped by language."""
        by_lang: dict[str | None, list[_Job]] = {}
        for job in jobs:
            if not job.error:
                by_lang.setdefault(job.lang, []).append(job)
        runner = self.runner
        for lang, group in by_lang.items():
            try:
                if lang is None and self._lang is None and runner.checkpoint.adapters is not None:
                    runner.lang = None  # (the adapter a per-call language left in place is not a default)
                runner.select_language(lang)
            except CheckpointError as e:
                for job in group:
                    job.error = f"{job.name}: {e}"
                continue
            windows: list[tuple[_Job, Window]] = []
            for job in group:
                job.vocab = runner.vocab
                n_frames = runner.frames(job.wave.size)
                job.frame_ids = np.zeros(n_frames, dtype=np.int32)
                job.frame_scores = np.zeros(n_frames, dtype=np.float32)
                if self.beam is not None or keep_emissions:
                    job.emissions = np.zeros((n_frames, len(runner.vocab)), dtype=np.float32)
                windows += [(job, w) for w in runner.windows(job.wave.size, self.options.chunk_seconds,
                                                             self.options.context_seconds)]
            runner.run(windows, lambda jw: jw[0].wave[jw[1].start:jw[1].end],
                       self._use, self._fail, self.batch_samples)
            for job in group:
                job.wave = None  # (its buffer is decoded while the next one runs: the audio is not needed)

    def _use(self, batch: list[tuple[_Job, Window]], logits, frame_lengths: list[int]) -> None:
        """Keep each window's frames: best label and its log-probability (and the raw logits when wanted)."""
        best, ids = logits.log_softmax(-1).max(-1)
        ids, best = ids.int().cpu().numpy(), best.cpu().numpy()
        raw = logits.cpu().numpy() if batch[0][0].emissions is not None else None
        for row, ((job, w), n) in enumerate(zip(batch, frame_lengths)):
            kept, out = slice(w.keep_from, w.keep_to), slice(w.out_at, w.out_at + w.keep_to - w.keep_from)
            job.frame_ids[out], job.frame_scores[out] = ids[row, :n][kept], best[row, :n][kept]
            if raw is not None:
                job.emissions[out] = raw[row, :n][kept]

    @staticmethod
    def _fail(item: tuple[_Job, Window], reason: str) -> None:
        job = item[0]
        job.error = job.error or f"{job.name}: {reason}"

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
        duration = round(job.samples / SAMPLE_RATE, 3) if job.samples else None
        if decoding is not None and not isinstance(decoding, Hypothesis):
            try:
                decoding = decoding.result()
            except Exception as e:  # noqa: BLE001 - a failed decode is this input's error
                job.error = f"{job.name}: beam search failed ({type(e).__name__}: {e})"
        if job.error:
            return Transcript(job.name, job.lang or None, duration=duration, error=job.error, index=job.index)
        vocab, hyp = job.vocab, decoding
        words = hyp.words(vocab, self.seconds_per_frame) if timestamps in ("word", "char") else None
        chars = hyp.chars(vocab, self.seconds_per_frame) if timestamps == "char" else None
        for timed in (words, chars):
            if timed:
                shift_times(timed, *self.time_offsets, duration if duration is not None else float("inf"))
        emissions = job.emissions
        job.wave = job.frame_ids = job.frame_scores = job.emissions = None  # free the buffer early
        return Transcript(job.name, job.lang or self.runner.lang, hyp.text, duration, None, hyp, words, chars,
                          emissions, job.index, romanized=vocab.romanized and self.beam is None)
