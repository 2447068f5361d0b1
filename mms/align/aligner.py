"""Forced alignment of a transcript to long audio, as MMS data_prep (align_and_segment.py) does it.

    from mms.align import Aligner
    aligner = Aligner.load("ctc_alignment_mling_uroman_model.pt", device="cpu")
    result = aligner.align("chapter.flac", open("chapter.txt").read().splitlines(), lang="ful", star=True)
    for line in result.lines:
        print(line.start, line.end, line.text)

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
  3. One global Viterbi alignment (mms.align.viterbi.forced_align), collapsed into segments of equal labels
     whose `end` is the INCLUSIVE last frame; each line's span is found by walking the segments against its
     tokens and padded with neighbouring blanks: before a line by the whole previous blank for the first
     line, else from that blank's middle (int((start+end)/2)); after it by the whole next blank for the last
     line, else up to its middle (floor((start+end)/2)).
  4. Line i: start = first frame x stride, end = last frame (inclusive) x stride, stride in ms =
     samples * 1000 / frames / 16000.
  5. Word and character times (not in data_prep): from the frames of their tokens, [first frame, last frame
     + 1) x stride, then moved by the model's emission lag when one is known (`time_offsets`, or the model's
     config.json "word_time_offsets": [start, end] seconds, measured for the shipped demo model): a CTC model
     emits a letter at some point of its sound, usually after its onset; line times are left as data_prep's.
Differences from data_prep: empty lines at the start (an assertion error there) get the first segment of the
first non-empty line, as later empty lines get the last segment of the line before; the audio may be in any
format or rate (resampled to 16 kHz); windows are batched.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import soundfile
import soxr
import torch

from mms.asr.transcriber import ASR, Window, make_batches
from mms.decoding.ctc import shift_times
from mms.audio import SAMPLE_RATE, AudioError, load_audio
from mms.models.wav2vec2 import conv_output_lengths, total_stride
from mms.text.normalize import text_normalize

STAR = "<star>"
# languages for which data_prep passes `-l <iso>` to uroman (it lists ell and eng twice)
UROMAN_LANGS = frozenset("ara bel bul deu ell eng fas grc heb kaz kir lav lit mkd mkd2 oss pnt pus rus srp srp2 "
                         "tur uig ukr yid".split())


@dataclass
class Segment:
    """A run of frames with the same label; `end` is the last frame (inclusive), as in data_prep."""

    label: str
    start: int
    end: int
    score: float = 0.0  # summed log-probability of its frames


@dataclass
class Line:
    index: int
    text: str
    normalized_text: str
    tokens: str  # space-separated alignment units (uroman characters for the alignment model)
    start_frame: int  # first frame of the padded span
    end_frame: int  # last frame of the padded span (inclusive)
    start: float  # seconds: start_frame * stride_ms / 1000, as data_prep computes it
    end: float  # seconds: end_frame * stride_ms / 1000 (so the last frame's own 20 ms are not included)
    score: float | None = None  # mean probability of the line's non-blank frames
    words: list[dict] = field(default_factory=list)
    chars: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"index": self.index, "text": self.text, "normalized_text": self.normalized_text,
                "tokens": self.tokens, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": self.score, "words": self.words, "chars": self.chars}


@dataclass
class Alignment:
    audio: str
    lang: str | None
    duration: float | None = None
    stride_ms: float | None = None
    lines: list[Line] = field(default_factory=list)
    error: str | None = None
    wave: np.ndarray | None = field(default=None, repr=False)  # the 16 kHz channel-0 audio that was aligned

    def to_dict(self) -> dict:
        record = {"audio": self.audio, "lang": self.lang, "duration": self.duration, "stride_ms": self.stride_ms,
                  "lines": [line.to_dict() for line in self.lines]}
        if self.error is not None:
            record["error"] = self.error
        return record


def load_first_channel(path: str) -> np.ndarray:
    """Channel 0 at 16 kHz, as data_prep keeps it (mms.audio.load_audio averages the channels instead; it is
    used for mono files and for formats only ffmpeg reads)."""
    try:
        info = soundfile.info(path)
    except Exception:  # noqa: BLE001 - not for soundfile: load_audio decodes or explains
        return load_audio(path)
    if info.channels == 1:
        return load_audio(path)
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    wave = np.ascontiguousarray(data[:, 0])
    if wave.size == 0 or not np.isfinite(wave).all():
        raise AudioError(path, "empty audio or NaN/infinite samples")
    if rate != SAMPLE_RATE:
        wave = soxr.resample(wave, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return wave


def fairseq_windows(n_samples: int, frames_per_second: float, chunk: float = 30.0, context: float = 3.0,
                    n_frames_of=None) -> list[Window]:
    """data_prep's windows: for i = 0, chunk, 2 chunk, ... < duration, input [max(i-context, 0),
    min(i+chunk+context, duration)] seconds, keeping output frames [ftf(i) - ftf(in), ftf(i+chunk) - ftf(in))
    with ftf(t) = int(t * frames_per_second). `n_frames_of(samples)` gives a window's output length."""
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


