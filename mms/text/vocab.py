"""CTC vocabularies of the MMS ASR models, read from fairseq dictionaries and Hugging Face vocab.json files.

Both formats put the CTC blank at index 0 and the same symbols at the same positions; they differ in what the
special symbols are called and in which of them decode to nothing:
  fairseq:      0 <s> (blank)  1 <pad>  2 </s>  3 <unk>  4.. dictionary lines   (<s> and </s> are dropped,
                <pad> and <unk> are printed as such, as fairseq's Dictionary.string does)
  transformers: 0 <pad> (blank) 1 <s>   2 </s>  3 <unk>  4.. same symbols         (only <pad> is dropped)
flashlight token files (tokens.txt of the MMS zero-shot model): one token per line, line i = output row i, the
specials included; index 0 is the blank, `|` the word delimiter, <s>/</s> decode to nothing.
The Omnilingual ASR models use a SentencePiece tokenizer instead (mms/text/sentencepiece_vocab.py): 0 <s> (blank)
1 <pad> 2 </s> 3 <unk>, then pieces; the word delimiter is a space piece (" " or "▁").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mms.errors import MMSError

FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
UROMAN_LETTERS = "abcdefghijklmnopqrstuvwxyz'"  # what the MMS zero-shot model writes (after norm_uroman)


class VocabularyError(MMSError):
    pass


@dataclass
class Vocabulary:
    tokens: list[str]  # index -> symbol, as the output layer's rows
    blank: int = 0
    word_delimiter: str = "|"
    silent: frozenset[int] = field(default_factory=frozenset)  # ids that decode to nothing (besides the blank)
    delimiter_replacement: str = " "
    lower_case: bool = False
    cleanup_spaces: bool = False  # transformers' clean_up_tokenization (" ." -> ".", " 's" -> "'s", ...)
    # SentencePiece vocabularies (mms/text/sentencepiece_vocab.py): a piece may carry the word delimiter ("▁the");
    # decoding splits it into the delimiter and the rest, so words are cut as for a character vocabulary
    split_pieces: bool = False
    # the symbols are uroman characters (the MMS zero-shot model): greedy output is romanised text, not the language's
    romanized: bool = False

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, symbol: str) -> int | None:
        try:
            return self.tokens.index(symbol)
        except ValueError:
            return None

    # -- fairseq -------------------------------------------------------------------------------------------
    @classmethod
    def from_fairseq_symbols(cls, symbols: list[str]) -> "Vocabulary":
        """Symbols of a fairseq Dictionary with its 4 specials first (as pickled in the checkpoint's task state)."""
        symbols = list(symbols)
        blank = symbols.index("<ctc_blank>") if "<ctc_blank>" in symbols else 0
        silent = {i for i, s in enumerate(symbols[:4]) if s in ("<s>", "</s>")}
        delimiter = "<sep>" if "<sep>" in symbols else "|"
        return cls(tokens=symbols, blank=blank, word_delimiter=delimiter, silent=frozenset(silent))

    @classmethod
    def from_fairseq_dict_file(cls, path: str | Path) -> "Vocabulary":
        """A fairseq dict file (`<symbol> <count>` per line, split on the last space); specials are prepended."""
        symbols = list(FAIRSEQ_SPECIALS)
        seen = set(symbols)
        for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            line = line.rstrip()  # as fairseq: line.rstrip().rsplit(" ", 1)
            if not line.strip():
                continue
            overwrite = line.endswith(" #fairseq:overwrite")
            if overwrite:
                line = line[: -len(" #fairseq:overwrite")]
            symbol, sep, count = line.rpartition(" ")
            if not sep or not count.lstrip("-").isdigit():
                raise VocabularyError(f"{path}:{n}: expected '<symbol> <count>', got {line!r}")
            if symbol in seen and not overwrite:
                raise VocabularyError(f"{path}:{n}: duplicate symbol {symbol!r}")
            seen.add(symbol)
            symbols.append(symbol)
        return cls.from_fairseq_symbols(symbols)

    # -- flashlight token files -------------------------------------------------------------------------
    @classmethod
    def from_tokens_file(cls, path: str | Path) -> "Vocabulary":
        """A flashlight token file: the first field of each non-empty line is the token of that output row (further
        fields are flashlight's aliases, ignored). Blank = row 0; a vocabulary of uroman letters is `romanized`."""
        tokens = [line.split()[0] for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        if not tokens:
            raise VocabularyError(f"{path}: empty token file")
        duplicates = sorted({t for t in tokens if tokens.count(t) > 1})
        if duplicates:
            raise VocabularyError(f"{path}: duplicate tokens {' '.join(duplicates)}")
        silent = {i for i, t in enumerate(tokens) if t in ("<s>", "</s>") and i != 0}
        letters = {t for t in tokens if t not in FAIRSEQ_SPECIALS and t != "|"}
        return cls(tokens=tokens, blank=0, word_delimiter="|", silent=frozenset(silent),
                   romanized=bool(letters) and letters <= set(UROMAN_LETTERS))

    # -- transformers --------------------------------------------------------------------------------------
    @classmethod
    def from_hf(cls, token_to_id: dict[str, int], tokenizer_config: dict | None = None) -> "Vocabulary":
        cfg = tokenizer_config or {}
        size = max(token_to_id.values()) + 1
        tokens = ["<unk>"] * size  # transformers maps ids missing from the vocab to unk
        for token, i in token_to_id.items():
            tokens[i] = token
        pad = cfg.get("pad_token", "<pad>")
        pad = pad.get("content", "<pad>") if isinstance(pad, dict) else pad
        blank = token_to_id.get(pad, 0)
        return cls(
            tokens=tokens,
            blank=blank,
            word_delimiter=cfg.get("word_delimiter_token", "|"),
            delimiter_replacement=cfg.get("replace_word_delimiter_char", " "),
            lower_case=bool(cfg.get("do_lower_case", False)),
            cleanup_spaces=bool(cfg.get("clean_up_tokenization_spaces", False)),
        )


def read_hf_vocab(path: str | Path) -> dict[str, dict[str, int]] | dict[str, int]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_nested_vocab(vocab: dict) -> bool:
    """MMS multilingual repos nest vocab.json by language: {"eng": {"<pad>": 0, ...}, ...}."""
    return bool(vocab) and all(isinstance(v, dict) for v in vocab.values())


def read_vocabulary_file(path: str | Path) -> Vocabulary:
    """A vocabulary file given by the user (--dict): a fairseq dictionary (`<symbol> <count>` lines, specials
    implied) or a flashlight token file (one token per line, specials listed: its first line has no count)."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            if len(line.split()) == 1:
                return Vocabulary.from_tokens_file(path)
            break
    return Vocabulary.from_fairseq_dict_file(path)
