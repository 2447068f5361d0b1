"""Tiny models of the real MMS architectures, made on the fly and written in every supported format.

One `RandomModel` (random weights, canonical names, positional conv as weight-norm g/v, per-language adapters
and vocabularies) is written as a Hugging Face directory (through transformers' own save_pretrained), as an
original fairseq checkpoint (fairseq key names, stacked adapter slots, pickled Dictionary / DictConfig /
Namespace objects, written without fairseq installed), so every loader is tested against the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mms.checkpoints.fairseq import fairseq_name
from mms.models.wav2vec2 import Wav2Vec2Config, build_model, fold_weight_norm

POS = "wav2vec2.encoder.pos_conv_embed.conv."
CHARS = "abcdefghijklmnopqrstuvwxyz'"


def tiny_config(**overrides) -> Wav2Vec2Config:
    values = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                  conv_dim=(16,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                  conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
                  num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, adapter_attn_dim=8, vocab_size=10)
    values.update(overrides)
    return Wav2Vec2Config(**values)


def mms1b_config(layers: int = 2, **overrides) -> Wav2Vec2Config:
    """The real MMS-1B shapes (hidden 1280, 16 heads, FFN 5120, adapter 16), with fewer layers."""
    values = dict(hidden_size=1280, num_hidden_layers=layers, num_attention_heads=16, intermediate_size=5120,
                  conv_bias=True, feat_extract_norm="layer", do_stable_layer_norm=True,
                  num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, adapter_attn_dim=16, vocab_size=40)
    values.update(overrides)
    return Wav2Vec2Config(**values)


def vocab_tokens(size: int) -> list[str]:
    """Transformers-order vocabulary: <pad> (blank) <s> </s> <unk> | then letters."""
    letters = list(CHARS) + [chr(0x3B1 + i) for i in range(max(0, size - 5 - len(CHARS)))]  # then Greek
    return ["<pad>", "<s>", "</s>", "<unk>", "|"] + letters[: size - 5]


@dataclass
class RandomModel:
    cfg: Wav2Vec2Config
    state: dict[str, torch.Tensor]  # canonical names; pos conv as weight_g / weight_v
    adapters: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # lang -> adapter + lm_head
    vocabs: dict[str, list[str]] = field(default_factory=dict)  # lang -> tokens (transformers order)
    default_lang: str | None = None
    labels: list[str] = field(default_factory=list)  # classifier labels (LID), index = output row

    def canonical_state(self, lang: str | None = None) -> dict[str, torch.Tensor]:
        state = dict(self.state)
        state[POS + "weight"] = fold_weight_norm(state.pop(POS + "weight_g"), state.pop(POS + "weight_v"), 2)
        if lang is not None:
            state.update(self.adapters[lang])
        return state


def random_model(cfg: Wav2Vec2Config, langs: dict[str, int] | None = None, seed: int = 0) -> RandomModel:
    """Random weights with non-trivial norms and biases; `langs` maps language -> vocabulary size."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    state = {}
    for name, value in model.state_dict().items():
        if name.endswith(".weight") and value.dim() == 1:  # norms: away from the 1/0 init
            value = 1 + 0.2 * torch.randn_like(value)
        elif name.endswith(".bias"):
            value = 0.1 * torch.randn_like(value)
        elif value.dim() >= 2:
            value = torch.randn_like(value) * (1.0 / value[0].numel() ** 0.5)
        state[name] = value.clone()
    weight = state.pop(POS + "weight")
    state[POS + "weight_v"] = weight
    state[POS + "weight_g"] = 0.5 + torch.rand(1, 1, weight.shape[2])
    result = RandomModel(cfg, state)
    if cfg.vocab_size:
        langs = langs or {"eng": cfg.vocab_size}
        for lang, size in langs.items():
            adapter = {}
            for name, value in state.items():
                if ".adapter_layer." in name:
                    adapter[name] = value + 0.3 * torch.randn_like(value)
            adapter["lm_head.weight"] = torch.randn(size, cfg.hidden_size) / cfg.hidden_size ** 0.5
            adapter["lm_head.bias"] = 0.1 * torch.randn(size)
            adapter["lm_head.bias"][1:4] -= 4.0  # rarely <s> </s> <unk>: outputs read like letters
            result.adapters[lang] = adapter
            result.vocabs[lang] = vocab_tokens(size)
        result.default_lang = next(iter(langs))
        result.state.update(result.adapters[result.default_lang])
    return result


