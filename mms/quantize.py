"""`--quantize int8`: the transformer's linear layers in int8 on the CPU (ASR, LID, alignment).

Weights are quantised once, at load, per output channel (symmetric, int8); activations at run time, per tensor
(uint8 over the input's own range, zero point where 0 falls: the asymmetric dynamic quantisation of
torch.ao's quantize_dynamic and ONNX Runtime; 7 bits on CPUs without VNNI, see `activation_range`). The
product runs in oneDNN's int8 GEMM (VNNI or AMX instructions where the CPU has them), the kernel torch's own
x86 int8 path (torchao's PT2E X86InductorQuantizer, lowered by inductor) ends in, called here without a
compile step. One scale for the whole input lets the kernel apply it with the bias, and the feed-forward
GELU, as it writes its output: with a scale per row (as before) those were separate passes over the output,
and they made int8 slower than bfloat16 on a CPU with AMX (docs/performance.md). The inputs of every
quantised layer come from a LayerNorm or from one (attention, GELU), so rows have like ranges. The range is the
batch's: an utterance's int8 output depends slightly on what it is batched with (docs/performance.md).

Why not torchao's `quantize_(model, Int8DynamicActivationInt8WeightConfig())`: in eager mode on the CPU its int8
product falls back to an int32 matmul, no faster than float32 (torchao 0.18 with torch 2.13, measured in
docs/performance.md), and it needs torch.compile for its speed, which costs every process a compile. Why not
torch.ao.quantization.quantize_dynamic: deprecated (warns on every use) and half as fast as this kernel here.

Quantised: q/k/v (fused into one layer, so each input is quantised once), the attention output and both
feed-forward layers of every encoder layer (the first with its GELU), and the feature projection. Kept in the
model's dtype: the convolutions, the per-language adapters and output layer (swapped per language), the LID
classifier head.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from mms.device import cpu_flags
from mms.errors import MMSError

METHODS = ("int8",)


def available() -> bool:
    """Whether this torch build has oneDNN's int8 linear kernels (x86 builds with mkldnn do; others untested)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise")


def activation_range(flags: set[str] | None = None, max_isa: str | None = None) -> int:
    """The top activation level: 255 (8 bits) where oneDNN multiplies with VNNI or AMX (int32 sums), 127 where it
    cannot. Without VNNI (AVX2 or AVX-512 before Cascade Lake, AMD before Zen 4) its kernel adds pairs of
    u8 x s8 products in saturating int16: 2 x 255 x 127 overflows, and the layer's error went from 6 % to 54 % of its
    largest output (ONEDNN_MAX_CPU_ISA=AVX2 or AVX512_CORE); 7-bit activations keep each pair under 2^15 (torch's
    own x86 int8 path reduces the range for the same reason). ONEDNN_MAX_CPU_ISA, when it caps oneDNN below VNNI,
    counts as no VNNI."""
    flags = cpu_flags() if flags is None else flags
    max_isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "") if max_isa is None else max_isa
    vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    capped = max_isa.upper() not in ("", "ALL", "DEFAULT") and not any(
        name in max_isa.upper() for name in ("VNNI", "AMX", "BF16", "FP16"))  # AVX512_CORE_BF16 and later have VNNI
    return 255 if vnni and not capped else 127


