"""Omnilingual ASR CTC checkpoints as Meta publishes them (omniASR-CTC-{300M,1B,3B,7B}[-v2].pt): fairseq2
wav2vec2 ASR models, `{"model": state_dict}`, with a SentencePiece tokenizer beside them.

The model is a stock wav2vec2 (the one in mms/models/wav2vec2.py reproduces fairseq2's output once the weights
are renamed, KEY_TABLE): 7 conv layers with a LayerNorm each, a pre-LN transformer with a final LayerNorm, a
positional conv with weight norm, a CTC head over the tokenizer's pieces (blank = id 0). Sizes are read from
tensor shapes. What shapes cannot tell is fixed as every published size has it: 16 attention heads (a head count
changes no shape but every logit) and conv strides (5, 2, 2, 2, 2, 2, 2).

The file is read with torch.load(weights_only=True, mmap=True): no code runs, and tensors stay memory-mapped
until the model is built. Building the model in bfloat16 (mms.checkpoints.instantiate) converts one tensor at a
time from the mapped float32 file, so the 7B model never has a float32 copy in memory (docs/omniasr.md).

Tokenizer: `tokenizer` (mms asr --tokenizer, or --dict), else a SentencePiece `.model` beside the checkpoint with
as many pieces as the head has rows, else an error that names the published file to fetch.

The self-supervised (omniASR-W2V-*) and LLM (omniASR-LLM-*) checkpoints share the fairseq2 names and are refused.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import torch

from mms.checkpoints import Checkpoint, CheckpointError
from mms.checkpoints.fairseq import compile_rules
from mms.checkpoints.safe_pickle import pickle_head
from mms.models.wav2vec2 import Wav2Vec2Config, fold_weight_norm
from mms.text.sentencepiece_vocab import load_tokenizer
from mms.text.vocab import Vocabulary, VocabularyError

HEADS = 16  # every published size (omnilingual_asr configs); not readable from shapes
KERNELS, STRIDES = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
# in the first bytes of a fairseq2 wav2vec2 (or wav2vec2-LLaMA) pickle, in no fairseq or torchaudio file
MARKERS = (b"encoder_frontend.", b"llama_decoder.")

# fairseq2 name -> canonical name. {i}: index, {p}: weight|bias.
KEY_TABLE = [
    ("encoder_frontend.feature_extractor.layers.{i}.conv.{p}", "wav2vec2.feature_extractor.conv_layers.{i}.conv.{p}"),
    ("encoder_frontend.feature_extractor.layers.{i}.layer_norm.{p}",
     "wav2vec2.feature_extractor.conv_layers.{i}.layer_norm.{p}"),
    ("encoder_frontend.post_extract_layer_norm.{p}", "wav2vec2.feature_projection.layer_norm.{p}"),
    ("encoder_frontend.model_dim_proj.{p}", "wav2vec2.feature_projection.projection.{p}"),
    ("encoder_frontend.pos_encoder.conv.{p}", "wav2vec2.encoder.pos_conv_embed.conv.{p}"),
    ("encoder.layers.{i}.self_attn_layer_norm.{p}", "wav2vec2.encoder.layers.{i}.layer_norm.{p}"),
    ("encoder.layers.{i}.self_attn.{proj}.{p}", "wav2vec2.encoder.layers.{i}.attention.{proj}.{p}"),
    ("encoder.layers.{i}.self_attn.output_proj.{p}", "wav2vec2.encoder.layers.{i}.attention.out_proj.{p}"),
    ("encoder.layers.{i}.ffn_layer_norm.{p}", "wav2vec2.encoder.layers.{i}.final_layer_norm.{p}"),
    ("encoder.layers.{i}.ffn.inner_proj.{p}", "wav2vec2.encoder.layers.{i}.feed_forward.intermediate_dense.{p}"),
    ("encoder.layers.{i}.ffn.output_proj.{p}", "wav2vec2.encoder.layers.{i}.feed_forward.output_dense.{p}"),
    ("encoder.layer_norm.{p}", "wav2vec2.encoder.layer_norm.{p}"),
    ("final_proj.{p}", "lm_head.{p}"),
]
PLACEHOLDERS = {"i": r"(?P<i>\d+)", "p": r"(?P<p>weight|bias|weight_g|weight_v)", "proj": r"(?P<proj>[qkv]_proj)"}
TRAINING_ONLY = ("encoder_frontend.masker.",)  # the mask embedding of fine-tuning
POS = "wav2vec2.encoder.pos_conv_embed.conv."

# what the other Omnilingual checkpoints hold, and what to say about them
SELF_SUPERVISED = ("quantizer.", "final_target_proj.")
LLM = ("llama_decoder.", "encoder_proj.", "text_frontend.", "lang_embeddings.")
SELF_SUPERVISED_MESSAGE = ("a self-supervised Omnilingual wav2vec2 checkpoint (omniASR-W2V-*, no CTC head): it "
                           "cannot transcribe; use an omniASR-CTC model (e.g. --model omniasr-ctc-300m)")
LLM_MESSAGE = ("an Omnilingual LLM-ASR checkpoint (omniASR-LLM-*: wav2vec2 encoder + LLaMA decoder), which mms does "
               "not run; use an omniASR-CTC model (e.g. --model omniasr-ctc-1b)")

# the published tokenizers by head size (omnilingual-asr cards rc_models_v1.yaml / rc_models_v2.yaml)
TOKENIZERS = {9812: "https://dl.fbaipublicfiles.com/mms/omniASR_tokenizer.model",
              10288: "https://dl.fbaipublicfiles.com/mms/omniASR_tokenizer_written_v2.model"}


RULES = compile_rules(KEY_TABLE, PLACEHOLDERS)
INVERSE_RULES = compile_rules([(target, source) for source, target in KEY_TABLE], PLACEHOLDERS)


def _rename(name: str, rules) -> str | None:
    for pattern, template in rules:
        m = pattern.match(name)
        if m:
            return template.format(**m.groupdict())
    return None


def canonical_name(fairseq2_name: str) -> str | None:
    """fairseq2 name -> canonical name; None for a tensor this model does not have."""
    return _rename(fairseq2_name, RULES)


def fairseq2_name(canonical: str) -> str:
    """Inverse of canonical_name (to write such files in tests)."""
    name = _rename(canonical, INVERSE_RULES)
    if name is None:
        raise KeyError(canonical)
    return name


def recognizes(path: str | Path) -> bool:
    """Whether `path` is a fairseq2 wav2vec2 checkpoint, judged from the start of its pickle (tensors not read)."""
    head = pickle_head(path)
    return any(marker in head for marker in MARKERS)


def refuse_other_kinds(names, path) -> None:
    """A one-line CheckpointError for the self-supervised and LLM Omnilingual checkpoints."""
    if any(n.startswith(LLM) for n in names):
        raise CheckpointError(f"{path}: {LLM_MESSAGE}")
    if any(n.startswith(SELF_SUPERVISED) for n in names):
        raise CheckpointError(f"{path}: {SELF_SUPERVISED_MESSAGE}")


def translate(state: dict[str, torch.Tensor], path) -> dict[str, torch.Tensor]:
    """fairseq2 tensors -> canonical tensors: rename, fold the positional conv's weight norm. Any other tensor is an
    error (a model this loader would run wrongly)."""
    refuse_other_kinds(state, path)
    out = {}
    for key, value in state.items():
        if key.startswith(TRAINING_ONLY):
            continue
        name = canonical_name(key)
        if name is None:
            raise CheckpointError(f"{path}: unexpected tensor {key!r} for an Omnilingual ASR CTC model")
        out[name] = value
    if POS + "weight_g" in out:
        out[POS + "weight"] = fold_weight_norm(out.pop(POS + "weight_g"), out.pop(POS + "weight_v"), dim=2)
    return out


def build_config(state: dict[str, torch.Tensor], path, heads: int = HEADS,
                 strides: tuple[int, ...] = STRIDES) -> Wav2Vec2Config:
    """The architecture from canonical tensor shapes (missing tensors are named); heads and strides as given."""
    p = "wav2vec2."
    required = ["lm_head.weight", p + "encoder.layer_norm.weight", POS + "weight",
                p + "feature_projection.layer_norm.weight", p + "encoder.layers.0.feed_forward.intermediate_dense.weight"]
    missing = [name for name in required if name not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete Omnilingual ASR CTC model (no {', '.join(missing)})")
    n_conv = len({k.split(".")[3] for k in state if k.startswith(p + "feature_extractor.conv_layers.")})
    conv_w = [state[f"{p}feature_extractor.conv_layers.{i}.conv.weight"] for i in range(n_conv)]
    kernels = tuple(w.shape[2] for w in conv_w)
    if len(kernels) != len(strides):
        raise CheckpointError(f"{path}: {len(kernels)} conv layers of kernels {kernels}; expected {len(strides)}")
    hidden = state[p + "encoder.layer_norm.weight"].shape[0]
    if hidden % heads:
        raise CheckpointError(f"{path}: hidden size {hidden} is not divisible by {heads} attention heads")
    pos = state[POS + "weight"]
    return Wav2Vec2Config(
        hidden_size=hidden,
        num_hidden_layers=len({k.split(".")[3] for k in state if k.startswith(p + "encoder.layers.")}),
        num_attention_heads=heads,
        intermediate_size=state[p + "encoder.layers.0.feed_forward.intermediate_dense.weight"].shape[0],
        conv_dim=tuple(w.shape[0] for w in conv_w),
        conv_kernel=kernels,
        conv_stride=tuple(strides),
        conv_bias=p + "feature_extractor.conv_layers.0.conv.bias" in state,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,  # pre-LN layers, then the final encoder LayerNorm
        num_conv_pos_embeddings=pos.shape[2],
        num_conv_pos_embedding_groups=hidden // pos.shape[1],
        vocab_size=state["lm_head.weight"].shape[0],
    )


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The state dict, memory-mapped. Copy-on-write first (MAP_PRIVATE: nothing can reach the file); Linux refuses
    such a map when it is larger than RAM + swap (its overcommit heuristic counts it: the 26 GB 7B file on a 24 GB
    machine), and then the file is mapped shared, which is not counted. Nothing in mms writes to weights in place
    (models are built from these tensors and run; a dtype change makes new ones), so the file stays as it is."""
    try:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "Cannot allocate memory" not in str(e) or not hasattr(mmap, "MAP_SHARED"):
                raise
            with torch.serialization.set_default_mmap_options(mmap.MAP_SHARED):
                raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any failure here means an unusable file
        raise CheckpointError(f"{path}: cannot read fairseq2 weights ({type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''})") from None
    state = raw.get("model", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a fairseq2 checkpoint (expected {{'model': state_dict}})")
    return state


def find_tokenizer(path: Path, vocab_size: int, tokenizer: str | Path | None) -> tuple[Vocabulary, Path]:
    """The tokenizer given, else the `.model` beside the checkpoint with `vocab_size` pieces (v1 and v2 differ)."""
    published = f" (published: {TOKENIZERS[vocab_size]})" if vocab_size in TOKENIZERS else ""
    if tokenizer is not None:
        try:
            vocab = load_tokenizer(tokenizer)
        except VocabularyError as e:
            raise CheckpointError(str(e)) from None
        if len(vocab) != vocab_size:
            raise CheckpointError(f"{tokenizer}: {len(vocab)} pieces, but {path.name} has {vocab_size} outputs: not "
                                  f"its tokenizer{published}")
        return vocab, Path(tokenizer)
    for candidate in sorted(path.parent.glob("*.model")):
        try:
            vocab = load_tokenizer(candidate)
        except VocabularyError:
            continue
        if len(vocab) == vocab_size:
            return vocab, candidate
    raise CheckpointError(f"{path}: no SentencePiece tokenizer with {vocab_size} pieces beside it; give one with "
                          f"--tokenizer{published}")


def check_complete(state: dict[str, torch.Tensor], config: Wav2Vec2Config, path) -> None:
    """Every tensor of the model, in its shape (a model built on the meta device says which): a missing final
    LayerNorm or layer is named here, not found by a failing forward pass."""
    from mms.models.wav2vec2 import build_model

    with torch.device("meta"):
        expected = build_model(config).state_dict()
    missing = [name for name in expected if name not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete model: no {', '.join(missing[:3])}"
                              f"{f' (+{len(missing) - 3} more)' if len(missing) > 3 else ''}")
    for name, value in expected.items():
        if state[name].shape != value.shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(state[name].shape)}, expected {tuple(value.shape)}")


def load(path: Path, tokenizer: str | Path | None = None) -> Checkpoint:
    path = Path(path)
    state = translate(read_state(path), path)
    config = build_config(state, path)
    if config.conv_kernel != KERNELS:
        raise CheckpointError(f"{path}: conv kernels {config.conv_kernel}, expected {KERNELS} (strides are not stored)")
    check_complete(state, config, path)
    vocab, tokenizer_path = find_tokenizer(path, config.vocab_size, tokenizer)
    return Checkpoint(format="omniasr-fairseq2", path=str(path), config=config, state_dict=state, vocab=vocab,
                      lang=None, normalize=True, normalize_eps=1e-5, language_free=True,
                      notes=[f"tokenizer {tokenizer_path}"])
