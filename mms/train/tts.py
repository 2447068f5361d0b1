"""The training engine behind `mms train-tts`: VITS training of an MMS-TTS voice, fine-tuned from a published one
or from scratch, as Kim et al. 2021 and jaywalnut310/vits (the code MMS-TTS was trained with) define it.

    from mms.train.tts import TTSTrainOptions, train_tts
    summary = train_tts(TTSTrainOptions(model="mms-tts-eng", train=["train.jsonl"], dev=["dev.jsonl"], out="voice"))
    summary = train_tts(TTSTrainOptions(config="tiny", train=["train.jsonl"], out="voice"))    # from scratch

Each step, as VITS's train.py: the generator (mms/models/vits_train.py: text encoder, posterior encoder, prior
flows, monotonic alignment search, stochastic duration predictor, HiFi-GAN on a random segment of
`segment_frames` latent frames) runs once; the discriminators (multi-period + one scale discriminator) take a
least-squares step on the real and generated segments, then the generator takes one on mel L1 (x45) + KL (x1) +
duration NLL + adversarial + feature matching (x2). AdamW (betas 0.8, 0.99, eps 1e-9, weight decay 0.01) for both,
the learning rate multiplied by 0.999875 after every epoch; optional gradient-norm clipping and bf16 autocast.

Data: JSON-lines manifests {"audio_filepath": ..., "text": ...} (paths relative to the manifest), audio resampled
to the voice's rate, text turned into ids exactly as `mms tts` does for that voice (mms/text/tts_text.py: uroman,
case folding, unknown characters dropped, blanks interspersed). A new voice's symbols are the blank "<pad>" and
every character of its (lower-cased, optionally romanised) training transcripts.

Output directory (--out): the voice in the Hugging Face layout (config.json, model.safetensors with the posterior
encoder, vocab.json, tokenizer_config.json: `mms tts --model OUT` and transformers' VitsModel read it), the same
voice in the original layout in OUT/original/ (G_<step>.pth, D_<step>.pth, config.json, vocab.txt: VITS's own
files, a starting point for more fine-tuning with the discriminators), train_state.pt (the resumable state:
weights, optimizers, schedulers, RNG, position; rerun the command to continue, bit-identically), train_log.jsonl
(losses and dev mel L1 per epoch) and samples/ (wavs written every --sample-every steps).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mms.audio import AudioError, audio_info, load_audio, write_audio
from mms.batching import prefetch, release_memory
from mms.errors import MMSError
from mms.files import atomic_path
from mms.manifest import read_manifest
from mms.options import MAX_DISCRIMINATOR_WIDTH
from mms.models.vits import ACTIVATIONS, VitsConfig
from mms.models.vits_train import (WN_G, WN_V, SpectrogramConfig, VitsDiscriminator, VitsGenerator, convert_weight_norms,
                                   discriminator_loss, discriminator_width, feature_loss, fold_weight_norm,
                                   generator_loss, init_weights, kl_loss, linear_spectrogram, mel_filterbank, mel_l1,
                                   mel_spectrogram, slice_segments, spec_to_mel)
from mms.text.numbers import spell_numbers
from mms.text.romanize import romanize
from mms.text.tts_text import TtsText
from mms.train.data import READ_AHEAD, DataError, TrainError, check_settings, read_again
from mms.train.engine import Reporter, StopRequest, nothing_left
from mms.train.export import (check_train_set, lock_out_folder, make_out_folder, read_state, restore_rng, rng_state,
                              save_tensors, train_set_identity, write_json, write_log, write_state)

log = logging.getLogger("mms.train")
STATE_FILE = "train_state.pt"
LOG_FILE = "train_log.jsonl"
ORIGINAL_DIR = "original"
SAMPLES_DIR = "samples"
BLANK = "<pad>"  # symbol 0 of a new voice: the blank interspersed between letters (never a letter of the text)

# Architectures for --config. "mms": every MMS-TTS voice (VitsConfig's defaults). "tiny": a very small VITS for
# tests and CPU demos, with the structure VITS hard-codes (flows, windows, WaveNet depths, 3 dilations per
# residual block, hop 256) kept so that its original-layout files are ordinary VITS files.
PRESETS: dict[str, tuple[dict, float]] = {  # name -> (VitsConfig values, discriminator width)
    "mms": ({}, 1.0),
    "tiny": (dict(hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=2, flow_size=32,
                  upsample_initial_channel=64, upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                  resblock_kernel_sizes=(3, 7), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5))), 1 / 16),
}


@dataclass
class TTSTrainOptions:
    model: str | None = None  # voice to fine-tune: published name (mms-tts-eng), HF directory, original directory
    config: str | None = None  # instead of model: "tiny", "mms" or a config.json (HF VitsConfig or VITS hparams)
    init_config: VitsConfig | None = None  # API: a new voice of this architecture (overrides `config`)
    spectrogram: SpectrogramConfig | None = None  # API, with init_config: its STFT/mel settings
    lang: str | None = None  # ISO 639-3 code of the voice (picks a voice in a folder; "ron" text fix)
    uroman: bool = False  # new voice: romanise the transcripts (and later inputs) with uroman
    train: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    out: str = "voice"
    epochs: int = 100
    max_steps: int | None = None  # stop (resumably) after this many steps in all
    batch_size: int = 16
    lr: float = 2e-4
    lr_decay: float = 0.999875  # per epoch (ExponentialLR)
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    weight_decay: float = 0.01  # torch AdamW's default, which VITS keeps
    segment_frames: int = 32  # latent frames decoded per utterance and step (VITS: segment_size 8192 / hop 256)
    mel_weight: float = 45.0
    kl_weight: float = 1.0
    max_grad_norm: float | None = None  # None: no clipping (VITS only measures the norm)
    precision: str = "auto"  # "auto" (bf16 on GPUs that have it), "fp32" or "bf16"
    device: str = "auto"
    threads: int | None = None
    seed: int = 1234
    max_seconds: float | None = 20.0  # longer training utterances are skipped (None: none is)
    save_every: int = 1000  # steps between resumable states and exports (and at the end)
    sample_every: int = 1000  # steps between sample wavs (0: none)
    sample_texts: list[str] = field(default_factory=list)  # default: the first two dev (or train) transcripts
    discriminator: str | None = None  # D_*.pth to start the discriminators from (default: the voice's own)
    discriminator_width: float | None = None  # new discriminators: channel scale (default: the preset's or 1)
    progress: bool = True

    def check(self) -> None:
        if (self.model is None) == (self.config is None and self.init_config is None):
            raise TrainError("give either --model (a voice to fine-tune) or --config (a new voice)")
        if not self.train:
            raise TrainError("no training manifest (give --train)")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise TrainError(f"--precision {self.precision}: use auto, fp32 or bf16")
        if self.epochs < 1 or self.batch_size < 1 or self.segment_frames < 1:
            raise TrainError("--epochs, --batch-size and --segment-frames must be positive")
        if not self.lr > 0:
            raise TrainError(f"--lr {self.lr}: must be positive")
        if not 0 < self.lr_decay <= 1:
            raise TrainError(f"--lr-decay {self.lr_decay}: must be in (0, 1]")
        if self.save_every < 1 or self.sample_every < 0:
            raise TrainError("--save-every must be positive and --sample-every 0 or more")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise TrainError("--max-grad-norm must be positive")
        if self.model is not None and self.uroman:
            raise TrainError("--uroman is for a new voice (--config): a voice to fine-tune keeps its own text "
                             "preparation")
        if self.sample_texts and not self.sample_every:
            raise TrainError("--sample-text with --sample-every 0: no samples would be written")
        if self.discriminator is not None and self.discriminator_width is not None:
            raise TrainError("--discriminator-width with --discriminator: the width is the checkpoint's")
        if self.discriminator_width is not None and not 0 < self.discriminator_width <= MAX_DISCRIMINATOR_WIDTH:
            raise TrainError(f"--discriminator-width {self.discriminator_width}: must be above 0 and at most "
                             f"{MAX_DISCRIMINATOR_WIDTH:g} (1 is VITS's own size)")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise TrainError(f"--max-seconds {self.max_seconds}: must be positive (None: keep every utterance)")


# ---------------------------------------------------------------------------------------------------------
# Voices: loading one to fine-tune, or describing a new one


@dataclass
class Voice:
    config: VitsConfig
    spectrogram: SpectrogramConfig
    text: TtsText
    lang: str | None
    weights: dict[str, torch.Tensor] | None = None  # canonical names; None: a new voice
    discriminator: dict[str, torch.Tensor] | None = None  # VITS names (D_*.pth "model")
    discriminator_width: float = 1.0
    source: str = "new"


_POSTERIOR_RULES = [(re.compile(r"enc_q\.pre\.(.+)$"), "posterior_encoder.conv_pre.{0}"),
                    (re.compile(r"enc_q\.enc\.(in_layers|res_skip_layers)\.(\d+)\.(.+)$"),
                     "posterior_encoder.wavenet.{0}.{1}.{2}"),
                    (re.compile(r"enc_q\.proj\.(.+)$"), "posterior_encoder.conv_proj.{0}")]
_POSTERIOR_INVERSE = [(re.compile(r"posterior_encoder\.conv_pre\.(.+)$"), "enc_q.pre.{0}"),
                      (re.compile(r"posterior_encoder\.wavenet\.(in_layers|res_skip_layers)\.(\d+)\.(.+)$"),
                       "enc_q.enc.{0}.{1}.{2}"),
                      (re.compile(r"posterior_encoder\.conv_proj\.(.+)$"), "enc_q.proj.{0}")]


def _rewrite(key: str, rules) -> str | None:
    for pattern, template in rules:
        match = pattern.match(key)
        if match:
            return template.format(*match.groups())
    return None


def original_to_canonical(original: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    """A whole VITS generator state dict (G_*.pth "model", training-only parts included) -> canonical names, weight
    norms kept as weight_g/weight_v. The inference part is mms.checkpoints.vits_original's key map; the posterior
    flows `dp.post_*` follow the same rules as `dp.*`, the posterior encoder `enc_q.*` the table above."""
    from mms.checkpoints import CheckpointError
    from mms.checkpoints.vits_original import SQUEEZE, canonical_name

    out, unknown = {}, []
    for key, value in original.items():
        key = key.removeprefix("module.")
        transform = None
        if key.startswith("enc_q."):
            name = _rewrite(key, _POSTERIOR_RULES)
        elif key.startswith("dp.post_"):
            translated = canonical_name("dp." + key[len("dp.post_"):])
            name = translated and translated[0].replace("duration_predictor.", "duration_predictor.post_", 1)
        else:
            translated = canonical_name(key)
            name, transform = translated if translated else (None, None)
        if name is None:
            unknown.append(key)
            continue
        out[name] = value.squeeze(-1) if transform == SQUEEZE else value
    if unknown:
        raise CheckpointError(f"{where}: {len(unknown)} unexpected tensors for a VITS generator, e.g. "
                              f"{', '.join(unknown[:3])}")
    return out


def canonical_to_original(canonical: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse: a training generator's state dict -> VITS names (weight norms as weight_g/weight_v)."""
    from mms.checkpoints.vits_original import SQUEEZE, original_name

    out = {}
    for key, value in canonical.items():
        key = key.replace(WN_G, "weight_g").replace(WN_V, "weight_v")
        transform = None
        if key.startswith("posterior_encoder."):
            name = _rewrite(key, _POSTERIOR_INVERSE)
        elif key.startswith("duration_predictor.post_"):
            name, transform = original_name("duration_predictor." + key[len("duration_predictor.post_"):])
            name = "dp.post_" + name[len("dp."):]
        else:
            name, transform = original_name(key)
        out[name] = value.unsqueeze(-1) if transform == SQUEEZE else value
    return out


