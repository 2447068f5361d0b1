"""Greedy CTC decoding with frame times.

Text follows fairseq's viterbi decoder + `letter` post-processing and transformers' Wav2Vec2CTCTokenizer.decode
(they agree once the vocabulary says which specials are silent, see mms/text/vocab.py): collapse repeated frame
labels, drop the blank, drop silent specials, turn the word delimiter into a space, strip. SentencePiece
vocabularies (Omnilingual ASR) decode the same way once pieces that carry the delimiter are split (split_pieces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mms.results import Word
from mms.text.vocab import Vocabulary

SECONDS_PER_FRAME = 320 / 16000  # total conv stride at 16 kHz: 20 ms


@dataclass
class Unit:
    token: str
    start: int  # first frame
    end: int  # one past the last frame


@dataclass
class Hypothesis:
    text: str
    units: list[Unit]  # emitted tokens (blank and silent specials removed), delimiters included
    score: float | None = None  # sum over frames of the best log-probability (fairseq's viterbi score)
    lexicon_words: list[str] | None = None  # a lexicon search's words, as the lexicon writes them

    def words(self, vocab: Vocabulary, seconds_per_frame: float = SECONDS_PER_FRAME) -> list[Word]:
        """Words with start/end seconds, split at word delimiters; their text is the lexicon's word where a lexicon
        chose them (a zero-shot word list's spelling, not the romanised units the model emitted)."""
        words, current = [], []
        for unit in self.units + [Unit(vocab.word_delimiter, -1, -1)]:
            if unit.token == vocab.word_delimiter:
                if current:
                    words.append(Word("".join(u.token for u in current), round(current[0].start * seconds_per_frame, 3),
                                      round(current[-1].end * seconds_per_frame, 3)))
                current = []
            else:
                current.append(unit)
        if self.lexicon_words is not None and len(self.lexicon_words) == len(words):
            for word, text in zip(words, self.lexicon_words):
                word.text = text
        return words

    def chars(self, vocab: Vocabulary, seconds_per_frame: float = SECONDS_PER_FRAME) -> list[Word]:
        return [Word(u.token, round(u.start * seconds_per_frame, 3), round(u.end * seconds_per_frame, 3))
                for u in self.units if u.token != vocab.word_delimiter]


def collapse(frame_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal labels -> (label, first frame, end frame) arrays."""
    frame_ids = np.asarray(frame_ids)
    if frame_ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    change = np.flatnonzero(np.diff(frame_ids)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [frame_ids.size]])
    return frame_ids[starts], starts, ends


def units_to_text(tokens: list[str], vocab: Vocabulary) -> str:
    text = "".join(vocab.delimiter_replacement if t == vocab.word_delimiter else t for t in tokens).strip()
    if vocab.lower_case:
        text = text.lower()
    if vocab.cleanup_spaces:
        text = clean_up_tokenization(text)
    return text


def greedy_decode(frame_ids: np.ndarray, vocab: Vocabulary, score: float | None = None,
                  frame_offset: int = 0) -> Hypothesis:
    """frame_ids: argmax label per valid frame."""
    labels, starts, ends = collapse(frame_ids)
    units = [Unit(vocab.tokens[label], int(s) + frame_offset, int(e) + frame_offset)
             for label, s, e in zip(labels.tolist(), starts, ends)
             if label != vocab.blank and label not in vocab.silent]
    units = split_pieces(units, vocab)
    return Hypothesis(units_to_text([u.token for u in units], vocab), units, score)


def split_pieces(units: list[Unit], vocab: Vocabulary) -> list[Unit]:
    """SentencePiece pieces that carry the word delimiter ("▁the", "the▁") as delimiter units and text units,
    each with the piece's frames, so that text, words and characters come out as for a character vocabulary.
    Vocabularies without `split_pieces` (MMS) pass unchanged."""
    if not vocab.split_pieces:
        return units
    delimiter, out = vocab.word_delimiter, []
    for unit in units:
        if unit.token == delimiter or delimiter not in unit.token:
            out.append(unit)
            continue
        for i, part in enumerate(unit.token.split(delimiter)):
            if i:
                out.append(Unit(delimiter, unit.start, unit.end))
            if part:
                out.append(Unit(part, unit.start, unit.end))
    return out


def clean_up_tokenization(text: str) -> str:
    """transformers' PreTrainedTokenizerBase.clean_up_tokenization, applied when tokenizer_config asks for it."""
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text
