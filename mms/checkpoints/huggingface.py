"""Hugging Face transformers wav2vec2 directories (facebook/mms-1b-all, mms-lid-*, mms-300m, ...).

Canonical names are the transformers names, so the only translations are: fold the positional conv's weight
norm (legacy `weight_g/weight_v` or `parametrizations.weight.original0/1`), drop training-only tensors, and
add the `wav2vec2.` prefix to bare Wav2Vec2Model files. Which file holds which language (adapter.<lang>.*, vocab.json
nested by language): hf_layout.py, torch-free, shared with the model hub.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from mms.checkpoints import Adapters, Checkpoint, CheckpointError, read_label_file
from mms.checkpoints.hf_layout import adapter_filenames, adapter_languages, vocab_languages
from mms.models.wav2vec2 import Wav2Vec2Config, fold_weight_norm
from mms.text.vocab import Vocabulary, is_nested_vocab, read_vocabulary_file

POS_CONV = "wav2vec2.encoder.pos_conv_embed.conv."
WEIGHT_NORM_NAMES = {  # (g, v) spellings
    "legacy": ("weight_g", "weight_v"),
    "parametrizations": ("parametrizations.weight.original0", "parametrizations.weight.original1"),
}
TRAINING_ONLY = ("wav2vec2.masked_spec_embed", "quantizer.", "project_q.", "project_hid.")
HEADS = ("lm_head.", "projector.", "classifier.")

log = logging.getLogger(__name__)


def read_json(path: Path) -> dict:
    """A JSON object file of a model directory (config, vocabulary, tokenizer settings)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a JSON object ({type(data).__name__}); a model file of this name holds "
                              f"{{name: value}}")
    return data