def _latest(directory: Path, prefix: str) -> Path | None:
    found = sorted(directory.glob(f"{prefix}_*.pth"), key=lambda p: int(p.stem[2:]) if p.stem[2:].isdigit() else -1)
    return found[-1] if found else None


def read_discriminator(path: Path) -> dict[str, torch.Tensor]:
    """A VITS D_*.pth ({"model": MultiPeriodDiscriminator state dict, ...}), with the restricted unpickler."""
    from mms.checkpoints import safe_pickle

    try:
        ckpt = safe_pickle.load(path)
    except Exception as e:  # noqa: BLE001 - refused globals, truncated or non-torch files
        raise TrainError(f"{path}: cannot read discriminator checkpoint ({type(e).__name__}: {e})") from None
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not any(str(k).startswith("discriminators.1.convs.0.") for k in state):
        raise TrainError(f"{path}: not a VITS discriminator checkpoint (no discriminators.1.convs.0)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.endswith("weight_orig") for k in state):
        raise TrainError(f"{path}: a spectral-norm discriminator (use_spectral_norm); VITS's weight-norm one is "
                         "supported")
    return state


def load_voice(model: str, lang: str | None, discriminator: str | None = None) -> Voice:
    """A published or local voice with every generator weight (training-only parts too, when the files have them)
    and, when found, its discriminators: `discriminator`, else a D_*.pth next to an original G_*.pth or in the
    original/ folder of a directory written by `mms train-tts`."""
    from mms.checkpoints import CheckpointError, vits_hf, vits_original
    from mms.checkpoints.huggingface import read_json, read_model_weights
    from mms.checkpoints.vits_voice import find_voice
    from mms.hub import resolve_model

    try:
        fmt, directory = find_voice(resolve_model(model, task="tts", lang=lang), lang)
        if fmt == "huggingface":
            checkpoint = vits_hf.load(directory, lang)
            weights = {k: v.float() for k, v in read_model_weights(directory).items()}
            foreign = [k for k in weights if k.startswith("discriminator.")]  # finetune-hf-vits "-train" repos
            if foreign:
                log.warning(f"{directory}: its discriminator weights ({len(foreign)} tensors) are not in VITS's "
                            f"layout and are not used; the discriminators start from random weights")
                weights = {k: v for k, v in weights.items() if k not in foreign}
            spectrogram = SpectrogramConfig.for_model(checkpoint.config)
        else:
            if lang is None and re.fullmatch(r"[a-z]{3}", directory.name):
                lang = directory.name
            checkpoint = vits_original.load(directory, lang)
            data = read_json(directory / "config.json")["data"]
            generator = vits_original.find_generator(directory)
            weights = original_to_canonical(vits_original.read_generator(generator), str(generator))
            spectrogram = SpectrogramConfig(
                filter_length=int(data.get("filter_length", 1024)), hop_length=int(data.get("hop_length", 256)),
                win_length=int(data.get("win_length", 1024)), n_mel_channels=int(data.get("n_mel_channels", 80)),
                mel_fmin=float(data.get("mel_fmin") or 0.0),
                mel_fmax=None if data.get("mel_fmax") is None else float(data["mel_fmax"]))
            checkpoint.config.spectrogram_bins = spectrogram.filter_length // 2 + 1
    except (CheckpointError, KeyError, TypeError, ValueError) as e:
        raise TrainError(str(e) if isinstance(e, MMSError) else f"{model}: unusable voice ({type(e).__name__}: {e})") \
            from None
    cfg = checkpoint.config
    layers = {int(m.group(1)) for k in weights if (m := re.match(r"posterior_encoder\.wavenet\.in_layers\.(\d+)\.", k))}
    if layers:
        cfg.posterior_encoder_num_wavenet_layers = max(layers) + 1
        bins = weights["posterior_encoder.conv_pre.weight"].shape[1]
        if bins != cfg.spectrogram_bins:
            raise TrainError(f"{directory}: the posterior encoder takes {bins} spectrogram bins, the configuration "
                             f"says {cfg.spectrogram_bins}")
    try:
        spectrogram.check(cfg)
    except ValueError as e:
        raise TrainError(f"{directory}: {e}") from None
    d_path = Path(discriminator) if discriminator else (_latest(directory, "D")
                                                         or _latest(directory / ORIGINAL_DIR, "D"))
    d_state = read_discriminator(d_path) if d_path else None
    width = discriminator_width(d_state) if d_state else 1.0
    text = checkpoint.text
    return Voice(cfg, spectrogram, text, checkpoint.lang or lang, weights, d_state, width,
                 f"{fmt} voice {directory}" + (f" + discriminators {d_path}" if d_path else ""))


def read_config(reference: str) -> tuple[VitsConfig, SpectrogramConfig, float]:
    """--config: a preset name, a Hugging Face VITS config.json or a VITS hyper-parameter file (model + data)."""
    if reference in PRESETS:
        values, width = PRESETS[reference]
        cfg = VitsConfig.from_dict(values)
        return cfg, SpectrogramConfig.for_model(cfg), width
    from mms.checkpoints import CheckpointError
    from mms.checkpoints.vits_original import config_from_hparams

    try:
        with open(reference, encoding="utf-8") as f:
            values = json.load(f)
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        if "model" in values and "data" in values:  # VITS hparams
            cfg, data = config_from_hparams(values, 1, reference)
            spectrogram = SpectrogramConfig(
                filter_length=int(data.get("filter_length", 1024)), hop_length=int(data.get("hop_length", 256)),
                win_length=int(data.get("win_length", 1024)), n_mel_channels=int(data.get("n_mel_channels", 80)),
                mel_fmin=float(data.get("mel_fmin") or 0.0),
                mel_fmax=None if data.get("mel_fmax") is None else float(data["mel_fmax"]))
            cfg.spectrogram_bins = spectrogram.filter_length // 2 + 1
        else:
            if values.get("model_type") != "vits":  # any JSON object would otherwise build the full architecture
                raise ValueError(f"model_type {values['model_type']!r} is not vits" if "model_type" in values else
                                 "not a VITS config: no \"model_type\": \"vits\" (a Hugging Face VitsConfig) and no "
                                 "\"model\" and \"data\" sections (VITS hyper-parameters)")
            cfg = VitsConfig.from_dict(values)
            check_settings(values, cfg)
            spectrogram = SpectrogramConfig.for_model(cfg)
        check_vits(cfg)
        spectrogram.check(cfg)
    except (OSError, ValueError, TypeError, KeyError, CheckpointError) as e:
        raise TrainError(f"--config {reference}: {e} (give tiny, mms or a VITS config.json)") from None
    return cfg, spectrogram, 1.0


def check_vits(cfg: VitsConfig) -> None:
    """What VITS's layers need of a config beyond positive sizes (ValueError naming the setting)."""
    if cfg.hidden_size % cfg.num_attention_heads:
        raise ValueError(f"hidden_size {cfg.hidden_size} is not a multiple of num_attention_heads "
                         f"{cfg.num_attention_heads}")
    if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
        raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
    if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
        raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
    if cfg.upsample_initial_channel >> len(cfg.upsample_rates) < 1:
        raise ValueError(f"upsample_initial_channel {cfg.upsample_initial_channel} is too small to halve "
                         f"{len(cfg.upsample_rates)} times")
    if cfg.hidden_act not in ACTIVATIONS:
        raise ValueError(f"hidden_act {cfg.hidden_act!r}: one of {', '.join(ACTIVATIONS)}")
    for name in ("layer_norm_eps", "duration_predictor_tail_bound", "speaking_rate"):
        if not getattr(cfg, name) > 0:
            raise ValueError(f"{name} must be positive, not {getattr(cfg, name)!r}")


def _vocabulary_form(text: str, lang: str | None, uroman: bool) -> str:
    """What a new voice's text preparation leaves of a transcript before filtering (the transformers style of
    mms/text/tts_text.py with nothing in the vocabulary yet): numbers spelled, lower case, Romanian fix, uroman."""
    text = spell_numbers(text, lang).lower()
    if lang == "ron":
        text = text.replace("ț", "ţ")
    if uroman and any(ord(ch) > 127 for ch in text):
        text = romanize(text)
    return " ".join(text.split())


def new_voice_text(transcripts: list[str], lang: str | None, uroman: bool) -> TtsText:
    """Symbols of a new voice: the blank, then every character of the prepared transcripts, sorted."""
    chars = sorted({ch for t in transcripts for ch in _vocabulary_form(t, lang, uroman)})
    if not chars:
        raise DataError("the training transcripts have no characters")
    return TtsText(symbols=[BLANK] + chars, style="transformers", lang=lang, uroman=uroman, add_blank=True,
                   normalize=True, special_tokens=(BLANK, "<unk>"))


# ---------------------------------------------------------------------------------------------------------
# Data


@dataclass
class Utterance:
    audio: str
    text: str
    ids: np.ndarray  # int64 token ids, blanks interspersed
    samples: int  # the waveform's length at the voice's sampling rate
    sample_rate: int

    @property
    def wave(self) -> np.ndarray:
        """The float32 waveform at the voice's sampling rate, read again from its file (samples are not held)."""
        return read_again(self.audio, self.samples, self.sample_rate)


def likely_usable(audio: str, max_seconds: float | None) -> bool:
    """Whether an utterance's audio exists and, by its header, is no longer than max_seconds (prepare_utterances
    decides for good, decoding it)."""
    seconds = audio_info(audio)
    if seconds is None:
        return Path(audio).is_file()  # (a format only ffmpeg reads: no header to go by)
    return not (max_seconds and seconds > max_seconds)


def check_voice_language(lang: str) -> None:
    """A new voice's --lang is what `mms tts --lang` will be asked for, and what turns on the Romanian fix: an
    ISO 639-3 code (an ISO 639-1 one is refused naming its three-letter form)."""
    from mms.hub.languages import parse, to_iso639_3

    iso = to_iso639_3(lang)
    if iso is None:
        raise TrainError(f"--lang {lang!r}: not an ISO 639-3 language code (e.g. eng, ron; `mms langs NAME` finds one)")
    if parse(lang).iso != iso:
        raise TrainError(f"--lang {lang!r}: give the ISO 639-3 code, {iso!r} (the code `mms tts --lang` takes)")


def read_transcribed(manifests: list[str]) -> list:
    items = []
    for manifest in manifests:
        try:
            items += read_manifest(manifest, keep_bad_lines=True)  # bad lines: skipped, as below, and said
        except MMSError as e:
            raise DataError(str(e)) from None
    return items


def prepare_utterances(items, text: TtsText, spectrogram: SpectrogramConfig, sample_rate: int,
                       max_seconds: float | None) -> tuple[list[Utterance], list[str], dict[str, int]]:
    """Usable utterances, one-line problems for the skipped ones, and characters dropped (not in the vocabulary)
    with their counts."""
    utterances, problems, dropped = [], [], {}
    for item in items:
        if item.error is not None:
            problems.append(f"{item.audio}: {item.error}, skipped")
            continue
        if not item.text or not item.text.strip():
            problems.append(f"{item.audio}: no transcript, skipped")
            continue
        prepared = text.prepare(text.spell_numbers(item.text))  # as `mms tts` reads them by default
        for ch in prepared.dropped:
            dropped[ch] = dropped.get(ch, 0) + 1
        if not prepared.text:
            problems.append(f"{item.audio}: no character of the transcript is in the voice's vocabulary, skipped")
            continue
        try:
            wave = load_audio(item.audio, sample_rate)
        except AudioError as e:
            problems.append(f"{e}, skipped")
            continue
        if max_seconds and wave.size > max_seconds * sample_rate:
            problems.append(f"{item.audio}: longer than {max_seconds} s, skipped")
            continue
        frames = wave.size // spectrogram.hop_length
        if wave.size < spectrogram.filter_length:
            problems.append(f"{item.audio}: shorter than one spectrogram window ({wave.size} samples, the window "
                            f"{spectrogram.filter_length}), skipped")
            continue
        if frames < len(prepared.ids):
            problems.append(f"{item.audio}: too short for its transcript ({frames} frames for {len(prepared.ids)} "
                            f"ids), skipped")
            continue
        utterances.append(Utterance(item.audio, item.text, np.asarray(prepared.ids, dtype=np.int64), wave.size,
                                    sample_rate))
    return utterances, problems, dropped


def epoch_batches(frames: list[int], batch_size: int, seed: int, epoch: int, bucket: int) -> list[list[int]]:
    """Batches of utterances of similar length (buckets of `bucket` frames, shuffled inside), in a shuffled order
    that depends only on (seed, epoch), so an interrupted epoch is re-planned identically on resume."""
    rng = np.random.default_rng([seed, epoch])
    order = sorted(rng.permutation(len(frames)).tolist(), key=lambda i: frames[i] // bucket)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(arrays: list[np.ndarray], dtype) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [a.shape[-1] for a in arrays]
    out = np.zeros((len(arrays), *arrays[0].shape[:-1], max(lengths)), dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, ..., :a.shape[-1]] = a
    return torch.from_numpy(out), torch.tensor(lengths)


# ---------------------------------------------------------------------------------------------------------
# Training


# Settings a resumed run must keep (batch plan, segments, learning-rate schedule); --epochs and --max-steps may grow.
# The text settings too: ids the voice was trained on are what its export tells `mms tts` to make.
RUN_SETTINGS = ("batch_size", "seed", "lr", "lr_decay", "segment_frames", "uroman", "lang")


class TTSTrainer:
    def __init__(self, options: TTSTrainOptions):
        options.check()
        self.options = options
        self.out = make_out_folder(options.out, create=False)
        from mms.device import resolve_device

        self.device = resolve_device(options.device)
        if options.threads:
            torch.set_num_threads(options.threads)
        self.precision = self._precision()
        torch.manual_seed(options.seed)

        train_items = read_transcribed(options.train)
        dev_items = read_transcribed(options.dev)
        if options.model is not None:
            voice = load_voice(options.model, options.lang, options.discriminator)
        else:
            if options.init_config is not None:
                cfg = VitsConfig.from_dict(asdict(options.init_config))
                spectrogram = options.spectrogram or SpectrogramConfig.for_model(cfg)
                width = 1.0
            else:
                cfg, spectrogram, width = read_config(options.config)
            transcribed = [i for i in train_items if i.text and i.text.strip()]
            if not transcribed:
                raise TrainError(f"{', '.join(options.train)}: no line has a transcript (a JSON line needs \"text\" "
                                 f"beside \"audio_filepath\" or \"audio\"; a fairseq .tsv, a .wrd file beside it)")
            if options.lang is not None:
                check_voice_language(options.lang)
            # the alphabet from the utterances that will be trained on, as far as their headers tell (a missing
            # file's or an over-long one's letters would get embeddings that never learn)
            usable = [i for i in transcribed if i.error is None and likely_usable(i.audio, options.max_seconds)]
            text = new_voice_text([i.text for i in usable or transcribed], options.lang, options.uroman)
            cfg.vocab_size = len(text.symbols)
            voice = Voice(cfg, spectrogram, text, options.lang, discriminator_width=width,
                          source=f"new voice ({options.config or 'given architecture'})")
            if options.discriminator:
                voice.discriminator = read_discriminator(Path(options.discriminator))
                voice.discriminator_width = discriminator_width(voice.discriminator)
        if options.discriminator_width and voice.discriminator is not None:
            raise TrainError(f"--discriminator-width: {voice.source} comes with its discriminators (a D_*.pth), "
                             "whose width is theirs")
        if options.discriminator_width:
            voice.discriminator_width = options.discriminator_width
        self.voice, self.cfg, self.text, self.spectrogram = voice, voice.config, voice.text, voice.spectrogram
        try:
            self.spectrogram.check(self.cfg)
        except ValueError as e:
            raise TrainError(str(e)) from None
        # the generated segment's mel spectrogram pads it by (filter_length - hop) / 2 samples on each side, by
        # reflection, which needs a longer segment than the padding
        hop = self.spectrogram.hop_length
        fewest = (self.spectrogram.filter_length - hop) // 2 // hop + 1
        if options.segment_frames < fewest:
            raise TrainError(f"--segment-frames {options.segment_frames}: at least {fewest} for this voice's "
                             f"spectrogram (filter length {self.spectrogram.filter_length}, hop {hop})")
        log.info(f"{voice.source}; {self.device}, {self.precision}")

        rate = self.cfg.sampling_rate
        self.train_set, problems, dropped = prepare_utterances(train_items, self.text, self.spectrogram, rate,
                                                               options.max_seconds)
        self.dev_set, dev_problems, dev_dropped = prepare_utterances(dev_items, self.text, self.spectrogram, rate, None)
        for problem in problems + dev_problems:
            log.warning(problem)
        for ch in {**dropped, **dev_dropped}:
            n = dropped.get(ch, 0) + dev_dropped.get(ch, 0)
            log.warning(f"character {ch!r} is not in the voice's vocabulary: dropped from {n} transcript"
                        f"{'s' if n != 1 else ''}")
        if not self.train_set:
            raise TrainError(f"{', '.join(options.train)}: no usable training utterances")
        self.frames = [u.samples // self.spectrogram.hop_length for u in self.train_set]
        short = sum(f < options.segment_frames for f in self.frames)
        if short > len(self.frames) // 2:
            # a segment longer than its utterance is padded with zeros, and the voice learns to make silence
            log.warning(f"--segment-frames {options.segment_frames} is longer than {short} of the "
                        f"{len(self.frames)} training utterances (median {int(np.median(self.frames))} frames): "
                        f"their segments are padded with silence (at most {int(np.percentile(self.frames, 10))} fits nine "
                        f"in ten)")

        self.generator = VitsGenerator(self.cfg)
        if voice.weights is None:
            init_weights(self.generator)
        else:
            self._load_generator(voice.weights)
        self.generator.set_dropout()
        self.discriminator = VitsDiscriminator(voice.discriminator_width)
        if voice.discriminator is not None:
            state, missing, unused = convert_weight_norms(self.discriminator, voice.discriminator)
            if missing or unused:
                raise TrainError(f"discriminator weights do not fit VITS's discriminators: missing {missing[:3]}, "
                                 f"unexpected {unused[:3]}")
            self._load(self.discriminator, state, "discriminator")
        self.generator.to(self.device).train()
        self.discriminator.to(self.device).train()
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), options.lr, betas=tuple(options.betas),
                                         eps=options.eps, weight_decay=options.weight_decay)
        self.optim_d = torch.optim.AdamW(self.discriminator.parameters(), options.lr, betas=tuple(options.betas),
                                         eps=options.eps, weight_decay=options.weight_decay)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.optim_g, gamma=options.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, gamma=options.lr_decay)
        s = self.spectrogram
        self.mel_basis = torch.from_numpy(mel_filterbank(rate, s.filter_length, s.n_mel_channels, s.mel_fmin,
                                                         s.mel_fmax)).to(self.device)
        self.samples = self._sample_ids()
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.history: list[dict] = []
        self.train_seconds = 0.0
        self.losses: list[dict] = []  # this epoch's, for its log record
        make_out_folder(self.out)

    # -- setup ---------------------------------------------------------------------------------------------
    def _precision(self) -> str:
        precision = self.options.precision
        bf16_ok = self.device.type != "cuda" or torch.cuda.is_bf16_supported()
        if precision == "auto":
            return "bf16" if self.device.type == "cuda" and bf16_ok else "fp32"
        if precision == "bf16" and not bf16_ok:
            raise TrainError(f"--precision bf16: {self.device} does not compute bfloat16; use fp32")
        return precision

    @staticmethod
    def _load(module: torch.nn.Module, state: dict, what: str) -> None:
        own = module.state_dict()
        for name, value in state.items():
            if value.shape != own[name].shape:
                raise TrainError(f"{what}: {name} has shape {tuple(value.shape)}, the configuration implies "
                                 f"{tuple(own[name].shape)}")
        module.load_state_dict(state, strict=False)

    def _load_generator(self, weights: dict[str, torch.Tensor]) -> None:
        state, missing, unused = convert_weight_norms(self.generator, weights)
        fresh = [k for k in missing if k.startswith(("posterior_encoder.", "duration_predictor.post_"))]
        missing = [k for k in missing if k not in fresh]
        if missing or unused:
            raise TrainError(f"{self.voice.source}: weights do not fit a VITS generator: missing {missing[:3]}, "
                             f"unexpected {unused[:3]}")
        if fresh:
            log.warning(f"{self.voice.source} has no posterior encoder or posterior duration flows "
                        f"(an inference-only export): they start from random weights")
        self._load(self.generator, state, self.voice.source)

    def _sample_ids(self) -> list[tuple[int, np.ndarray]]:
        """(i, ids) of each sample text that the voice can speak; i numbers the texts as given (the file name and
        seed), so that one the voice cannot speak leaves its number out, named in a warning."""
        texts = self.options.sample_texts or [u.text for u in (self.dev_set or self.train_set)[:2]]
        out = []
        for i, text in enumerate(texts):
            prepared = self.text.prepare(self.text.spell_numbers(text))
            if prepared.ids and prepared.text:
                out.append((i, np.asarray(prepared.ids, dtype=np.int64)))
            else:
                log.warning(f"--sample-text {text!r}: no character of it is in the voice's vocabulary: no sample {i}")
        return out

    # -- resumable state -----------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    def save_state(self) -> None:
        cuda = self.device.type == "cuda"
        state = {
            "format": "mms train-tts 1",
            "config": asdict(self.cfg), "spectrogram": asdict(self.spectrogram), "symbols": self.text.symbols,
            "discriminator_width": self.discriminator.width,
            "settings": {key: getattr(self.options, key) for key in RUN_SETTINGS},
            "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
            "optim_g": self.optim_g.state_dict(), "optim_d": self.optim_d.state_dict(),
            "sched_g": self.sched_g.state_dict(), "sched_d": self.sched_d.state_dict(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "train_set": self.train_identity(),
            "history": self.history, "losses": self.losses, "train_seconds": self.train_seconds,
            "rng": {**rng_state(), "cuda": torch.cuda.get_rng_state_all() if cuda else None},
        }
        write_state(self.state_path, state)

    def train_identity(self) -> str:
        """A digest of the training set as the batch plan indexes it (mms.train.export.train_set_identity)."""
        return train_set_identity((os.path.basename(u.audio), u.text, u.samples) for u in self.train_set)

    def load_state(self) -> bool:
        if not self.state_path.exists():
            return False
        state = read_state(self.state_path)
        if state.get("format") != "mms train-tts 1":
            raise TrainError(f"{self.state_path}: not a train-tts state; use another --out")
        if state["symbols"] != self.text.symbols or state["config"] != asdict(self.cfg):
            raise TrainError(f"{self.state_path}: saved for another voice (architecture or symbols differ); use "
                             f"another --out or delete it to start over")
        # the batches' plan depends on these: changed on resume, the epoch under way would be cut differently
        # (batches skipped or repeated) and the exported config would report settings the run did not use
        for key, value in (state.get("settings") or {}).items():
            if key in RUN_SETTINGS and getattr(self.options, key) != value:
                flag = "--" + key.replace("_", "-")
                raise TrainError(f"{flag} {getattr(self.options, key)}: this run was started with {value} "
                                 f"({self.state_path}); resume with the same, or give another --out")
        if state["batch_in_epoch"]:  # mid-epoch: its remaining batches are those of the plan it started with
            check_train_set(state, self.train_identity(), self.out)
        if state["discriminator_width"] != self.discriminator.width:
            if self.options.discriminator_width is not None:  # (it was ignored without a word)
                log.warning(f"--discriminator-width {self.options.discriminator_width:g}: the run continues its "
                            f"saved discriminators, of width {state['discriminator_width']:g}")
            self.discriminator = VitsDiscriminator(state["discriminator_width"]).to(self.device).train()
            self.optim_d = torch.optim.AdamW(self.discriminator.parameters(), self.options.lr,
                                             betas=tuple(self.options.betas), eps=self.options.eps,
                                             weight_decay=self.options.weight_decay)
            self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.optim_d, gamma=self.options.lr_decay)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.optim_g.load_state_dict(state["optim_g"])
        self.optim_d.load_state_dict(state["optim_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.history, self.losses, self.train_seconds = state["history"], state["losses"], state["train_seconds"]
        restore_rng(state["rng"])
        if state["rng"]["cuda"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        return True

    # -- one step ------------------------------------------------------------------------------------------
    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def collate(self, batch: list[Utterance], read: list[np.ndarray]):
        """The batch's padded ids, its waveforms (`read`: those of `batch`) and their linear spectrograms."""
        ids, id_lengths = _pad([u.ids for u in batch], np.int64)
        waves, _ = _pad(read, np.float32)
        specs = [linear_spectrogram(torch.from_numpy(wave).to(self.device)[None], self.spectrogram)[0]
                 for wave in read]
        spec = torch.zeros(len(batch), specs[0].shape[0], max(s.shape[1] for s in specs), device=self.device)
        for i, s in enumerate(specs):
            spec[i, :, :s.shape[1]] = s
        spec_lengths = torch.tensor([s.shape[1] for s in specs], device=self.device)
        return (ids.to(self.device), id_lengths.to(self.device), waves.to(self.device), spec, spec_lengths)

    def _clip(self, module: torch.nn.Module) -> None:
        if self.options.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.options.max_grad_norm)

    def train_step(self, batch: list[Utterance], read: list[np.ndarray]) -> dict[str, float]:
        """One discriminator step and one generator step on a batch (VITS train_and_evaluate); `read`: the batch's
        waveforms."""
        options, hop, seg = self.options, self.spectrogram.hop_length, self.options.segment_frames
        ids, id_lengths, waves, spec, spec_lengths = self.collate(batch, read)
        with self.autocast():
            out = self.generator.forward_train(ids, id_lengths, spec, spec_lengths, seg)
        y_mel = slice_segments(spec_to_mel(spec, self.mel_basis), out.starts, seg)
        frame_mask = slice_segments(out.frame_mask.float(), out.starts, seg)
        y_hat = out.wave.float().unsqueeze(1)
        y_hat_mel = mel_spectrogram(y_hat.squeeze(1), self.spectrogram, self.mel_basis)
        y = slice_segments(waves.unsqueeze(1), out.starts * hop, seg * hop)

        # discriminators: real and generated segments in one batch
        with self.autocast():
            scores, _ = self.discriminator(torch.cat([y, y_hat.detach()]))
        n = y.shape[0]
        loss_d = discriminator_loss([s[:n] for s in scores], [s[n:] for s in scores])
        self.optim_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self._clip(self.discriminator)
        self.optim_d.step()

        # generator (the discriminators' weights take no gradient here)
        self.discriminator.requires_grad_(False)
        try:
            with self.autocast():
                with torch.no_grad():
                    _, real_fmaps = self.discriminator(y)
                fake_scores, fake_fmaps = self.discriminator(y_hat)
            loss_mel = mel_l1(y_mel, y_hat_mel, frame_mask)
            loss_kl = kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.frame_mask)
            loss_fm = feature_loss(real_fmaps, fake_fmaps)
            loss_gen = generator_loss(fake_scores)
            loss_g = (loss_gen + loss_fm + options.mel_weight * loss_mel + out.loss_duration
                      + options.kl_weight * loss_kl)
            self.optim_g.zero_grad(set_to_none=True)
            loss_g.backward()
        finally:
            self.discriminator.requires_grad_(True)
        self._clip(self.generator)
        self.optim_g.step()
        return {"g": loss_g.item(), "d": loss_d.item(), "mel": loss_mel.item(), "kl": loss_kl.item(),
                "dur": out.loss_duration.item(), "fm": loss_fm.item(), "gen": loss_gen.item()}

    # -- the loop ------------------------------------------------------------------------------------------
    def run(self) -> dict:
        with lock_out_folder(self.out):
            return self._run()

    def _run(self) -> dict:
        options = self.options
        resumed = self.load_state()
        if resumed:
            log.info(f"resuming from {self.state_path}: epoch {self.epoch + 1}, step {self.step}")
        stopped = options.max_steps is not None and self.step >= options.max_steps
        if resumed and (stopped or self.epoch >= options.epochs):
            log.warning(nothing_left(self.state_path, self.epoch, self.step, "--epochs or --max-steps"))
        bucket = max(1, self.cfg.sampling_rate // self.spectrogram.hop_length)
        with StopRequest() as stop:
            while self.epoch < options.epochs and not stopped:
                batches = epoch_batches(self.frames, options.batch_size, options.seed, self.epoch, bucket)
                bar = self._progress(len(batches))
                # the next batches' audio is read on a thread while this one trains
                read = prefetch(lambda index: [self.train_set[i].wave for i in batches[index]],
                                range(self.batch_in_epoch, len(batches)), READ_AHEAD)
                report = Reporter(bar is None)
                for index in range(self.batch_in_epoch, len(batches)):
                    started = time.perf_counter()  # (waiting for the audio counts as training time)
                    losses = self.train_step([self.train_set[i] for i in batches[index]], next(read))
                    self.train_seconds += time.perf_counter() - started
                    self.losses.append(losses)
                    self.step += 1
                    report(lambda: f"epoch {self.epoch + 1}, batch {index + 1}/{len(batches)}, step {self.step}: mel "
                                   f"{report.mean([loss['mel'] for loss in self.losses]):.3f}, "
                                   f"{self.step / max(self.train_seconds, 1e-9):.2f} steps/s")
                    self.batch_in_epoch = index + 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
                    if options.sample_every and self.step % options.sample_every == 0:
                        self.write_samples()
                    if options.max_steps is not None and self.step >= options.max_steps:
                        stopped = True
                        break
                    if self.step % options.save_every == 0:
                        self._save_and_export()
                    stop.stop_here(self.step, self._save_and_export, self.state_path)
                read.close()  # (stops the reading thread of an epoch left early)
                release_memory()  # the waveforms were allocated on that thread (see release_memory)
                if bar is not None:
                    bar.close()
                if stopped and self.batch_in_epoch < len(batches):
                    break  # mid-epoch: a resumed run finishes it
                self.end_epoch()  # (also when --max-steps fell on the epoch's last batch: its dev pass, log and decay)
        self._save_and_export()
        return self.summary(stopped)

    def _save_and_export(self) -> None:
        self.save_state()
        self.export()

    def _progress(self, total: int):
        if not self.options.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.batch_in_epoch, desc=f"epoch {self.epoch + 1}/{self.options.epochs}",
                    unit="step", dynamic_ncols=True, leave=False)

    def end_epoch(self) -> None:
        record = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optim_g.param_groups[0]["lr"]}
        for key in ("g", "d", "mel", "kl", "dur", "fm", "gen"):
            values = [loss[key] for loss in self.losses]
            record[key] = round(float(np.mean(values)), 5) if values else None
        if self.dev_set:
            record["dev_mel"] = round(self.evaluate(self.dev_set), 5)
        record["train_seconds"] = round(self.train_seconds, 1)
        record["steps_per_second"] = round(self.step / max(self.train_seconds, 1e-9), 3)
        self.sched_g.step()
        self.sched_d.step()
        self.epoch += 1
        self.batch_in_epoch = 0
        self.losses = []
        self.history.append(record)
        write_log(self.out / LOG_FILE, self.history)
        dev = f", dev mel {record['dev_mel']:.3f}" if "dev_mel" in record else ""
        log.info(f"epoch {record['epoch']}: step {self.step}, mel {record['mel']}{dev}")

    @torch.no_grad()
    def evaluate(self, utterances: list[Utterance]) -> float:
        """Dev mel L1: each utterance spoken from its text with the durations of its alignment to the recording
        and the prior means (no noise), against the recording's mel spectrogram; mean over all frames."""
        self.generator.eval()
        total, count = 0.0, 0
        try:
            for u in utterances:
                wave = torch.from_numpy(u.wave).to(self.device)[None]
                spec = linear_spectrogram(wave, self.spectrogram)
                ids = torch.from_numpy(u.ids).to(self.device)[None]
                generated = self.generator.synthesize_aligned(ids, spec).float()
                target = spec_to_mel(spec, self.mel_basis)
                mel = mel_spectrogram(generated, self.spectrogram, self.mel_basis)[..., :target.shape[-1]]
                total += float((mel - target).abs().sum())
                count += target.numel()
        finally:
            self.generator.train()
        return total / max(count, 1)

    def write_samples(self) -> None:
        """samples/step<N>-<i>.wav: the sample texts spoken by the model as `mms tts` would (seed i)."""
        folder = self.out / SAMPLES_DIR
        folder.mkdir(exist_ok=True)
        self.generator.eval()
        try:
            with torch.no_grad():
                for i, ids in self.samples:
                    if self._frames(ids, seed=i) > 30 * self.cfg.sampling_rate / self.cfg.hop_length:
                        log.warning(f"sample {i} would last more than 30 s at step {self.step}: not written")
                        continue
                    wave, _ = self.generator(torch.from_numpy(ids).to(self.device)[None], seeds=[i])
                    write_audio(folder / f"step{self.step:07d}-{i}.wav", wave[0].float().cpu().numpy(),
                                self.cfg.sampling_rate)
        finally:
            self.generator.train()

    def _frames(self, ids: np.ndarray, seed: int) -> float:
        """How many frames the model's forward would give `ids` with `seed` (its duration noise comes first)."""
        from mms.models.vits import noise_generators

        g = self.generator
        x = torch.from_numpy(ids).to(self.device)[None]
        mask = torch.ones(1, 1, x.shape[1], device=self.device)
        hidden, _, _ = g.text_encoder(x, mask, False)
        noise = torch.randn(1, 2, x.shape[1], generator=noise_generators(seed, self.device)[0]).to(self.device)
        log_durations = g.duration_predictor(hidden.transpose(1, 2).float(), mask, noise * g.cfg.noise_scale_duration)
        return float(torch.ceil(torch.exp(log_durations.float())).sum())

    # -- export --------------------------------------------------------------------------------------------
    def export(self) -> None:
        export_voice(self)

    def summary(self, stopped: bool) -> dict:
        last = self.history[-1] if self.history else None
        return {"out": str(self.out), "epochs_done": self.epoch, "step": self.step, "stopped_early": stopped,
                "train_seconds": round(self.train_seconds, 1),
                "steps_per_second": round(self.step / max(self.train_seconds, 1e-9), 3), "last": last}


