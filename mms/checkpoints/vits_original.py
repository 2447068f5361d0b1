"""Original MMS-TTS directories (the `facebook/mms-tts` repo: models/<lang>/G_100000.pth, config.json,
vocab.txt; VITS code in jaywalnut310/vits, text handling in fairseq examples/mms/tts/infer.py) -> VitsCheckpoint.

G_*.pth holds {"model": generator state dict, "iteration", "optimizer", "learning_rate"} and is read with
the restricted unpickler (nothing from the file runs). Its key names differ from the canonical
(transformers) ones; KEY_MAP below is the whole translation, the same as transformers' converter:
  * original ModuleLists interleave parameter-free Flip modules, hence the index shifts:
    flow.flows.{2i} -> flow.flows.{i} and dp.flows.{2i-1} -> duration_predictor.flows.{i};
  * 1x1 conv attention projections [C, C, 1] become linear weights [C, C];
  * LayerNorm gamma/beta become weight/bias;
  * weight norms (decoder and WaveNet convs, g/v over dim 0) are folded into plain weights.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from mms.checkpoints import CheckpointError
from mms.checkpoints.huggingface import read_json
from mms.checkpoints.vits_hf import VitsCheckpoint, check_voice_config, fold_weight_norms
from mms.models.vits import VitsConfig
from mms.text.tts_text import TtsText, read_vocab_txt

SQUEEZE = "squeeze"  # [C, C, 1] conv weight <-> [C, C] linear weight

# (original key, canonical key, transform). {placeholders} match the same value on both sides, except the
# flow indices, which INDEX_MAPS translates.
KEY_MAP = [
    ("enc_p.emb.weight", "text_encoder.embed_tokens.weight", None),
    ("enc_p.encoder.attn_layers.{n}.conv_{qkv}.weight", "text_encoder.encoder.layers.{n}.attention.{qkv}_proj.weight",
     SQUEEZE),
    ("enc_p.encoder.attn_layers.{n}.conv_{qkv}.bias", "text_encoder.encoder.layers.{n}.attention.{qkv}_proj.bias",
     None),
    ("enc_p.encoder.attn_layers.{n}.conv_o.weight", "text_encoder.encoder.layers.{n}.attention.out_proj.weight",
     SQUEEZE),
    ("enc_p.encoder.attn_layers.{n}.conv_o.bias", "text_encoder.encoder.layers.{n}.attention.out_proj.bias", None),
    ("enc_p.encoder.attn_layers.{n}.emb_rel_{kv}", "text_encoder.encoder.layers.{n}.attention.emb_rel_{kv}", None),
    ("enc_p.encoder.norm_layers_1.{n}.gamma", "text_encoder.encoder.layers.{n}.layer_norm.weight", None),
    ("enc_p.encoder.norm_layers_1.{n}.beta", "text_encoder.encoder.layers.{n}.layer_norm.bias", None),
    ("enc_p.encoder.ffn_layers.{n}.conv_{i12}.{p}", "text_encoder.encoder.layers.{n}.feed_forward.conv_{i12}.{p}",
     None),
    ("enc_p.encoder.norm_layers_2.{n}.gamma", "text_encoder.encoder.layers.{n}.final_layer_norm.weight", None),
    ("enc_p.encoder.norm_layers_2.{n}.beta", "text_encoder.encoder.layers.{n}.final_layer_norm.bias", None),
    ("enc_p.proj.{p}", "text_encoder.project.{p}", None),
    ("dp.pre.{p}", "duration_predictor.conv_pre.{p}", None),
    ("dp.proj.{p}", "duration_predictor.conv_proj.{p}", None),
    ("dp.convs.convs_sep.{m}.{p}", "duration_predictor.conv_dds.convs_dilated.{m}.{p}", None),
    ("dp.convs.convs_1x1.{m}.{p}", "duration_predictor.conv_dds.convs_pointwise.{m}.{p}", None),
    ("dp.convs.norms_{i12}.{m}.gamma", "duration_predictor.conv_dds.norms_{i12}.{m}.weight", None),
    ("dp.convs.norms_{i12}.{m}.beta", "duration_predictor.conv_dds.norms_{i12}.{m}.bias", None),
    ("dp.flows.0.m", "duration_predictor.flows.0.translate", None),
    ("dp.flows.0.logs", "duration_predictor.flows.0.log_scale", None),
    ("dp.flows.{conv_flow}.pre.{p}", "duration_predictor.flows.{conv_flow}.conv_pre.{p}", None),
    ("dp.flows.{conv_flow}.proj.{p}", "duration_predictor.flows.{conv_flow}.conv_proj.{p}", None),
    ("dp.flows.{conv_flow}.convs.convs_sep.{m}.{p}",
     "duration_predictor.flows.{conv_flow}.conv_dds.convs_dilated.{m}.{p}", None),
    ("dp.flows.{conv_flow}.convs.convs_1x1.{m}.{p}",
     "duration_predictor.flows.{conv_flow}.conv_dds.convs_pointwise.{m}.{p}", None),
    ("dp.flows.{conv_flow}.convs.norms_{i12}.{m}.gamma",
     "duration_predictor.flows.{conv_flow}.conv_dds.norms_{i12}.{m}.weight", None),
    ("dp.flows.{conv_flow}.convs.norms_{i12}.{m}.beta",
     "duration_predictor.flows.{conv_flow}.conv_dds.norms_{i12}.{m}.bias", None),
    ("flow.flows.{flow}.pre.{p}", "flow.flows.{flow}.conv_pre.{p}", None),
    ("flow.flows.{flow}.enc.in_layers.{m}.{p}", "flow.flows.{flow}.wavenet.in_layers.{m}.{p}", None),
    ("flow.flows.{flow}.enc.res_skip_layers.{m}.{p}", "flow.flows.{flow}.wavenet.res_skip_layers.{m}.{p}", None),
    ("flow.flows.{flow}.post.{p}", "flow.flows.{flow}.conv_post.{p}", None),
    ("dec.conv_pre.{p}", "decoder.conv_pre.{p}", None),
    ("dec.ups.{n}.{p}", "decoder.upsampler.{n}.{p}", None),
    ("dec.resblocks.{n}.convs{i12}.{m}.{p}", "decoder.resblocks.{n}.convs{i12}.{m}.{p}", None),
    ("dec.conv_post.{p}", "decoder.conv_post.{p}", None),
]
PLACEHOLDERS = {"n": r"\d+", "m": r"\d+", "qkv": "[qkv]", "kv": "[kv]", "i12": "[12]",
                "p": "weight_g|weight_v|weight|bias", "flow": r"\d+", "conv_flow": r"\d+"}
# placeholder -> (original index -> canonical index, canonical -> original)
INDEX_MAPS = {
    "flow": (lambda i: i // 2, lambda i: 2 * i),  # [coupling, Flip] * 4
    "conv_flow": (lambda i: (i + 1) // 2, lambda i: 2 * i - 1),  # [affine, (ConvFlow, Flip) * 4]
}
TRAINING_ONLY = ("enc_q.", "dp.post_")  # posterior encoder and posterior duration flows
MULTI_SPEAKER = ("emb_g.", "dp.cond.", "dec.cond.", ".cond_layer.")


def _compile(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    pattern = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>{PLACEHOLDERS[part]})"
                      for i, part in enumerate(parts))
    return re.compile(pattern + "$")


_RULES = [(_compile(original), _compile(canonical), original, canonical, transform)
          for original, canonical, transform in KEY_MAP]


def _translate(key: str, to_canonical: bool) -> tuple[str, str | None] | None:
    for original_re, canonical_re, original, canonical, transform in _RULES:
        match = (original_re if to_canonical else canonical_re).match(key)
        if match is None:
            continue
        values = match.groupdict()
        for name, (forward, backward) in INDEX_MAPS.items():
            if name in values:
                index = int(values[name])
                if to_canonical and (index % 2) != (name == "conv_flow"):
                    return None  # an odd flow.flows / even dp.flows index is a parameter-free Flip
                values[name] = str(forward(index) if to_canonical else backward(index))
        return (canonical if to_canonical else original).format(**values), transform
    return None


def canonical_name(original_key: str) -> tuple[str, str | None] | None:
    """original key -> (canonical key, transform), or None when no rule matches."""
    return _translate(original_key, to_canonical=True)


def original_name(canonical_key: str) -> tuple[str, str | None] | None:
    """The inverse of canonical_name (used to write original-format files, e.g. by the tests)."""
    return _translate(canonical_key, to_canonical=False)


def to_canonical(original: dict[str, torch.Tensor], where: str = "") -> dict[str, torch.Tensor]:
    """Original generator state dict -> canonical names, weight norms folded, training-only tensors dropped."""
    state, unknown = {}, []
    for key, value in original.items():
        key = key.removeprefix("module.")
        if key.startswith(TRAINING_ONLY):
            continue
        if key.startswith(MULTI_SPEAKER) or any(part in key for part in MULTI_SPEAKER):
            raise CheckpointError(f"{where}: multi-speaker VITS weights ({key}) are not supported")
        translated = canonical_name(key)
        if translated is None:
            unknown.append(key)
            continue
        name, transform = translated
        state[name] = value.squeeze(-1) if transform == SQUEEZE else value
    if unknown:
        raise CheckpointError(f"{where}: {len(unknown)} unexpected tensors for a VITS generator, e.g. "
                              f"{', '.join(unknown[:3])}")
    return fold_weight_norms(state)


def to_original(canonical: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical names (weight norms as weight_g/weight_v where the original has them) -> original names."""
    out = {}
    for key, value in canonical.items():
        translated = original_name(key)
        if translated is None:
            raise KeyError(f"no original name for {key}")
        name, transform = translated
        out[name] = value.unsqueeze(-1) if transform == SQUEEZE else value
    return out


