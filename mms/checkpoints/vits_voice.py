"""Where a text-to-speech voice is: its directory and layout ("original": G_*.pth, config.json, vocab.txt;
"huggingface": config.json, weights, vocab.json), from a directory, an original G_*.pth or a folder of voices.
Shared by `mms tts` (mms.tts) and `mms train-tts` (mms.train.tts)."""

from __future__ import annotations

import difflib
from pathlib import Path

from mms.checkpoints import CheckpointError

HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def voice_format(directory: Path) -> str | None:
    if any(directory.glob("G_*.pth")):
        return "original"
    if (directory / "config.json").exists() and any((directory / name).exists() for name in HF_WEIGHTS):
        return "huggingface"
    return None


def find_voice(model: Path, lang: str | None) -> tuple[str, Path]:
    """(format, directory) of the voice `model` names: a voice directory, an original G_*.pth file, or a folder
    of voices (`<lang>/`, `mms-tts-<lang>/` or the repo's `models/<lang>/`) from which `lang` picks one."""
    if model.is_file():
        if model.name.startswith("G_") and model.suffix == ".pth":
            return "original", model.parent
        raise CheckpointError(f"{model}: not a text-to-speech model (give a voice directory or its G_*.pth)")
    fmt = voice_format(model)
    if fmt:
        return fmt, model
    voices = {}
    for parent in (model, model / "models"):
        if parent.is_dir():
            for child in sorted(parent.iterdir()):
                if child.is_dir() and voice_format(child):
                    voices.setdefault(child.name.removeprefix("mms-tts-"), child)
    if not voices:
        raise CheckpointError(f"{model}: not an MMS-TTS voice (expected G_*.pth, config.json and vocab.txt, or "
                              "config.json, model.safetensors and vocab.json)")
    count = f"{len(voices)} voice{'s' if len(voices) != 1 else ''}"
    if lang is None and len(voices) == 1:
        lang = next(iter(voices))
    if lang is None:
        raise CheckpointError(f"{model} holds {count}: choose one with --lang (e.g. {', '.join(list(voices)[:6])})")
    if lang not in voices:
        close = difflib.get_close_matches(lang, list(voices), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(close)}" if close else ""
        raise CheckpointError(f"unknown language '{lang}': no voice for it in {model} ({count}{hint})")
    return voice_format(voices[lang]), voices[lang]