# ---------------------------------------------------------------------------------------------------------
# Export: the Hugging Face layout in OUT/, the original one in OUT/original/


def hf_config(cfg: VitsConfig) -> dict:
    values = json.loads(json.dumps(asdict(cfg)))  # tuples -> lists
    values.update(model_type="vits", architectures=["VitsModel"], use_stochastic_duration_prediction=True,
                  num_speakers=1, speaker_embedding_size=0, dtype="float32")
    return values


def hf_state(generator: VitsGenerator) -> dict[str, torch.Tensor]:
    """transformers' VitsModel names: WaveNet weight norms as parametrizations (as VitsModel builds them), the
    HiFi-GAN weights folded (VitsModel has no weight norm there)."""
    state = generator.state_dict()
    out = {}
    for key, value in state.items():
        if key.startswith("decoder.") and key.endswith(WN_V):
            continue
        if key.startswith("decoder.") and key.endswith(WN_G):
            base = key[: -len(WN_G)]
            out[base + "weight"] = fold_weight_norm(value, state[base + WN_V], dim=0)
        else:
            out[key] = value
    return out


def tokenizer_config(text: TtsText, lang: str | None) -> dict:
    pad = text.special_tokens[0] if text.special_tokens else text.symbols[0]
    return {"tokenizer_class": "VitsTokenizer", "pad_token": pad, "unk_token": "<unk>", "language": lang,
            "add_blank": text.add_blank, "normalize": text.normalize, "phonemize": False, "is_uroman": text.uroman}