def merge_repeats(path: list[int], tokens: list[str], scores: np.ndarray) -> list[Segment]:
    """Runs of equal frame labels -> segments with inclusive end frames."""
    segments, i = [], 0
    while i < len(path):
        j = i
        while j < len(path) and path[j] == path[i]:
            j += 1
        segments.append(Segment(tokens[path[i]], i, j - 1, float(scores[i:j].sum())))
        i = j
    return segments


def line_intervals(line_tokens: list[list[str]], segments: list[Segment], blank: str) -> list[tuple[int, int]]:
    """(first, last) segment index of every line, walking the non-blank segments against the lines' tokens.
    An empty line gets the segment that ended the line before it (or, at the start, the first segment of the
    first non-empty line)."""
    intervals: list[tuple[int, int] | None] = []
    line, pos, first = 0, 0, 0
    while line < len(line_tokens) and not line_tokens[line]:
        intervals.append(None)
        line += 1
    for index, seg in enumerate(segments):
        if seg.label == blank or line == len(line_tokens):
            continue
        expected = line_tokens[line][pos]
        if seg.label != expected:
            raise RuntimeError(f"alignment path has {seg.label!r} where {expected!r} was expected")
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


def padded_spans(intervals: list[tuple[int, int]], segments: list[Segment], blank: str) -> list[tuple[int, int]]:
    """(start frame, end frame inclusive) of every line, padded into the neighbouring blanks as data_prep."""
    spans = []
    for n, (first, last) in enumerate(intervals):
        start, end = segments[first].start, segments[last].end
        if first > 0 and segments[first - 1].label == blank:
            before = segments[first - 1]
            start = before.start if n == 0 else int((before.start + before.end) / 2)
        if last + 1 < len(segments) and segments[last + 1].label == blank:
            after = segments[last + 1]
            end = after.end if n == len(intervals) - 1 else math.floor((after.start + after.end) / 2)
        spans.append((start, end))
    return spans


