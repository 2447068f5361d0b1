"""Forced alignment of a transcript to long audio, as MMS data_prep (align_and_segment.py) does it.

    from mms.align import Aligner
    aligner = Aligner.load("ctc_alignment_mling_uroman_model.pt", device="cpu")
    result = aligner.align("chapter.flac", open("chapter.txt").read().splitlines(), lang="ful", star=True)
    for line in result.lines:
        print(line.start, line.end, line.text)
    for result in aligner.align_iter([("a.wav", "first line\nsecond line"), ("b.wav", ["one line"])]):
        print(result.name, result.error or len(result.lines))   # a pair that fails does not stop the others

The model is run through mms.runner.ModelRunner (language adapters, standardisation, padded batches
with out-of-memory halving); the results are mms.results types (a Line is a Segment, words and characters
are Words), written by mms.writers.alignment.AlignmentWriter.

Steps (fairseq's, with the documented differences):
  1. Text: each line is stripped and normalised (mms.text.normalize.text_normalize, per language). For a
     romanising model (the MMS alignment model: no word-boundary token) the normalised line is romanised
     with uroman (`-l lang` only for the languages data_prep passes it for), lower-cased, reduced to
     [a-z'] and spelt as space-separated characters ("h e l l o w o r l d"). For an ASR model (any MMS CTC
     model, in the language chosen with `lang`) the tokens are the normalised characters, words separated by
     the model's word delimiter. Tokens the model does not know are dropped (fairseq drops them from the
     targets too).
  2. Emissions: channel 0 of the audio, at 16 kHz, cut as fairseq cuts it: for i = 0, 30, 60, ... s the
     model sees [i-3, i+33] s and frames [i, i+30) s are kept; windows are batched. log_softmax over the
     model's outputs; with `star`, a column of zeros (probability 1) is appended for the `<star>` token,
     which then stands for any audio before the first line.
  3. One global Viterbi alignment (mms.align.viterbi.forced_align), collapsed into runs of equal labels
     whose `end` is the INCLUSIVE last frame; each line's span is found by walking the runs against its
     tokens and padded with neighbouring blanks: before a line by the whole previous blank for the first
     line, else from that blank's middle (int((start+end)/2)); after it by the whole next blank for the last
     line, else up to its middle (floor((start+end)/2)).
  4. Line i: start = first frame x stride, end = last frame (inclusive) x stride, stride in ms =
     samples * 1000 / frames / 16000.
  5. Word and character times (not in data_prep): from the frames of their tokens, [first frame, last frame
     + 1) x stride, then moved by the model's emission lag when one is known (`time_offsets`, or the model's
     config.json "word_time_offsets": [start, end] seconds, measured for the shipped demo model): a CTC model
     emits a letter at some point of its sound, usually after its onset; line times are left as data_prep's.
Differences from data_prep: empty lines at the start (an assertion error there) get the first run of the
first non-empty line, as later empty lines get the last run of the line before; the audio may be in any
format or rate (resampled to 16 kHz); windows are batched.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch

from mms.align.viterbi import AlignmentError, forced_align
from mms.audio import SAMPLE_RATE, AudioError, array_waveform, load_audio
from mms.batching import input_name
from mms.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from mms.decoding.ctc import collapse
from mms.errors import MMSError
from mms.models.wav2vec2 import total_stride
from mms.runner import ModelRunner, Window
from mms.options import AlignOptions
from mms.results import Segment, Task, Word, shift_times
from mms.text import show_chars
from mms.text.normalize import text_normalize

STAR = "<star>"

# a line whose frames have a mean probability below this is hardly the audio's (measured on the demo model: 0.43-0.69
# for its own transcript's lines, 0.0003 for an unrelated sentence)
UNLIKELY_SCORE = 0.01


def unlikely_lines(lines) -> list[tuple[int, float]]:
    """(index in the transcript, score) of the text lines scored below UNLIKELY_SCORE."""
    return [(line.index, line.score) for line in lines
            if line.text and line.text != STAR and line.score is not None and line.score < UNLIKELY_SCORE]


# A line whose span lasts this many times longer per character than the recording's median line, and more than
# STRETCHED_SECONDS, has taken in speech the transcript lacks (lines left out of it: it aligns anyway, silently).
STRETCHED_RATIO, STRETCHED_SECONDS = 4.0, 5.0


def stretched_lines(lines) -> list[tuple[int, float]]:
    """(index in the transcript, seconds) of the text lines whose span is far longer than their text takes."""
    timed = [(line, (line.end - line.start) / len(line.normalized_text)) for line in lines
             if line.text and line.text != STAR and line.normalized_text and line.end > line.start]
    if len(timed) < 3:
        return []
    typical = float(np.median([rate for _, rate in timed]))
    return [(line.index, round(line.end - line.start, 1)) for line, rate in timed
            if rate > STRETCHED_RATIO * typical and line.end - line.start > STRETCHED_SECONDS]


# languages for which data_prep passes `-l <iso>` to uroman (it lists ell and eng twice)
UROMAN_LANGS = frozenset("ara bel bul deu ell eng fas grc heb kaz kir lav lit mkd mkd2 oss pnt pus rus srp srp2 "
                         "tur uig ukr yid".split())


@dataclass
class FrameRun:
    """A run of frames with the same label; `end` is the last frame (inclusive), as in data_prep."""

    label: str
    start: int
    end: int
    score: float = 0.0  # summed log-probability of its frames


@dataclass(kw_only=True)
class Line(Segment):
    """One line of the transcript, aligned: a Segment (text, start and end seconds, words) with its frame span
    and the alignment's details. start = start_frame * stride_ms / 1000 and end = end_frame * stride_ms / 1000,
    as data_prep computes them (so the last frame's own 20 ms are not included)."""

    index: int
    normalized_text: str
    tokens: str  # space-separated alignment units (uroman characters for the alignment model)
    start_frame: int  # first frame of the padded span
    end_frame: int  # last frame of the padded span (inclusive)
    score: float | None = None  # mean probability of the line's non-blank frames
    chars: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"index": self.index, "text": self.text, "normalized_text": self.normalized_text,
                "tokens": self.tokens, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": self.score, "words": [w.to_dict() for w in self.words],
                "chars": [c.to_dict() for c in self.chars]}


