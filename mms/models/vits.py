"""VITS, the text-to-speech model of MMS-TTS: the generator's inference path in plain PyTorch.

    ids -> text encoder (transformer with relative positions) -> prior means / log-stds per input token
        -> stochastic duration predictor (normalising flows run backwards from noise) -> frames per token
        -> length regulation (each token's prior repeated for its frames) + noise -> prior flows (backwards)
        -> HiFi-GAN decoder -> waveform

Parameter names are those of transformers' `VitsModel` (`text_encoder.encoder.layers.0.attention.q_proj.weight`,
`flow.flows.0.wavenet.in_layers.0.weight`, `decoder.upsampler.0.weight`, ...), with every weight norm folded
into a plain `weight`: the loaders in mms/checkpoints translate both on-disk formats into this form. Training-
only parts (posterior encoder, the duration predictor's posterior flows) are left out here: mms/models/vits_train.py
adds them, and the modules below carry a `dropout` rate (0, unused, unless training sets it; eval mode never
applies it), so that training runs this very code.

The arithmetic follows transformers 5.23 operation by operation, so a single input gives the same waveform to
within float rounding (noise included, given the same seed; see `VitsModel.forward`). Two deliberate
differences, both for batches: the decoder keeps each item's padding at zero, so a batched item equals the
same item synthesised alone (transformers' decoder lets the padding leak into the last ~10 frames and leaves
non-silent tails), and noise is drawn per item, so a seed gives the same speech whatever the batch.

The model never reads a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mms.models.layout import conv_time_major, time_major


@dataclass
class VitsConfig:
    """Hyper-parameters, named as in transformers' VitsConfig; the defaults are every MMS-TTS voice's."""

    vocab_size: int = 38
    hidden_size: int = 192
    num_hidden_layers: int = 6
    num_attention_heads: int = 2
    window_size: int = 4  # relative positions -4..4
    use_bias: bool = True
    ffn_dim: int = 768
    ffn_kernel_size: int = 3
    hidden_act: str = "relu"
    layer_norm_eps: float = 1e-5
    flow_size: int = 192
    duration_predictor_kernel_size: int = 3
    duration_predictor_num_flows: int = 4
    duration_predictor_flow_bins: int = 10
    duration_predictor_tail_bound: float = 5.0
    depth_separable_channels: int = 2
    depth_separable_num_layers: int = 3
    prior_encoder_num_flows: int = 4
    prior_encoder_num_wavenet_layers: int = 4
    wavenet_kernel_size: int = 5
    wavenet_dilation_rate: int = 1
    upsample_initial_channel: int = 512
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    leaky_relu_slope: float = 0.1
    sampling_rate: int = 16000
    speaking_rate: float = 1.0
    noise_scale: float = 0.667
    noise_scale_duration: float = 0.8
    # training only (the posterior encoder of mms/models/vits_train.py): linear-spectrogram bins (n_fft // 2 + 1)
    # and WaveNet depth
    spectrogram_bins: int = 513
    posterior_encoder_num_wavenet_layers: int = 16

    @classmethod
    def from_dict(cls, values: dict) -> "VitsConfig":
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in values.items() if k in known})
        cfg.upsample_rates = tuple(cfg.upsample_rates)
        cfg.upsample_kernel_sizes = tuple(cfg.upsample_kernel_sizes)
        cfg.resblock_kernel_sizes = tuple(cfg.resblock_kernel_sizes)
        cfg.resblock_dilation_sizes = tuple(tuple(d) for d in cfg.resblock_dilation_sizes)
        return cfg

    @property
    def hop_length(self) -> int:
        """Waveform samples per output frame (256 for MMS)."""
        return math.prod(self.upsample_rates)


ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
MAX_SECONDS_PER_TOKEN = 10.0  # the longest speech inference makes of one input id (real voices: ~0.1 s)


def dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Dropout for training only (rate 0 or eval mode: x itself, no random number drawn)."""
    return F.dropout(x, rate, True) if rate and training else x


def sequence_mask(lengths: torch.Tensor, max_length: int, dtype: torch.dtype) -> torch.Tensor:
    """[B] lengths -> [B, 1, T] float mask, 1 on the first `length` positions."""
    positions = torch.arange(max_length, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).unsqueeze(1).to(dtype)