class Aligner:
    """A CTC model (the MMS alignment model, or any MMS ASR model in one language) used for forced alignment."""

    def __init__(self, asr: ASR, romanize: bool | None = None, normalize_audio: bool | None = None,
                 chunk_seconds: float = 30.0, context_seconds: float = 3.0, batch_seconds: float = 120.0,
                 time_offsets: tuple[float, float] | None = None):
        self.asr = asr
        self.time_offsets = asr.time_offsets if time_offsets is None else tuple(time_offsets)
        vocab = asr.vocab
        # alignment models have no word-boundary token and spell uroman; ASR vocabularies have one
        self.romanize = (vocab is not None and vocab.index(vocab.word_delimiter) is None) if romanize is None \
            else romanize
        self.normalize_audio = asr.checkpoint.normalize if normalize_audio is None else normalize_audio
        self.chunk_seconds, self.context_seconds = chunk_seconds, context_seconds
        self.batch_samples = int(batch_seconds * SAMPLE_RATE)

    @classmethod
    def load(cls, model, lang: str | None = None, device="auto", dtype="auto", dict_path=None, **options) -> "Aligner":
        """`model`: the MMS alignment model (torchaudio/data_prep .pt with its dictionary, or a Hugging Face
        directory such as mms-300m-1130-forced-aligner), or an MMS ASR model with `lang`; a published name or
        None (the registry's alignment model, mms-fa) is fetched once."""
        from mms.hub import resolve_model

        path = resolve_model(model, task="align", lang=lang)
        return cls(ASR.load(path, lang=lang, device=device, dtype=dtype, dict_path=dict_path), **options)

    @property
    def vocab(self):
        return self.asr.vocab

    @property
    def frames_per_second(self) -> float:
        return SAMPLE_RATE / total_stride(self.asr.checkpoint.config.conv_stride)

    # -- text ------------------------------------------------------------------------------------------------
    def tokenize(self, lines: list[str], lang: str | None) -> tuple[list[str], list[list[list[str]]]]:
        """-> (normalised lines, per line a list of words, each a list of alignment tokens the model knows)."""
        normalized = [text_normalize(line.strip(), lang) for line in lines]
        known = set(self.vocab.tokens)
        words_per_line = []
        if self.romanize:
            from mms.text.romanize import romanize_lines

            romanized = romanize_lines(normalized, lang if lang in UROMAN_LANGS else None)
            for text in romanized:
                words = [[c for c in word.lower() if ("a" <= c <= "z" or c == "'") and c in known]
                         for word in text.split()]
                words_per_line.append(words)
        else:
            for text in normalized:
                words_per_line.append([[c for c in word if c in known] for word in text.split()])
        return normalized, [[w for w in words if w] for words in words_per_line]

    # -- audio -----------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def emissions(self, wave: np.ndarray) -> tuple[torch.Tensor, float]:
        """[T, V] float32 log-probabilities on the CPU for a 16 kHz waveform, and the stride in ms."""
        cfg = self.asr.checkpoint.config
        if self.normalize_audio:
            wave = (wave - wave.mean()) / np.sqrt(wave.var() + self.asr.checkpoint.normalize_eps)
        wave = wave.astype(np.float32, copy=False)

        def n_frames_of(n):
            return conv_output_lengths(n, cfg.conv_kernel, cfg.conv_stride)

        windows = fairseq_windows(wave.size, self.frames_per_second, self.chunk_seconds, self.context_seconds,
                                  n_frames_of)
        if not windows:
            raise ValueError(f"audio too short ({wave.size} samples) for one frame")
        total = windows[-1].out_at + windows[-1].keep_to - windows[-1].keep_from
        out = torch.empty(total, self.vocab_size, dtype=torch.float32)
        model, device, dtype = self.asr.model, self.asr.device, self.asr.dtype
        same_length = cfg.feat_extract_norm == "group"
        for batch in make_batches([w.end - w.start for w in windows], self.batch_samples, same_length):
            lengths = [windows[i].end - windows[i].start for i in batch]
            inputs = torch.zeros(len(batch), max(lengths))
            for row, i, n in zip(inputs, batch, lengths):
                row[:n] = torch.from_numpy(wave[windows[i].start:windows[i].end])
            logits, _ = model(inputs.to(device, dtype), torch.tensor(lengths, device=device))
            logits = logits.float().cpu()
            for row, i in zip(logits, batch):
                w = windows[i]
                out[w.out_at:w.out_at + w.keep_to - w.keep_from] = row[w.keep_from:w.keep_to]
        stride_ms = wave.size * 1000 / total / SAMPLE_RATE
        return out.log_softmax(-1), stride_ms

    @property
    def vocab_size(self) -> int:
        return self.asr.model.lm_head.out_features

    # -- alignment -------------------------------------------------------------------------------------------
    def align(self, audio, lines: list[str], lang: str | None = None, star: bool = False,
              keep_audio: bool = False) -> Alignment:
        """Align `lines` (one output segment each) to `audio` (a path or a 16 kHz float array)."""
        from mms.align.viterbi import forced_align

        lang = lang or self.asr.lang
        if lang and self.asr.checkpoint.adapters is not None:
            self.asr.set_language(lang)
        if isinstance(audio, np.ndarray):
            name, wave = "<array>", np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        else:
            name = os.fspath(audio)
            wave = load_first_channel(name)
        result = Alignment(name, lang, duration=round(wave.size / SAMPLE_RATE, 3))
        texts = [line.strip() for line in lines]
        normalized, words = self.tokenize(texts, lang)
        line_tokens = [[c for word in ws for c in word] for ws in words]
        if not self.romanize:  # ASR vocabularies: the word delimiter between words
            line_tokens = [sum(([self.vocab.word_delimiter] + w if i else w for i, w in enumerate(ws)), [])
                           for ws in words]
        if star:
            texts, normalized, line_tokens = [STAR] + texts, [STAR] + normalized, [[STAR]] + line_tokens
            words = [[[STAR]]] + words
        if not any(line_tokens):
            raise ValueError("nothing to align: every line is empty after normalisation")

        emissions, stride_ms = self.emissions(wave)
        tokens = list(self.vocab.tokens)
        if star:
            emissions = torch.cat([emissions, torch.zeros(emissions.shape[0], 1)], dim=1)
            tokens.append(STAR)
        index = {t: i for i, t in enumerate(tokens)}
        blank = tokens[self.vocab.blank]
        targets = torch.tensor([index[t] for toks in line_tokens for t in toks], dtype=torch.int32)
        labels, scores = forced_align(emissions[None], targets[None], blank=self.vocab.blank)
        segments = merge_repeats(labels[0].tolist(), tokens, scores[0].numpy())
        intervals = line_intervals(line_tokens, segments, blank)
        spans = padded_spans(intervals, segments, blank)

        result.stride_ms = stride_ms
        seconds = stride_ms / 1000
        for i, ((first, last), (start, end)) in enumerate(zip(intervals, spans)):
            line = Line(i, texts[i], normalized[i], " ".join(line_tokens[i]), start, end,
                        start * stride_ms / 1000, end * stride_ms / 1000)
            if line_tokens[i]:
                units = [s for s in segments[first:last + 1] if s.label != blank]
                frames = sum(s.end - s.start + 1 for s in units)
                line.score = round(math.exp(sum(s.score for s in units) / frames), 4)
                line.chars, line.words = self._units(units, words[i], normalized[i], seconds)
                for timed in (line.chars, line.words):
                    shift_times(timed, *self.time_offsets, result.duration)
            result.lines.append(line)
        if keep_audio:
            result.wave = wave
        return result

    def _units(self, units: list[Segment], words: list[list[str]], normalized: str, seconds: float):
        """Character and word times ([first frame start, last frame end)) and mean frame probabilities."""
        def timed(label, segs):
            frames = sum(s.end - s.start + 1 for s in segs)
            return {"text": label, "start": round(segs[0].start * seconds, 3),
                    "end": round((segs[-1].end + 1) * seconds, 3),
                    "score": round(math.exp(sum(s.score for s in segs) / frames), 4)}

        chars = [timed(s.label, [s]) for s in units if s.label != self.vocab.word_delimiter]
        names = normalized.split() if len(normalized.split()) == len(words) else ["".join(w) for w in words]
        word_list, pos = [], 0
        content = [s for s in units if s.label != self.vocab.word_delimiter]
        for name, w in zip(names, words):
            word_list.append(timed(name, content[pos:pos + len(w)]))
            pos += len(w)
        return chars, word_list