# ---------------------------------------------------------------------------------------------------------
# Hugging Face directory


def hf_config(cfg: Wav2Vec2Config, **extra):
    import transformers

    values = {k: v for k, v in cfg.to_dict().items()
              if k not in ("blank_weight", "classifier_activation", "num_labels") and v is not None}
    values.update(extra)
    return transformers.Wav2Vec2Config(**values)


def write_hf(model: RandomModel, out: Path, weight_norm: str = "legacy", weights: str = "safetensors",
             adapter_format: str = "safetensors") -> Path:
    """A transformers directory like facebook/mms-1b-all: model, adapter.<lang>.*, nested vocab.json."""
    import transformers
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    hf = transformers.Wav2Vec2ForCTC(hf_config(model.cfg, vocab_size=len(model.vocabs[model.default_lang]),
                                               target_lang=None))
    state = hf_state(model.state, weight_norm="parametrizations")
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"wav2vec2.masked_spec_embed"}, (missing, unexpected)
    hf.save_pretrained(out)
    rewrite_weights(out, legacy_weight_norm=weight_norm == "legacy", weights=weights)
    for lang, adapter in model.adapters.items():
        tensors = {k: v.contiguous() for k, v in adapter.items()}
        if adapter_format == "safetensors":
            save_file(tensors, str(out / f"adapter.{lang}.safetensors"))
        else:
            torch.save(tensors, out / f"adapter.{lang}.bin")
    vocab = {lang: {t: i for i, t in enumerate(tokens)} for lang, tokens in model.vocabs.items()}
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "target_lang": model.default_lang, "word_delimiter_token": "|", "pad_token": "<pad>", "unk_token": "<unk>",
        "bos_token": "<s>", "eos_token": "</s>", "do_lower_case": False, "replace_word_delimiter_char": " ",
        "clean_up_tokenization_spaces": True, "tokenizer_class": "Wav2Vec2CTCTokenizer"}))
    write_preprocessor_config(out)
    return out


def write_preprocessor_config(out: Path) -> None:
    (out / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0, "return_attention_mask": True, "sampling_rate": 16000}))


def hf_state(state: dict[str, torch.Tensor], weight_norm: str) -> dict[str, torch.Tensor]:
    names = {"legacy": ("weight_g", "weight_v"),
             "parametrizations": ("parametrizations.weight.original0", "parametrizations.weight.original1")}[weight_norm]
    out = dict(state)
    out[POS + names[0]] = out.pop(POS + "weight_g")
    out[POS + names[1]] = out.pop(POS + "weight_v")
    return out


