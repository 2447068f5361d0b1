"""Checkpoint formats -> one canonical in-memory form (`Checkpoint`), one module per on-disk format.

    huggingface.py  a transformers directory (config.json, model.safetensors / pytorch_model.bin,
                    adapter.<lang>.safetensors, vocab.json, tokenizer_config.json, preprocessor_config.json)
    fairseq.py      an original fairseq .pt (mms1b_all.pt, mms1b_l126.pt, base_300m.pt, ...), read with a
                    restricted unpickler (safe_pickle.py)
    torchaudio_mms_fa.py  a torchaudio wav2vec2 state dict (the MMS forced-alignment model) + its dictionary
    omniasr.py      an Omnilingual ASR CTC model as Meta publishes it: a fairseq2 .pt + a SentencePiece tokenizer
    omniasr_hf.py   the same models as a transformers `omniasr_ctc` directory

A loader never runs a forward pass; a model never reads a file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from mms.errors import MMSError
from mms.text.vocab import Vocabulary, read_vocabulary_file

if TYPE_CHECKING:  # the package itself stays torch-free: the hub reads its file-name rules (hf_layout.py)
    import torch

    from mms.models.wav2vec2 import Wav2Vec2Config


class CheckpointError(MMSError):
    """A model file or directory that cannot be used; the message names it and says why."""


def read_label_file(path: Path) -> list[str]:
    """LID dict.lang.txt: one label per line (first field); no special symbols, index = line number."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read labels ({getattr(e, 'strerror', None) or e})") from None
    return [line.split()[0] for line in text.splitlines() if line.strip()]


class UnknownLanguageError(CheckpointError):
    pass


@dataclass
class Adapters:
    """Per-language adapter weights (canonical names, adapter layers + lm_head) and vocabularies, loaded lazily."""

    languages: list[str]
    load_fn: Callable[[str], tuple[dict[str, torch.Tensor], Vocabulary]]
    source: str = ""

    def load(self, lang: str) -> tuple[dict[str, torch.Tensor], Vocabulary]:
        check_language(lang, self.languages, self.source)
        return self.load_fn(lang)


@dataclass
class Checkpoint:
    format: str  # "huggingface" or "fairseq"
    path: str
    config: Wav2Vec2Config
    state_dict: dict[str, torch.Tensor]  # canonical names (see mms/models/wav2vec2.py)
    vocab: Vocabulary | None = None  # vocabulary of the head in state_dict
    lang: str | None = None  # language of the adapter and head in state_dict, when known
    labels: list[str] | None = None  # classifier labels (LID)
    normalize: bool = True  # standardise each waveform (zero mean, unit variance) before the model
    normalize_eps: float = 1e-5  # fairseq F.layer_norm uses 1e-5, transformers' feature extractor 1e-7
    adapters: Adapters | None = None
    notes: list[str] = field(default_factory=list)
    # seconds to add to word/char start and end times: the model's measured emission lag (config.json
    # "word_time_offsets", which the shipped demo model has; see mms.results.shift_times)
    word_time_offsets: tuple[float, float] = (0.0, 0.0)
    # one output layer for every language and no language input (the Omnilingual ASR CTC models): a language given
    # to ASR is only recorded with the transcript, and --lang auto keeps LID's guess as it is
    language_free: bool = False

    @property
    def languages(self) -> list[str]:
        if self.adapters is not None:
            return self.adapters.languages
        return [self.lang] if self.lang else []


def check_language(lang: str, languages: list[str], source: str = "") -> None:
    if lang in languages:
        return
    where = f" in {source}" if source else ""
    if len(languages) <= 40:  # all of them (`mms langs` cannot read a fairseq file's list: this message tells it)
        raise UnknownLanguageError(f"no adapter for language '{lang}'{where} ({len(languages)} languages: "
                                   f"{', '.join(languages)})")
    close = difflib.get_close_matches(lang, languages, n=5, cutoff=0.5)
    close += [code for code in languages if code.startswith(lang + "-") and code not in close][:5]
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise UnknownLanguageError(f"no adapter for language '{lang}'{where} ({len(languages)} languages){hint}")