@dataclass
class Spelling:
    """A transcript as the aligner spells it: per line the normalised text, its words as lists of the model's
    tokens (words with none left out) and their names; what could not be spelt (characters, whole words)."""

    normalized: list[str]
    words: list[list[list[str]]] = field(default_factory=list)
    names: list[list[str]] = field(default_factory=list)
    unspelled: list[str] = field(default_factory=list)
    lost_words: list[str] = field(default_factory=list)


@dataclass
class Alignment:
    """The alignment of one (audio, transcript) pair: an mms.results.Result."""

    audio: str
    lang: str | None
    duration: float | None = None
    stride_ms: float | None = None
    lines: list[Line] = field(default_factory=list)
    error: str | None = None
    index: int = 0  # the pair's position among align_iter's pairs
    unspelled: list[str] = field(default_factory=list)  # characters of the text the model has no token for
    lost_words: list[str] = field(default_factory=list)  # words of the text with no character left to align
    name: str = ""  # its output name (sub-directory in a manifest run): align_iter gives each pair a distinct one
    # (the Pair's name, else its audio file's stem: utt, utt_2, ...); align alone: its audio
    wave: np.ndarray | None = field(default=None, repr=False)  # the 16 kHz channel-0 audio that was aligned

    def __post_init__(self):
        self.name = self.name or self.audio

    @property
    def subtitles(self) -> list[Line]:
        """The lines a subtitle file shows: those of the transcript with text (not <star>) that was aligned (a line
        that normalises to nothing, such as digits alone, has no audio of its own)."""
        return [line for line in self.lines if line.text and line.text != STAR and line.tokens]

    def to_dict(self) -> dict:
        record = {"index": self.index, "audio": self.audio, "name": self.name, "lang": self.lang,
                  "duration": self.duration, "stride_ms": self.stride_ms, "lines": [line.to_dict() for line in self.lines]}
        if self.unspelled:
            record["unspelled"], record["lost_words"] = self.unspelled, self.lost_words
        if self.error is not None:
            record["error"] = self.error
        return record


