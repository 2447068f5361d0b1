"""Tiny random MMS-TTS voices (VITS), written in both on-disk formats from one random model.

`random_voice` draws one transformers VitsModel (random weights, non-trivial layer norms, durations of a few
frames per id, decoder weight norms as separate g/v like the original checkpoints); `write_hf` saves it as a
Hugging Face mms-tts-* directory through transformers' own save_pretrained and VitsTokenizer, `write_original`
as an original models/<lang>/ directory (G_100000.pth, config.json, vocab.txt) through the inverse of the
loader's key map, weight norms unfolded. Every loader is thus tested against the same numbers.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mms.checkpoints.vits_original import to_original

# mms-tts-eng's symbols: "k" is id 0, the blank and the pad token
ENG_SYMBOLS = ["k", "'", "z", "y", "u", "d", "h", "e", "s", "w", "–", "3", "c", "p", "-", "1", "j", "m", "i", " ",
               "f", "l", "o", "0", "b", "r", "a", "4", "2", "n", "_", "x", "v", "t", "q", "5", "6", "g"]

# small sizes; the structure VITS hard-codes (flows, windows, WaveNet depth) is kept
TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, ffn_dim=24, flow_size=16,
            upsample_initial_channel=16, upsample_rates=[4, 4], upsample_kernel_sizes=[8, 8],
            resblock_kernel_sizes=[3, 5], resblock_dilation_sizes=[[1, 2], [1, 2]], spectrogram_bins=9,
            posterior_encoder_num_wavenet_layers=2)

WN_G, WN_V = "parametrizations.weight.original0", "parametrizations.weight.original1"


@dataclass
class RandomVoice:
    config: "transformers.VitsConfig"  # noqa: F821
    state: dict[str, torch.Tensor]  # transformers VitsModel state dict (decoder weights folded)
    symbols: list[str]
    decoder_norms: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # name -> (g, v)

    def reference_model(self):
        """transformers' VitsModel with these weights, in eval mode."""
        import transformers

        model = transformers.VitsModel(self.config)
        model.load_state_dict(self.state)
        return model.eval()

    def unfolded_state(self) -> dict[str, torch.Tensor]:
        """Canonical names with every weight norm as weight_g / weight_v (the original layout's content),
        training-only tensors left out."""
        out = {}
        for key, value in self.state.items():
            if key.startswith(("posterior_encoder.", "duration_predictor.post_")) or key.endswith(WN_V):
                continue
            if key.endswith(WN_G):
                base = key[: -len(WN_G)]
                out[base + "weight_g"], out[base + "weight_v"] = value, self.state[base + WN_V]
            elif key in self.decoder_norms:
                base = key[: -len("weight")]
                out[base + "weight_g"], out[base + "weight_v"] = self.decoder_norms[key]
            else:
                out[key] = value
        return out


def random_voice(seed: int = 0, symbols: list[str] | None = None, **overrides) -> RandomVoice:
    import transformers

    symbols = list(symbols or ENG_SYMBOLS)
    torch.manual_seed(seed)
    config = transformers.VitsConfig(**{**TINY, **overrides, "vocab_size": len(symbols)})
    state = {k: v.clone() for k, v in transformers.VitsModel(config).state_dict().items()}
    for key, value in state.items():
        if ("layer_norm" in key or ".norms_" in key) and key.endswith(".weight"):
            state[key] = 1 + 0.2 * torch.randn_like(value)
        elif ("layer_norm" in key or ".norms_" in key) and key.endswith(".bias"):
            state[key] = 0.1 * torch.randn_like(value)
    # speech-like durations: log duration = (z + 8) / e^2, about 3 frames per id
    for prefix in ("duration_predictor.flows.0.", "duration_predictor.post_flows.0."):
        state[prefix + "translate"] = torch.full_like(state[prefix + "translate"], -8.0)
        state[prefix + "log_scale"] = torch.full_like(state[prefix + "log_scale"], 2.0)
    voice = RandomVoice(config, state, symbols)
    for key, value in state.items():  # decoder convs: weight = g * v / |v|, g and v as stored originally
        if key.startswith(("decoder.upsampler.", "decoder.resblocks.")) and key.endswith(".weight"):
            v = torch.randn_like(value) * value.std()
            g = torch.linalg.vector_norm(v, dim=(1, 2), keepdim=True) * (0.5 + torch.rand(v.shape[0], 1, 1))
            voice.decoder_norms[key] = (g, v)
            state[key] = torch._weight_norm(v, g, 0)
    return voice