def original_hparams(trainer: TTSTrainer) -> dict:
    cfg, s, o = trainer.cfg, trainer.spectrogram, trainer.options
    return {
        "train": {"seed": o.seed, "epochs": o.epochs, "learning_rate": o.lr, "betas": list(o.betas), "eps": o.eps,
                  "batch_size": o.batch_size, "fp16_run": False, "lr_decay": o.lr_decay,
                  "segment_size": o.segment_frames * s.hop_length, "init_lr_ratio": 1, "warmup_epochs": 0,
                  "c_mel": o.mel_weight, "c_kl": o.kl_weight},
        "data": {"training_files": "train.txt" + (".uroman" if trainer.text.uroman else ""),
                 "text_cleaners": ["transliteration_cleaners"], "max_wav_value": 32768.0,
                 "sampling_rate": cfg.sampling_rate, "filter_length": s.filter_length, "hop_length": s.hop_length,
                 "win_length": s.win_length, "n_mel_channels": s.n_mel_channels, "mel_fmin": s.mel_fmin,
                 "mel_fmax": s.mel_fmax, "add_blank": trainer.text.add_blank, "n_speakers": 0, "cleaned_text": True,
                 # (not VITS's: the voice's language, which the fairseq layout otherwise takes from its folder's
                 # name, models/<iso>/, and which turns on the Romanian fix)
                 "language": trainer.voice.lang},
        "model": {"inter_channels": cfg.flow_size, "hidden_channels": cfg.hidden_size, "filter_channels": cfg.ffn_dim,
                  "n_heads": cfg.num_attention_heads, "n_layers": cfg.num_hidden_layers,
                  "kernel_size": cfg.ffn_kernel_size, "p_dropout": 0.1, "resblock": "1",
                  "resblock_kernel_sizes": list(cfg.resblock_kernel_sizes),
                  "resblock_dilation_sizes": [list(d) for d in cfg.resblock_dilation_sizes],
                  "upsample_rates": list(cfg.upsample_rates), "upsample_initial_channel": cfg.upsample_initial_channel,
                  "upsample_kernel_sizes": list(cfg.upsample_kernel_sizes), "n_layers_q": 3,
                  "use_spectral_norm": False, "use_sdp": True,
                  # the voice's synthesis settings (the demo voice's are lower than VITS's), so that both layouts
                  # speak alike; VITS's SynthesizerTrn takes unknown model keys as **kwargs and ignores them
                  "noise_scale": cfg.noise_scale, "noise_scale_duration": cfg.noise_scale_duration,
                  "speaking_rate": cfg.speaking_rate},
    }


