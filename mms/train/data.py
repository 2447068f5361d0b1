"""Training data: manifests -> examples (audio file, length, normalised text, language, label ids), the
vocabulary built from the transcripts, and length-bucketed batches in a reproducible order. The waveforms are
not kept: each batch reads its files again (ahead of the model, on a thread), so a corpus of any size trains in
the memory of a few batches."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from mms.audio import SAMPLE_RATE, AudioError, load_audio, standardize
from mms.batching import make_batches, pad
from mms.errors import MMSError
from mms.manifest import Item, read_manifest
from mms.text.normalize import normalize_transcript as normalize_text  # (the trainers' name for it)
from mms.text.vocab import Vocabulary

# transformers' Wav2Vec2CTCTokenizer layout: <pad> is the CTC blank; "|" separates words
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>", "|")
READ_AHEAD = 2  # batches of audio the trainers read in advance


class TrainError(MMSError):
    """A training run that cannot start or continue; the message says why in one line."""


class DataError(MMSError):
    """Training data that cannot be used; the message names the file or input and says why."""


@dataclass
class Example:
    audio: str
    lang: str
    text: str  # after MMS text normalisation
    samples: int  # the waveform's length at 16 kHz
    labels: np.ndarray | None = None  # ids in the language's vocabulary
    normalize: bool = True  # standardise the waveform (the model expects it)
    eps: float = 1e-7

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def wave(self) -> np.ndarray:
        """The float32 16 kHz waveform, read again from its file (standardised when the model expects it)."""
        wave = read_again(self.audio, self.samples)
        return (standardize(wave, self.eps) if self.normalize else wave).astype(np.float32, copy=False)


def read_again(audio: str, samples: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A training file's waveform, read again during the run (the trainers keep lengths, not samples): the same
    `samples` as when the run started, or a one-line DataError naming the file."""
    try:
        wave = load_audio(audio, sample_rate)
    except AudioError as e:
        raise DataError(f"{e} (it was read when training started)") from None
    if wave.size != samples:
        raise DataError(f"{audio}: the file changed since training started ({wave.size} samples at {sample_rate} Hz, "
                        f"{samples} before)")
    return wave


LANGUAGE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_language_code(code: str, where: str) -> None:
    """A language code names files (adapter.<lang>.safetensors): letters, digits, _ and - (eng, eng_Latn,
    cmn-script_simplified), nothing that could leave the output folder."""
    if not LANGUAGE_CODE.fullmatch(code):
        raise DataError(f"{where}: language {code!r} is not a code (letters, digits, _ and -; e.g. eng, eng_Latn)")


def check_settings(values: dict, config) -> None:
    """An architecture's settings (a config.json read into the dataclass `config`) as a user would want them
    checked: a key that is a near miss of a setting (hiden_size) is an error, not silently ignored (other keys,
    such as transformers' own, are); every integer setting, and every one in a list, a positive integer; every
    float setting finite. Raises ValueError naming the setting."""
    import difflib
    import math
    from dataclasses import fields

    known = {f.name for f in fields(config)}
    for key in values:
        close = [] if key in known else difflib.get_close_matches(key, known, n=1, cutoff=0.85)
        if close:
            raise ValueError(f"unknown setting {key!r} (did you mean {close[0]!r}?)")
    for f in fields(config):
        value, kind = getattr(config, f.name), str(f.type)
        if value is None or kind.startswith("bool"):
            continue
        if kind.startswith(("int", "tuple")):  # int, int | None, tuple[int, ...], tuple[tuple[int, ...], ...]
            items = value if isinstance(value, (list, tuple)) else [value]
            items = [x for item in items for x in (item if isinstance(item, (list, tuple)) else [item])]
            if not items or any(not isinstance(x, int) or isinstance(x, bool) or x < 1 for x in items):
                what = "a positive integer" if kind.startswith("int") else "a list of positive integers"
                raise ValueError(f"{f.name} must be {what}, not {value!r}")
        elif kind.startswith("float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, not {value!r}")