def write_hf(voice: RandomVoice, out: Path, lang: str = "eng", uroman: bool = False,
             weight_norm: str = "parametrizations") -> Path:
    """A facebook/mms-tts-<lang>-like directory; weight_norm "legacy" writes the 2023 weight_g/weight_v names."""
    import transformers
    from safetensors.torch import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    voice.reference_model().save_pretrained(out)
    if weight_norm == "legacy":
        state = load_file(str(out / "model.safetensors"))
        state = {k.replace(WN_G, "weight_g").replace(WN_V, "weight_v"): v for k, v in state.items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    vocab = out / "vocab.json"
    vocab.write_text(json.dumps({s: i for i, s in enumerate(voice.symbols)}, sort_keys=True, ensure_ascii=False))
    tokenizer = transformers.VitsTokenizer(str(vocab), pad_token=voice.symbols[0], language=lang, add_blank=True,
                                           normalize=True, phonemize=False, is_uroman=uroman)
    tokenizer.save_pretrained(out)
    return out


def original_config(voice: RandomVoice, uroman: bool = False) -> dict:
    c = voice.config
    return {
        "train": {"segment_size": 8192, "learning_rate": 2e-4, "batch_size": 64},
        "data": {"training_files": "train.ltr" + (".uroman" if uroman else ""), "text_cleaners": ["transliteration_cleaners"],
                 "max_wav_value": 32768.0, "sampling_rate": c.sampling_rate, "filter_length": 1024,
                 "hop_length": int(torch.tensor(c.upsample_rates).prod()), "win_length": 1024, "n_mel_channels": 80,
                 "add_blank": True, "n_speakers": 0, "cleaned_text": True},
        "model": {"inter_channels": c.flow_size, "hidden_channels": c.hidden_size, "filter_channels": c.ffn_dim,
                  "n_heads": c.num_attention_heads, "n_layers": c.num_hidden_layers, "kernel_size": c.ffn_kernel_size,
                  "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": list(c.resblock_kernel_sizes),
                  "resblock_dilation_sizes": [list(d) for d in c.resblock_dilation_sizes],
                  "upsample_rates": list(c.upsample_rates), "upsample_initial_channel": c.upsample_initial_channel,
                  "upsample_kernel_sizes": list(c.upsample_kernel_sizes), "n_layers_q": 3,
                  "use_spectral_norm": False},
    }


def write_original(voice: RandomVoice, out: Path, uroman: bool = False) -> Path:
    """An original models/<lang>/ directory: G_100000.pth (generator + training state), config.json, vocab.txt."""
    out.mkdir(parents=True, exist_ok=True)
    model = to_original(voice.unfolded_state())
    # training-only tensors the loader must skip
    model["enc_q.pre.weight"] = voice.state["posterior_encoder.conv_pre.weight"]
    model["dp.post_pre.weight"] = voice.state["duration_predictor.post_conv_pre.weight"]
    optimizer = {"state": {0: {"step": torch.tensor(100000.0), "exp_avg": torch.zeros(3)}},
                 "param_groups": [{"lr": 2e-4, "betas": (0.8, 0.99), "params": [0]}]}
    torch.save({"model": model, "iteration": 100000, "optimizer": optimizer, "learning_rate": 2e-4},
               out / "G_100000.pth")
    (out / "config.json").write_text(json.dumps(original_config(voice, uroman), indent=2))
    (out / "vocab.txt").write_text("".join(s + "\n" for s in voice.symbols), encoding="utf-8")
    return out


@dataclass
class VoiceDirs:
    voice: RandomVoice
    hf: Path  # Hugging Face directory, parametrizations.* weight-norm names
    hf_legacy: Path  # the same with weight_g / weight_v names
    original: Path  # models/eng/ with G_100000.pth, config.json, vocab.txt
    root: Path  # holds models/eng/ and mms-tts-eng/ (= hf)


@functools.lru_cache(maxsize=None)
def voice_dirs() -> VoiceDirs:
    """One tiny English voice in every format, written once per test session (shared by the test modules)."""
    root = Path(tempfile.mkdtemp(prefix="mms-tts-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    voice = random_voice(seed=0)
    return VoiceDirs(voice, write_hf(voice, root / "mms-tts-eng"),
                     write_hf(voice, root / "legacy" / "mms-tts-eng", weight_norm="legacy"),
                     write_original(voice, root / "models" / "eng"), root)
