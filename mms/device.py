"""Device and dtype are decided once, here, and passed down; nothing else names CUDA."""

from __future__ import annotations

import torch

from mms.errors import MMSError


class DeviceError(MMSError):
    """A --device or --dtype that this machine or torch build cannot give."""

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available (this torch build: {torch.__version__})")
    return device


def default_batch_seconds(device: torch.device) -> float:
    """Padded audio per forward pass. On a CPU big batches only cost memory: the first conv layer alone holds
    ~6.5 MB per second of audio, and 30 s batches ran 1.5-2x faster than 200 s ones in benchmarks/asr.py."""
    return 200.0 if device.type == "cuda" else 30.0


def resolve_dtype(name: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        if device is not None and device.type == "cuda":
            # bf16 keeps fp32's range (no overflow in the 48-layer residual stream); fp16 on older GPUs
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in DTYPES:
        raise DeviceError(f"unknown dtype {name!r} (use auto, float32, float16 or bfloat16)")
    return DTYPES[name]
