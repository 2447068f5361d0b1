"""Hugging Face MMS-TTS directories (facebook/mms-tts-<lang>): config.json (model_type "vits"),
model.safetensors or pytorch_model.bin, vocab.json and tokenizer_config.json -> `VitsCheckpoint`.

Canonical names are the transformers names, so the only translations are: fold weight norms (the 2023 Hub
files spell them `weight_g/weight_v`, newer saves `parametrizations.weight.original0/1`) and drop the
training-only posterior encoder and posterior duration flows. `VitsCheckpoint` is also what
mms/checkpoints/vits_original.py returns for the original format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mms.checkpoints import CheckpointError
from mms.checkpoints.huggingface import read_json, read_model_weights
from mms.models.vits import VitsConfig, fold_weight_norm
from mms.text.tts_text import TtsText

WEIGHT_NORM_NAMES = (  # (g, v) spellings
    ("weight_g", "weight_v"),
    ("parametrizations.weight.original0", "parametrizations.weight.original1"),
)
TRAINING_ONLY = ("posterior_encoder.", "duration_predictor.post_")


@dataclass
class VitsCheckpoint:
    format: str  # "huggingface" or "original"
    path: str
    config: VitsConfig
    state_dict: dict[str, torch.Tensor]  # canonical names (mms/models/vits.py), weight norms folded
    text: TtsText  # how text becomes ids for this voice
    lang: str | None  # ISO 639-3 code of the voice, when known


def fold_weight_norms(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every `<name>.{g}` + `<name>.{v}` pair -> `<name>.weight` (VITS norms are all over dim 0)."""
    out = dict(state)
    for g_name, v_name in WEIGHT_NORM_NAMES:
        for key in [k for k in out if k.endswith("." + g_name)]:
            base = key[: -len(g_name)]
            if base + v_name not in out:
                raise CheckpointError(f"weight norm of {base[:-1]}: {base + g_name} without {base + v_name}")
            out[base + "weight"] = fold_weight_norm(out.pop(key), out.pop(base + v_name), dim=0)
    return out


def check_voice_config(model_type, num_speakers, stochastic_durations, where: str) -> None:
    if model_type != "vits":
        raise CheckpointError(f"{where}: model_type {model_type!r} is not a VITS text-to-speech model")
    if (num_speakers or 1) > 1:
        raise CheckpointError(f"{where}: multi-speaker VITS models are not supported (MMS voices have one)")
    if not stochastic_durations:
        raise CheckpointError(f"{where}: VITS with a deterministic duration predictor is not supported "
                              "(MMS voices use the stochastic one)")


def _token(value, default: str) -> str:
    """tokenizer_config.json writes a token as a string or as {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content", default)
    return default if value is None else str(value)


def load(model_dir: Path, lang: str | None = None) -> VitsCheckpoint:
    model_dir = Path(model_dir)
    config_json = read_json(model_dir / "config.json")
    check_voice_config(config_json.get("model_type"), config_json.get("num_speakers", 1),
                       config_json.get("use_stochastic_duration_prediction", True), str(model_dir / "config.json"))
    cfg = VitsConfig.from_dict(config_json)
    weights = read_model_weights(model_dir)
    state = fold_weight_norms({k: v for k, v in weights.items() if not k.startswith(TRAINING_ONLY)})
    embedding = state.get("text_encoder.embed_tokens.weight")
    if embedding is None:
        raise CheckpointError(f"{model_dir}: no text_encoder.embed_tokens.weight: not VITS weights")
    cfg.vocab_size = embedding.shape[0]

    if not (model_dir / "vocab.json").exists():
        raise CheckpointError(f"{model_dir}: no vocab.json (the voice's symbols)")
    token_to_id = read_json(model_dir / "vocab.json")
    if not token_to_id or not all(isinstance(i, int) for i in token_to_id.values()):
        raise CheckpointError(f"{model_dir}/vocab.json: expected a flat {{symbol: id}} map")
    if max(token_to_id.values()) >= cfg.vocab_size or min(token_to_id.values()) < 0:
        raise CheckpointError(f"{model_dir}/vocab.json: ids up to {max(token_to_id.values())}, but the model "
                              f"embeds {cfg.vocab_size} symbols")
    tok_path = model_dir / "tokenizer_config.json"
    if not tok_path.exists():
        raise CheckpointError(f"{model_dir}: no tokenizer_config.json (MMS voices have one, saying phonemize false "
                              f"and the language; without it transformers' VitsTokenizer phonemizes the text)")
    tok = read_json(tok_path)
    if tok.get("phonemize", True):  # VitsTokenizer's default; MMS voices write false
        raise CheckpointError(f"{tok_path}: phonemize is on (an espeak-phonemized VITS voice); only MMS "
                              "character voices are supported")
    symbols = [""] * cfg.vocab_size
    for token, i in token_to_id.items():
        symbols[i] = token
    voice_lang = tok.get("language")
    if lang and voice_lang and lang != voice_lang:
        raise CheckpointError(f"{model_dir}: this voice speaks '{voice_lang}', not '{lang}'")
    text = TtsText(symbols=symbols, style="transformers", lang=voice_lang or lang,
                   uroman=bool(tok.get("is_uroman", False)), add_blank=bool(tok.get("add_blank", True)),
                   normalize=bool(tok.get("normalize", True)),
                   special_tokens=(_token(tok.get("pad_token"), "<pad>"), _token(tok.get("unk_token"), "<unk>")),
                   token_to_id=token_to_id)
    return VitsCheckpoint("huggingface", str(model_dir), cfg, state, text, voice_lang or lang)
