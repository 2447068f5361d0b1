"""Weights laid out anew for a faster kernel, kept between calls, and convolutions over time run time-major.

On the CPU, oneDNN's convolutions read and write channels_last ([B, C, 1, T] in memory as [B, T, C]) faster than
the [B, C, T] layout of nn.Conv1d: the wav2vec2 feature encoder and the VITS decoder run their convolutions that
way in inference (docs/performance.md)."""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn


def derived_weight(module: nn.Module, name: str, make, *args) -> torch.Tensor:
    """make(module.weight, *args), computed once per weights and kept on the module under `name` (out of its state
    dict): keyed by the weight tensor itself (a weak reference), its storage, version and dtype, so loading, .to()
    or an optimiser step makes it anew. A weight that is computed on each access (weight norm while training) is a
    new tensor every time, so it is derived every time: its storage address alone can be one an earlier weight
    had, which served that weight's stale kernel to the dev evaluation of mms train-tts."""
    weight = module.weight
    if torch.compiler.is_compiling():  # a compiled graph cannot compare storages: it derives the weight each call
        return make(weight.detach(), *args)  # (torch.compile folds or fuses it; no graph break)
    key = (weight.data_ptr(), weight._version, weight.dtype, *args)
    slots = module.__dict__.setdefault("_derived", {})
    kept = slots.get(name)
    if kept is None or kept[0]() is not weight or kept[1] != key:
        with torch.no_grad():
            kept = slots[name] = (weakref.ref(weight), key, make(weight.detach(), *args))
    return kept[2]


def time_major(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T] -> the same values as [B, C, 1, T] in channels_last memory (a copy, time-major)."""
    return x[:, :, None, :].contiguous(memory_format=torch.channels_last)


def conv_time_major(conv: nn.Conv1d | nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for x [B, C, 1, T] in channels_last (see time_major); the output in the same layout. In inference
    the kernel is kept laid out as oneDNN reads it (laid out anew on every call it took 3 % of an int8 ASR
    forward, and the conv ran 15-50 % slower); with gradients it is a view of the weight."""
    kernel = conv.weight[:, :, None, :] if torch.is_grad_enabled() else derived_weight(
        conv, "channels_last", lambda w: w[:, :, None, :].contiguous(memory_format=torch.channels_last))
    stride, padding, dilation = (1, conv.stride[0]), (0, conv.padding[0]), (1, conv.dilation[0])
    if isinstance(conv, nn.ConvTranspose1d):
        return F.conv_transpose2d(x, kernel, conv.bias, stride, padding, (0, conv.output_padding[0]), conv.groups,
                                  dilation)
    return F.conv2d(x, kernel, conv.bias, stride, padding, dilation, conv.groups)


def conv_as_products(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for time-major x [B, T, C] -> [B, T', C'], as matrix products with no copy of x, for a kernel that
    spans one to two strides (s <= k <= 2s, no padding, dilation or groups: wav2vec2's 3/2 and 2/2 layers). Frames
    s*t .. s*t+s-1 are one row of x viewed as [B, T/s, s*C], so the first s taps are one product; the other k - s
    taps read the first (k - s)*C values of the next row, a strided view whose rows are still contiguous.
    On the AMX CPU this ran a 15 s input's feature encoder in bfloat16 faster than oneDNN's convolution
    (docs/performance.md)."""
    k, s = conv.kernel_size[0], conv.stride[0]
    b, t, c = x.shape
    n = (t - k) // s + 1
    if n < 1:
        raise ValueError(f"{t} frames are fewer than the kernel's {k}")
    head, tail = derived_weight(conv, "taps", _taps, s)
    rows = x[:, :s * n].reshape(b * n, s * c)
    y = (rows @ head.t() if conv.bias is None else torch.addmm(conv.bias, rows, head.t())).view(b, n, -1)
    if k > s:
        rest = x.contiguous()[:, s:].as_strided((b, n, (k - s) * c), (t * c, s * c, 1))  # from frame s on
        for row in range(b):  # per row: a 2-d strided matrix is one GEMM operand as it is, a 3-d one is copied
            y[row].addmm_(rest[row], tail.t())
    return y


def _taps(weight: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[out, in, k] -> the first s taps as [out, s*in] and the others as [out, (k-s)*in]; column j*in + c holds
    weight[:, c, j], the order of frames laid side by side."""
    taps = weight.permute(0, 2, 1)
    return taps[:, :s].reshape(len(weight), -1).contiguous(), taps[:, s:].reshape(len(weight), -1).contiguous()