def read_vocab_json(path: Path) -> dict:
    """vocab.json: {token: id}, or {language: {token: id}} (MMS adapters); anything else is refused by name."""
    vocab = read_json(path)
    nested = bool(vocab) and all(isinstance(table, dict) for table in vocab.values())
    for table in vocab.values() if nested else [vocab]:
        if not table or not all(type(i) is int and i >= 0 for i in table.values()):
            raise CheckpointError(f"{path}: not a vocabulary (token -> id, or language -> token -> id, with ids "
                                  f"whole numbers from 0)")
    return vocab


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """One safetensors or torch weights file; torch files are read with weights_only=True (no code runs)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - SafetensorError (corrupt or truncated header), OSError
            raise CheckpointError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from None
    import pickle
    import zipfile

    try:  # (a file of torch's older, pre-zip format cannot be memory-mapped)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:  # torch's advice there (weights_only=False) would run the file's code
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(e))
        raise CheckpointError(f"{path}: refused: it holds Python objects, not only tensors"
                              f"{f' ({found.group(1)})' if found else ''}, and loading them could run code from "
                              f"the file; a weights file holds tensors only") from None
    except Exception as e:  # noqa: BLE001 - any failure here means an unusable file
        first_line = (str(e).strip().splitlines() or [""])[0][:300]
        raise CheckpointError(f"{path}: cannot read weights ({type(e).__name__}: {first_line})") from None


def read_model_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = model_dir / index_name
        if index.exists():
            shards = sorted(set(read_json(index)["weight_map"].values()))
            weights = {}
            for shard in shards:
                weights.update(read_tensors(model_dir / shard))
            return weights
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).exists():
            return read_tensors(model_dir / name)
    raise CheckpointError(f"{model_dir}: no model.safetensors or pytorch_model.bin")


def to_canonical(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if not any(k.startswith("wav2vec2.") for k in weights):  # a bare Wav2Vec2Model
        weights = {(k if k.startswith(HEADS) else "wav2vec2." + k): v for k, v in weights.items()}
    out = {k: v for k, v in weights.items() if not k.startswith(TRAINING_ONLY)}
    for g_name, v_name in WEIGHT_NORM_NAMES.values():
        if POS_CONV + g_name in out:
            g, v = out.pop(POS_CONV + g_name), out.pop(POS_CONV + v_name)
            out[POS_CONV + "weight"] = fold_weight_norm(g, v, dim=2)
    return out


def language_vocab(vocab_json: dict, lang: str | None, tokenizer_config: dict) -> Vocabulary:
    if is_nested_vocab(vocab_json):
        return Vocabulary.from_hf(vocab_json[lang], tokenizer_config)
    return Vocabulary.from_hf(vocab_json, tokenizer_config)


def load(model_dir: Path, dict_path=None) -> Checkpoint:
    config_json = read_json(model_dir / "config.json")
    if config_json.get("model_type", "wav2vec2") != "wav2vec2":
        raise CheckpointError(f"{model_dir}: model_type {config_json.get('model_type')!r} is not a wav2vec2 model")
    if config_json.get("add_adapter") or config_json.get("use_weighted_layer_sum"):
        raise CheckpointError(f"{model_dir}: add_adapter / use_weighted_layer_sum models are not supported")
    cfg = Wav2Vec2Config.from_dict(config_json)
    arch = (config_json.get("architectures") or ["Wav2Vec2ForCTC"])[0]
    state_dict = to_canonical(read_model_weights(model_dir))

    labels = None
    cfg.vocab_size = None
    if "lm_head.weight" in state_dict:
        cfg.vocab_size = state_dict["lm_head.weight"].shape[0]
    if "classifier.weight" in state_dict:
        id2label = config_json.get("id2label") or {}
        cfg.num_labels = state_dict["classifier.weight"].shape[0]
        cfg.classifier_proj_size = state_dict["projector.weight"].shape[0]
        cfg.classifier_activation = None  # transformers: projector, masked mean, classifier; no activation
        labels = [id2label.get(str(i)) for i in range(cfg.num_labels)]
        if dict_path:  # --dict: labels given by the user (a fairseq dict.lang.txt) over config.json's id2label
            labels = read_label_file(dict_path)
            if len(labels) != cfg.num_labels:
                raise CheckpointError(f"{dict_path}: {len(labels)} labels, the model has {cfg.num_labels} outputs")
        elif None in labels or labels == [f"LABEL_{i}" for i in range(cfg.num_labels)]:
            # (LABEL_<i>: what transformers writes when a classifier was saved without names)
            raise CheckpointError(f"{model_dir}: no language labels for its {cfg.num_labels} outputs (config.json "
                                  f"has no id2label for them; give --dict dict.lang.txt)")
    if cfg.vocab_size is None and cfg.num_labels is None and "ForCTC" in arch:
        raise CheckpointError(f"{model_dir}: {arch} weights have no lm_head")

    preprocessor = model_dir / "preprocessor_config.json"
    normalize = bool(read_json(preprocessor).get("do_normalize", True)) if preprocessor.exists() else True

    vocab, lang, adapters = None, None, None
    if cfg.vocab_size is not None:
        tok_cfg_path = model_dir / "tokenizer_config.json"
        tokenizer_config = read_json(tok_cfg_path) if tok_cfg_path.exists() else {}
        vocab_path = Path(dict_path) if dict_path else model_dir / "vocab.json"
        if not dict_path and not cfg.adapter_attn_dim and (model_dir / "tokens.txt").exists():
            # the MMS zero-shot model (mms-meta/mms-zeroshot-300m): its decoder reads tokens.txt (blank <s> = 0),
            # which vocab.json may order differently
            vocab_path = model_dir / "tokens.txt"
        if vocab_path.suffix != ".json":
            vocab_json = None
            vocab = read_vocabulary_file(vocab_path)
        elif vocab_path.exists():
            vocab_json = read_vocab_json(vocab_path)
        else:
            raise CheckpointError(f"{model_dir}: no vocab.json (give a vocabulary with --dict)")
        lang = tokenizer_config.get("target_lang")
        if vocab_json is not None:
            nested = is_nested_vocab(vocab_json)
            if nested and lang not in vocab_json:
                lang = None  # the head's language is unknown: a language must be chosen
            else:
                vocab = language_vocab(vocab_json, lang, tokenizer_config)
        if cfg.adapter_attn_dim:
            adapters = hf_adapters(model_dir, vocab_json, tokenizer_config, lang)

    if vocab is not None and len(vocab) != cfg.vocab_size and vocab_path.name == "tokens.txt":
        raise CheckpointError(f"{vocab_path}: {len(vocab)} tokens, the model's output layer has {cfg.vocab_size} rows")
    return Checkpoint(format="huggingface", path=str(model_dir), config=cfg, state_dict=state_dict, vocab=vocab,
                      lang=lang, labels=labels, normalize=normalize, normalize_eps=1e-7, adapters=adapters,
                      word_time_offsets=word_time_offsets(config_json, model_dir),
                      language_free=vocab is not None and vocab.romanized and adapters is None)


def word_time_offsets(config_json: dict, model_dir: Path) -> tuple[float, float]:
    """config.json "word_time_offsets": [start, end] seconds (not a transformers key; mms writes it for a model
    whose emission lag was measured). Absent or malformed: none (malformed also warns)."""
    values = config_json.get("word_time_offsets")
    if values is None:
        return 0.0, 0.0
    try:
        start, end = (float(v) for v in values)
        return start, end
    except (TypeError, ValueError):
        log.warning(f"{model_dir / 'config.json'}: word_time_offsets {values!r} is not [start, end] in seconds; "
                    f"ignored")
        return 0.0, 0.0


def hf_adapters(model_dir: Path, vocab_json: dict | None, tokenizer_config: dict, lang: str | None) -> Adapters:
    """Languages = those with an adapter file here, or listed in a nested vocab.json (files fetched later)."""
    listed = set(vocab_languages(vocab_json) or ())
    languages = sorted(adapter_languages(model_dir) | listed | ({lang} if lang else set()))

    def load_fn(code: str):
        for name in adapter_filenames(code):
            if (model_dir / name).exists():
                weights = read_tensors(model_dir / name)
                break
        else:
            raise CheckpointError(f"{model_dir}: no adapter.{code}.safetensors for language '{code}'")
        if vocab_json is None:
            raise CheckpointError(f"{model_dir}: no vocabulary for language '{code}'")
        if is_nested_vocab(vocab_json) and code not in vocab_json:
            raise CheckpointError(f"{model_dir}: vocab.json has no entry for language '{code}'")
        return weights, language_vocab(vocab_json, code, tokenizer_config)

    return Adapters(languages=languages, load_fn=load_fn, source=str(model_dir))


def load_vocabulary(model_dir: Path, lang: str | None) -> Vocabulary:
    tok_cfg_path = model_dir / "tokenizer_config.json"
    tokenizer_config = read_json(tok_cfg_path) if tok_cfg_path.exists() else {}
    if (model_dir / "tokens.txt").exists() and not adapter_languages(model_dir):  # the zero-shot model (see load)
        return Vocabulary.from_tokens_file(model_dir / "tokens.txt")
    if not (model_dir / "vocab.json").exists():
        raise CheckpointError(f"{model_dir}: no vocab.json")
    vocab_json = read_vocab_json(model_dir / "vocab.json")
    if is_nested_vocab(vocab_json):
        from mms.checkpoints import check_language

        lang = lang or tokenizer_config.get("target_lang")
        check_language(lang or "", sorted(vocab_json), str(model_dir))
    return language_vocab(vocab_json, lang, tokenizer_config)


def list_languages(model_dir: Path) -> list[str]:
    vocab_json = read_vocab_json(model_dir / "vocab.json") if (model_dir / "vocab.json").exists() else {}
    return sorted(adapter_languages(model_dir) | set(vocab_languages(vocab_json) or ()))