# ---------------------------------------------------------------------------------------------------------
# Output directories (mms align)


@dataclass
class Pair:
    audio: str
    text_path: str | None  # a transcript file, or ...
    lang: str | None
    text: str | None = None  # ... the transcript itself (lines separated by newlines)
    name: str | None = None  # sub-directory in a manifest run


def read_pairs(manifest: str) -> list[Pair]:
    """(audio, transcript) pairs of a JSONL manifest (audio/audio_filepath, text or text_filepath, lang) or
    of a fairseq .tsv with its .wrd; each gets a distinct output name from its audio file name."""
    import json

    from mms.manifest import ManifestError, read_manifest

    items = read_manifest(manifest)
    text_files: list[str | None] = [None] * len(items)
    if not manifest.endswith(".tsv"):
        with open(manifest, encoding="utf-8-sig") as f:
            records = [json.loads(line) for line in f if line.strip()]
        base = os.path.dirname(os.path.abspath(manifest))
        text_files = [os.path.join(base, r["text_filepath"]) if r.get("text_filepath") else None for r in records]
    pairs, seen = [], {}
    for n, (item, text_file) in enumerate(zip(items, text_files), 1):
        if item.text is None and text_file is None:
            raise ManifestError(manifest, n, "no transcript: needs text or text_filepath")
        stem = os.path.splitext(os.path.basename(item.audio))[0] or "audio"
        seen[stem] = seen.get(stem, 0) + 1
        name = stem if seen[stem] == 1 else f"{stem}_{seen[stem]}"
        pairs.append(Pair(item.audio, text_file, item.lang, item.text, name))
    return pairs