def rewrite_weights(out: Path, legacy_weight_norm: bool, weights: str) -> None:
    """The 2023 Hub files carry weight_g / weight_v; older repos hold pytorch_model.bin instead of safetensors."""
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    state = load_file(str(path))
    if legacy_weight_norm:
        state = {k.replace("parametrizations.weight.original0", "weight_g")
                 .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    if weights == "safetensors":
        save_file(state, str(path), metadata={"format": "pt"})
    else:
        path.unlink()
        torch.save(state, out / "pytorch_model.bin")


# ---------------------------------------------------------------------------------------------------------
# fairseq checkpoint


class _FakeFairseq:
    """Registers importable `fairseq.data.dictionary.Dictionary` while pickling, so the file names the real
    class path, then removes it again: the loader under test must do without it."""

    def __enter__(self):
        class Dictionary:
            def __init__(self, symbols):
                self.bos_word, self.unk_word, self.pad_word, self.eos_word = "<s>", "<unk>", "<pad>", "</s>"
                self.symbols = list(symbols)
                self.count = [1] * len(symbols)
                self.indices = {s: i for i, s in enumerate(symbols)}
                self.bos_index, self.pad_index, self.eos_index, self.unk_index = 0, 1, 2, 3
                self.nspecial = 4

        modules = {}
        for name in ("fairseq", "fairseq.data", "fairseq.data.dictionary"):
            modules[name] = types.ModuleType(name)
        Dictionary.__module__, Dictionary.__qualname__ = "fairseq.data.dictionary", "Dictionary"
        modules["fairseq.data.dictionary"].Dictionary = Dictionary
        self.added = [m for m in modules if m not in sys.modules]
        sys.modules.update({m: modules[m] for m in self.added})
        self.Dictionary = Dictionary
        return self

    def __exit__(self, *exc):
        for m in self.added:
            sys.modules.pop(m, None)


def fairseq_symbols(hf_tokens: list[str]) -> list[str]:
    """fairseq order of the same vocabulary: <s> (blank) <pad> </s> <unk> then the same symbols."""
    return ["<s>", "<pad>", "</s>", "<unk>"] + hf_tokens[4:]


def fairseq_state(state: dict[str, torch.Tensor], cfg: Wav2Vec2Config, slots: int = 1,
                  slot_values: list[dict] | None = None) -> OrderedDict:
    """Canonical -> fairseq names; adapter tensors stacked into `slots` slots (slot i from slot_values[i])."""
    out = OrderedDict()
    group = cfg.feat_extract_norm == "group"
    out["w2v_encoder.w2v_model.mask_emb"] = torch.zeros(cfg.hidden_size)
    for name, value in state.items():
        key = fairseq_name(name, group_norm=group)
        if ".adapter_layer." in name:
            values = [(slot_values[i] if slot_values else state)[name] for i in range(slots)]
            value = torch.stack(values)
        out[key] = value
    return out


def fairseq_cfg(cfg: Wav2Vec2Config, normalize: bool = True, corpus_keys: list[str] | None = None) -> dict:
    conv = " + ".join(f"[({d}, {k}, {s})]" for d, k, s in zip(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride))
    w2v_model = {"_name": "wav2vec2", "extractor_mode": "layer_norm" if cfg.feat_extract_norm == "layer" else "default",
                 "conv_feature_layers": conv, "conv_bias": cfg.conv_bias, "encoder_layers": cfg.num_hidden_layers,
                 "encoder_embed_dim": cfg.hidden_size, "encoder_ffn_embed_dim": cfg.intermediate_size,
                 "encoder_attention_heads": cfg.num_attention_heads, "layer_norm_first": cfg.do_stable_layer_norm,
                 "conv_pos": cfg.num_conv_pos_embeddings, "conv_pos_groups": cfg.num_conv_pos_embedding_groups,
                 "activation_fn": "gelu", "layer_type": "transformer", "adp_num": -1}
    model = {"_name": "wav2vec_ctc", "w2v_path": "/checkpoint/base_1b.pt", "blank_weight": cfg.blank_weight,
             "blank_mode": "add", "layer_type": "trf_adp" if cfg.adapter_attn_dim else "transformer",
             "adp_num": 1, "adp_dim": cfg.adapter_attn_dim or 64, "adp_act_fn": "relu", "adp_trf_idx": "all",
             "w2v_args": {"model": w2v_model, "task": {"_name": "audio_pretraining", "normalize": normalize}}}
    task = {"_name": "audio_finetuning", "normalize": normalize, "labels": "ltr", "sample_rate": 16000,
            "multi_corpus_keys": corpus_keys}
    return {"common": {"fp16": True}, "model": model, "task": task, "criterion": {"_name": "ctc"}}


def write_fairseq(model: RandomModel, path: Path, cfg_kind: str = "dict", with_adapter_dict: bool = True,
                  normalize: bool = True) -> Path:
    """An mms1b_all.pt-like file. cfg_kind: "dict" | "dictconfig" (omegaconf pickled) | "namespace" (old args)."""
    cfg = fairseq_cfg(model.cfg, normalize)
    base = fairseq_state(model.state, model.cfg)
    with _FakeFairseq() as fake:
        ckpt = {"args": None, "model": base, "optimizer_history": [{"num_updates": 1}],
                "extra_state": {"previous_training_time": 1.0},
                "task_state": {"target_dictionary": fake.Dictionary(fairseq_symbols(model.vocabs[model.default_lang]))}}
        if cfg_kind == "dict":
            ckpt["cfg"] = cfg
        elif cfg_kind == "dictconfig":
            from omegaconf import OmegaConf

            ckpt["cfg"] = OmegaConf.create(cfg)
        else:
            flat = {**cfg["model"]["w2v_args"]["model"], **cfg["task"]}
            flat["w2v_args"] = argparse.Namespace(**cfg["model"]["w2v_args"]["model"], normalize=normalize)
            for key in ("layer_type", "adp_num", "adp_dim", "adp_act_fn", "adp_trf_idx", "blank_weight"):
                flat[key] = cfg["model"][key]
            ckpt["args"] = argparse.Namespace(**flat)
            ckpt["cfg"] = None
        if with_adapter_dict and model.cfg.adapter_attn_dim:
            ckpt["adapter"] = {}
            for lang, adapter in model.adapters.items():
                partial = OrderedDict((fairseq_name(k), v[None] if ".adapter_layer." in k else v)
                                      for k, v in adapter.items())
                ckpt["adapter"][lang] = {"model": partial, "task_state": {
                    "target_dictionary": fake.Dictionary(fairseq_symbols(model.vocabs[lang]))}}
        torch.save(ckpt, path)
    return path


# ---------------------------------------------------------------------------------------------------------
# Language identification (MMS-LID: Wav2Vec2ForSequenceClassification / fairseq Wav2VecClassification)

LID_LABELS = ["eng", "fra", "deu", "swh", "hin", "urd", "cmn", "spa", "rus", "yor", "tur", "por"]


def random_lid_model(labels: list[str] | None = None, seed: int = 0, **overrides) -> RandomModel:
    """A tiny LID model: no adapters, no CTC head, a projector (24) and a classifier with one row per label."""
    labels = list(labels or LID_LABELS[:8])
    values = dict(adapter_attn_dim=None, vocab_size=None, num_labels=len(labels), classifier_proj_size=24)
    values.update(overrides)
    model = random_model(tiny_config(**values), seed=seed)
    model.labels = labels
    return model


def write_hf_lid(model: RandomModel, out: Path, weight_norm: str = "legacy") -> Path:
    """A transformers directory like facebook/mms-lid-126: id2label in config.json, no vocabulary."""
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    labels = model.labels
    hf = transformers.Wav2Vec2ForSequenceClassification(hf_config(
        model.cfg, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}))
    missing, unexpected = hf.load_state_dict(hf_state(model.state, weight_norm="parametrizations"), strict=False)
    assert not unexpected and set(missing) <= {"wav2vec2.masked_spec_embed"}, (missing, unexpected)
    hf.save_pretrained(out)
    rewrite_weights(out, legacy_weight_norm=weight_norm == "legacy", weights="safetensors")
    write_preprocessor_config(out)
    return out


