"""VITS training (Kim et al. 2021, the jaywalnut310/vits code MMS-TTS was trained with): what the inference model
of mms/models/vits.py lacks, in plain PyTorch. Reads no file.

    VitsGenerator      VitsModel + the posterior encoder + the duration predictor's posterior flows, with VITS's
                       weight norms (WaveNets, HiFi-GAN upsamplers and residual blocks); parameter names are those
                       of transformers' VitsModel (`posterior_encoder.*`, `duration_predictor.post_*`, weight norms
                       as `parametrizations.weight.original0/1`). `forward_train`: ids + linear spectrogram ->
                       a random waveform segment and what the losses need.
    VitsDiscriminator  VITS's MultiPeriodDiscriminator: one DiscriminatorS (the multi-scale one, at scale 1) and
                       a DiscriminatorP for each period 2, 3, 5, 7, 11; the original parameter names.
    losses             kl_loss, mel_l1, discriminator_loss and generator_loss (least squares), feature_loss; the
                       duration loss is the stochastic duration predictor's NLL, computed in forward_train.
    maximum_path       monotonic alignment search (numba-compiled when numba is installed; numpy otherwise).
    spectrograms       linear and mel spectrograms as VITS's mel_processing.py (librosa's Slaney mel filters).

Deliberate differences from the original code, none of which changes a loss where the original defines it: the
duration noise and the segment starts are drawn on the model's device; a segment may run past a short utterance's
end (zero padding, masked out of the mel loss) where VITS would fail; the text encoder masks padded keys with the
dtype's minimum (as transformers) where VITS fills -1e4 for keys and queries (same outputs on real positions).
transformers' own training path differs from VITS in the duration flows: it flips after the first (affine) flow
too, which no longer matches the inference path that skips the second flow; here the forward flows are VITS's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from mms.models.vits import (ConvFlow, DilatedDepthSeparableConv, ElementwiseAffine, EncoderLayer, RelativeAttention,
                             ConvFeedForward, ResidualCouplingBlock, ResidualCouplingLayer, StochasticDurationPredictor,
                             VitsConfig, VitsModel, WaveNet, fold_weight_norm, sequence_mask, spline_bins)

try:  # optional: compiles the alignment search (pip install numba)
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

WN_G, WN_V = "parametrizations.weight.original0", "parametrizations.weight.original1"
LRELU_SLOPE = 0.1
LOG_2PI = math.log(2 * math.pi)


@dataclass
class SpectrogramConfig:
    """The data side of a voice (VITS's `data` section): STFT and mel settings. hop_length must be the generator's
    upsampling factor and filter_length // 2 + 1 its spectrogram_bins."""

    filter_length: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mel_channels: int = 80
    mel_fmin: float = 0.0
    mel_fmax: float | None = None  # None: half the sampling rate

    @classmethod
    def for_model(cls, cfg: VitsConfig, **values) -> "SpectrogramConfig":
        n_fft = 2 * (cfg.spectrogram_bins - 1)
        return cls(**{"filter_length": n_fft, "hop_length": cfg.hop_length, "win_length": n_fft, **values})

    def check(self, cfg: VitsConfig) -> None:
        if self.hop_length != cfg.hop_length:
            raise ValueError(f"hop_length {self.hop_length} is not the generator's upsampling factor {cfg.hop_length}")
        if self.filter_length // 2 + 1 != cfg.spectrogram_bins:
            raise ValueError(f"filter_length {self.filter_length} gives {self.filter_length // 2 + 1} spectrogram "
                             f"bins, the posterior encoder takes {cfg.spectrogram_bins}")
        if self.win_length > self.filter_length:
            raise ValueError(f"win_length {self.win_length} is longer than filter_length {self.filter_length}")


# ---------------------------------------------------------------------------------------------------------
# Spectrograms (VITS mel_processing.py)


def hz_to_mel(f):
    """Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sampling_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters, Slaney-normalised: librosa.filters.mel(sr, n_fft, n_mels,
    fmin, fmax) with its defaults (htk=False, norm="slaney"), which VITS uses."""
    fmax = sampling_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sampling_rate / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def linear_spectrogram(wave: torch.Tensor, settings: SpectrogramConfig) -> torch.Tensor:
    """[B, S] float32 waveform -> [B, n_fft // 2 + 1, S // hop] magnitudes (VITS spectrogram_torch: reflect padding
    of (n_fft - hop) / 2 on each side, no centring, sqrt(re^2 + im^2 + 1e-6))."""
    n_fft, hop = settings.filter_length, settings.hop_length
    pad = (n_fft - hop) // 2
    y = F.pad(wave.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(settings.win_length, device=wave.device)
    spec = torch.stft(y, n_fft, hop_length=hop, win_length=settings.win_length, window=window, center=False,
                      normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)


def spec_to_mel(spec: torch.Tensor, mel_basis: torch.Tensor) -> torch.Tensor:
    """Linear magnitudes [B, F, T] -> log mel [B, M, T] (VITS: log(clamp(mel, 1e-5)))."""
    return torch.log(torch.clamp(torch.matmul(mel_basis, spec.float()), min=1e-5))


def mel_spectrogram(wave: torch.Tensor, settings: SpectrogramConfig, mel_basis: torch.Tensor) -> torch.Tensor:
    return spec_to_mel(linear_spectrogram(wave, settings), mel_basis)


# ---------------------------------------------------------------------------------------------------------
# Monotonic alignment search (VITS monotonic_align/core.pyx)


def _maximum_path_loop(paths, values, t_ys, t_xs):
    """Per item i, in place: `values[i]` [T_y, T_x] float32 becomes the best cumulative score of a monotonic path
    ending at each cell, and `paths[i]` gets the 1s of the best path from (0, 0) to (t_y-1, t_x-1)."""
    max_neg_val = np.float32(-1e9)
    for i in range(paths.shape[0]):
        path, value, t_y, t_x = paths[i], values[i], t_ys[i], t_xs[i]
        for y in range(t_y):
            for x in range(max(0, t_x + y - t_y), min(t_x, y + 1)):
                if x == y:
                    v_cur = max_neg_val
                else:
                    v_cur = value[y - 1, x]
                if x == 0:
                    if y == 0:
                        v_prev = np.float32(0.0)
                    else:
                        v_prev = max_neg_val
                else:
                    v_prev = value[y - 1, x - 1]
                value[y, x] += max(v_prev, v_cur)
        index = t_x - 1
        for y in range(t_y - 1, -1, -1):
            path[y, index] = 1
            if index != 0 and (index == y or value[y - 1, index] < value[y - 1, index - 1]):
                index = index - 1


_maximum_path_numba = numba.njit(cache=True, nogil=True)(_maximum_path_loop) if numba is not None else None


def _maximum_path_numpy(paths: np.ndarray, values: np.ndarray, t_ys: np.ndarray, t_xs: np.ndarray) -> None:
    """The same recurrence, one frame (row) at a time with numpy float32 arithmetic (each row depends only on
    the one before)."""
    neg = np.float32(-1e9)
    for i in range(paths.shape[0]):
        value, t_y, t_x = values[i], int(t_ys[i]), int(t_xs[i])
        for y in range(t_y):
            lo, hi = max(0, t_x + y - t_y), min(t_x, y + 1)
            if lo >= hi:
                continue
            xs = np.arange(lo, hi)
            if y == 0:
                v_cur = np.full(xs.size, neg, dtype=np.float32)
                v_prev = np.where(xs == 0, np.float32(0.0), neg).astype(np.float32)
            else:
                v_cur = np.where(xs == y, neg, value[y - 1, xs]).astype(np.float32)
                v_prev = np.where(xs == 0, neg, value[y - 1, np.maximum(xs - 1, 0)]).astype(np.float32)
            value[y, lo:hi] += np.maximum(v_prev, v_cur)
        index = t_x - 1
        for y in range(t_y - 1, -1, -1):
            paths[i, y, index] = 1
            if index != 0 and (index == y or value[y - 1, index] < value[y - 1, index - 1]):
                index -= 1


def maximum_path(scores: torch.Tensor, mask: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Monotonic alignment search: scores [B, T_y, T_x] (frames x tokens), mask [B, T_y, T_x] (1 on each item's
    valid frames x tokens) -> the 0/1 path [B, T_y, T_x] that maximises the summed score over monotonic alignments
    where every token gets at least one frame (frames >= tokens). VITS's maximum_path: float32 arithmetic, ties
    keep the token. backend: "auto" (numba when installed), "numba" or "numpy"."""
    if backend == "auto":
        backend = "numba" if numba is not None else "numpy"
    values = scores.detach().float().cpu().numpy().copy()
    paths = np.zeros(values.shape, dtype=np.int32)
    mask = mask.detach().cpu()
    t_ys = mask.sum(1)[:, 0].numpy().astype(np.int32)
    t_xs = mask.sum(2)[:, 0].numpy().astype(np.int32)
    if np.any(t_ys < t_xs):
        raise ValueError("monotonic alignment needs at least as many frames as tokens")
    if backend == "numba":
        if _maximum_path_numba is None:
            raise RuntimeError("backend 'numba' needs numba (pip install numba)")
        _maximum_path_numba(paths, values, t_ys, t_xs)
    elif backend == "numpy":
        _maximum_path_numpy(paths, values, t_ys, t_xs)
    else:
        raise ValueError(f"unknown backend {backend!r} (auto, numba or numpy)")
    return torch.from_numpy(paths).to(device=scores.device, dtype=scores.dtype)


def alignment_scores(z_p: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor) -> torch.Tensor:
    """log N(z_p[:, :, t]; m_p[:, :, l], exp(logs_p[:, :, l])) summed over channels -> [B, T_y, T_x], in float32
    (VITS's neg_cent, expanded in four terms)."""
    z_p, m_p, logs_p = z_p.float(), m_p.float(), logs_p.float()
    s_p_sq_r = torch.exp(-2 * logs_p)
    neg_cent1 = torch.sum(-0.5 * LOG_2PI - logs_p, [1], keepdim=True)
    neg_cent2 = torch.matmul(-0.5 * (z_p ** 2).transpose(1, 2), s_p_sq_r)
    neg_cent3 = torch.matmul(z_p.transpose(1, 2), m_p * s_p_sq_r)
    neg_cent4 = torch.sum(-0.5 * (m_p ** 2) * s_p_sq_r, [1], keepdim=True)
    return neg_cent1 + neg_cent2 + neg_cent3 + neg_cent4


# ---------------------------------------------------------------------------------------------------------
# Flows in the forward (training) direction; vits.py has the reverse ones


def spline_forward(x, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tail_bound,
                   min_width=1e-3, min_height=1e-3, min_derivative=1e-3):
    """Monotonic rational-quadratic spline on [-B, B], identity outside (linear tails) -> (y, log |dy/dx|): the
    forward of vits.spline_inverse (VITS transforms.py, inverse=False)."""
    outputs = torch.zeros_like(x)
    logabsdet = torch.zeros_like(x)
    inside, found = spline_bins(x, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tail_bound,
                                min_width, min_height, min_derivative, search="width")
    outputs[~inside] = x[~inside]
    if found is None:
        return outputs, logabsdet
    xin, cw, w, ch, h, delta, d_k, d_k1 = found

    theta = (xin - cw) / w
    theta_one_minus_theta = theta * (1 - theta)
    numerator = h * (delta * theta.pow(2) + d_k * theta_one_minus_theta)
    denominator = delta + (d_k + d_k1 - 2 * delta) * theta_one_minus_theta
    outputs[inside] = ch + numerator / denominator
    derivative_numerator = delta.pow(2) * (d_k1 * theta.pow(2) + 2 * delta * theta_one_minus_theta
                                           + d_k * (1 - theta).pow(2))
    logabsdet[inside] = torch.log(derivative_numerator) - 2 * torch.log(denominator)
    return outputs, logabsdet


def affine_forward(flow: ElementwiseAffine, z: torch.Tensor, mask: torch.Tensor):
    z = (flow.translate + torch.exp(flow.log_scale) * z) * mask
    return z, torch.sum(flow.log_scale * mask, [1, 2])


def convflow_forward(flow: ConvFlow, z: torch.Tensor, mask: torch.Tensor, condition: torch.Tensor):
    z0, z1 = torch.split(z, [flow.half, flow.half], dim=1)
    h = flow.conv_dds(flow.conv_pre(z0), mask, condition)
    h = flow.conv_proj(h) * mask
    b, c, length = z0.shape
    h = h.reshape(b, c, -1, length).permute(0, 1, 3, 2)
    widths = h[..., :flow.bins] / math.sqrt(flow.channels)
    heights = h[..., flow.bins:2 * flow.bins] / math.sqrt(flow.channels)
    z1, logabsdet = spline_forward(z1, widths, heights, h[..., 2 * flow.bins:], flow.tail_bound)
    return torch.cat([z0, z1], dim=1) * mask, torch.sum(logabsdet * mask, [1, 2])


def coupling_forward(layer: ResidualCouplingLayer, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean-only affine coupling: z1 + mean(z0) (the inverse of ResidualCouplingLayer.reverse)."""
    z0, z1 = torch.split(z, [layer.half, layer.half], dim=1)
    h = layer.wavenet(layer.conv_pre(z0) * mask, mask)
    mean = layer.conv_post(h) * mask
    return torch.cat([z0, mean + z1 * mask], dim=1)


def flow_forward(block: ResidualCouplingBlock, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Posterior latents -> the prior's space: each coupling, then a channel flip (VITS's [coupling, Flip] * n)."""
    for layer in block.flows:
        z = torch.flip(coupling_forward(layer, z, mask), [1])
    return z


# ---------------------------------------------------------------------------------------------------------
# The generator's training-only parts


class PosteriorEncoder(nn.Module):
    """Linear spectrogram -> posterior latents z ~ N(m, exp(logs)) (a WaveNet of 16 layers in VITS)."""

    def __init__(self, cfg: VitsConfig):
        super().__init__()
        self.flow_size = cfg.flow_size
        self.conv_pre = nn.Conv1d(cfg.spectrogram_bins, cfg.hidden_size, 1)
        self.wavenet = WaveNet(cfg, cfg.posterior_encoder_num_wavenet_layers)
        self.conv_proj = nn.Conv1d(cfg.hidden_size, 2 * cfg.flow_size, 1)

    def forward(self, spec: torch.Tensor, mask: torch.Tensor, sample: bool = True):
        """spec [B, F, T], mask [B, 1, T] -> (z, m, logs), each [B, C, T]; sample=False: z = m."""
        x = self.conv_pre(spec) * mask
        x = self.wavenet(x, mask)
        stats = self.conv_proj(x) * mask
        m, logs = torch.split(stats, self.flow_size, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * mask if sample else m * mask
        return z, m, logs


class TrainableDurationPredictor(StochasticDurationPredictor):
    """The stochastic duration predictor with its posterior flows (`post_*`, used only for the training loss)."""

    def __init__(self, cfg: VitsConfig):
        super().__init__(cfg)
        c = cfg.hidden_size
        self.post_conv_pre = nn.Conv1d(1, c, 1)
        self.post_conv_proj = nn.Conv1d(c, c, 1)
        self.post_conv_dds = DilatedDepthSeparableConv(cfg)
        self.post_flows = nn.ModuleList([ElementwiseAffine(cfg)]
                                        + [ConvFlow(cfg) for _ in range(cfg.duration_predictor_num_flows)])

    def nll(self, hidden: torch.Tensor, mask: torch.Tensor, durations: torch.Tensor,
            noise: torch.Tensor) -> torch.Tensor:
        """-log p(durations | text) per item [B] (a variational bound, VITS's StochasticDurationPredictor forward):
        hidden [B, D, L] (detached: the duration loss does not train the text encoder), durations [B, 1, L]
        (frames per token, from the alignment), noise [B, 2, L] standard normal."""
        x = self.conv_pre(hidden.detach())
        x = self.conv_dds(x, mask)
        x = self.conv_proj(x) * mask

        h_w = self.post_conv_pre(durations)
        h_w = self.post_conv_dds(h_w, mask)
        h_w = self.post_conv_proj(h_w) * mask
        e_q = noise * mask
        z_q, logdet_q = affine_forward(self.post_flows[0], e_q, mask)
        for flow in self.post_flows[1:]:
            z_q, logdet = convflow_forward(flow, z_q, mask, x + h_w)
            z_q = torch.flip(z_q, [1])
            logdet_q = logdet_q + logdet
        z_u, z1 = torch.split(z_q, [1, 1], dim=1)
        u = torch.sigmoid(z_u) * mask
        z0 = (durations - u) * mask
        logdet_q = logdet_q + torch.sum((F.logsigmoid(z_u) + F.logsigmoid(-z_u)) * mask, [1, 2])
        log_q = torch.sum(-0.5 * (LOG_2PI + e_q ** 2) * mask, [1, 2]) - logdet_q

        z0 = torch.log(torch.clamp_min(z0, 1e-5)) * mask
        logdet_total = torch.sum(-z0, [1, 2])
        z, logdet = affine_forward(self.flows[0], torch.cat([z0, z1], dim=1), mask)
        logdet_total = logdet_total + logdet
        for flow in self.flows[1:]:
            z, logdet = convflow_forward(flow, z, mask, x)
            z = torch.flip(z, [1])
            logdet_total = logdet_total + logdet
        nll = torch.sum(0.5 * (LOG_2PI + z ** 2) * mask, [1, 2]) - logdet_total
        return nll + log_q


def weight_normed(name: str) -> bool:
    """The modules VITS trains with a weight norm (over dim 0): every WaveNet conv (prior flows and posterior
    encoder) and the HiFi-GAN upsamplers and residual-block convs (not conv_pre / conv_post)."""
    parts = name.split(".")
    if "wavenet" in parts and parts[-2] in ("in_layers", "res_skip_layers"):
        return True
    return name.startswith("decoder.upsampler.") or (name.startswith("decoder.resblocks.")
                                                    and parts[-2] in ("convs1", "convs2"))


@dataclass
class TrainOutput:
    wave: torch.Tensor  # [B, segment * hop] generated segment
    starts: torch.Tensor  # [B] first frame of each segment
    loss_duration: torch.Tensor  # scalar: summed NLL / number of tokens (VITS l_length)
    z_p: torch.Tensor  # [B, C, T] posterior latents in the prior's space
    logs_q: torch.Tensor  # [B, C, T]
    m_p: torch.Tensor  # [B, C, T] prior means expanded by the alignment
    logs_p: torch.Tensor  # [B, C, T]
    frame_mask: torch.Tensor  # [B, 1, T]
    alignment: torch.Tensor  # [B, T, L] 0/1


class VitsGenerator(VitsModel):
    """VitsModel plus what training needs; `forward` is still the inference path (vits.VitsModel.forward)."""

    def __init__(self, cfg: VitsConfig):
        super().__init__(cfg)
        self.duration_predictor = TrainableDurationPredictor(cfg)
        self.posterior_encoder = PosteriorEncoder(cfg)
        for name, module in list(self.named_modules()):
            if weight_normed(name):
                weight_norm(module, name="weight", dim=0)

    def set_dropout(self, text: float = 0.1, duration: float = 0.5) -> None:
        """VITS's rates: p_dropout 0.1 in the text encoder (attention probabilities, FFN activation, each
        sub-layer's output) and 0.5 in the duration predictor's two DDS stacks (not in its flows)."""
        for module in self.text_encoder.modules():
            if isinstance(module, (RelativeAttention, ConvFeedForward, EncoderLayer)):
                module.dropout = text
        self.duration_predictor.conv_dds.dropout = duration
        self.duration_predictor.post_conv_dds.dropout = duration

    def forward_train(self, ids: torch.Tensor, id_lengths: torch.Tensor, spec: torch.Tensor,
                      spec_lengths: torch.Tensor, segment_frames: int) -> TrainOutput:
        """VITS SynthesizerTrn.forward: ids [B, L] right padded, spec [B, F, T] linear spectrogram."""
        b, length = ids.shape
        dtype = self.text_encoder.embed_tokens.weight.dtype
        x_mask = sequence_mask(id_lengths, length, dtype)
        hidden, m_p, logs_p = self.text_encoder(ids, x_mask, bool((id_lengths < length).any()))
        m_p, logs_p = m_p.transpose(1, 2), logs_p.transpose(1, 2)  # [B, C, L]
        y_mask = sequence_mask(spec_lengths, spec.shape[2], dtype)
        z, _, logs_q = self.posterior_encoder(spec, y_mask)
        z_p = flow_forward(self.flow, z, y_mask)

        with torch.no_grad(), torch.autocast(ids.device.type, enabled=False):
            attn_mask = x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)  # [B, 1, T, L]
            attn = maximum_path(alignment_scores(z_p, m_p, logs_p), attn_mask.squeeze(1))
        durations = attn.sum(1, keepdim=True)  # [B, 1, L] frames per token
        noise = torch.randn(b, 2, length, device=ids.device)
        with torch.autocast(ids.device.type, enabled=False):  # the spline flows want float32
            nll = self.duration_predictor.nll(hidden.transpose(1, 2).float(), x_mask.float(), durations.float(), noise)
        loss_duration = torch.sum(nll / torch.sum(x_mask.float()))

        m_p = torch.matmul(attn.to(m_p.dtype), m_p.transpose(1, 2)).transpose(1, 2)  # [B, C, T]
        logs_p = torch.matmul(attn.to(logs_p.dtype), logs_p.transpose(1, 2)).transpose(1, 2)
        z_slice, starts = random_segments(z, spec_lengths, segment_frames)
        wave = self.decoder(z_slice, None)
        return TrainOutput(wave, starts, loss_duration, z_p, logs_q, m_p, logs_p, y_mask, attn)

    @torch.no_grad()
    def synthesize_aligned(self, ids: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """One item (ids [1, L], spec [1, F, T]) -> waveform [1, T * hop] spoken from the text with the durations
        of its alignment to the recording and the prior means (no noise): for a dev loss that needs no random
        number and compares frame by frame."""
        x_mask = torch.ones(1, 1, ids.shape[1], device=ids.device)
        y_mask = torch.ones(1, 1, spec.shape[2], device=ids.device)
        _, m_p, logs_p = self.text_encoder(ids, x_mask, False)
        m_p, logs_p = m_p.transpose(1, 2), logs_p.transpose(1, 2)
        z, _, _ = self.posterior_encoder(spec, y_mask, sample=False)
        attn = maximum_path(alignment_scores(flow_forward(self.flow, z, y_mask), m_p, logs_p),
                            (x_mask.unsqueeze(2) * y_mask.unsqueeze(-1)).squeeze(1))
        prior = torch.matmul(attn.to(m_p.dtype), m_p.transpose(1, 2)).transpose(1, 2)
        return self.decoder(self.flow.reverse(prior, y_mask), None)


def random_segments(x: torch.Tensor, lengths: torch.Tensor, segment: int) -> tuple[torch.Tensor, torch.Tensor]:
    """VITS rand_slice_segments: a random window of `segment` frames within each item's length ([B, C, T] ->
    [B, C, segment], starts [B]); an item shorter than the window starts at 0 and is zero-padded."""
    span = (lengths - segment + 1).clamp_min(1)
    starts = (torch.rand(x.shape[0], device=x.device) * span).long()
    return slice_segments(x, starts, segment), starts


def slice_segments(x: torch.Tensor, starts: torch.Tensor, segment: int) -> torch.Tensor:
    """[B, C, T] -> [B, C, segment] from each item's start (zero beyond T)."""
    need = int(starts.max()) + segment
    if need > x.shape[-1]:
        x = F.pad(x, [0, need - x.shape[-1]])
    return torch.stack([x[i, :, s:s + segment] for i, s in enumerate(starts.tolist())])


def init_weights(model: VitsGenerator) -> None:
    """From-scratch initialisation as VITS's constructors do it where it differs from PyTorch's defaults: token
    embeddings N(0, hidden^-0.5); attention q/k/v Xavier-uniform; relative position tables N(0, head_dim^-0.5);
    the prior couplings' and spline flows' output convs zero (every flow starts as the identity). (VITS's
    N(0, 0.01) for the HiFi-GAN convs is applied after weight_norm and thus overwritten at the first forward:
    their effective initialisation is PyTorch's default, kept here.)"""
    cfg = model.cfg
    with torch.no_grad():
        nn.init.normal_(model.text_encoder.embed_tokens.weight, 0.0, cfg.hidden_size ** -0.5)
        for module in model.modules():
            if isinstance(module, RelativeAttention):
                for proj in (module.q_proj, module.k_proj, module.v_proj):
                    nn.init.xavier_uniform_(proj.weight)
                nn.init.normal_(module.emb_rel_k, 0.0, module.head_dim ** -0.5)
                nn.init.normal_(module.emb_rel_v, 0.0, module.head_dim ** -0.5)
            elif isinstance(module, ResidualCouplingLayer):
                module.conv_post.weight.zero_()
                module.conv_post.bias.zero_()
            elif isinstance(module, ConvFlow):
                module.conv_proj.weight.zero_()
                module.conv_proj.bias.zero_()


def norm_except_dim0(weight: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(weight.float(), dim=tuple(range(1, weight.dim())), keepdim=True).to(weight.dtype)


def convert_weight_norms(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[dict, list[str], list[str]]:
    """Canonical weights -> the model's own state-dict form: a weight norm given as weight_g/weight_v or
    parametrizations.weight.original0/1 loads as g/v where the model has one and is folded where it has none;
    a plain weight where the model has a weight norm becomes g = |weight|, v = weight. Returns (state, missing
    names, unused names)."""
    source = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + WN_G
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + WN_V
        source[key] = value
    out, used = {}, set()
    for key in model.state_dict():
        if key in source:
            out[key] = source[key]
            used.add(key)
        elif key.endswith((WN_G, WN_V)):
            base = key[: -len(WN_G)]
            if base + "weight" in source:
                weight = source[base + "weight"]
                out[key] = norm_except_dim0(weight) if key.endswith(WN_G) else weight
                used.add(base + "weight")
        elif key.endswith(".weight") and key[: -len("weight")] + WN_G in source:
            base = key[: -len("weight")]
            if base + WN_V in source:
                out[key] = fold_weight_norm(source[base + WN_G], source[base + WN_V], dim=0)
                used.update((base + WN_G, base + WN_V))
    missing = [k for k in model.state_dict() if k not in out]
    return out, missing, sorted(set(source) - used)


def folded_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights with every weight norm folded into a plain `weight` (as inference loads them)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith(WN_V):
            continue
        if key.endswith(WN_G):
            base = key[: -len(WN_G)]
            out[base + "weight"] = fold_weight_norm(value, model.state_dict()[base + WN_V], dim=0)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------------
# Discriminators (VITS models.py: MultiPeriodDiscriminator = DiscriminatorS + DiscriminatorP per period)


def _padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size * dilation - dilation) // 2


def _channels(channels: tuple[int, ...], width: float) -> list[int]:
    return [max(1, int(round(c * width))) for c in channels]


class DiscriminatorP(nn.Module):
    """The waveform folded into `period` columns, 2-D convs (5, 1) with stride 3 down the columns."""

    CHANNELS = (32, 128, 512, 1024, 1024)

    def __init__(self, period: int, width: float = 1.0, kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        chans = [1] + _channels(self.CHANNELS, width)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (kernel_size, 1), (stride if i < len(chans) - 2 else 1, 1),
                                  padding=(_padding(kernel_size), 0)))
            for i in range(len(chans) - 1))
        self.conv_post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        fmap = []
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        x = x.view(b, c, t // self.period, self.period)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class DiscriminatorS(nn.Module):
    """Strided grouped 1-D convs on the raw waveform (MelGAN's scale discriminator, at scale 1)."""

    CHANNELS = (16, 64, 256, 1024, 1024, 1024)
    KERNELS = (15, 41, 41, 41, 41, 5)
    STRIDES = (1, 4, 4, 4, 4, 1)
    GROUPS = (1, 4, 16, 64, 256, 1)

    def __init__(self, width: float = 1.0):
        super().__init__()
        chans = [1] + _channels(self.CHANNELS, width)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(chans[i], chans[i + 1], k, s, groups=math.gcd(g, chans[i], chans[i + 1]),
                                  padding=_padding(k)))
            for i, (k, s, g) in enumerate(zip(self.KERNELS, self.STRIDES, self.GROUPS)))
        self.conv_post = weight_norm(nn.Conv1d(chans[-1], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor):
        fmap = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class VitsDiscriminator(nn.Module):
    """discriminators.0 = DiscriminatorS, discriminators.1.. = DiscriminatorP(2, 3, 5, 7, 11): VITS's names, so an
    original D_*.pth loads with only its weight-norm spelling changed. `width` scales every channel count (1.0:
    VITS's 47M weights; small models for tests and demos use less)."""

    PERIODS = (2, 3, 5, 7, 11)

    def __init__(self, width: float = 1.0, periods: tuple[int, ...] = PERIODS):
        super().__init__()
        self.width = width
        self.discriminators = nn.ModuleList([DiscriminatorS(width)] + [DiscriminatorP(p, width) for p in periods])

    def forward(self, wave: torch.Tensor):
        """[B, 1, S] -> (scores per discriminator [B, N_i], feature maps per discriminator)."""
        scores, fmaps = [], []
        for d in self.discriminators:
            score, fmap = d(wave)
            scores.append(score)
            fmaps.append(fmap)
        return scores, fmaps


def discriminator_width(state: dict[str, torch.Tensor]) -> float:
    """The `width` of a VITS discriminator state dict (its first period conv has 32 * width channels)."""
    for key, value in state.items():
        if key.startswith("discriminators.1.convs.0.") and key.endswith(("weight_v", WN_V, ".weight")):
            return value.shape[0] / DiscriminatorP.CHANNELS[0]
    raise KeyError("discriminators.1.convs.0 weight")


# ---------------------------------------------------------------------------------------------------------
# Losses (VITS losses.py), in float32


def kl_loss(z_p, logs_q, m_p, logs_p, mask) -> torch.Tensor:
    """KL between the posterior (sampled z_p, log-std logs_q) and the prior N(m_p, exp(logs_p)), per frame and
    channel, averaged over the valid frames: sum(logs_p - logs_q - 1/2 + (z_p - m_p)^2 / (2 exp(2 logs_p))) /
    sum(mask)."""
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5
    kl = kl + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)


def mel_l1(target: torch.Tensor, generated: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference of log-mel spectrograms [B, M, T] over the valid frames (frame_mask [B, 1, T];
    None or all ones: F.l1_loss, as VITS)."""
    diff = (target.float() - generated.float()).abs()
    if frame_mask is None:
        return diff.mean()
    frame_mask = frame_mask.float()
    return torch.sum(diff * frame_mask) / (torch.sum(frame_mask) * diff.shape[1])


def discriminator_loss(real_scores, fake_scores) -> torch.Tensor:
    """Least squares: sum over discriminators of mean((1 - D(y))^2) + mean(D(G(z))^2)."""
    loss = 0.0
    for real, fake in zip(real_scores, fake_scores):
        loss = loss + torch.mean((1 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
    return loss


def generator_loss(fake_scores) -> torch.Tensor:
    """Least squares: sum over discriminators of mean((1 - D(G(z)))^2)."""
    loss = 0.0
    for fake in fake_scores:
        loss = loss + torch.mean((1 - fake.float()) ** 2)
    return loss


def feature_loss(real_fmaps, fake_fmaps) -> torch.Tensor:
    """Feature matching: 2 * sum over every discriminator layer of mean |D_l(y) - D_l(G(z))| (real maps detached)."""
    loss = 0.0
    for real_maps, fake_maps in zip(real_fmaps, fake_fmaps):
        for real, fake in zip(real_maps, fake_maps):
            loss = loss + torch.mean(torch.abs(real.float().detach() - fake.float()))
    return loss * 2
