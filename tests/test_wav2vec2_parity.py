"""Numerical parity of mms/models/wav2vec2.py (+ loaders) with transformers' Wav2Vec2ForCTC and fairseq's formulas.

Tolerance: max abs logit difference 1e-4 in float32 over the valid frames of a padded batch."""

import pytest
import torch
from torch import nn
import transformers

from mms.checkpoints import instantiate, load_checkpoint
from mms.checkpoints.fairseq import parse_conv_layers
from tests import fairseq_reference
from tests.conftest import LANGS, random_audio
from tests.factory import _FakeFairseq, mms1b_config, random_model, tiny_config, write_fairseq, write_hf

TOL = 1e-4
LENGTHS = [16000, 11111, 6999]


def padded_batch(lengths=LENGTHS):
    batch = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        wave = torch.from_numpy(random_audio(n, seed=i))
        batch[i, :n] = (wave - wave.mean()) / (wave.var(unbiased=False) + 1e-7).sqrt()
    return batch, torch.tensor(lengths)


def ours(path, lang=None):
    ckpt = load_checkpoint(path)
    model = instantiate(ckpt)
    if lang is not None and lang != ckpt.lang:
        model.load_adapter(ckpt.adapters.load(lang)[0])
    return model


def hf_logits(path, batch, lengths, lang=None, attn="sdpa"):
    model = transformers.Wav2Vec2ForCTC.from_pretrained(path, attn_implementation=attn).eval()
    if lang is not None:
        model.load_adapter(lang)
    mask = (torch.arange(batch.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        return model(batch, attention_mask=mask).logits


def fairseq_overlay(path, lang):
    """fairseq infer.py's view of a language: the base tensors with ckpt["adapter"][lang]["model"] on top."""
    with _FakeFairseq():  # our own test file: trusted, read with plain pickle and stand-in classes
        saved = torch.load(path, weights_only=False)
    return {**saved["model"], **saved["adapter"][lang]["model"]}


def max_diff_valid(a, b, frame_lengths):
    return max((a[i, :n] - b[i, :n]).abs().max().item() for i, n in enumerate(frame_lengths.tolist()))


@pytest.mark.parametrize("lang", ["eng", "fra"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_tiny_matches_transformers(hf_dir, lang, attn):
    batch, lengths = padded_batch()
    with torch.no_grad():
        logits, frame_lengths = ours(hf_dir, lang)(batch, lengths)
    reference = hf_logits(hf_dir, batch, lengths, lang, attn)
    assert logits.shape == reference.shape and logits.shape[-1] == LANGS[lang]
    assert max_diff_valid(logits, reference, frame_lengths) <= TOL


@pytest.mark.parametrize("weight_norm,weights", [("parametrizations", "safetensors"), ("legacy", "bin")])
def test_weight_norm_spellings_and_bin_files(tiny, tmp_path, weight_norm, weights):
    path = write_hf(tiny, tmp_path / "m", weight_norm=weight_norm, weights=weights, adapter_format="bin")
    batch, lengths = padded_batch()
    with torch.no_grad():
        logits, frame_lengths = ours(path, "fra")(batch, lengths)
    assert max_diff_valid(logits, hf_logits(path, batch, lengths, "fra"), frame_lengths) <= TOL


def test_post_ln_group_norm_no_bias_matches_transformers(tmp_path):
    """wav2vec2-base layout: GroupNorm on the first conv, no conv bias, post-LN encoder, no adapters."""
    cfg = tiny_config(feat_extract_norm="group", conv_bias=False, do_stable_layer_norm=False, adapter_attn_dim=None)
    model = random_model(cfg, {"eng": 10}, seed=3)
    path = write_hf(model, tmp_path / "base")
    batch, lengths = padded_batch()
    with torch.no_grad():
        logits, frame_lengths = ours(path)(batch, lengths)
    assert max_diff_valid(logits, hf_logits(path, batch, lengths), frame_lengths) <= TOL


def test_mms1b_layer_shapes_match_transformers(tmp_path):
    """The real MMS-1B layer: hidden 1280, 16 heads, FFN 5120, adapter 16, conv 512 (2 layers)."""
    model = random_model(mms1b_config(layers=2), {"eng": 40, "fra": 33}, seed=5)
    path = write_hf(model, tmp_path / "mms1b")
    batch, lengths = padded_batch([24000, 17000])
    with torch.no_grad():
        logits, frame_lengths = ours(path, "fra")(batch, lengths)
    reference = hf_logits(path, batch, lengths, "fra")
    assert max_diff_valid(logits, reference, frame_lengths) <= TOL
    # and against the fairseq formulas, from the fairseq-named tensors of the same weights
    fairseq_pt = write_fairseq(model, tmp_path / "mms1b.pt")
    with torch.no_grad():
        ref = fairseq_reference.forward(fairseq_overlay(fairseq_pt, "fra"), batch, lengths, parse_conv_layers(
            "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512,2,2)] + [(512,2,2)]"), heads=16, layer_norm_first=True)
        ours_fairseq, _ = ours(fairseq_pt, "fra")(batch, lengths)
    assert max_diff_valid(ours_fairseq, ref, frame_lengths) <= TOL


@pytest.mark.parametrize("cfg_kind", ["dict", "dictconfig", "namespace"])
def test_fairseq_checkpoint_matches_fairseq_formulas(tiny, tmp_path, cfg_kind):
    path = write_fairseq(tiny, tmp_path / "m.pt", cfg_kind=cfg_kind)
    batch, lengths = padded_batch()
    for lang in ("eng", "fra"):
        state = fairseq_overlay(path, lang)
        cfg = tiny.cfg
        with torch.no_grad():
            ref = fairseq_reference.forward(state, batch, lengths, list(zip(cfg.conv_dim, cfg.conv_kernel,
                                            cfg.conv_stride)), heads=4, layer_norm_first=True, pos_groups=4)
            logits, frame_lengths = ours(path, lang)(batch, lengths)
        assert logits.shape[-1] == LANGS[lang]
        assert max_diff_valid(logits, ref, frame_lengths) <= TOL
        # padded frames: fairseq forces blank there; we report frame_lengths instead
        assert frame_lengths.tolist() == [(~torch.isinf(ref[i, :, 1])).sum().item() for i in range(len(LENGTHS))]


def test_fairseq_and_hf_files_of_one_model_give_the_same_logits(hf_dir, fairseq_pt):
    batch, lengths = padded_batch()
    with torch.no_grad():
        a, frame_lengths = ours(hf_dir, "fra")(batch, lengths)
        b, _ = ours(fairseq_pt, "fra")(batch, lengths)
    assert max_diff_valid(a, b, frame_lengths) <= 1e-5


def test_batched_equals_one_by_one(hf_dir):
    model = ours(hf_dir, "eng")
    batch, lengths = padded_batch()
    with torch.no_grad():
        logits, frame_lengths = model(batch, lengths)
        for i, n in enumerate(LENGTHS):
            single, _ = model(batch[i:i + 1, :n])
            assert (single[0] - logits[i, :frame_lengths[i]]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("kernel", [128, 65])
def test_positional_conv_by_fft_equals_the_direct_conv(kernel):
    """On the CPU in inference a long positional kernel runs by FFT (overlap-save blocks of 2k frames): against the
    direct convolution in float64, for lengths inside one block, at block edges and over several blocks, even and
    odd kernels; the cached weight spectrum follows in-place changes of the weights."""
    import copy

    from mms.models.wav2vec2 import PositionalConvEmbedding

    torch.manual_seed(0)
    pos = PositionalConvEmbedding(mms1b_config(hidden_size=256, num_conv_pos_embeddings=kernel,
                                               num_conv_pos_embedding_groups=8))
    exact = copy.deepcopy(pos).double()  # with gradients on it takes the direct conv
    for frames in (1, kernel - 1, kernel + 1, kernel + 2, 5 * kernel + 3):
        x = torch.randn(2, frames, 256)
        with torch.no_grad():
            got = pos(x)
        assert got.shape == (2, frames, 256) and got.dtype == torch.float32
        assert (got.double() - exact(x.double())).abs().max().item() <= 1e-5, frames
    with torch.no_grad():
        pos.conv.weight.mul_(-0.5)
        exact.conv.weight.mul_(-0.5)
        x = torch.randn(1, 300, 256)
        got = pos(x)
    assert (got.double() - exact(x.double())).abs().max().item() <= 1e-5
    bf16 = copy.deepcopy(pos).to(torch.bfloat16)  # a bfloat16 model: the FFT of its weights, in float32
    with torch.no_grad():
        got = bf16(x.bfloat16())
    assert (got.double() - exact(x.bfloat16().double())).abs().max().item() <= 0.05


def test_cached_conv_kernels_follow_the_weights():
    """In inference the feature encoder's kernels are kept laid out for its products (made once per weights): the
    output equals the training path's (oneDNN's conv on plain views of the weights) to rounding, also after the
    weights change in place and after a change of dtype (a stale kernel would be off by the whole change)."""
    from mms.models.wav2vec2 import FeatureEncoder

    torch.manual_seed(0)
    encoder = FeatureEncoder(tiny_config(conv_dim=(24,) * 7))
    wave = torch.randn(2, 8000)
    for step in range(3):
        with torch.no_grad():
            cached = encoder(wave)
        direct = encoder(wave).detach()  # gradients on: the kernels as views of the weights
        assert (cached - direct).abs().max().item() <= 1e-5 * direct.abs().max().item(), step
        with torch.no_grad():
            for layer in encoder.conv_layers:
                layer.conv.weight.mul_(-0.7)
    changed = encoder(wave).detach()
    assert not torch.allclose(changed, cached)
    encoder.to(torch.bfloat16)
    with torch.no_grad():
        cached = encoder(wave.bfloat16()).float()
    direct = encoder(wave.bfloat16()).detach().float()
    assert (cached - direct).abs().max().item() <= 0.05 * direct.abs().max().item()


@pytest.mark.parametrize("kernel,stride,bias", [(3, 2, True), (2, 2, True), (3, 2, False), (4, 2, True), (5, 3, False)])
def test_conv_as_products_equals_the_convolution(kernel, stride, bias):
    """The feature encoder's strided convolutions as products over frames laid side by side (time-major, no copy
    of the input) give conv1d's frames, for every length from one frame to a few, batched, with and without bias."""
    from mms.models.layout import conv_as_products

    torch.manual_seed(kernel)
    conv = nn.Conv1d(6, 5, kernel, stride=stride, bias=bias).double()
    for frames in range(kernel, kernel + 3 * stride + 2):
        x = torch.randn(2, frames, 6, dtype=torch.float64)
        with torch.no_grad():
            got = conv_as_products(conv, x)
            want = conv(x.transpose(1, 2)).transpose(1, 2)
        assert got.shape == want.shape, frames
        assert (got - want).abs().max().item() <= 1e-12, frames
    with pytest.raises(ValueError, match="fewer than the kernel"):
        conv_as_products(conv, torch.randn(1, kernel - 1, 6, dtype=torch.float64))


def test_the_feature_encoder_runs_under_autocast_in_inference():
    """A trainer's dev pass: float32 weights, bfloat16 autocast, no gradients (the products' in-place step is not
    autocast: it met a bfloat16 output and a float32 weight)."""
    from mms.models.wav2vec2 import FeatureEncoder

    torch.manual_seed(0)
    encoder = FeatureEncoder(tiny_config(conv_dim=(24,) * 7))
    wave = torch.randn(2, 8000)
    with torch.no_grad():
        exact = encoder(wave)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = encoder(wave).float()
    assert (mixed - exact).abs().max().item() <= 0.05 * exact.abs().max().item()