def write_fairseq_lid(model: RandomModel, path: Path, activation: str = "gelu", task_state: bool = True,
                      dict_file: bool = True, cfg_kind: str = "dict") -> Path:
    """An mms1b_l126.pt-like file: `pooling_layer.linear/projection`, cfg.model.activation_fn (the activation
    after pooling), a task-state Dictionary made WITHOUT special symbols (index = line of dict.lang.txt) and,
    with `dict_file`, a dict.lang.txt beside it."""
    cfg = fairseq_cfg(model.cfg)
    for key in ("blank_weight", "blank_mode"):  # CTC-only settings
        cfg["model"].pop(key)
    cfg["model"].update(_name="wav2vec_classification", pooling="mean", activation_fn=activation,
                        latent_embed_dim=model.cfg.classifier_proj_size, layer_type="transformer")
    cfg["task"] = {"_name": "audio_classification", "normalize": True, "labels": "lang", "sample_rate": 16000}
    cfg["criterion"] = {"_name": "model"}
    with _FakeFairseq() as fake:
        ckpt = {"args": None, "model": fairseq_state(model.state, model.cfg),
                "optimizer_history": [{"num_updates": 1}], "extra_state": {"previous_training_time": 1.0}}
        if cfg_kind == "dictconfig":
            from omegaconf import OmegaConf

            cfg = OmegaConf.create(cfg)
        ckpt["cfg"] = cfg
        if task_state:
            dictionary = fake.Dictionary(model.labels)
            for name in ("bos_index", "pad_index", "eos_index", "unk_index"):  # add_special_symbols=False
                delattr(dictionary, name)
            dictionary.nspecial = 0
            ckpt["task_state"] = {"target_dictionary": dictionary}
        torch.save(ckpt, path)
    if dict_file:
        (path.parent / "dict.lang.txt").write_text("".join(f"{label} 1\n" for label in model.labels))
    return path


# ---------------------------------------------------------------------------------------------------------
# torchaudio state dict (the MMS forced-alignment model, torchaudio MMS_FA / data_prep layout)