def config_from_hparams(hps: dict, vocab_size: int, where: str) -> tuple[VitsConfig, dict]:
    """The VITS hyper-parameters file -> (VitsConfig, its "data" section). Everything VITS hard-codes (window
    4, 3 DDS layers, 4 duration flows of 10 bins, 4 prior flows of 4 WaveNet layers) is the VitsConfig default."""
    try:
        model, data = hps["model"], hps["data"]
        check_voice_config("vits", data.get("n_speakers", 0), model.get("use_sdp", True), where)
        if str(model.get("resblock", "1")) != "1":
            raise CheckpointError(f"{where}: HiFi-GAN resblock type {model['resblock']!r} is not supported "
                                  "(MMS voices use type 1)")
        cfg = VitsConfig(
            vocab_size=vocab_size, hidden_size=model["hidden_channels"], flow_size=model["inter_channels"],
            ffn_dim=model["filter_channels"], num_attention_heads=model["n_heads"],
            num_hidden_layers=model["n_layers"], ffn_kernel_size=model["kernel_size"],
            upsample_rates=tuple(model["upsample_rates"]),
            upsample_initial_channel=model["upsample_initial_channel"],
            upsample_kernel_sizes=tuple(model["upsample_kernel_sizes"]),
            resblock_kernel_sizes=tuple(model["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(d) for d in model["resblock_dilation_sizes"]),
            sampling_rate=int(data["sampling_rate"]))
        for name in ("noise_scale", "noise_scale_duration", "speaking_rate"):  # written by `mms train-tts`
            value = model.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
                    value > 0 or (value == 0 and name != "speaking_rate")):
                setattr(cfg, name, float(value))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{where}: not a VITS hyper-parameter file (missing or bad {e})") from None
    return cfg, data


def find_generator(model_dir: Path) -> Path:
    """The G_<step>.pth with the highest step (the repo ships G_100000.pth)."""
    candidates = sorted(model_dir.glob("G_*.pth"),
                        key=lambda p: int(p.stem[2:]) if p.stem[2:].isdigit() else -1)
    if not candidates:
        raise CheckpointError(f"{model_dir}: no G_*.pth generator checkpoint")
    return candidates[-1]


def read_generator(path: Path) -> dict[str, torch.Tensor]:
    from mms.checkpoints import safe_pickle

    try:
        ckpt = safe_pickle.load(path)
    except Exception as e:  # noqa: BLE001 - refused globals, truncated or non-torch files
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(str(k).endswith("enc_p.emb.weight") for k in state):
        raise CheckpointError(f"{path}: not a VITS generator checkpoint (no model.enc_p.emb.weight)")
    return state


def load(model_dir: Path, lang: str | None = None) -> VitsCheckpoint:
    model_dir = Path(model_dir)
    config_path, vocab_path = model_dir / "config.json", model_dir / "vocab.txt"
    for needed in (config_path, vocab_path):
        if not needed.exists():
            raise CheckpointError(f"{model_dir}: no {needed.name} (an original MMS-TTS directory has "
                                  "G_100000.pth, config.json and vocab.txt)")
    hps = read_json(config_path)
    if not isinstance(hps, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object")
    try:
        symbols = read_vocab_txt(vocab_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{vocab_path}: cannot read ({e})") from None
    cfg, data = config_from_hparams(hps, len(symbols), str(config_path))
    generator = find_generator(model_dir)
    state = to_canonical(read_generator(generator), str(generator))
    embedding = state.get("text_encoder.embed_tokens.weight")
    if embedding is None or embedding.shape[0] != len(symbols):
        raise CheckpointError(f"{vocab_path}: {len(symbols)} symbols, but the model embeds "
                              f"{None if embedding is None else embedding.shape[0]}")
    is_uroman = str(data.get("training_files", "")).split(".")[-1] == "uroman"
    if lang is None and isinstance(data.get("language"), str):  # written by mms train-tts
        lang = data["language"]
    text = TtsText(symbols=symbols, style="fairseq", lang=lang, uroman=is_uroman,
                   add_blank=bool(data.get("add_blank", True)))
    return VitsCheckpoint("original", str(model_dir), cfg, state, text, lang)