@dataclass
class Pair:
    """One input of Aligner.align_iter: audio (a path or a 16 kHz array) and its transcript."""

    audio: str | np.ndarray
    text_path: str | None = None  # a transcript file, or ...
    lang: str | None = None
    text: str | list[str] | None = None  # ... the transcript: its lines, or one string of lines split at "\n"
    name: str | None = None  # its sub-directory in a manifest run
    error: str | None = None  # a manifest line that could not be read: reported in its place, nothing aligned

    def lines(self) -> list[str]:
        if self.text_path is None:
            return self.text.split("\n") if isinstance(self.text, str) else list(self.text)
        try:
            with open(self.text_path, encoding="utf-8-sig") as f:  # (a byte-order mark is not text)
                return [line.strip() for line in f]
        except UnicodeDecodeError as e:
            raise AlignmentError(f"{self.text_path}: not UTF-8 text ({e.reason})") from None


def load_first_channel(path: str) -> np.ndarray:
    """Channel 0 at 16 kHz, as data_prep keeps it (mms.audio.load_audio averages the channels by default; formats
    only ffmpeg reads are averaged still)."""
    return load_audio(path, channel=0)


def fairseq_windows(n_samples: int, frames_per_second: float, chunk: float = 30.0, context: float = 3.0,
                    n_frames_of=None) -> list[Window]:
    """data_prep's windows: for i = 0, chunk, 2 chunk, ... < duration, input [max(i-context, 0),
    min(i+chunk+context, duration)] seconds, keeping output frames [ftf(i) - ftf(in), ftf(i+chunk) - ftf(in))
    with ftf(t) = int(t * frames_per_second). `n_frames_of(samples)` gives a window's output length.
    (Not ModelRunner.windows: these are cut in seconds, as data_prep cuts them, for the same frames.)"""
    windows, out_at, i = [], 0, 0.0
    duration = n_samples / SAMPLE_RATE
    while i < duration:
        in_start, in_end = max(i - context, 0.0), min(i + chunk + context, duration)
        start, end = int(SAMPLE_RATE * in_start), min(n_samples, int(round(SAMPLE_RATE * in_end)))
        offset = int(in_start * frames_per_second)
        keep_from = int(i * frames_per_second) - offset
        keep_to = min(int((i + chunk) * frames_per_second) - offset, n_frames_of(end - start))
        if keep_to > keep_from:
            windows.append(Window(start, end, keep_from, keep_to, out_at))
            out_at += keep_to - keep_from
        i += chunk
    return windows


def merge_repeats(path, tokens: list[str], scores: np.ndarray) -> list[FrameRun]:
    """Runs of equal frame labels -> FrameRuns with inclusive end frames."""
    labels, starts, ends = collapse(np.asarray(path))
    return [FrameRun(tokens[label], start, end - 1, float(scores[start:end].sum()))
            for label, start, end in zip(labels.tolist(), starts.tolist(), ends.tolist())]


def line_intervals(line_tokens: list[list[str]], runs: list[FrameRun], blank: str) -> list[tuple[int, int]]:
    """(first, last) run index of every line, walking the non-blank runs against the lines' tokens. An empty
    line gets the run that ended the line before it (or, at the start, the first run of the first non-empty
    line)."""
    intervals: list[tuple[int, int] | None] = []
    line, pos, first = 0, 0, 0
    while line < len(line_tokens) and not line_tokens[line]:
        intervals.append(None)
        line += 1
    for index, run in enumerate(runs):
        if run.label == blank or line == len(line_tokens):
            continue
        expected = line_tokens[line][pos]
        if run.label != expected:
            raise RuntimeError(f"alignment path has {run.label!r} where {expected!r} was expected")
        if pos == 0:
            first = index
        pos += 1
        if pos == len(line_tokens[line]):
            intervals.append((first, index))
            line, pos = line + 1, 0
            while line < len(line_tokens) and not line_tokens[line]:
                intervals.append((index, index))
                line += 1
    lead = next((iv for iv in intervals if iv is not None), None)
    return [(lead[0], lead[0]) if iv is None else iv for iv in intervals]


