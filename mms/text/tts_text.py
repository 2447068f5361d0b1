"""Text -> token ids for the MMS-TTS (VITS) voices, exactly as each checkpoint format's reference does it.

Original checkpoints (G_*.pth + vocab.txt) follow fairseq's examples/mms/tts/infer.py:
    uroman (uroman-trained voices only; whitespace collapsed) -> lower-case the whole text -> Romanian
    ț -> ţ -> drop characters not in the vocabulary -> strip -> ids -> a blank (id 0) around every id.
Hugging Face checkpoints follow transformers' VitsTokenizer:
    lower-case only characters that are not in the vocabulary -> Romanian fix -> uroman (uroman voices, and
    only when the text has a non-ASCII character) -> drop characters not in the vocabulary -> strip ->
    split on the special tokens (the id-0 symbol, a real letter such as "k" for English, and "<unk>"),
    intersperse blanks within each piece only, each special token as one bare id. So an id-0 letter at the
    edges or repeated yields fewer ids than fairseq's interspersing would.
Both references drop unknown characters silently; here they are returned (`Prepared.dropped`) for a warning.
One deliberate difference: whitespace other than a space (a tab, a no-break space), a hyphen, dash or slash
outside the vocabulary, which both references drop (joining the words around it), is a space here.

Long texts are cut into sentences first (`split_sentences`, unless the caller synthesises each input whole);
each sentence is prepared on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mms.errors import MMSError
from mms.text.numbers import spell_numbers
from mms.text.romanize import romanize


class TextError(MMSError):
    """An input text that cannot be spoken (empty, or nothing in the voice's vocabulary)."""


# Sentence-final punctuation of the scripts MMS covers. Latin-style marks end a sentence only before
# whitespace (so "3.5" and "e.g." inside words stay whole); the others also end one with no space after.
FINAL_BEFORE_SPACE = ".!?…\u037e"  # U+037E: the Greek question mark
FINAL_ANYWHERE = (
    "。！？｡．"  # CJK, full- and half-width
    "।॥"  # Devanagari and other Indic dandas
    "؟۔"  # Arabic question mark, Urdu full stop
    "።፧፨"  # Ethiopic full stop, question mark, paragraph separator
    "։"  # Armenian full stop
    "။"  # Myanmar
    "។៕"  # Khmer
    "჻"  # Georgian paragraph separator
    "᙮"  # Canadian syllabics full stop
)
CLOSERS = "\"'”’»)]}」』）"  # may follow the final mark and stay with its sentence
CLAUSE_MARKS = ",:;،؛、，；፣፤፥"  # where an over-long sentence is cut, failing a sentence end

_SENTENCE_END = re.compile(
    rf"(?:[{re.escape(FINAL_BEFORE_SPACE)}]+[{re.escape(CLOSERS)}]*(?=\s|$)"
    rf"|[{re.escape(FINAL_ANYWHERE)}]+[{re.escape(CLOSERS)}]*)")


# A full stop after these (case ignored) is taken for an abbreviation's, not a sentence's end: a pause there would
# cut "Dr. Smith" in two. Titles of Latin-script languages, and "e.g."/"i.e.". Not "no." ("The answer is no."),
# "etc." (often a sentence's end) nor single letters (an initial, "J. Smith", or "vitamin C." at a sentence's end).
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "mt", "vs", "fig", "hr", "fr", "sra", "srta",
                 "mme", "mlle", "e.g", "i.e"}

