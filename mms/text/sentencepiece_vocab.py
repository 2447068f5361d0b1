"""SentencePiece tokenizers as CTC vocabularies: the Omnilingual ASR (omniASR) models' `omniASR_tokenizer*.model`,
or the `tokenizer.json` that transformers writes for the same pieces.

What the reference decoders do, and what the Vocabulary says so that mms.decoding.ctc does the same:
  * id = SentencePiece id; the CTC blank is id 0 (`<s>`);
  * control pieces (<s>, <pad>, </s>) and <unk> decode to nothing (fairseq2's decoder with skip_special_tokens,
    transformers' decode(skip_special_tokens=True)): `silent`;
  * the word delimiter is the space piece: a literal " " in the published tokenizers (transformers' converter and
    sherpa-onnx treat it so), "▁" in a SentencePiece model trained with escaped whitespace; both are supported,
    and pieces that carry it ("▁the") are split at decoding (`split_pieces`).
The text is the pieces joined with the delimiter turned into a space, stripped: SentencePiece's own decode for
these tokenizers, up to leading and trailing spaces.
"""

from __future__ import annotations

import json
from pathlib import Path

from mms.files import missing_file
from mms.text.vocab import Vocabulary, VocabularyError

SPACES = (" ", "\u2581")  # a literal space piece first, then SentencePiece's escaped space "▁"


def _vocabulary(tokens: list[str], silent: set[int], source: str) -> Vocabulary:
    delimiter = next((s for s in SPACES if s in tokens), None)
    if delimiter is None:
        raise VocabularyError(f"{source}: no space piece (' ' or '\u2581'): not a speech recognition tokenizer")
    return Vocabulary(tokens=tokens, blank=0, word_delimiter=delimiter, silent=frozenset(silent - {0}),
                      delimiter_replacement=" ", split_pieces=True)


def from_sentencepiece(path: str | Path) -> Vocabulary:
    """A SentencePiece `.model` file (read with the `sentencepiece` package)."""
    import sentencepiece

    try:
        sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as e:
        raise VocabularyError(f"{path}: not a SentencePiece model ({str(e).strip().splitlines()[0]})") from None
    size = sp.get_piece_size()
    tokens = [sp.id_to_piece(i) for i in range(size)]
    silent = {i for i in range(size) if sp.is_control(i) or sp.is_unknown(i)}
    return _vocabulary(tokens, silent, str(path))


def from_tokenizer_json(path: str | Path) -> Vocabulary:
    """A transformers `tokenizer.json` (a Unigram model over the same pieces; special added tokens are silent)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        if isinstance(vocab, dict):  # {token: id} (WordPiece, BPE)
            tokens = [""] * (max(vocab.values()) + 1)
            for token, i in vocab.items():
                tokens[i] = token
        else:  # Unigram: [[piece, score], ...] in id order
            tokens = [str(entry[0]) for entry in vocab]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        raise VocabularyError(f"{path}: not a tokenizers vocabulary ({type(e).__name__}: {e})") from None
    silent = set()
    for added in data.get("added_tokens") or []:
        i = int(added["id"])
        tokens += [""] * (i + 1 - len(tokens))
        tokens[i] = added["content"]
        if added.get("special"):
            silent.add(i)
    return _vocabulary(tokens, silent, str(path))


def load_tokenizer(path: str | Path) -> Vocabulary:
    """A SentencePiece `.model` file, or a transformers `tokenizer.json`."""
    path = Path(path)
    if why := missing_file(path, "tokenizer file"):
        raise VocabularyError(f"{path}: {why}")
    if path.suffix == ".json":
        return from_tokenizer_json(path)
    return from_sentencepiece(path)