ALIGNMENT_TOKENS = ["<blank>", "<pad>", "</s>", "<unk>", *"aienoutsrmkldghybpwcvjzf'qx"]  # data_prep's layout


def alignment_config(**overrides) -> Wav2Vec2Config:
    """A tiny MMS_FA-shaped model: no adapters, 31 outputs, one 64-dim head (torchaudio files do not say the
    head count; the loader takes dims / 64 below 1024 dims)."""
    values = dict(hidden_size=64, num_attention_heads=1, intermediate_size=96, adapter_attn_dim=None,
                  vocab_size=len(ALIGNMENT_TOKENS))
    values.update(overrides)
    return tiny_config(**values)


def write_torchaudio(model: RandomModel, path: Path, tokens: list[str] | None = ALIGNMENT_TOKENS,
                     weight_norm: str = "legacy") -> Path:
    """A plain torchaudio Wav2Vec2Model state dict (model.pt) and, when `tokens`, dictionary.txt beside it."""
    from mms.checkpoints.torchaudio_mms_fa import torchaudio_name

    state = {torchaudio_name(k): v for k, v in hf_state(model.state, weight_norm).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    if tokens is not None:
        (path.parent / "dictionary.txt").write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------
# Omnilingual ASR (omniASR) CTC: a fairseq2 .pt + SentencePiece tokenizer, and a transformers omniasr_ctc directory

OMNIASR_TEXT = ["the cat sat on the mat", "a dog ran far away", "quick brown fox jumps over", "zebra yak vow",
                "hello world this is speech", "lazy ox kept quiet"]


def write_sentencepiece(path: Path, space: str = "literal") -> Path:
    """A tiny character-level SentencePiece (unigram) model, ids as the omniASR tokenizers: 0 <s> (the CTC blank),
    1 <pad>, 2 </s>, 3 <unk>, then pieces. space="literal": the space piece is " " (as in the published files,
    which transformers' converter reads so); "escaped": SentencePiece's usual "▁"."""
    import io

    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(OMNIASR_TEXT * 20), model_writer=buffer,
                                   model_type="unigram", vocab_size=100, hard_vocab_limit=False,
                                   max_sentencepiece_length=1, bos_id=0, pad_id=1, eos_id=2, unk_id=3,
                                   character_coverage=1.0, minloglevel=2)
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(buffer.getvalue())
    if space == "literal":
        for piece in proto.pieces:
            if piece.piece == "\u2581":
                piece.piece = " "
        proto.normalizer_spec.escape_whitespaces = False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())
    return path


def omniasr_config(**overrides) -> Wav2Vec2Config:
    """A tiny omniASR CTC model: the real layout (7 convs with LayerNorm, pre-LN, 16 heads), small sizes."""
    values = dict(hidden_size=64, num_attention_heads=16, intermediate_size=96, adapter_attn_dim=None)
    values.update(overrides)
    return tiny_config(**values)


def random_omniasr_model(vocab_size: int, seed: int = 0, **overrides) -> RandomModel:
    """Random weights; the head favours the space piece (id 4 in write_sentencepiece's tokenizers) a little, so
    that transcripts have several words."""
    model = random_model(omniasr_config(vocab_size=vocab_size, **overrides), {"all": vocab_size}, seed=seed)
    model.state["lm_head.bias"][4] += 1.0
    return model


def omniasr_state(model: RandomModel) -> dict[str, torch.Tensor]:
    """fairseq2 names, positional conv as weight_g / weight_v, as in omniASR-CTC-*.pt."""
    from mms.checkpoints.omniasr import fairseq2_name

    return {fairseq2_name(k): v for k, v in model.state.items()}


def write_omniasr(model: RandomModel, path: Path, tokenizer: Path | None = None, dtype: torch.dtype | None = None,
                  extra: dict[str, torch.Tensor] | None = None, drop: tuple[str, ...] = ()) -> Path:
    """An omniASR-CTC-*.pt-like file: {"model": state_dict}; the tokenizer copied beside it when given."""
    import shutil

    state = {k: (v if dtype is None else v.to(dtype)).contiguous() for k, v in omniasr_state(model).items()
             if k not in drop}
    state.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, path)
    if tokenizer is not None:
        shutil.copy(tokenizer, path.parent / tokenizer.name)
    return path