class Int8Linear(nn.Module):
    """A frozen nn.Linear in int8: y = act(s_x (q(x) - z_x) @ (q(W) s_W)^T + b), accumulated in int32, output in
    the input's dtype; `activation` "gelu" applies the (exact, erf) GELU in the same kernel. Inference only (no
    gradients)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, levels: int | None = None,
                 activation: str = "none"):
        super().__init__()
        self.levels = activation_range() if levels is None else levels  # q(x) in [0, levels]
        self.activation = activation
        w = weight.detach().to(torch.float32, copy=True)  # quantised in place: one 4-byte copy, no temporaries
        self.out_features, self.in_features = w.shape
        # (amax and amin: aminmax along a dimension ran 5x slower than the two)
        scale = torch.maximum(w.amax(dim=1), w.amin(dim=1).neg_()).clamp_(min=1e-12).div_(127.0)
        q = w.div_(scale[:, None]).round_().clamp_(-127, 127).to(torch.int8)
        # oneDNN's blocked layout, an opaque tensor, and what the kernel reads with it, in the dtypes it reads
        # them in: plain attributes, not buffers, so that the model's .to(dtype) leaves them as they are
        self.packed = torch.ops.onednn.qlinear_prepack(q, None)
        self.scale = scale
        self.zero_point = torch.zeros(self.out_features, dtype=torch.long)
        self.bias = None if bias is None else bias.detach().float()

    @classmethod
    def of(cls, *layers: nn.Linear, levels: int | None = None, activation: str = "none") -> "Int8Linear":
        """One int8 layer computing the given layers' outputs side by side (same input)."""
        biases = [layer.bias for layer in layers]
        bias = None if any(b is None for b in biases) else torch.cat([b.detach().float() for b in biases])
        weight = layers[0].weight if len(layers) == 1 else torch.cat([layer.weight.detach() for layer in layers])
        return cls(weight, bias, levels, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.out_features)
        rows = x.reshape(-1, self.in_features)
        if rows.shape[0] == 0:
            return x.new_empty(shape)
        lo, hi = (v.item() for v in torch.aminmax(rows))
        if not (math.isfinite(lo) and math.isfinite(hi)):  # one scale cannot hold them: NaN out, for the
            return x.new_full(shape, math.nan)             # callers' own checks to catch
        lo, hi = min(lo, 0.0), max(hi, 0.0)  # the range holds 0: zero rows (padding) stay exact
        # levels - 1 steps: x / scale + zero lies in [-0.5, levels - 0.5], so adding 0.5 and truncating (the cast)
        # rounds it into [0, levels] with no separate round and clamp passes. The floor keeps 1 / scale a float32
        # (below it, the input is zeros as far as the product can tell)
        scale = max((hi - lo) / (self.levels - 1), 1e-30)
        zero = round(-lo / scale)
        q = torch.add(rows.new_full((1,), zero + 0.5, dtype=torch.float32), rows, alpha=1.0 / scale).to(torch.uint8)
        out_dtype = torch.bfloat16 if x.dtype == torch.bfloat16 else torch.float32
        y = torch.ops.onednn.qlinear_pointwise(q, scale, zero, self.packed, self.scale, self.zero_point, self.bias, 1.0,
                                               0, out_dtype, self.activation, [], "none")
        return y.view(shape).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"activation_bits={8 if self.levels > 127 else 7}"
                + ("" if self.activation == "none" else f", activation={self.activation}"))


def check(method: str, device) -> None:
    """An MMSError unless `method` can run on `device` with this torch build."""
    if method not in METHODS:
        raise MMSError(f"--quantize {method}: unknown method (use {', '.join(METHODS)})")
    if torch.device(device).type != "cpu":
        raise MMSError(f"--quantize {method} runs on the CPU (oneDNN int8 kernels); on {device} use --dtype "
                       "bfloat16 or float16 instead")
    if not available():
        raise MMSError(f"--quantize {method}: this torch build ({torch.__version__}) has no oneDNN int8 kernels")


def quantize_model(model: nn.Module, method: str, device) -> nn.Module:
    """The model with its transformer linear layers in int8 (in place; returned for convenience). Quantise the
    model in its stored dtype and convert it to a lower one after, if wanted: the int8 weights are then made from
    the stored ones, and the int8 layers keep their tensors through .to(dtype)."""
    check(method, device)
    encoder = getattr(model, "wav2vec2", model)
    if not hasattr(encoder, "encoder"):
        raise MMSError(f"--quantize {method}: not a wav2vec2 model ({type(model).__name__})")
    with torch.no_grad():
        projection = encoder.feature_projection
        levels = activation_range()  # once per model: it reads /proc/cpuinfo
        projection.projection = _int8(projection.projection, levels)
        for layer in encoder.encoder.layers:
            attention, ffn = layer.attention, layer.feed_forward
            if attention.qkv is None:
                attention.qkv = Int8Linear.of(attention.q_proj, attention.k_proj, attention.v_proj, levels=levels)
                del attention.q_proj, attention.k_proj, attention.v_proj
            attention.out_proj = _int8(attention.out_proj, levels)
            if ffn.intermediate_gelu is None:
                ffn.intermediate_gelu = Int8Linear.of(ffn.intermediate_dense, levels=levels, activation="gelu")
                del ffn.intermediate_dense
            ffn.output_dense = _int8(ffn.output_dense, levels)
    return model


def _int8(layer: nn.Module, levels: int) -> nn.Module:
    return layer if isinstance(layer, Int8Linear) else Int8Linear.of(layer, levels=levels)