def read_lines(pair: Pair) -> list[str]:
    if pair.text_path is None:
        return pair.text.split("\n")
    with open(pair.text_path, encoding="utf-8") as f:
        return [line.strip() for line in f]


def manifest_lines(result: Alignment, outdir: str) -> list[str]:
    """data_prep's manifest.json lines (its keys, in its order, json.dumps defaults)."""
    import json

    out = []
    for line in result.lines:
        out.append(json.dumps({
            "audio_start_sec": line.start,
            "audio_filepath": f"{outdir}/segment{line.index}.flac",
            "duration": line.end - line.start,
            "text": line.text,
            "normalized_text": line.normalized_text,
            "uroman_tokens": line.tokens,
        }))
    return out


def write_alignment(result: Alignment, outdir: str) -> list[str]:
    """segment{i}.flac, manifest.json, subtitles.srt/.vtt, then alignment.json (written last: it marks the
    directory as finished). Returns the manifest lines."""
    import json
    from glob import escape, glob

    from mms.audio import write_audio
    from mms.outputs import format_subtitles, write_text_atomic

    os.makedirs(outdir, exist_ok=True)
    for old in glob(os.path.join(escape(outdir), "segment*.flac")):  # of an earlier run (--overwrite)
        os.remove(old)
    for line in result.lines:
        first, last = int(round(line.start * SAMPLE_RATE)), int(round(line.end * SAMPLE_RATE))
        last = max(last, first + 1)  # a zero-length line still gets a readable file (an empty FLAC is not)
        write_audio(os.path.join(outdir, f"segment{line.index}.flac"), result.wave[first:last], SAMPLE_RATE)
    lines = manifest_lines(result, outdir)
    write_text_atomic(os.path.join(outdir, "manifest.json"), "".join(x + "\n" for x in lines))
    cues = [(line.start, line.end, line.text) for line in result.lines if line.text and line.text != STAR]
    for fmt in ("srt", "vtt"):
        write_text_atomic(os.path.join(outdir, f"subtitles.{fmt}"), format_subtitles(cues, fmt))
    write_text_atomic(os.path.join(outdir, "alignment.json"),
                      json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return lines


def align_pairs(aligner: Aligner, pairs: list[Pair], outdir: str, star: bool, default_lang: str | None,
                overwrite: bool, single: bool, verbose: bool, error) -> int:
    """Align and write every pair; a manifest run skips finished pairs and gathers all manifests."""
    from mms.outputs import write_text_atomic

    failed, gathered = 0, []
    for n, pair in enumerate(pairs, 1):
        target = outdir if single else os.path.join(outdir, pair.name)
        if not single and not overwrite and os.path.exists(os.path.join(target, "alignment.json")):
            with open(os.path.join(target, "manifest.json"), encoding="utf-8") as f:
                gathered += f.read().splitlines()
            if verbose:
                print(f"mms align: [{n}/{len(pairs)}] {pair.audio}: done before, skipped", file=sys.stderr)
            continue
        try:
            result = aligner.align(pair.audio, read_lines(pair), lang=pair.lang or default_lang, star=star,
                                   keep_audio=True)
            gathered += write_alignment(result, target)
        except Exception as e:  # noqa: BLE001 - one bad pair must not stop the others
            failed += 1
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            error(reason if isinstance(e, AudioError) else f"{pair.audio}: {reason}")
            continue
        if verbose:
            print(f"mms align: [{n}/{len(pairs)}] {pair.audio}: {len(result.lines)} lines, "
                  f"{result.duration:.1f} s", file=sys.stderr)
    if not single:
        write_text_atomic(os.path.join(outdir, "manifest.json"), "".join(x + "\n" for x in gathered))
    return 1 if failed else 0