def padded_spans(intervals: list[tuple[int, int]], runs: list[FrameRun], blank: str) -> list[tuple[int, int]]:
    """(start frame, end frame inclusive) of every line, padded into the neighbouring blanks as data_prep."""
    spans = []
    for n, (first, last) in enumerate(intervals):
        start, end = runs[first].start, runs[last].end
        if first > 0 and runs[first - 1].label == blank:
            before = runs[first - 1]
            start = before.start if n == 0 else int((before.start + before.end) / 2)
        if last + 1 < len(runs) and runs[last + 1].label == blank:
            after = runs[last + 1]
            end = after.end if n == len(intervals) - 1 else math.floor((after.start + after.end) / 2)
        spans.append((start, end))
    return spans


def pair_error(name: str, error: BaseException) -> str:
    """The one-line reason a pair failed, naming its audio."""
    if isinstance(error, AudioError):
        return str(error)  # "path: reason" already
    if isinstance(error, OSError) and error.filename and error.strerror:
        reason = f"{error.filename}: {error.strerror}"
    elif isinstance(error, MMSError):
        reason = (str(error).splitlines() or [""])[0]
    else:  # out of memory, mostly
        reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"
    return f"{name}: {reason}"


class Aligner(Task):
    """A CTC model (the MMS alignment model, or any MMS ASR model in one language) used for forced alignment."""

    def __init__(self, model: ModelRunner | Checkpoint, device="auto", dtype="auto", lang: str | None = None,
                 options: AlignOptions | None = None):
        """`model`: a ModelRunner, or a Checkpoint to run on `device` in `dtype`. `lang`: the language of the
        pairs that name none (the adapter of a multilingual model; the text's normalisation and uroman rules)."""
        self.options = options = options or AlignOptions()
        if isinstance(model, Checkpoint):
            if model.config.vocab_size is None:
                raise CheckpointError(f"{model.path}: not a CTC model (no output layer)")
            model = ModelRunner(model, device, dtype, quantize=options.quantize)
        self.runner = model
        if lang is not None:
            model.set_language(lang)  # an unknown language fails here, before any audio
        self.needs_lang = lang is None and len(model.languages) > 1  # (a guess among several: not used silently)
        self.lang = None if self.needs_lang else lang or model.lang  # (not the default it will not use)
        checkpoint = model.checkpoint
        self.time_offsets = checkpoint.word_time_offsets if options.time_offsets is None \
            else tuple(options.time_offsets)
        vocab = model.vocab
        # alignment models have no word-boundary token and spell uroman; ASR vocabularies have one
        self.romanize = (vocab is not None and vocab.index(vocab.word_delimiter) is None) \
            if options.romanize is None else options.romanize
        self.normalize_audio = checkpoint.normalize if options.normalize_audio is None else options.normalize_audio

    @classmethod
    def load(cls, model=None, lang: str | None = None, device="auto", dtype="auto", dict_path=None,
             options: AlignOptions | None = None) -> "Aligner":
        """`model`: the MMS alignment model (torchaudio/data_prep .pt with its dictionary, or a Hugging Face
        directory such as mms-300m-1130-forced-aligner), or an MMS ASR model with `lang`; a published name or
        None (the registry's alignment model, mms-fa) is fetched once."""
        from mms.hub import resolve_model

        path = resolve_model(model, task="align", lang=lang)
        return cls(load_checkpoint(path, dict_path), device, dtype, lang, options)

    @property
    def vocab(self):
        return self.runner.vocab

    @property
    def frames_per_second(self) -> float:
        return SAMPLE_RATE / total_stride(self.runner.config.conv_stride)

    # -- text ------------------------------------------------------------------------------------------------
    def tokenize(self, lines: list[str], lang: str | None) -> Spelling:
        """The lines normalised and spelt in the tokens the model knows (see Spelling)."""
        normalized = [text_normalize(line.strip(), lang) for line in lines]
        known = set(self.vocab.tokens)
        if self.romanize:
            from mms.text.romanize import romanize_lines

            spelt = [text.lower() for text in romanize_lines(normalized, lang if lang in UROMAN_LANGS else None)]
            known = {c for c in known if "a" <= c <= "z" or c == "'"}
        else:
            spelt = normalized
        spelling = Spelling(normalized)
        unspelled: dict[str, None] = {}  # ordered set
        for text, original in zip(spelt, normalized):
            # a word's name is its normalised form (when romanisation kept the word count), else its spelling
            names = original.split() if len(original.split()) == len(text.split()) else text.split()
            words, kept = [], []
            for name, word in zip(names, text.split()):
                tokens = [c for c in word if c in known]
                unspelled.update((c, None) for c in word if c not in known)
                if tokens:
                    words.append(tokens)
                    kept.append(name)
                else:
                    spelling.lost_words.append(name)
            spelling.words.append(words)
            spelling.names.append(kept)
        spelling.unspelled = list(unspelled)
        return spelling

    # -- audio -----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def emissions(self, wave: np.ndarray) -> tuple[torch.Tensor, float]:
        """[T, V] float32 log-probabilities on the CPU for a 16 kHz waveform, and the stride in ms."""
        runner = self.runner
        wave = runner.standardize(wave, enabled=self.normalize_audio)
        windows = fairseq_windows(wave.size, self.frames_per_second, self.options.chunk_seconds,
                                  self.options.context_seconds, runner.frames)
        if not windows:
            raise AlignmentError(f"audio too short ({wave.size / SAMPLE_RATE:.3f} s) for one frame")
        total = windows[-1].out_at + windows[-1].keep_to - windows[-1].keep_from
        out = torch.empty(total, runner.model.lm_head.out_features, dtype=torch.float32)

        def use(batch: list[Window], logits: torch.Tensor, frames) -> None:
            for w, row in zip(batch, logits.cpu()):
                out[w.out_at:w.out_at + w.keep_to - w.keep_from] = row[w.keep_from:w.keep_to]

        def fail(window: Window, reason: str) -> None:
            raise AlignmentError(reason)  # a window missing would misplace every line after it

        runner.run(windows, lambda w: wave[w.start:w.end], use, fail, runner.batch_samples(self.options.batch_seconds))
        stride_ms = wave.size * 1000 / total / SAMPLE_RATE
        return out.log_softmax(-1), stride_ms

    # -- alignment -------------------------------------------------------------------------------------------
    def align_iter(self, pairs: Iterable, star: bool = False, lang: str | None = None,
                   keep_audio: bool = False) -> Iterator[Alignment]:
        """One Alignment per pair, in order, each computed when it is asked for (a pair's audio and text are
        read in its turn). A pair is a Pair or an (audio, text) tuple: audio a path or a 16 kHz array, text a
        list of lines or one string of lines. `lang`: for pairs that name none (else the Aligner's). A pair
        that cannot be aligned gets `error` (one line naming its audio) and the others go on."""
        if isinstance(pairs, (str, bytes, os.PathLike, Pair)) or (isinstance(pairs, tuple) and len(pairs) == 2
                                                                   and isinstance(pairs[1], str)):
            raise TypeError("align_iter takes an iterable of pairs (a Pair or an (audio, text) tuple each); for "
                            "one pair, align(audio, lines) or align_iter([pair])")
        seen: set[str] = set()  # output names: distinct, so that a directory writer keeps every pair apart
        for index, pair in enumerate(pairs):
            if not isinstance(pair, Pair):
                if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], (str, list, tuple))):
                    result = Alignment(f"<pair {index}>", lang or self.lang, error=f"<pair {index}>: not a Pair or "
                                       f"an (audio, text) tuple with text a string or list of lines")
                    result.index = index
                    yield result
                    continue
                audio, text = pair
                pair = Pair(audio, text=text)
            audio = input_name(pair.audio, index)
            name = unique_name(pair.name or audio_stem(pair.audio), seen)
            if pair.error is not None:  # a manifest line that could not be read (read_pairs)
                result = Alignment(audio, pair.lang or lang or self.lang, error=pair.error)
                result.index, result.name = index, name
                yield result
                continue
            try:
                result = self.align(pair.audio, pair.lines(), lang=pair.lang or lang, star=star,
                                    keep_audio=keep_audio, name=audio)
            except (MMSError, OSError, RuntimeError, MemoryError) as e:  # not a bug: this pair's own problem
                result = Alignment(audio, pair.lang or lang or self.lang, error=pair_error(audio, e))
            result.index, result.name = index, name
            yield result

    def align(self, audio, lines: list[str], lang: str | None = None, star: bool = False,
              keep_audio: bool = False, name: str | None = None) -> Alignment:
        """Align `lines` (one output segment each) to `audio` (a path or a 16 kHz float array); raises what
        stops it (AudioError, AlignmentError, ...). `name`: how an array is named in errors (default "<array>")."""
        if lang is None and self.needs_lang:  # (it aligned with the first adapter's alphabet, saying nothing)
            raise MMSError(f"{self.runner.checkpoint.path} has {len(self.runner.languages)} languages: give the "
                           f"text's language (--lang, or a `lang` of the pair)")
        lang = lang or self.lang
        self.runner.select_language(lang)
        if isinstance(lines, str):  # one string of lines, as Pair takes it (not one line per character)
            lines = lines.split("\n")
        if isinstance(audio, np.ndarray):
            name = name or "<array>"
            wave = array_waveform(audio, name)
        else:
            name = os.fspath(audio)
            wave = load_first_channel(name)
        result = Alignment(name, lang, duration=round(wave.size / SAMPLE_RATE, 3))
        texts = [line.strip() for line in lines]
        # a line that is `<star>` alone is the token itself (speech the transcript does not hold), as --star's
        # first line: not normalised into the word "star"
        stars = [i for i, text in enumerate(texts) if text == STAR]
        spelling = self.tokenize(["" if i in stars else text for i, text in enumerate(texts)], lang)
        normalized, words, names = spelling.normalized, spelling.words, spelling.names
        result.unspelled, result.lost_words = spelling.unspelled, spelling.lost_words
        line_tokens = [[c for word in ws for c in word] for ws in words]
        if not self.romanize:  # ASR vocabularies: the word delimiter between words
            line_tokens = [sum(([self.vocab.word_delimiter] + w if i else w for i, w in enumerate(ws)), [])
                           for ws in words]
        if not any(line_tokens):  # checked before --star's line, which is never empty
            if spelling.unspelled:
                raise AlignmentError(f"nothing to align: the model cannot spell any character of the text (left out: "
                                     f"{show_chars(spelling.unspelled[:20])}; is --lang that of the text?)")
            raise AlignmentError("nothing to align: every line is empty after normalisation")
        for i in stars:
            normalized[i], line_tokens[i], words[i], names[i] = STAR, [STAR], [[STAR]], [STAR]
        if star:
            texts, normalized, line_tokens = [STAR] + texts, [STAR] + normalized, [[STAR]] + line_tokens
            words, names = [[[STAR]]] + words, [[STAR]] + names

        emissions, stride_ms = self.emissions(wave)
        tokens = list(self.vocab.tokens)
        if star or stars:
            emissions = torch.cat([emissions, torch.zeros(emissions.shape[0], 1)], dim=1)
            tokens.append(STAR)
        index = {t: i for i, t in enumerate(tokens)}
        blank = tokens[self.vocab.blank]
        targets = torch.tensor([index[t] for toks in line_tokens for t in toks], dtype=torch.int32)
        labels, scores = forced_align(emissions[None], targets[None], blank=self.vocab.blank)
        runs = merge_repeats(labels[0].numpy(), tokens, scores[0].numpy())
        intervals = line_intervals(line_tokens, runs, blank)
        spans = padded_spans(intervals, runs, blank)

        result.stride_ms = stride_ms
        seconds = stride_ms / 1000
        for i, ((first, last), (start, end)) in enumerate(zip(intervals, spans)):
            line = Line(texts[i], start * stride_ms / 1000, end * stride_ms / 1000, index=i,
                        normalized_text=normalized[i], tokens=" ".join(line_tokens[i]), start_frame=start,
                        end_frame=end)
            if line_tokens[i]:
                units = [r for r in runs[first:last + 1] if r.label != blank]
                frames = sum(r.end - r.start + 1 for r in units)
                line.score = round(math.exp(sum(r.score for r in units) / frames), 4)
                line.chars, line.words = self._units(units, words[i], names[i], seconds)
            result.lines.append(line)
        # the model's lag is taken off over the whole recording at once: per line, a line's first word could be
        # moved before the previous line's last one
        for kind in ("chars", "words"):
            shift_times([x for line in result.lines for x in getattr(line, kind)], *self.time_offsets, result.duration)
        if keep_audio:
            result.wave = wave
        return result

    def _units(self, units: list[FrameRun], words: list[list[str]], names: list[str],
               seconds: float) -> tuple[list[Word], list[Word]]:
        """Character and word times ([first frame start, last frame end)) and mean frame probabilities."""
        def timed(label: str, runs: list[FrameRun]) -> Word:
            frames = sum(r.end - r.start + 1 for r in runs)
            return Word(label, round(runs[0].start * seconds, 3), round((runs[-1].end + 1) * seconds, 3),
                        round(math.exp(sum(r.score for r in runs) / frames), 4))

        content = [r for r in units if r.label != self.vocab.word_delimiter]
        chars = [timed(r.label, [r]) for r in content]
        word_list, pos = [], 0
        for name, w in zip(names, words):
            word_list.append(timed(name, content[pos:pos + len(w)]))
            pos += len(w)
        return chars, word_list