# ---------------------------------------------------------------------------------------------------------
# Text encoder: post-LN transformer with relative position embeddings, conv feed-forward


class RelativeAttention(nn.Module):
    """Self-attention with learned relative-position embeddings for keys and values (offsets -w..w)."""

    def __init__(self, cfg: VitsConfig):
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.head_dim = d // self.num_heads
        self.window = cfg.window_size
        self.q_proj = nn.Linear(d, d, bias=cfg.use_bias)
        self.k_proj = nn.Linear(d, d, bias=cfg.use_bias)
        self.v_proj = nn.Linear(d, d, bias=cfg.use_bias)
        self.out_proj = nn.Linear(d, d, bias=cfg.use_bias)
        self.emb_rel_k = nn.Parameter(torch.zeros(1, 2 * self.window + 1, self.head_dim))
        self.emb_rel_v = nn.Parameter(torch.zeros(1, 2 * self.window + 1, self.head_dim))
        self.dropout = 0.0  # on the attention probabilities, training only

    def relative_embeddings(self, table: torch.Tensor, length: int) -> torch.Tensor:
        """[1, 2w+1, d] -> [1, 2L-1, d]: row r+L-1 holds offset r (zero beyond the window)."""
        pad = max(length - (self.window + 1), 0)
        if pad > 0:
            table = F.pad(table, [0, 0, pad, pad, 0, 0])
        start = max((self.window + 1) - length, 0)
        return table[:, start:start + 2 * length - 1]

    @staticmethod
    def relative_to_absolute(x: torch.Tensor) -> torch.Tensor:
        """[N, L, 2L-1] indexed by offset -> [N, L, L] indexed by key position, by padding and reshaping
        (the same "skew" as the reference, whose rounding a gather would not reproduce)."""
        n, length, _ = x.shape
        x = F.pad(x, [0, 1, 0, 0, 0, 0]).view(n, 2 * length * length)
        x = F.pad(x, [0, length - 1, 0, 0])
        return x.view(n, length + 1, 2 * length - 1)[:, :length, length - 1:]

    @staticmethod
    def absolute_to_relative(x: torch.Tensor) -> torch.Tensor:
        """[N, L, L] by key position -> [N, L, 2L-1] by offset (the inverse skew)."""
        n, length, _ = x.shape
        x = F.pad(x, [0, length - 1, 0, 0, 0, 0]).view(n, length * (2 * length - 1))
        x = F.pad(x, [length, 0, 0, 0])
        return x.view(n, length, 2 * length)[:, :, 1:]

    def forward(self, h: torch.Tensor, key_bias: torch.Tensor | None) -> torch.Tensor:
        b, length, d = h.shape

        def heads(x):  # [B, L, D] -> [B*H, L, d]
            return x.view(b, length, self.num_heads, self.head_dim).transpose(1, 2).contiguous().view(
                b * self.num_heads, length, self.head_dim)

        q = heads(self.q_proj(h) * self.head_dim ** -0.5)  # scaled before the products, as the reference
        k, v = heads(self.k_proj(h)), heads(self.v_proj(h))
        scores = torch.bmm(q, k.transpose(1, 2))
        rel_k = self.relative_embeddings(self.emb_rel_k, length)
        scores += self.relative_to_absolute(torch.matmul(q, rel_k.transpose(-2, -1)))
        if key_bias is not None:  # [B, 1, 1, L]: 0 for real keys, the dtype's minimum for padding
            scores = (scores.view(b, self.num_heads, length, length) + key_bias).view(b * self.num_heads, length,
                                                                                       length)
        probs = dropout(F.softmax(scores, dim=-1), self.dropout, self.training)
        out = torch.bmm(probs, v)
        rel_v = self.relative_embeddings(self.emb_rel_v, length)
        out += torch.matmul(self.absolute_to_relative(probs), rel_v)
        out = out.view(b, self.num_heads, length, self.head_dim).transpose(1, 2).reshape(b, length, d)
        return self.out_proj(out)


