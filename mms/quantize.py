"""Reduced-precision model variants for the CPU (placeholder: implemented by the fast-inference work)."""

from __future__ import annotations

from mms.errors import MMSError


def quantize_model(model, method: str, device):
    raise MMSError(f"--quantize {method}: not available yet")