# Characters outside a voice's vocabulary that separate words (besides whitespace): hyphens, dashes, slashes.
WORD_BREAKS = "-\u2010\u2012\u2013\u2014\u2015/"


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Sentences of `text`, in order, stripped, none empty and none longer than `max_chars`: lines are split
    at sentence-final punctuation; a longer sentence is cut at its last clause mark, else its last space,
    before the limit, else at the limit (scripts written without spaces)."""
    sentences = []
    for line in text.splitlines():
        start = 0
        for end in _SENTENCE_END.finditer(line):
            if end.group() == "." and _abbreviation(line[start:end.start()]):
                continue
            sentences.append(line[start:end.end()])
            start = end.end()
        sentences.append(line[start:])
    out = []
    for sentence in sentences:
        sentence = sentence.strip()
        while len(sentence) > max_chars:
            cut = _cut_point(sentence, max_chars)
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return [s for s in out if s]


def _abbreviation(before: str) -> bool:
    """Whether the word ending `before` (the text up to a full stop) is a known abbreviation."""
    words = before.split()
    return bool(words) and words[-1].lstrip("\"'“‘«([{").lower() in ABBREVIATIONS


def _cut_point(sentence: str, max_chars: int) -> int:
    head = sentence[:max_chars]
    clause = max(head.rfind(mark) for mark in CLAUSE_MARKS)
    if clause > max_chars // 3:
        return clause + 1
    space = head.rfind(" ")
    if space > max_chars // 3:
        return space + 1
    return max_chars


@dataclass
class Prepared:
    text: str  # what the ids spell (after romanisation, case folding and filtering)
    ids: list[int]
    dropped: list[str] = field(default_factory=list)  # characters removed as not in the vocabulary, in order


@dataclass
class TtsText:
    """The text side of one voice: its symbols and which reference's preparation to follow."""

    symbols: list[str]  # id -> symbol; symbol 0 is also the blank put between letters
    style: str = "fairseq"  # "fairseq" (original checkpoints) or "transformers" (Hugging Face)
    lang: str | None = None  # ISO 639-3 code: "ron" turns on the Romanian fix
    uroman: bool = False  # the voice was trained on uroman-romanised text
    add_blank: bool = True
    normalize: bool = True  # transformers only: case folding and filtering (its tokenizer can turn them off)
    special_tokens: tuple[str, ...] = ()  # transformers only: emitted as bare ids, never interspersed
    token_to_id: dict[str, int] = field(default_factory=dict)  # {} -> built from symbols

    def __post_init__(self):
        if self.style not in ("fairseq", "transformers"):
            raise ValueError(f"unknown text preparation style {self.style!r}")
        if not self.token_to_id:
            self.token_to_id = {s: i for i, s in enumerate(self.symbols)}  # a repeated symbol: the last id wins

    def spell_numbers(self, text: str) -> str:
        """`text` with its numbers spelled as words of the voice's language (mms/text/numbers.py). Not part of
        either reference's preparation: the synthesiser and the trainer apply it before `prepare`, unless told to
        leave numbers as they are. Also where the vocabulary has digits: mms-tts-eng's has 0-6 but not 7-9, symbols
        of its training text that no speaker read as digits."""
        return spell_numbers(text, self.lang)

    def prepare(self, text: str) -> Prepared:
        if self.style == "fairseq":
            return self._prepare_fairseq(text)
        return self._prepare_transformers(text)

    def _fix_chars(self, text: str) -> str:
        # The Romanian voices were trained with ţ (cedilla); ț (comma below) is the correct, common letter.
        return text.replace("ț", "ţ") if self.lang == "ron" else text

    def _filter(self, text: str) -> tuple[str, list[str]]:
        kept, dropped = [], []
        space = " " in self.token_to_id
        for i, ch in enumerate(text):
            if ch in self.token_to_id:
                kept.append(ch)
            elif space and (ch.isspace() or ch in WORD_BREAKS):
                # Both references drop a tab, a no-break space or a dash between words, which joins the words
                # ("tab\tseparated" -> "tabseparated"): it is a word break here, where a space is not already.
                if kept and kept[-1] != " " and text[i + 1:i + 2] != " ":
                    kept.append(" ")
            else:
                dropped.append(ch)
        return "".join(kept).strip(), dropped

    def _prepare_fairseq(self, text: str) -> Prepared:
        if self.uroman:
            text = re.sub(r"\s+", " ", romanize(text)).strip()  # infer.py runs uroman.pl with -l xxx
        text, dropped = self._filter(self._fix_chars(text.lower()))
        ids = [self.token_to_id[ch] for ch in text]
        if self.add_blank:
            ids = intersperse(ids, 0)
        return Prepared(text, ids, dropped)

    def _prepare_transformers(self, text: str) -> Prepared:
        if self.normalize:
            text = self._lower_unknown(text)
        text = self._fix_chars(text)
        if self.uroman and any(ord(ch) > 127 for ch in text):
            text = romanize(text)
        # Without `normalize` transformers would map unknown characters to <unk>, an id past the embedding
        # table (an index error); they are dropped here as well.
        text, dropped = self._filter(text)
        ids: list[int] = []
        for piece in self._split_special(text):
            if piece in self.special_tokens:
                ids.append(self.token_to_id[piece])
            else:
                piece_ids = [self.token_to_id[ch] for ch in piece]
                ids += intersperse(piece_ids, 0) if self.add_blank else piece_ids
        return Prepared(text, ids, dropped)

    def _lower_unknown(self, text: str) -> str:
        """transformers' normalize_text: left to right, a vocabulary symbol (or special token) starting here
        is kept verbatim (first match in vocabulary order), any other character is lower-cased."""
        keys = list(self.token_to_id) + [t for t in self.special_tokens if t not in self.token_to_id]
        if not any(len(key) > 1 and key in text for key in keys):  # only single characters can match
            verbatim = set(keys)
            return "".join(ch if ch in verbatim else ch.lower() for ch in text)
        out, i = [], 0
        while i < len(text):
            match = next((key for key in keys if text.startswith(key, i)), None)
            if match:
                out.append(match)
                i += len(match)
            else:
                out.append(text[i].lower())
                i += 1
        return "".join(out)

    def _split_special(self, text: str) -> list[str]:
        """Non-empty pieces of `text`, each either a special token or a run without one."""
        specials = sorted((t for t in self.special_tokens if t and t in self.token_to_id), key=len, reverse=True)
        if not specials:
            return [text] if text else []
        pattern = "(" + "|".join(re.escape(t) for t in specials) + ")"
        return [piece for piece in re.split(pattern, text) if piece]


def intersperse(ids: list[int], blank: int) -> list[int]:
    """[a, b] -> [blank, a, blank, b, blank] (VITS `commons.intersperse`)."""
    out = [blank] * (2 * len(ids) + 1)
    out[1::2] = ids
    return out


def read_vocab_txt(content: str) -> list[str]:
    """Symbols of an original vocab.txt: one per line, the line number is the id, a line may be a single
    space (infer.py: readlines() with the newline removed)."""
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