def _torch_save(value, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(value, tmp)


def export_voice(trainer: TTSTrainer) -> None:
    """Write the voice in both layouts (every file under a temporary name, then renamed)."""
    from mms.files import write_text_atomic

    out, text, lang = trainer.out, trainer.text, trainer.voice.lang
    save_tensors(hf_state(trainer.generator), out / "model.safetensors")
    write_json(out / "config.json", hf_config(trainer.cfg))
    write_text_atomic(out / "vocab.json", json.dumps(text.token_to_id, ensure_ascii=False, sort_keys=True, indent=1) + "\n")
    write_json(out / "tokenizer_config.json", tokenizer_config(text, lang))

    original = out / ORIGINAL_DIR
    original.mkdir(exist_ok=True)
    step, lr = trainer.step, trainer.optim_g.param_groups[0]["lr"]
    generator = {k: v.detach().cpu() for k, v in canonical_to_original(trainer.generator.state_dict()).items()}
    discriminator = {k.replace(WN_G, "weight_g").replace(WN_V, "weight_v"): v.detach().cpu()
                     for k, v in trainer.discriminator.state_dict().items()}
    _torch_save({"model": generator, "iteration": step, "optimizer": None, "learning_rate": lr},
                original / f"G_{step}.pth")
    _torch_save({"model": discriminator, "iteration": step, "optimizer": None, "learning_rate": lr},
                original / f"D_{step}.pth")
    write_json(original / "config.json", original_hparams(trainer))
    write_text_atomic(original / "vocab.txt", "".join(s + "\n" for s in text.symbols))
    for old in [*original.glob("G_*.pth"), *original.glob("D_*.pth")]:
        if old.stem[2:] != str(step):
            old.unlink(missing_ok=True)


def train_tts(options: TTSTrainOptions) -> dict:
    """Train (resuming from `options.out` when a state is there); see TTSTrainOptions. torch's CPU thread count
    (options.threads) is restored afterwards."""
    threads = torch.get_num_threads()
    try:
        return TTSTrainer(options).run()
    finally:
        torch.set_num_threads(threads)


__all__ = ["PRESETS", "TTSTrainOptions", "TTSTrainer", "TrainError", "DataError", "train_tts", "load_voice"]