def load_checkpoint(path: str | Path, dict_path: str | Path | None = None,
                    tokenizer: str | Path | None = None) -> Checkpoint:
    """Read a model directory or file in any supported format. `tokenizer`: the SentencePiece model of an Omnilingual
    ASR checkpoint (a `dict_path` ending in .model is taken as one too)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such model file or directory")
    if path.is_dir():
        if (path / "config.json").exists():
            from mms.checkpoints import omniasr_hf

            if omniasr_hf.recognizes(path):
                return omniasr_hf.load(path, tokenizer or dict_path)
            from mms.checkpoints import huggingface

            _no_tokenizer(path, tokenizer)
            return huggingface.load(path, dict_path)
        if any(path.glob("adapter.*.safetensors")) and not any(path.glob("model*.safetensors")):
            # what `mms train-adapter` writes: adapters, not a model
            raise CheckpointError(f"{path}: an adapter directory (mms train-adapter), not a model; use it with "
                                  f"--model BASE --adapter {path}")
        pts = sorted(p for p in path.glob("*.pt") if p.name != "train_state.pt")  # a training run's state
        if len(pts) == 1:
            path = pts[0]
        else:
            raise CheckpointError(f"{path}: not a model directory (no config.json and not exactly one .pt file)")
    from mms.checkpoints import torchaudio_mms_fa

    if torchaudio_mms_fa.recognizes(path):  # a plain torchaudio state dict (the MMS forced-alignment model)
        _no_tokenizer(path, tokenizer)
        return torchaudio_mms_fa.load(path, dict_path)
    from mms.checkpoints import omniasr

    if omniasr.recognizes(path):  # fairseq2 names (encoder_frontend.*): an Omnilingual ASR checkpoint
        return omniasr.load(path, tokenizer or dict_path)
    from mms.checkpoints import fairseq

    _no_tokenizer(path, tokenizer)
    return fairseq.load(path, dict_path)


def _no_tokenizer(path: Path, tokenizer) -> None:
    # a tokenizer given to a model that has a vocabulary of its own would be ignored: say so instead
    if tokenizer is not None:
        raise CheckpointError(f"{path}: a tokenizer ({tokenizer}) is for Omnilingual ASR checkpoints; this model has "
                              "its own vocabulary (leave out --tokenizer)")


def instantiate(checkpoint: Checkpoint, device: torch.device | str = "cpu", dtype: torch.dtype | None = None):
    """The canonical model for a checkpoint, on `device` in `dtype`, in eval mode. Built on the meta device and
    given the checkpoint's tensors directly, so memory-mapped weights are not copied when nothing converts them."""
    import torch

    from mms.models.wav2vec2 import build_model

    dtype = torch.float32 if dtype is None else dtype

    with torch.device("meta"):
        model = build_model(checkpoint.config)
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True, assign=True)
    except RuntimeError as e:  # a config.json that does not describe these weights (layers, sizes, adapters)
        details = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{checkpoint.path}: the weights do not fit the model's configuration "
                              f"({'; '.join(details)[:300] or e})") from None
    return model.to(device, dtype).eval()


def add_adapter_dir(checkpoint: Checkpoint, adapter_dir: str | Path) -> None:
    """Add the languages of a `mms train-adapter` output directory (adapter.<lang>.safetensors + vocab.json)
    to the checkpoint's own adapters; a language in both is taken from `adapter_dir`."""
    from mms.checkpoints.huggingface import hf_adapters, read_json, read_vocab_json

    folder = Path(adapter_dir)
    if not (folder / "vocab.json").is_file():
        raise CheckpointError(f"{folder}: no vocab.json (not an adapter directory written by mms train-adapter)")
    if not checkpoint.config.adapter_attn_dim:
        raise CheckpointError(f"{checkpoint.path}: this model has no adapter layers, so --adapter cannot be used")
    tokenizer = folder / "tokenizer_config.json"
    extra = hf_adapters(folder, read_vocab_json(folder / "vocab.json"),
                        read_json(tokenizer) if tokenizer.exists() else {}, None)
    own = checkpoint.adapters
    if own is None and checkpoint.lang and checkpoint.vocab is not None:  # a single-language model keeps its own
        weights = {k: v for k, v in checkpoint.state_dict.items() if ".adapter_layer." in k or k.startswith("lm_head.")}
        own = Adapters([checkpoint.lang], lambda code: (weights, checkpoint.vocab), checkpoint.path)

    def load_fn(code: str):
        return extra.load(code) if code in extra.languages else own.load(code)

    languages = sorted(set(extra.languages) | set(own.languages if own else []))
    checkpoint.adapters = Adapters(languages, load_fn, f"{own.source if own else checkpoint.path} + {folder}")
    if checkpoint.lang in extra.languages:  # the language whose layers the model is loaded with: the directory's
        weights, vocab = extra.load(checkpoint.lang)  # (else they would stay in place, the trained ones unused)
        checkpoint.state_dict = {**checkpoint.state_dict, **weights}
        checkpoint.config.vocab_size = weights["lm_head.weight"].shape[0]
        checkpoint.vocab = vocab


def load_vocabulary(path: str | Path, lang: str | None = None, dict_path: str | Path | None = None) -> Vocabulary:
    """A language's CTC vocabulary without reading the model weights (for lexicon building and the like)."""
    if dict_path and Path(dict_path).suffix != ".model":  # a fairseq dictionary; a .model is a SentencePiece one
        return read_vocabulary_file(dict_path)
    path = Path(path)
    if _is_omniasr(path):  # one SentencePiece vocabulary for every language
        return load_checkpoint(path, dict_path).vocab
    if path.is_dir() and (path / "config.json").exists():
        from mms.checkpoints import huggingface

        return huggingface.load_vocabulary(path, lang)
    checkpoint = load_checkpoint(path)  # fairseq: memory-mapped, tensors are not read
    if lang and checkpoint.adapters is not None:
        return checkpoint.adapters.load(lang)[1]
    if checkpoint.vocab is None:
        raise CheckpointError(f"{path}: no vocabulary{'' if lang else ' (give --lang)'}")
    return checkpoint.vocab


def list_languages(path: str | Path) -> list[str]:
    """The adapter languages of an ASR model, without reading its weights."""
    path = Path(path)
    if path.is_dir() and (path / "config.json").exists() and not _is_omniasr(path):
        from mms.checkpoints import huggingface

        return huggingface.list_languages(path)
    return load_checkpoint(path).languages  # fairseq: memory-mapped, tensors are not read


def _is_omniasr(path: Path) -> bool:
    """An Omnilingual ASR model: a transformers omniasr_ctc directory (torch-free check) or a fairseq2 .pt."""
    if path.is_dir():
        from mms.checkpoints import omniasr_hf

        return omniasr_hf.recognizes(path)
    from mms.checkpoints import omniasr

    return path.is_file() and omniasr.recognizes(path)
