"""Where a Hugging Face MMS wav2vec2 directory keeps its languages, as file names and vocab.json shapes: the one
copy of these rules, for the loader (huggingface.py) and for the model hub (mms.hub), which needs them to fetch
and list adapters without loading a model. No torch here.

    adapter.<lang>.safetensors   the adapter weights of one language (adapter.<lang>.bin in older repos)
    vocab.json                   {token: id} for one language, or {lang: {token: id}} nested by language
"""

from __future__ import annotations

import json
from pathlib import Path

from mms.text.vocab import is_nested_vocab

VOCAB_FILE = "vocab.json"
ADAPTER_SUFFIXES = (".safetensors", ".bin")  # the preferred first


def adapter_filenames(lang: str) -> tuple[str, ...]:
    """The files that may hold the adapter of `lang`, the preferred first ("*" gives glob patterns)."""
    return tuple(f"adapter.{lang}{suffix}" for suffix in ADAPTER_SUFFIXES)


def adapter_languages(model_dir: Path) -> set[str]:
    """The languages with an adapter file in `model_dir`."""
    return {p.name.split(".")[1] for p in Path(model_dir).glob("adapter.*.*") if p.suffix in ADAPTER_SUFFIXES}


def read_vocab(model_dir: Path) -> dict | None:
    """vocab.json of `model_dir`; None when it is missing or unreadable."""
    try:
        return json.loads((Path(model_dir) / VOCAB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def vocab_languages(vocab: dict | None) -> list[str] | None:
    """The languages of a vocab.json nested by language; None for a flat one (a single-language model)."""
    return sorted(vocab) if vocab and is_nested_vocab(vocab) else None
