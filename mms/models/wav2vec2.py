"""wav2vec 2.0 with MMS attention adapters, in plain PyTorch (inference path).

One canonical parameter naming, the Hugging Face one (`wav2vec2.feature_extractor.conv_layers.0.conv.weight`,
`lm_head.weight`, ...), except that the positional convolution is stored with its weight norm folded into a
plain `weight`: checkpoint loaders (mms/checkpoints) translate every on-disk format into this form.

Covers what the MMS models and their relatives use:
  * feature encoder in "layer" mode (LayerNorm after every conv, MMS) or "group" mode (GroupNorm on the first
    conv only, wav2vec2-base), conv bias on or off;
  * pre-LN ("stable layer norm", MMS) and post-LN transformer encoders;
  * MMS attention adapters: after the whole layer, x = x + linear_2(relu(linear_1(layer_norm(x))));
  * a CTC head (`lm_head`) and an utterance classification head (LID).

The model never reads a file. Padding is described by per-utterance sample counts (`lengths`), right padded.

Precision: the model computes in its weights' dtype (the waveform is cast to it). In bfloat16 or float16 the
matrix products and convolutions run in that dtype, while every LayerNorm and GroupNorm computes in float32 and
the transformer's residual stream stays float32 (rounding it to 8 bits of mantissa at each of 48 layers is where
reduced precision loses accuracy); SDPA's softmax accumulates in float32 on its own. docs/performance.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from mms.models.layout import conv_as_products, conv_time_major, derived_weight


@dataclass
class Wav2Vec2Config:
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    conv_dim: tuple[int, ...] = (512,) * 7
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"  # "layer" (MMS) or "group"
    do_stable_layer_norm: bool = False  # True = pre-LN encoder (MMS)
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    layer_norm_eps: float = 1e-5
    adapter_attn_dim: int | None = None  # MMS adapters in every layer when set
    vocab_size: int | None = None  # CTC head size; None = no CTC head
    blank_weight: float = 0.0  # fairseq: added to the blank logit (index 0)
    # Classification head (LID). fairseq applies an activation after pooling, transformers does not.
    classifier_proj_size: int | None = None
    num_labels: int | None = None
    classifier_activation: str | None = None  # None (transformers) or "gelu", "relu", ... (fairseq)

    @classmethod
    def from_dict(cls, values: dict) -> "Wav2Vec2Config":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in values.items() if k in known}
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            if name in kwargs:
                kwargs[name] = tuple(int(v) for v in kwargs[name])
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "relu": F.relu,
    "selu": F.selu,
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


def conv_output_lengths(lengths, kernels, strides):
    """Frames the unpadded conv stack makes of `lengths` samples (int or tensor): floor((L - k) / s) + 1 per layer."""
    for k, s in zip(kernels, strides):
        lengths = (lengths - k) // s + 1
    return lengths.clamp(min=0) if isinstance(lengths, torch.Tensor) else max(lengths, 0)


def norm(module: nn.LayerNorm, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """LayerNorm computed in float32: a bfloat16/float16 input goes through the kernel that accumulates in float32
    (and takes float32 weights as they are); the output in `dtype` (default: the input's). Any other module
    (a test's nn.Identity in its place) is simply applied."""
    if not isinstance(module, nn.LayerNorm):
        x = module(x)
        return x if dtype is None else x.to(dtype)
    weight, bias = module.weight, module.bias
    if x.dtype == torch.float32 and weight.dtype != torch.float32:
        weight, bias = weight.float(), bias.float()
    x = F.layer_norm(x, module.normalized_shape, weight, bias, module.eps)
    return x if dtype is None else x.to(dtype)


# ---------------------------------------------------------------------------------------------------------
# Feature encoder: raw waveform -> 50 frames per second


class ConvLayer(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config, i: int):
        super().__init__()
        in_dim = cfg.conv_dim[i - 1] if i > 0 else 1
        out_dim = cfg.conv_dim[i]
        self.conv = nn.Conv1d(in_dim, out_dim, cfg.conv_kernel[i], stride=cfg.conv_stride[i], bias=cfg.conv_bias)
        self.mode = cfg.feat_extract_norm
        if self.mode == "layer":
            self.layer_norm = nn.LayerNorm(out_dim)
        elif i == 0:
            self.layer_norm = nn.GroupNorm(out_dim, out_dim)
        else:
            self.layer_norm = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """"group" mode, [B, C, T]: GroupNorm (first layer only) in float32 whatever the model dtype."""
        x = self.conv(x)
        if self.layer_norm is not None:
            x = F.group_norm(x.float(), x.shape[1], self.layer_norm.weight.float(), self.layer_norm.bias.float(),
                             self.layer_norm.eps).to(x.dtype)
        return F.gelu(x)

    def forward_time_major(self, x: torch.Tensor) -> torch.Tensor:
        """"layer" mode on time-major input: [B, L] samples (first layer) or [B, T, C] -> [B, T', C'].

        The conv reads and writes [B, T, C] (as torch's channels_last [B, C, 1, T]), so the LayerNorm over
        channels (fairseq's Fp32LayerNorm) needs no transposed copies: with [B, C, T] those copies took as
        long as the LayerNorms themselves."""
        k, stride = self.conv.kernel_size[0], self.conv.stride[0]
        if x.dim() == 2:  # one input channel: a product with the overlapping windows (conv2d would answer
            # channels-first for a one-channel input). Two-dimensional, so that the bias is added in the product
            # (addmm); a 3-d linear adds it in a pass of its own, 40 % of this layer's time in bfloat16
            windows = x.unfold(1, k, stride)
            x = F.linear(windows.reshape(-1, k), self.conv.weight.view(-1, k), self.conv.bias)
            x = x.view(*windows.shape[:2], -1)
        elif (x.device.type == "cpu" and not torch.is_grad_enabled() and stride <= k <= 2 * stride
              and not torch.is_autocast_enabled("cpu")):  # (autocast skips the in-place product: a trainer's dev pass)
            x = conv_as_products(self.conv, x)
        else:
            x = conv_time_major(self.conv, x[:, None].permute(0, 3, 1, 2)).permute(0, 2, 3, 1)[:, 0]
        return F.gelu(norm(self.layer_norm, x))


class FeatureEncoder(nn.Module):
    # CPU: frames are computed in windows of about this many per batch (divided among its rows), so the first
    # conv layers' outputs (6.5 MB per second of audio in float32) stay in cache: 100 (2 s) ran 1.2-1.5x faster
    # than 1000 on one core, 25 and 50 slower again (docs/performance.md). Elsewhere: the whole input at once.
    CHUNK_FRAMES = 100

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.conv_layers = nn.ModuleList(ConvLayer(cfg, i) for i in range(len(cfg.conv_dim)))
        self.field = receptive_field(cfg.conv_kernel, cfg.conv_stride)
        self.stride = total_stride(cfg.conv_stride)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, C, T]
        if self.conv_layers[0].mode != "layer":  # GroupNorm normalises over time: one pass over the whole input
            x = waveform[:, None]
            for layer in self.conv_layers:
                x = layer(x)
            return x
        # "layer" mode is frame-local: frame f depends on samples [f * stride, f * stride + field) only, so
        # windows of frames give exactly the frames of the whole input.
        n_frames = (waveform.shape[1] - self.field) // self.stride + 1
        step = max(self.CHUNK_FRAMES // waveform.shape[0], 20) if waveform.device.type == "cpu" else n_frames
        if n_frames <= step:  # one window (or too short for a frame: the convs say so)
            return self._time_major(waveform).transpose(1, 2)
        chunks = [self._time_major(waveform[:, first * self.stride:(min(first + step, n_frames) - 1) * self.stride
                                             + self.field]) for first in range(0, n_frames, step)]
        return torch.cat(chunks, dim=1).transpose(1, 2)

    def _time_major(self, waveform: torch.Tensor) -> torch.Tensor:  # [B, L] -> [B, T, C], contiguous
        x = waveform
        for layer in self.conv_layers:
            x = layer.forward_time_major(x)
        return x


class FeatureProjection(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.layer_norm = nn.LayerNorm(cfg.conv_dim[-1], eps=cfg.layer_norm_eps)
        self.projection = nn.Linear(cfg.conv_dim[-1], cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(norm(self.layer_norm, x))


# ---------------------------------------------------------------------------------------------------------
# Transformer encoder


FFT_MIN_KERNEL = 64  # MMS, XLS-R and omniASR use 128; measured: 1280 wide, 500 frames: 20 vs 36-129 ms


class PositionalConvEmbedding(nn.Module):
    """Grouped conv over time; its weight norm (dim=2) is folded into `conv.weight` by the loaders.

    On the CPU, in inference, a long kernel runs through FFTs instead (fft_conv): MMS's 128-frame kernel makes the
    direct convolution 0.67 of a transformer layer's FLOPs, against about 1/30 of that as products of spectra, and
    the float32 FFT is also the more exact of the two (1e-6 from float64, where a bfloat16 conv is 1e-2 off)."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        k = cfg.num_conv_pos_embeddings
        self.conv = nn.Conv1d(cfg.hidden_size, cfg.hidden_size, k, padding=k // 2,
                              groups=cfg.num_conv_pos_embedding_groups)
        self.remove_last = k % 2 == 0  # "SamePad": an even kernel gives one frame too many

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D]
        # GPUs: cuDNN's conv; training: autograd's; short kernels (the demo's 32): the direct conv is as fast
        if x.device.type == "cpu" and not torch.is_grad_enabled() and self.conv.kernel_size[0] >= FFT_MIN_KERNEL:
            return F.gelu(self.fft_conv(x))  # float32, added to the float32 residual stream
        y = self.conv(x.transpose(1, 2))
        if self.remove_last:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)

    def fft_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution (without the GELU) by overlap-save: [B, T, D] -> [B, T, D] in float32. Blocks of
        n = 2k padded frames give m = k + 1 outputs each; a block's output t is sum_j w[j] x[t + j], the circular
        cross-correlation, which the FFT turns into conj(W) X per frequency: for each group a [D/g x D/g] complex
        matrix times every block's spectrum."""
        conv = self.conv
        k, groups, d = conv.kernel_size[0], conv.groups, conv.out_channels
        n, m = 2 * k, k + 1
        b, t, _ = x.shape
        blocks = -(-t // m)
        padded = F.pad(x.float(), (0, 0, k // 2, blocks * m + k - 1 - k // 2 - t))  # [B, blocks*m + k-1, D]
        spectra = torch.fft.rfft(padded.unfold(1, n, m), dim=-1)  # [B, blocks, D, F]
        f = spectra.shape[-1]
        spectra = spectra.reshape(b * blocks, groups, d // groups, f).permute(1, 3, 2, 0)  # [G, F, D/g, B*blocks]
        y = torch.matmul(self.weight_spectrum(n), spectra)  # [G, F, D/g, B*blocks]
        y = torch.fft.irfft(y.permute(3, 0, 2, 1).reshape(b, blocks, d, f), n=n, dim=-1)[..., :m]
        y = y.transpose(2, 3).reshape(b, blocks * m, d)[:, :t]
        return y if conv.bias is None else y + conv.bias.float()

    def weight_spectrum(self, n: int) -> torch.Tensor:
        """conj(rfft(w, n)) as [G, F, D/g, D/g] complex64, computed once per weights (kept out of the state dict:
        for MMS-1B's 1280 x 80 x 128 kernel it is 106 MB, next to 2.6 GB of float16 weights)."""
        return derived_weight(self.conv, "spectrum", self._spectrum_of, n)

    def _spectrum_of(self, w: torch.Tensor, n: int) -> torch.Tensor:
        g = self.conv.groups
        kernel = w.float().view(g, w.shape[0] // g, w.shape[1], w.shape[2])  # [G, out, in, k]
        return torch.fft.rfft(kernel, n=n, dim=-1).conj().permute(0, 3, 1, 2).contiguous()


class Attention(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.head_dim = d // self.num_heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.qkv = None  # q, k and v fused into one layer (mms.quantize: one input quantisation, one GEMM)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        if self.qkv is not None:
            q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        else:
            q, k, v = (proj(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
                       for proj in (self.q_proj, self.k_proj, self.v_proj))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, scale=self.head_dim ** -0.5)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.intermediate_dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output_dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.intermediate_gelu = None  # mms.quantize: the first layer and its GELU in one int8 kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.intermediate_gelu is not None:
            return self.output_dense(self.intermediate_gelu(x))
        return self.output_dense(F.gelu(self.intermediate_dense(x)))


class AttnAdapter(nn.Module):
    """MMS per-language bottleneck (about 2M weights for the 1B model), applied after the whole layer."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.norm = nn.LayerNorm(cfg.hidden_size)
        self.linear_1 = nn.Linear(cfg.hidden_size, cfg.adapter_attn_dim)
        self.linear_2 = nn.Linear(cfg.adapter_attn_dim, cfg.hidden_size)

    def forward(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.linear_2(F.relu(self.linear_1(norm(self.norm, x, dtype))))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.pre_ln = cfg.do_stable_layer_norm
        self.attention = Attention(cfg)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.feed_forward = FeedForward(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.adapter_layer = AttnAdapter(cfg) if cfg.adapter_attn_dim else None

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        """x: the float32 residual stream; the sublayers compute in `dtype`."""
        if self.pre_ln:
            x = x + self.attention(norm(self.layer_norm, x, dtype), key_mask)
            x = x + self.feed_forward(norm(self.final_layer_norm, x, dtype))
        else:
            x = norm(self.layer_norm, x + self.attention(x.to(dtype), key_mask))
            x = norm(self.final_layer_norm, x + self.feed_forward(x.to(dtype)))
        if self.adapter_layer is not None:
            x = x + self.adapter_layer(x, dtype)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.pre_ln = cfg.do_stable_layer_norm
        self.pos_conv_embed = PositionalConvEmbedding(cfg)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """x [B, T, D] in the compute dtype -> hidden states in the compute dtype."""
        dtype = x.dtype
        key_mask = None
        if frame_mask is not None:
            x = x.masked_fill(~frame_mask[..., None], 0.0)  # padded frames must not leak through the pos conv
            key_mask = frame_mask[:, None, None, :]  # [B, 1, 1, T], True = attend
        x = x.float() + self.pos_conv_embed(x)  # the residual stream: float32 (a no-op for a float32 model)
        if not self.pre_ln:
            x = norm(self.layer_norm, x)
        for layer in self.layers:
            x = layer(x, key_mask, dtype)
        return norm(self.layer_norm, x, dtype) if self.pre_ln else x.to(dtype)


class Wav2Vec2Model(nn.Module):
    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        self.feature_extractor = FeatureEncoder(cfg)
        self.feature_projection = FeatureProjection(cfg)
        self.encoder = Encoder(cfg)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, self.cfg.conv_kernel, self.cfg.conv_stride)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None):
        """waveform [B, L] (right padded), lengths [B] valid samples -> (hidden [B, T, D], frame_mask [B, T] or None).
        Computed in the dtype of the model's weights (the waveform is cast to it)."""
        waveform = waveform.to(self.feature_extractor.conv_layers[0].conv.weight.dtype)
        features = self.feature_extractor(waveform).transpose(1, 2)
        frame_mask = None
        # (compiled: the mask whenever lengths are given, as reading a tensor's value would break the graph)
        if lengths is not None and (torch.compiler.is_compiling() or bool((lengths < waveform.shape[1]).any())):
            n_frames = self.frame_lengths(lengths.to(features.device))
            frame_mask = torch.arange(features.shape[1], device=features.device)[None, :] < n_frames[:, None]
        hidden = self.feature_projection(features)
        return self.encoder(hidden, frame_mask), frame_mask


# ---------------------------------------------------------------------------------------------------------
# Heads


class Wav2Vec2ForCTC(nn.Module):
    """Encoder + per-language CTC output layer. Index 0 of the output is the CTC blank in every MMS vocabulary."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = Wav2Vec2Model(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None):
        """-> (logits [B, T, V], frame_lengths [B]). Frames past frame_lengths are padding."""
        hidden, frame_mask = self.wav2vec2(waveform, lengths)
        logits = self.lm_head(hidden)
        if self.cfg.blank_weight:
            logits[..., 0] += self.cfg.blank_weight
        if frame_mask is None:
            frame_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long, device=logits.device)
        else:
            frame_lengths = frame_mask.sum(-1)
        return logits, frame_lengths

    def adapter_parameter_names(self) -> list[str]:
        """Names a per-language adapter file must provide (the transformers `_get_adapters` set)."""
        names = [n for n, _ in self.named_parameters() if ".adapter_layer." in n]
        return names + ["lm_head.weight", "lm_head.bias"]

    def load_adapter(self, weights: dict[str, torch.Tensor]) -> None:
        """Swap in one language: adapter weights of every layer plus its output layer (its size may differ)."""
        expected = set(self.adapter_parameter_names())
        missing, unexpected = expected - set(weights), set(weights) - expected
        if missing or unexpected:
            raise ValueError(f"adapter weights do not fit this model: missing {sorted(missing)[:3]}, "
                             f"unexpected {sorted(unexpected)[:3]}")
        vocab = weights["lm_head.weight"].shape[0]
        params = dict(self.named_parameters())
        for name, value in weights.items():  # every shape first: a misfit leaves the model as it was
            shape = (vocab, *params[name].shape[1:]) if name.startswith("lm_head.") else params[name].shape
            if value.shape != shape:
                raise ValueError(f"adapter weight {name} has shape {tuple(value.shape)}, model expects {tuple(shape)}")
        ref = self.lm_head.weight
        if vocab != self.lm_head.out_features:
            self.lm_head = nn.Linear(self.cfg.hidden_size, vocab, device=ref.device, dtype=ref.dtype)
            self.cfg.vocab_size = vocab
            params = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)


class Wav2Vec2ForSequenceClassification(nn.Module):
    """Utterance classifier (MMS LID): projector, mean over valid frames, [activation], classifier."""

    def __init__(self, cfg: Wav2Vec2Config):
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = Wav2Vec2Model(cfg)
        self.projector = nn.Linear(cfg.hidden_size, cfg.classifier_proj_size)
        self.classifier = nn.Linear(cfg.classifier_proj_size, cfg.num_labels)

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        hidden, frame_mask = self.wav2vec2(waveform, lengths)
        h = self.projector(hidden)
        if frame_mask is None:
            pooled = h.mean(dim=1)
        else:
            h = h.masked_fill(~frame_mask[..., None], 0.0)
            pooled = h.sum(dim=1) / frame_mask.sum(dim=1, keepdim=True).to(h.dtype)
        if self.cfg.classifier_activation:
            pooled = ACTIVATIONS[self.cfg.classifier_activation](pooled)
        return self.classifier(pooled)


def build_model(cfg: Wav2Vec2Config) -> nn.Module:
    if cfg.num_labels:
        return Wav2Vec2ForSequenceClassification(cfg)
    if cfg.vocab_size:
        return Wav2Vec2ForCTC(cfg)
    return Wav2Vec2Model(cfg)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """weight = g * v / ||v||, the norm taken over every dim but `dim` (torch's own kernel, for bit parity)."""
    return torch._weight_norm(v.float(), g.float(), dim).to(v.dtype)


def receptive_field(kernels, strides) -> int:
    """Samples the conv stack needs for one frame (400 for the standard stack)."""
    field_ = 1
    for k, s in reversed(list(zip(kernels, strides))):
        field_ = (field_ - 1) * s + k
    return field_


def total_stride(strides) -> int:
    """Samples between frames (320 = 20 ms at 16 kHz for the standard stack)."""
    return math.prod(strides)