class ConvFeedForward(nn.Module):
    """Two convolutions over time, zero-padded explicitly ((k-1)//2 left, k//2 right), masked before each."""

    def __init__(self, cfg: VitsConfig):
        super().__init__()
        k = cfg.ffn_kernel_size
        self.conv_1 = nn.Conv1d(cfg.hidden_size, cfg.ffn_dim, k)
        self.conv_2 = nn.Conv1d(cfg.ffn_dim, cfg.hidden_size, k)
        self.padding = [(k - 1) // 2, k // 2]
        self.act = ACTIVATIONS[cfg.hidden_act]
        self.dropout = 0.0  # after the activation, training only

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # h [B, L, D], mask [B, 1, L]
        x = F.pad(h.permute(0, 2, 1) * mask, self.padding)
        x = dropout(self.act(self.conv_1(x)), self.dropout, self.training)
        x = F.pad(x * mask, self.padding)
        return (self.conv_2(x) * mask).permute(0, 2, 1)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.attention = RelativeAttention(cfg)
        self.layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.feed_forward = ConvFeedForward(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = 0.0  # on each sub-layer's output, training only

    def forward(self, h, mask, key_bias):
        h = self.layer_norm(h + dropout(self.attention(h, key_bias), self.dropout, self.training))
        return self.final_layer_norm(h + dropout(self.feed_forward(h, mask), self.dropout, self.training))


class Encoder(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, h: torch.Tensor, mask: torch.Tensor, padded: bool) -> torch.Tensor:
        key_bias = None
        if padded:
            key_bias = (1.0 - mask[:, None]) * torch.finfo(h.dtype).min  # [B, 1, 1, L]
        h = h * mask.transpose(1, 2)
        for layer in self.layers:
            h = layer(h, mask, key_bias)
        return h * mask.transpose(1, 2)


class TextEncoder(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.encoder = Encoder(cfg)
        self.project = nn.Conv1d(cfg.hidden_size, 2 * cfg.flow_size, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, padded: bool):
        """-> hidden [B, L, D], prior means [B, L, C], prior log-stds [B, L, C] (transformers calls the last
        "log variances", but they are used as exp(log_std))."""
        h = self.embed_tokens(ids) * math.sqrt(self.cfg.hidden_size)
        h = self.encoder(h, mask, padded)
        stats = self.project(h.transpose(1, 2)).transpose(1, 2) * mask.transpose(1, 2)
        means, log_stds = torch.split(stats, self.cfg.flow_size, dim=2)
        return h, means, log_stds


# ---------------------------------------------------------------------------------------------------------
# Stochastic duration predictor (inference = its flows run backwards from noise)


class DilatedDepthSeparableConv(nn.Module):
    """Residual stack of depthwise dilated convs (dilation k**i) + pointwise convs, each with LayerNorm + GELU."""

    def __init__(self, cfg: VitsConfig):
        super().__init__()
        c, k = cfg.hidden_size, cfg.duration_predictor_kernel_size
        n = cfg.depth_separable_num_layers
        self.convs_dilated = nn.ModuleList(
            nn.Conv1d(c, c, k, groups=c, dilation=k ** i, padding=(k * k ** i - k ** i) // 2) for i in range(n))
        self.convs_pointwise = nn.ModuleList(nn.Conv1d(c, c, 1) for _ in range(n))
        self.norms_1 = nn.ModuleList(nn.LayerNorm(c) for _ in range(n))
        self.norms_2 = nn.ModuleList(nn.LayerNorm(c) for _ in range(n))
        self.dropout = 0.0  # on each residual branch, training only

    def forward(self, x: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if condition is not None:
            x = x + condition
        for dilated, pointwise, norm_1, norm_2 in zip(self.convs_dilated, self.convs_pointwise, self.norms_1,
                                                      self.norms_2):
            y = F.gelu(norm_1(dilated(x * mask).transpose(1, -1)).transpose(1, -1))
            y = F.gelu(norm_2(pointwise(y).transpose(1, -1)).transpose(1, -1))
            x = x + dropout(y, self.dropout, self.training)
        return x * mask


class ElementwiseAffine(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.translate = nn.Parameter(torch.zeros(cfg.depth_separable_channels, 1))
        self.log_scale = nn.Parameter(torch.zeros(cfg.depth_separable_channels, 1))

    def reverse(self, z: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return (z - self.translate) * torch.exp(-self.log_scale) * mask


class ConvFlow(nn.Module):
    """Coupling layer: the first channel, conditioned on the text, parameterises a rational-quadratic spline
    that transforms the second."""

    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.channels = cfg.hidden_size
        self.half = cfg.depth_separable_channels // 2
        self.bins = cfg.duration_predictor_flow_bins
        self.tail_bound = cfg.duration_predictor_tail_bound
        self.conv_pre = nn.Conv1d(self.half, self.channels, 1)
        self.conv_dds = DilatedDepthSeparableConv(cfg)
        self.conv_proj = nn.Conv1d(self.channels, self.half * (3 * self.bins - 1), 1)

    def reverse(self, z: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        z0, z1 = torch.split(z, [self.half, self.half], dim=1)
        h = self.conv_dds(self.conv_pre(z0), mask, condition)
        h = self.conv_proj(h) * mask
        b, c, length = z0.shape
        h = h.reshape(b, c, -1, length).permute(0, 1, 3, 2)  # [B, 1, L, 3*bins-1]
        widths = h[..., :self.bins] / math.sqrt(self.channels)
        heights = h[..., self.bins:2 * self.bins] / math.sqrt(self.channels)
        derivatives = h[..., 2 * self.bins:]
        z1 = spline_inverse(z1, widths, heights, derivatives, self.tail_bound)
        return torch.cat([z0, z1], dim=1) * mask


def spline_bins(x, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tail_bound, min_width,
                min_height, min_derivative, search: str):
    """The monotonic rational-quadratic spline on [-B, B] (bins from softmax(widths/heights) with a minimum size,
    boundary derivatives fixed to 1), at the points of x inside [-B, B]: (inside mask, None) when there are none,
    else (inside, (x inside, cumwidth, width, cumheight, height, slope, derivative at the bin's left and right
    knots)) of the bin each point falls in, searched on the "width" (input) axis or the "height" (output) axis.
    Shared by spline_inverse (here) and the training flows' forward (vits_train.spline_forward)."""
    inside = (x >= -tail_bound) & (x <= tail_bound)
    boundary = np.log(np.exp(1 - min_derivative) - 1)  # softplus(boundary) + min_derivative == 1
    unnormalized_derivatives = F.pad(unnormalized_derivatives, [1, 1])
    unnormalized_derivatives[..., 0] = boundary
    unnormalized_derivatives[..., -1] = boundary
    if not bool(inside.any()):
        return inside, None

    x = x[inside]
    num_bins = unnormalized_widths.shape[-1]

    def knots(unnormalized, minimum):
        sizes = minimum + (1 - minimum * num_bins) * F.softmax(unnormalized[inside, :], dim=-1)
        cum = F.pad(torch.cumsum(sizes, dim=-1), [1, 0], value=0.0)
        cum = 2 * tail_bound * cum - tail_bound
        cum[..., 0] = -tail_bound
        cum[..., -1] = tail_bound
        return cum, cum[..., 1:] - cum[..., :-1]

    cumwidths, widths = knots(unnormalized_widths, min_width)
    cumheights, heights = knots(unnormalized_heights, min_height)
    derivatives = min_derivative + F.softplus(unnormalized_derivatives[inside, :])

    # the last edge is nudged so x == B falls in the last bin
    edges = (cumwidths if search == "width" else cumheights).detach().clone()
    edges[..., -1] += 1e-6
    bin_idx = (torch.sum(x[..., None] >= edges, dim=-1) - 1)[..., None]

    def pick(t):
        return t.gather(-1, bin_idx)[..., 0]

    return inside, (x, pick(cumwidths), pick(widths), pick(cumheights), pick(heights), pick(heights / widths),
                    pick(derivatives), derivatives[..., 1:].gather(-1, bin_idx)[..., 0])


def spline_inverse(x, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tail_bound,
                   min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Inverse of the monotonic rational-quadratic spline (spline_bins) on [-B, B], identity outside (linear
    tails)."""
    out = x.clone()
    inside, found = spline_bins(x, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tail_bound,
                                min_width, min_height, min_derivative, search="height")
    if found is None:
        return out
    x, cw, w, ch, hgt, delta, d_k, d_k1 = found

    # solve the bin's rational quadratic for theta in [0, 1]
    i1 = d_k + d_k1 - 2 * delta
    i3 = (x - ch) * i1
    a = hgt * (delta - d_k) + i3
    b = hgt * d_k - i3
    c = -delta * (x - ch)
    discriminant = (b.pow(2) - 4 * a * c).clamp_min(0)  # only rounding can make it negative
    theta = (2 * c) / (-b - torch.sqrt(discriminant))
    out[inside] = theta * w + cw
    return out


class StochasticDurationPredictor(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        c = cfg.hidden_size
        self.conv_pre = nn.Conv1d(c, c, 1)
        self.conv_proj = nn.Conv1d(c, c, 1)
        self.conv_dds = DilatedDepthSeparableConv(cfg)
        # flows[1] is kept only so the names line up: inference skips it ("useless vflow" in VITS)
        self.flows = nn.ModuleList([ElementwiseAffine(cfg)] + [ConvFlow(cfg)
                                                               for _ in range(cfg.duration_predictor_num_flows)])

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """hidden [B, D, L], noise [B, 2, L] (already scaled) -> log durations [B, 1, L]."""
        x = self.conv_pre(hidden)
        x = self.conv_dds(x, mask)
        x = self.conv_proj(x) * mask
        z = noise
        for flow in [*self.flows[:1:-1], self.flows[0]]:  # flows 4, 3, 2, 0
            z = flow.reverse(torch.flip(z, [1]), mask, x)
        return z[:, :1]


# ---------------------------------------------------------------------------------------------------------
# Prior flows: mean-only affine couplings around a WaveNet


class WaveNet(nn.Module):
    """Gated dilated convs (tanh * sigmoid) with residual and skip 1x1 convs; weight norms folded."""

    def __init__(self, cfg: VitsConfig, num_layers: int):
        super().__init__()
        c, k = cfg.hidden_size, cfg.wavenet_kernel_size
        self.channels = c
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(num_layers):
            dilation = cfg.wavenet_dilation_rate ** i
            self.in_layers.append(nn.Conv1d(c, 2 * c, k, dilation=dilation, padding=(k * dilation - dilation) // 2))
            self.res_skip_layers.append(nn.Conv1d(c, 2 * c if i < num_layers - 1 else c, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        last = len(self.in_layers) - 1
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = in_layer(x)
            acts = torch.tanh(a[:, :self.channels]) * torch.sigmoid(a[:, self.channels:])
            rs = res_skip(acts)
            if i < last:
                x = (x + rs[:, :self.channels]) * mask
                out = out + rs[:, self.channels:]
            else:
                out = out + rs
        return out * mask


class ResidualCouplingLayer(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.half = cfg.flow_size // 2
        self.conv_pre = nn.Conv1d(self.half, cfg.hidden_size, 1)
        self.wavenet = WaveNet(cfg, cfg.prior_encoder_num_wavenet_layers)
        self.conv_post = nn.Conv1d(cfg.hidden_size, self.half, 1)

    def reverse(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        z0, z1 = torch.split(z, [self.half, self.half], dim=1)
        h = self.wavenet(self.conv_pre(z0) * mask, mask)
        mean = self.conv_post(h) * mask
        z1 = (z1 - mean) * mask  # mean-only coupling: its log-std is 0
        return torch.cat([z0, z1], dim=1)


class ResidualCouplingBlock(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.flows = nn.ModuleList(ResidualCouplingLayer(cfg) for _ in range(cfg.prior_encoder_num_flows))

    def reverse(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for flow in reversed(self.flows):
            z = flow.reverse(torch.flip(z, [1]), mask)
        return z


# ---------------------------------------------------------------------------------------------------------
# HiFi-GAN decoder


class ResidualBlock(nn.Module):
    """HiFi-GAN ResBlock1: pairs of (dilated conv, plain conv) with leaky ReLUs and a residual each."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], slope: float):
        super().__init__()
        self.slope = slope
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                              padding=(kernel_size * d - d) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
                                    for _ in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B, C, T], or [B, C, 1, T] time-major (HifiGan.forward), and its mask of the same rank."""
        conv = conv_time_major if x.dim() == 4 else lambda module, x: module(x)
        for conv1, conv2 in zip(self.convs1, self.convs2):
            y = F.leaky_relu(conv(conv1, F.leaky_relu(x, self.slope)), self.slope)
            if mask is not None:  # conv biases would write into the padding: keep it zero
                y = y * mask
            y = conv(conv2, y)
            if mask is not None:
                y = y * mask
            x = y.add_(x)  # into the fresh conv output (the block's input is shared with its siblings)
        return x


class HifiGan(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.cfg = cfg
        c0 = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.flow_size, c0, 7, padding=3)
        self.upsampler = nn.ModuleList(
            nn.ConvTranspose1d(c0 // 2 ** i, c0 // 2 ** (i + 1), k, stride=u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)))
        self.resblocks = nn.ModuleList(
            ResidualBlock(c0 // 2 ** (i + 1), k, tuple(d), cfg.leaky_relu_slope)
            for i in range(len(cfg.upsample_rates))
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(c0 // 2 ** len(cfg.upsample_rates), 1, 7, padding=3, bias=False)

    def forward(self, spectrogram: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """[B, C, T] latent frames -> [B, T * hop] waveform. `frame_mask` [B, 1, T] (None: no padding).

        In inference on the CPU the convolutions run time-major (mms.models.layout): 1.25-1.45x faster for the
        decoder at mms-tts size. The sums are taken in another order, so the waveform differs from the
        channels-first one by rounding (measured in docs/performance.md)."""
        n = len(self.cfg.resblock_kernel_sizes)
        rank4 = spectrogram.device.type == "cpu" and not torch.is_grad_enabled()
        conv = conv_time_major if rank4 else lambda module, x: module(x)
        mask = frame_mask if frame_mask is None or not rank4 else frame_mask[:, :, None, :]
        x = conv(self.conv_pre, time_major(spectrogram) if rank4 else spectrogram)
        if mask is not None:
            x = x * mask
        for i, upsample in enumerate(self.upsampler):
            x = conv(upsample, F.leaky_relu(x, self.cfg.leaky_relu_slope))
            if mask is not None:  # the transposed conv spills past each item's end: cut at the new rate
                mask = torch.repeat_interleave(mask, self.cfg.upsample_rates[i], dim=-1)
                x = x * mask
            total = self.resblocks[i * n](x, mask)
            for j in range(1, n):
                total += self.resblocks[i * n + j](x, mask)
            x = total / n
        x = torch.tanh(conv(self.conv_post, F.leaky_relu(x)))  # default slope 0.01 here, as in VITS
        if mask is not None:
            x = x * mask
        return x.reshape(x.shape[0], x.shape[-1])


# ---------------------------------------------------------------------------------------------------------
# The generator


class VitsModel(nn.Module):
    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.cfg = cfg
        self.text_encoder = TextEncoder(cfg)
        self.duration_predictor = StochasticDurationPredictor(cfg)
        self.flow = ResidualCouplingBlock(cfg)
        self.decoder = HifiGan(cfg)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None, *,
                speaking_rate: float | None = None, noise_scale: float | None = None,
                noise_scale_duration: float | None = None, seeds: list[int] | None = None):
        """input_ids [B, L] right padded, lengths [B] (None: no padding) -> (waveform [B, S], lengths [B] in
        samples). Samples past an item's length are exactly zero.

        Noise is drawn per item from generators seeded with `seeds[i]` in the order and memory layout
        transformers uses, so an item with seed s gets the waveform transformers' VitsModel gives for that
        input alone after `torch.manual_seed(s)`. Without seeds, each item gets a seed drawn from torch's
        global generator. `speaking_rate` > 1 is faster (durations are divided by it).
        """
        cfg = self.cfg
        speaking_rate = cfg.speaking_rate if speaking_rate is None else speaking_rate
        noise_scale = cfg.noise_scale if noise_scale is None else noise_scale
        noise_scale_duration = cfg.noise_scale_duration if noise_scale_duration is None else noise_scale_duration
        b, length = input_ids.shape
        device, dtype = input_ids.device, self.text_encoder.embed_tokens.weight.dtype
        if lengths is None:
            lengths = torch.full((b,), length, dtype=torch.long, device=device)
        lengths = lengths.to(device)
        padded = bool((lengths < length).any())
        x_mask = sequence_mask(lengths, length, dtype)  # [B, 1, L]
        if seeds is None:
            seeds = torch.randint(0, 2 ** 62, (b,)).tolist()
        generators = [noise_generators(seed, device) for seed in seeds]

        hidden, prior_means, prior_log_stds = self.text_encoder(input_ids, x_mask, padded)

        # durations: noise -> flows -> log frames per token. Drawn even when scaled by 0, as transformers
        # does: on CPU the prior noise comes next from the same generator.
        noise = torch.zeros(b, 2, length)
        for i, (cpu_generator, _) in enumerate(generators):
            n = int(lengths[i])
            noise[i, :, :n] = torch.randn(1, 2, n, generator=cpu_generator)[0]
        # the duration flows may be kept in float32 in a half-precision model (see mms.tts): their spline is
        # unstable in 16 bits; they see their own dtype
        flow_dtype = self.duration_predictor.conv_pre.weight.dtype
        noise = noise.to(device=device, dtype=flow_dtype) * noise_scale_duration
        log_durations = self.duration_predictor(hidden.transpose(1, 2).to(flow_dtype), x_mask.to(flow_dtype), noise)
        # frame counts in float32 whatever the model's dtype (bfloat16 cannot count past 256 exactly)
        durations = torch.ceil(torch.exp(log_durations.float()) * x_mask.float() * (1.0 / speaking_rate))
        total = torch.sum(durations, [1, 2])
        most = float(total.max())
        if not most <= MAX_SECONDS_PER_TOKEN * length * cfg.sampling_rate / cfg.hop_length:  # (NaN too) say so,
            # rather than allocate gigabytes: a far too loud duration noise or a far too slow speaking rate
            raise RuntimeError(f"predicted speech of {most * cfg.hop_length / cfg.sampling_rate:.3g} s for {length} "
                             "tokens is too long (is --noise-scale-duration or --speaking-rate extreme?)")
        frame_lengths = torch.clamp_min(total, 1).long()
        n_frames = int(frame_lengths.max())
        y_mask = sequence_mask(frame_lengths, n_frames, dtype)  # [B, 1, T]

        # alignment path [B, T, L]: frame t belongs to token l when cum[l-1] <= t < cum[l]
        cum = torch.cumsum(durations, -1).view(b * length, 1)
        frames = torch.arange(n_frames, dtype=durations.dtype, device=device)
        before_end = (frames[None, :] < cum).to(dtype).view(b, length, n_frames)
        path = before_end - F.pad(before_end, [0, 0, 1, 0, 0, 0])[:, :-1]
        path = path.transpose(1, 2) * (x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)).squeeze(1)

        # prior per frame, sampled: transposed views of [B, T, C], as the noise layout depends on it
        means = torch.matmul(path, prior_means).transpose(1, 2)
        log_stds = torch.matmul(path, prior_log_stds).transpose(1, 2)
        noise = torch.zeros_like(means)
        if noise_scale:
            for i, (_, device_generator) in enumerate(generators):
                n = int(frame_lengths[i])
                item = torch.empty(1, n, cfg.flow_size, device=device, dtype=dtype).transpose(1, 2)
                noise[i, :, :n] = item.normal_(generator=device_generator)[0]
        z = means + noise * torch.exp(log_stds) * noise_scale

        z = self.flow.reverse(z, y_mask)
        frame_mask = y_mask if bool((frame_lengths < n_frames).any()) else None
        waveform = self.decoder(z * y_mask, frame_mask)
        return waveform, frame_lengths * cfg.hop_length


def noise_generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """What `torch.manual_seed(seed)` gives transformers: the CPU generator (duration noise is drawn there on
    every device) and the model device's generator (prior noise); on CPU both are the same generator."""
    cpu = torch.Generator().manual_seed(seed)
    if device.type == "cpu":
        return cpu, cpu
    return cpu, torch.Generator(device=device).manual_seed(seed)


def fold_weight_norm(g: torch.Tensor, v: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """weight = g * v / ||v|| (norm over every dim but `dim`), with torch's own kernel as transformers uses."""
    return torch._weight_norm(v.float(), g.float(), dim).to(v.dtype)