def read_examples(manifests: list[str], default_lang: str | None, normalize_audio: bool = True,
                  eps: float = 1e-7, max_seconds: float | None = None) -> tuple[list[Example], list[str]]:
    """Every usable line of the manifests, and one-line problems for the lines skipped (a line that cannot be
    read, no text, bad audio). Each file is decoded once here, to check it and measure it; its samples are not
    kept (Example.wave reads them again)."""
    examples, problems, with_digits = [], [], []
    for manifest in manifests:
        try:
            items: list[Item] = read_manifest(manifest, keep_bad_lines=True)
        except MMSError as e:  # a manifest that cannot be read
            raise DataError(str(e)) from None
        if str(manifest).endswith(".tsv") and items and all(item.text is None for item in items):
            words = os.path.splitext(str(manifest))[0] + ".wrd"  # (one line, not one "no transcript" per file)
            raise DataError(f"{manifest}: no transcripts: a fairseq .tsv takes them from {words}, one line per "
                            f"entry (not there)")
        for item in items:
            if item.error is not None:  # as a line without text or audio: skipped, and said
                problems.append(f"{item.audio}: {item.error}, skipped")
                continue
            lang = item.lang or default_lang
            if not lang:
                raise DataError(f"{manifest}: {item.audio} has no language (give --lang or a `lang` column)")
            check_language_code(lang, f"{manifest}: {item.audio}")
            if not item.text or not item.text.strip():
                problems.append(f"{item.audio}: no transcript in {manifest}, skipped")
                continue
            text = normalize_text(item.text, lang)
            if sum(c.isdecimal() for c in text) < sum(c.isdecimal() for c in item.text):
                with_digits.append(item)
            if not text:
                problems.append(f"{item.audio}: transcript is empty after normalisation, skipped")
                continue
            try:
                wave = load_audio(item.audio)
            except AudioError as e:
                problems.append(f"{e}, skipped")
                continue
            if max_seconds and wave.size > max_seconds * SAMPLE_RATE:
                problems.append(f"{item.audio}: longer than {max_seconds} s, skipped")
                continue
            examples.append(Example(item.audio, lang, text, wave.size, normalize=normalize_audio, eps=eps))
    if with_digits:  # (the audio says the number the transcript loses)
        problems.append(f"{len(with_digits)} transcripts hold numbers in digits, which the MMS normalisation removes "
                        f"(e.g. {with_digits[0].audio}: {with_digits[0].text.strip()[:60]!r}): spell them out")
    return examples, problems


def build_vocabulary(texts: list[str]) -> Vocabulary:
    """<pad>(blank) <s> </s> <unk> | then every character of the transcripts, sorted."""
    chars = sorted({c for text in texts for c in text if not c.isspace()})
    return Vocabulary(tokens=list(SPECIALS) + chars, blank=0, word_delimiter="|")


def vocab_json(vocab: Vocabulary) -> dict[str, int]:
    return {token: i for i, token in enumerate(vocab.tokens)}


def encode(text: str, vocab: Vocabulary) -> np.ndarray:
    """Characters -> ids; spaces are the word delimiter; unknown characters <unk>."""
    index = {t: i for i, t in enumerate(vocab.tokens)}
    unk = index.get("<unk>", 3)
    ids = [index[vocab.word_delimiter] if c == " " else index.get(c, unk) for c in " ".join(text.split())]
    return np.asarray(ids, dtype=np.int64)


def epoch_batches(examples: list[Example], batch_samples: int, seed: int, epoch: int,
                  mixed: bool = False) -> list[list[int]]:
    """Length-bucketed batches (of one language each unless `mixed`), in a shuffled order that depends only on
    (seed, epoch), so an interrupted epoch is re-planned identically on resume."""
    rng = np.random.default_rng([seed, epoch])
    groups = [list(range(len(examples)))] if mixed else [
        [i for i, e in enumerate(examples) if e.lang == lang] for lang in sorted({e.lang for e in examples})]
    batches = []
    for members in groups:
        if mixed:  # shuffle before bucketing, so equal lengths do not always meet the same neighbours
            members = [members[i] for i in rng.permutation(len(members))]
        for batch in make_batches([examples[i].samples for i in members], batch_samples):
            batches.append([members[i] for i in batch])
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def collate(examples: list[Example], waves: list[np.ndarray]):
    """Right-padded waveforms [B, L] (those of `examples`, read), sample counts, concatenated targets and their
    lengths (torch tensors)."""
    import torch

    waves, lengths = pad(waves)
    targets = torch.from_numpy(np.concatenate([e.labels for e in examples]))
    target_lengths = torch.tensor([e.labels.size for e in examples])
    return torch.from_numpy(waves), torch.tensor(lengths), targets, target_lengths
