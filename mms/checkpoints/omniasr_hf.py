"""Omnilingual ASR CTC models as transformers (>= 5.25) saves them: an `omniasr_ctc` directory.

    config.json             model_type "omniasr_ctc", vocab_size, audio_config {hidden_size, num_attention_heads,
                            conv_kernel, conv_stride, ...} (keys equal to OmniASRAudioConfig's defaults may be left out)
    model.safetensors       OmniASRForCTC names (PREFIXES); the positional conv's weight norm folded
    tokenizer.json          the SentencePiece pieces as a tokenizers Unigram model (no .model file)
    processor_config.json   the feature extractor's settings (do_normalize); no preprocessor_config.json

Below the prefixes the names are this project's canonical ones. Sizes come from tensor shapes, the head count and
strides from config.json. An `omniasr` directory (the LLM model) is refused. Torch is imported only to load.
"""

from __future__ import annotations

import json
from pathlib import Path

from mms.checkpoints import Checkpoint, CheckpointError

PREFIXES = [  # OmniASRForCTC prefix -> canonical prefix
    ("ctc_head.", "lm_head."),
    ("model.audio_tower.subsampling.conv_layers.", "wav2vec2.feature_extractor.conv_layers."),
    ("model.audio_tower.subsampling.layer_norm.", "wav2vec2.feature_projection.layer_norm."),
    ("model.audio_tower.subsampling.projection.", "wav2vec2.feature_projection.projection."),
    ("model.audio_tower.encode_positions.", "wav2vec2.encoder.pos_conv_embed."),
    ("model.audio_tower.layers.", "wav2vec2.encoder.layers."),
    ("model.audio_tower.layer_norm.", "wav2vec2.encoder.layer_norm."),
]
MODEL_TYPES = ("omniasr_ctc", "omniasr")
AUDIO_DEFAULTS = {"num_attention_heads": 16, "conv_stride": [5, 2, 2, 2, 2, 2, 2], "hidden_act": "gelu",
                  "layer_norm_eps": 1e-5}  # transformers' OmniASRAudioConfig


def model_type(model_dir: Path) -> str | None:
    try:
        return json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def recognizes(model_dir: Path) -> bool:
    """Whether a directory with config.json is an Omnilingual ASR model (torch-free)."""
    return model_type(model_dir) in MODEL_TYPES


def canonical_name(name: str) -> str | None:
    for prefix, canonical in PREFIXES:
        if name.startswith(prefix):
            return canonical + name[len(prefix):]
    return None


def hf_name(canonical: str) -> str:
    """Inverse of canonical_name (to write such directories in tests)."""
    for prefix, canonical_prefix in PREFIXES:
        if canonical.startswith(canonical_prefix):
            return prefix + canonical[len(canonical_prefix):]
    raise KeyError(canonical)


def load(model_dir: Path, tokenizer: str | Path | None = None) -> Checkpoint:
    from mms.checkpoints.huggingface import read_json, read_model_weights, to_canonical
    from mms.checkpoints.omniasr import LLM_MESSAGE, build_config, check_complete

    model_dir = Path(model_dir)
    config_json = read_json(model_dir / "config.json")
    if config_json.get("model_type") != "omniasr_ctc":
        raise CheckpointError(f"{model_dir}: {LLM_MESSAGE}")
    audio = {**AUDIO_DEFAULTS, **(config_json.get("audio_config") or {})}
    if audio["hidden_act"] != "gelu":
        raise CheckpointError(f"{model_dir}: hidden_act {audio['hidden_act']!r} is not supported (gelu only)")
    state = {}
    for name, value in read_model_weights(model_dir).items():
        canonical = canonical_name(name)
        if canonical is None:
            raise CheckpointError(f"{model_dir}: unexpected tensor {name!r} for an OmniASRForCTC model")
        state[canonical] = value
    state = to_canonical(state)  # folds a weight norm left on the positional conv (either spelling)
    config = build_config(state, model_dir, heads=int(audio["num_attention_heads"]),
                          strides=tuple(int(s) for s in audio["conv_stride"]))
    config.layer_norm_eps = float(audio["layer_norm_eps"])
    check_complete(state, config, model_dir)
    vocab, source = read_tokenizer(model_dir, config.vocab_size, tokenizer)
    return Checkpoint(format="omniasr-huggingface", path=str(model_dir), config=config, state_dict=state, vocab=vocab,
                      lang=None, normalize=do_normalize(model_dir), normalize_eps=1e-5, language_free=True,
                      notes=[f"tokenizer {source}"])


def read_tokenizer(model_dir: Path, vocab_size: int, tokenizer: str | Path | None):
    """`tokenizer` if given, else the directory's tokenizer.json, else a SentencePiece .model in it."""
    from mms.checkpoints.omniasr import find_tokenizer
    from mms.text.sentencepiece_vocab import from_tokenizer_json
    from mms.text.vocab import VocabularyError

    if tokenizer is None and (model_dir / "tokenizer.json").is_file():
        try:
            vocab = from_tokenizer_json(model_dir / "tokenizer.json")
        except VocabularyError as e:
            raise CheckpointError(str(e)) from None
        if len(vocab) != vocab_size:
            raise CheckpointError(f"{model_dir / 'tokenizer.json'}: {len(vocab)} tokens, the model has {vocab_size} "
                                  f"outputs")
        return vocab, model_dir / "tokenizer.json"
    return find_tokenizer(model_dir / "config.json", vocab_size, tokenizer)


def do_normalize(model_dir: Path) -> bool:
    """The feature extractor's do_normalize (processor_config.json, or a preprocessor_config.json); default True."""
    for name, key in (("processor_config.json", "feature_extractor"), ("preprocessor_config.json", None)):
        path = model_dir / name
        if path.is_file():
            try:
                settings = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if key:
                settings = settings.get(key) or {}
            if "do_normalize" in settings:
                return bool(settings["do_normalize"])
    return True