def read_pairs(manifest: str) -> list[Pair]:
    """(audio, transcript) pairs of a JSONL manifest (audio/audio_filepath, text or text_filepath, lang) or
    of a fairseq .tsv with its .wrd; each gets a distinct output name from its audio file name. A line that cannot
    be read is a pair with an `error`, named MANIFEST:LINE, in its place (the other pairs are aligned)."""
    import json

    from mms.manifest import read_manifest

    items = read_manifest(manifest, keep_bad_lines=True)
    text_files: list[str | None] = [None] * len(items)
    if not manifest.endswith(".tsv"):
        with open(manifest, encoding="utf-8-sig") as f:
            lines = [line for line in f if line.strip()]
        base = os.path.dirname(os.path.abspath(manifest))
        text_files = []
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None  # its item carries the error
            path = record.get("text_filepath") if isinstance(record, dict) else None
            text_files.append(os.path.join(base, path) if isinstance(path, str) and path else None)
    pairs, seen = [], set()
    for item, text_file in zip(items, text_files):
        error = item.error
        if error is None and item.text is None and text_file is None:
            error = "no transcript: needs text or text_filepath"
        if error is not None:
            pairs.append(Pair(item.audio, error=f"{item.audio}: {error}", name=item.audio))
            continue
        pairs.append(Pair(item.audio, text_file, item.lang, item.text, unique_name(audio_stem(item.audio), seen)))
    return pairs


def audio_stem(audio) -> str:
    """The file name of a pair's audio without its suffix ("array" for an array): its default output name."""
    if isinstance(audio, np.ndarray):
        return "array"
    return os.path.splitext(os.path.basename(os.fspath(audio)))[0] or "audio"


def unique_name(stem: str, seen: set) -> str:
    """`stem`, made distinct from the names in `seen` ("utt", "utt" and "utt_2": utt, utt_2, utt_2_2), and added
    to it."""
    name, count = stem, 1
    while name in seen:
        count += 1
        name = f"{stem}_{count}"
    seen.add(name)
    return name