def omniasr_hf_config(cfg: Wav2Vec2Config):
    import transformers

    audio = dict(model_type="omniasr_audio", hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_hidden_layers,
                 num_attention_heads=cfg.num_attention_heads, intermediate_size=cfg.intermediate_size,
                 conv_dim=list(cfg.conv_dim), conv_kernel=list(cfg.conv_kernel), conv_stride=list(cfg.conv_stride),
                 conv_bias=cfg.conv_bias, num_conv_pos_embeddings=cfg.num_conv_pos_embeddings,
                 num_conv_pos_embedding_groups=cfg.num_conv_pos_embedding_groups)
    return transformers.OmniASRCTCConfig(vocab_size=cfg.vocab_size, audio_config=audio)


def write_omniasr_hf(model: RandomModel, out: Path, tokenizer: Path) -> Path:
    """A transformers omniasr_ctc directory written by transformers itself (OmniASRForCTC.save_pretrained, the
    tokenizer converted from the SentencePiece model by its OmniASRConverter, the processor's config)."""
    import transformers
    from transformers.convert_slow_tokenizer import OmniASRConverter

    from mms.checkpoints.omniasr_hf import hf_name

    hf = transformers.OmniASRForCTC(omniasr_hf_config(model.cfg))
    hf.load_state_dict({hf_name(k): v for k, v in model.canonical_state().items()}, strict=True)
    hf.save_pretrained(out)
    tok = transformers.ParakeetTokenizer(tokenizer_object=OmniASRConverter(str(tokenizer)).converted(),
                                         bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    processor = transformers.OmniASRCTCProcessor(feature_extractor=transformers.OmniASRFeatureExtractor(),
                                                 tokenizer=tok)
    processor.save_pretrained(out)
    return out


# ---------------------------------------------------------------------------------------------------------
# MMS zero-shot (mms-zeroshot-300m): one uroman CTC head, no adapters; fairseq model.pt + tokens.txt, or a
# Hugging Face directory with tokens.txt (and a vocab.json in another order)

def zeroshot_tokens(seed: int = 0) -> list[str]:
    """A flashlight token file's 32 tokens: the fairseq specials, `|`, then the 27 uroman letters in a shuffled
    order (the real file's order is unknown: loaders must read it)."""
    import random

    letters = list(CHARS)
    random.Random(seed).shuffle(letters)
    return ["<s>", "<pad>", "</s>", "<unk>", "|", *letters]


def random_zeroshot_model(seed: int = 0) -> RandomModel:
    model = random_model(tiny_config(adapter_attn_dim=None, vocab_size=32), {"mms_eng": 32}, seed=seed)
    model.vocabs["mms_eng"] = zeroshot_tokens(seed)
    model.adapters = {}  # the head lives in the base state: no per-language files
    return model


def write_zeroshot_fairseq(model: RandomModel, folder: Path) -> Path:
    """model.pt (no dictionary in the task state, multi_corpus_keys [mms_eng]) and tokens.txt beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = {"args": None, "cfg": fairseq_cfg(model.cfg, True, ["mms_eng"]), "model": fairseq_state(model.state, model.cfg),
            "optimizer_history": [{"num_updates": 1}], "task_state": {}}
    torch.save(ckpt, folder / "model.pt")
    (folder / "tokens.txt").write_text("".join(t + "\n" for t in model.vocabs["mms_eng"]))
    return folder / "model.pt"


def write_zeroshot_hf(model: RandomModel, out: Path) -> Path:
    """A transformers directory like mms-meta/mms-zeroshot-300m: weights, tokens.txt, and a vocab.json that puts
    <pad> first (as other HF conversions do), so a loader that trusted it would take the wrong blank."""
    import transformers

    out.mkdir(parents=True, exist_ok=True)
    tokens = model.vocabs["mms_eng"]
    hf = transformers.Wav2Vec2ForCTC(hf_config(model.cfg, vocab_size=len(tokens)))
    missing, unexpected = hf.load_state_dict(hf_state(model.state, "parametrizations"), strict=False)
    assert not unexpected and set(missing) <= {"wav2vec2.masked_spec_embed"}, (missing, unexpected)
    hf.save_pretrained(out)
    rewrite_weights(out, legacy_weight_norm=True, weights="safetensors")
    swapped = ["<pad>", "<s>", *tokens[2:]]
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(swapped)}))
    (out / "tokens.txt").write_text("".join(t + "\n" for t in tokens))
    write_preprocessor_config(out)
    return out
