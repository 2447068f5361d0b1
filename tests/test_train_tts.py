"""mms train-tts: VITS training (mms/models/vits_train.py, mms/train/tts.py) on tiny voices.

Every loss against a hand-computed value, the spline flows against their inverses and autograd, monotonic
alignment search against a brute-force search over all monotonic alignments, the mel filters against
transformers' (librosa's) Slaney filters; then a few steps on a tiny set of espeak-ng sentences (tones where
espeak-ng is missing) lower the mel loss, an interrupted run resumes bit-identically, and the exported voice gives
the same waveform through `mms tts` (both layouts) and transformers' VitsModel.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from mms.models import vits_train as vt
from mms.models.vits import VitsConfig, spline_inverse
from mms.train.data import TrainError
from mms.train.tts import STATE_FILE, TTSTrainer, TTSTrainOptions, canonical_to_original, original_to_canonical

SENTENCES = ["hello world", "good morning", "a small cat", "go home now", "the sun is up", "we can see it"]


# ---------------------------------------------------------------------------------------------------------
# Losses


def test_kl_loss_against_the_formula():
    z_p, logs_q, m_p, logs_p = (torch.tensor(v).view(1, 1, 2) for v in ([1.0, -0.5], [0.1, -0.2], [0.2, 0.3],
                                                                       [0.5, -0.1]))
    mask = torch.tensor([1.0, 1.0]).view(1, 1, 2)
    expected = sum(lp - lq - 0.5 + 0.5 * (z - m) ** 2 * math.exp(-2 * lp)
                   for z, lq, m, lp in [(1.0, 0.1, 0.2, 0.5), (-0.5, -0.2, 0.3, -0.1)]) / 2
    assert vt.kl_loss(z_p, logs_q, m_p, logs_p, mask).item() == pytest.approx(expected, abs=1e-6)
    # a masked frame counts for nothing, in the sum or the mean
    mask = torch.tensor([1.0, 0.0]).view(1, 1, 2)
    expected = 0.5 - 0.1 - 0.5 + 0.5 * 0.8 ** 2 * math.exp(-1.0)
    assert vt.kl_loss(z_p, logs_q, m_p, logs_p, mask).item() == pytest.approx(expected, rel=1e-6)
    # a one-sample estimate: posterior == prior and z_p one standard deviation from the mean gives 0
    z_p = m_p + torch.exp(logs_p)
    assert vt.kl_loss(z_p, logs_p, m_p, logs_p, torch.ones(1, 1, 2)).item() == pytest.approx(0.0, abs=1e-6)


def test_least_squares_and_feature_matching_losses():
    real = [torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0]])]
    fake = [torch.tensor([[0.2, -0.4]]), torch.tensor([[1.0]])]
    # D: mean((1 - D(y))^2) + mean(D(G(z))^2) per discriminator, summed
    expected_d = ((0 + 0.25) / 2 + (0.04 + 0.16) / 2) + (1.0 + 1.0)
    assert vt.discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    # G: mean((1 - D(G(z)))^2) per discriminator, summed
    expected_g = (0.64 + 1.96) / 2 + 0.0
    assert vt.generator_loss(fake).item() == pytest.approx(expected_g, rel=1e-6)
    # feature matching: 2 * sum over layers of mean |real - fake|
    real_maps = [[torch.tensor([1.0, 2.0]), torch.tensor([[0.0]])], [torch.tensor([3.0])]]
    fake_maps = [[torch.tensor([1.5, 1.0]), torch.tensor([[2.0]])], [torch.tensor([2.0])]]
    expected_fm = 2 * ((0.5 + 1.0) / 2 + 2.0 + 1.0)
    assert vt.feature_loss(real_maps, fake_maps).item() == pytest.approx(expected_fm, rel=1e-6)


def test_mel_l1_is_masked_mean_absolute_error():
    a = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]]])  # [B=1, M=2, T=3]
    b = torch.tensor([[[0.0, 2.5, -1.0], [1.0, 0.0, 0.0]]])
    assert vt.mel_l1(a, b).item() == pytest.approx((1 + 0.5 + 4 + 1 + 0 + 5) / 6)
    assert vt.mel_l1(a, b, torch.ones(1, 1, 3)).item() == pytest.approx(F.l1_loss(a, b).item())
    assert vt.mel_l1(a, b, torch.tensor([[[1.0, 1.0, 0.0]]])).item() == pytest.approx((1 + 0.5 + 1 + 0) / 4)


def test_mel_filters_are_librosas_slaney_filters():
    from transformers.audio_utils import mel_filter_bank

    for sr, n_fft, n_mels, fmin, fmax in ((16000, 1024, 80, 0.0, None), (22050, 512, 40, 50.0, 8000.0)):
        ours = vt.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        reference = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=fmin,
                                    max_frequency=fmax or sr / 2, sampling_rate=sr, norm="slaney",
                                    mel_scale="slaney").T
        assert ours.shape == reference.shape
        assert np.abs(ours - reference).max() <= 1e-6 * max(1.0, np.abs(reference).max())


def test_linear_spectrogram_frames_are_windowed_dfts():
    settings = vt.SpectrogramConfig(filter_length=64, hop_length=16, win_length=64)
    rng = np.random.default_rng(0)
    wave = rng.standard_normal(16 * 10).astype(np.float32)
    spec = vt.linear_spectrogram(torch.from_numpy(wave)[None], settings)[0].numpy()
    assert spec.shape == (33, 10)  # length // hop frames
    padded = np.pad(wave, (24, 24), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64)  # periodic Hann
    for t in (0, 4, 9):
        frame = np.fft.rfft(padded[16 * t:16 * t + 64] * window)
        np.testing.assert_allclose(spec[:, t], np.sqrt(np.abs(frame) ** 2 + 1e-6), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Flows and alignment


def test_spline_forward_is_the_inverse_of_inference_and_its_log_det_is_exact():
    torch.manual_seed(0)
    n, bins = 200, 10
    x = torch.linspace(-6, 6, n).view(1, 1, n)  # beyond the tail bound 5 too
    widths, heights, derivs = torch.randn(1, 1, n, bins), torch.randn(1, 1, n, bins), torch.randn(1, 1, n, bins - 1)
    y, logdet = vt.spline_forward(x, widths, heights, derivs, 5.0)
    back = spline_inverse(y, widths, heights, derivs.clone(), 5.0)
    assert (back - x).abs().max().item() < 1e-4
    outside = x.abs() > 5
    assert torch.equal(y[outside], x[outside]) and torch.all(logdet[outside] == 0)
    xs = x.clone().requires_grad_(True)
    y2, _ = vt.spline_forward(xs, widths, heights, derivs, 5.0)
    (grad,) = torch.autograd.grad(y2.sum(), xs)  # elementwise transform: the Jacobian is diagonal
    assert (torch.log(grad) - logdet).abs().max().item() < 1e-4


def test_forward_flows_invert_the_inference_flows():
    from mms.models.vits import ConvFlow, ResidualCouplingBlock

    cfg = VitsConfig(hidden_size=8, flow_size=8, prior_encoder_num_wavenet_layers=2)
    torch.manual_seed(1)
    block = ResidualCouplingBlock(cfg)
    for p in block.parameters():
        torch.nn.init.normal_(p, 0, 0.3)
    z, mask = torch.randn(2, 8, 7), torch.ones(2, 1, 7)
    assert (block.reverse(vt.flow_forward(block, z, mask), mask) - z).abs().max().item() < 1e-5
    flow = ConvFlow(cfg)
    for p in flow.parameters():
        torch.nn.init.normal_(p, 0, 0.3)
    z2, condition = torch.randn(2, 2, 7), torch.randn(2, 8, 7)
    forward, _ = vt.convflow_forward(flow, z2, mask, condition)
    assert (flow.reverse(forward, mask, condition) - z2).abs().max().item() < 1e-4


def brute_force_path(value: np.ndarray) -> tuple[np.ndarray, float]:
    """Best of all monotonic alignments (every token >= 1 frame, frames in order), by enumeration."""
    t_y, t_x = value.shape
    best, best_path = -np.inf, None
    for cuts in itertools.combinations(range(1, t_y), t_x - 1):
        bounds = (0, *cuts, t_y)
        path = np.zeros_like(value, dtype=np.int32)
        for x in range(t_x):
            path[bounds[x]:bounds[x + 1], x] = 1
        score = float((value * path).sum())
        if score > best:
            best, best_path = score, path
    return best_path, best


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_monotonic_alignment_search_finds_the_best_path(backend):
    if backend == "numba" and vt.numba is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    cases = [(t_y, t_x) for t_y in range(1, 9) for t_x in range(1, t_y + 1)]
    for t_y, t_x in cases:
        for _ in range(2):
            value = rng.standard_normal((t_y, t_x)).astype(np.float32)
            path = vt.maximum_path(torch.from_numpy(value)[None], torch.ones(1, t_y, t_x), backend)[0].numpy()
            expected, best = brute_force_path(value)
            assert np.array_equal(path, expected), (t_y, t_x)
            assert float((value * path).sum()) == pytest.approx(best, abs=1e-5)
    # a padded batch: each item aligned within its own lengths, nothing in the padding
    values = torch.from_numpy(rng.standard_normal((3, 9, 5)).astype(np.float32))
    lengths = [(9, 5), (6, 2), (4, 4)]
    mask = torch.zeros(3, 9, 5)
    for i, (t_y, t_x) in enumerate(lengths):
        mask[i, :t_y, :t_x] = 1
    paths = vt.maximum_path(values, mask, backend)
    for i, (t_y, t_x) in enumerate(lengths):
        expected, _ = brute_force_path(values[i, :t_y, :t_x].numpy())
        assert np.array_equal(paths[i, :t_y, :t_x].numpy(), expected)
        assert paths[i].sum() == t_y  # one token per frame, none in the padding


def test_original_and_canonical_names_round_trip():
    generator = vt.VitsGenerator(VitsConfig(**TINY_CFG, vocab_size=12))
    state = generator.state_dict()
    original = canonical_to_original(state)
    assert len(original) == len(state)
    for name in ("enc_q.enc.in_layers.3.weight_g", "enc_q.proj.bias", "dp.post_flows.7.convs.norms_2.2.gamma",
                 "dp.post_pre.weight", "flow.flows.6.enc.res_skip_layers.0.weight_v", "dec.ups.1.weight_g",
                 "dec.conv_pre.weight", "enc_p.encoder.attn_layers.0.conv_q.weight"):
        assert name in original, name
    back = original_to_canonical(original, "test")
    vt_state, missing, unused = vt.convert_weight_norms(generator, back)
    assert not missing and not unused
    assert all(torch.equal(vt_state[k], state[k]) for k in state)


# ---------------------------------------------------------------------------------------------------------
# Training runs


TINY_CFG = dict(hidden_size=16, ffn_dim=32, num_hidden_layers=1, num_attention_heads=2, flow_size=16,
                upsample_initial_channel=32, upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3, 5),), posterior_encoder_num_wavenet_layers=4)


def tone_sentence(text: str) -> np.ndarray:
    """Without espeak-ng: one tone per letter, (noisy) silence for spaces."""
    t = np.arange(int(0.07 * 16000)) / 16000
    parts = [np.zeros(800)]
    for ch in text:
        parts.append(np.zeros(t.size) if ch == " " else 0.4 * np.sin(2 * np.pi * (200 + 40 * (ord(ch) - 96)) * t))
    parts.append(np.zeros(800))
    x = np.concatenate(parts)
    return (x + 0.01 * np.random.default_rng(len(text)).standard_normal(x.size)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tts-corpus")
    lines = []
    for i, text in enumerate(SENTENCES):
        path = folder / f"{i}.wav"
        if shutil.which("espeak-ng"):
            subprocess.run(["espeak-ng", "-v", "en", "-s", "220", "-w", str(path), text], check=True)
        else:
            sf.write(path, tone_sentence(text), 16000)
        lines.append(json.dumps({"audio_filepath": path.name, "text": text.capitalize() + "."}))
    (folder / "train.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "small.jsonl").write_text("\n".join(lines[:3]) + "\n")
    return folder


def options(corpus: Path, out: Path, **overrides) -> TTSTrainOptions:
    values = dict(init_config=VitsConfig(**TINY_CFG), discriminator_width=1 / 16, train=[str(corpus / "train.jsonl")],
                  out=str(out), epochs=100, batch_size=3, segment_frames=16, device="cpu", threads=1, progress=False,
                  sample_every=0, lr=2e-3)
    if overrides.get("model"):  # a voice to fine-tune: its discriminators' width, or VITS's for new ones
        values["discriminator_width"] = None
    values.update(overrides)
    return TTSTrainOptions(**values)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A tiny new voice trained for 40 steps on 6 sentences; its mel loss before and after."""
    out = tmp_path_factory.mktemp("voice")
    trainer = TTSTrainer(options(corpus, out, max_steps=40, dev=[str(corpus / "small.jsonl")], sample_every=40))
    before = trainer.evaluate(trainer.train_set)
    summary = trainer.run()
    after = trainer.evaluate(trainer.train_set)
    return trainer, summary, before, after


def test_training_lowers_the_mel_loss(trained):
    trainer, summary, before, after = trained
    print(f"mel L1 on the training sentences {before:.3f} -> {after:.3f} after {summary['step']} steps, "
          f"{summary['steps_per_second']} steps/s")
    assert summary["step"] == 40 and summary["stopped_early"]
    assert after < 0.9 * before  # measured: 2.53 -> 2.14 (espeak-ng sentences)
    history = trainer.history
    assert history[-1]["mel"] < history[0]["mel"] and all("dev_mel" in h for h in history)
    losses = [json.loads(line) for line in (Path(summary["out"]) / "train_log.jsonl").read_text().splitlines()]
    assert losses == history
    assert all(np.isfinite(h[k]) for h in history for k in ("g", "d", "kl", "dur", "fm", "gen"))
    samples = sorted(p.name for p in (Path(summary["out"]) / "samples").iterdir())
    assert samples == ["step0000040-0.wav", "step0000040-1.wav"]
    # the utterances keep their lengths, not their samples: each batch reads its files again
    from mms.audio import load_audio

    u = trainer.train_set[0]
    assert not [k for k, v in vars(u).items() if isinstance(v, np.ndarray) and k != "ids"]
    np.testing.assert_array_equal(u.wave, load_audio(u.audio, trainer.cfg.sampling_rate))


def test_a_run_without_progress_bar_logs_progress_lines(corpus, tmp_path, monkeypatch, caplog):
    import logging

    from mms.train import engine

    monkeypatch.setattr(engine, "REPORT_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out", train=[str(corpus / "small.jsonl")], batch_size=2,
                           max_steps=2)).run()
    lines = [r.getMessage() for r in caplog.records if ", batch " in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["epoch 1, batch 1/2, step 1", "epoch 1, batch 2/2, step 2"]
    assert all("mel " in line and "steps/s" in line for line in lines)


def test_resume_is_bit_identical(corpus, tmp_path):
    short = dict(train=[str(corpus / "small.jsonl")], batch_size=2, epochs=3, save_every=100)  # 2 steps per epoch
    whole = TTSTrainer(options(corpus, tmp_path / "whole", max_steps=5, **short))
    whole.run()
    first = TTSTrainer(options(corpus, tmp_path / "resumed", max_steps=3, **short))  # stops mid-epoch 2
    summary = first.run()
    assert summary["stopped_early"] and first.step == 3 and first.epoch == 1
    assert (tmp_path / "resumed" / STATE_FILE).exists()
    second = TTSTrainer(options(corpus, tmp_path / "resumed", max_steps=5, **short))
    second.run()
    assert second.step == whole.step == 5 and second.epoch == whole.epoch == 2
    for a, b in ((whole.generator, second.generator), (whole.discriminator, second.discriminator)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert whole.optim_g.param_groups[0]["lr"] == second.optim_g.param_groups[0]["lr"] < 2e-3
    timeless = [[{k: v for k, v in h.items() if k not in ("train_seconds", "steps_per_second")} for h in t.history]
                for t in (whole, second)]
    assert timeless[0] == timeless[1]

    # --max-steps on an epoch's last batch finishes that epoch (its log record, dev pass and rate decay)
    at_end = TTSTrainer(options(corpus, tmp_path / "at-end", max_steps=4, **short))
    at_end.run()
    assert at_end.epoch == 2 and at_end.batch_in_epoch == 0 and [h["step"] for h in at_end.history] == [2, 4]


def test_ctrl_c_saves_the_step_under_way(corpus, tmp_path, caplog, python_ctrl_c):
    import os
    import signal

    short = dict(train=[str(corpus / "small.jsonl")], batch_size=2, epochs=3, save_every=100)
    first = TTSTrainer(options(corpus, tmp_path / "out", **short))
    train_step = first.train_step

    def step_then_ctrl_c(*args):
        losses = train_step(*args)
        if first.step == 2:  # (train_step's caller counts the step after it returns: this is step 3)
            os.kill(os.getpid(), signal.SIGINT)
        return losses

    first.train_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert first.step == 3 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    again = TTSTrainer(options(corpus, tmp_path / "out", **short))
    assert again.load_state() and again.step == 3 and again.epoch == 1 and again.batch_in_epoch == 1
    assert (tmp_path / "out" / "model.safetensors").exists()  # exported too: the voice of step 3 speaks
    with caplog.at_level("WARNING", logger="mms.train"):  # a finished run, run again: nothing to train, said so
        TTSTrainer(options(corpus, tmp_path / "out", **dict(short, max_steps=3))).run()
    assert any(r.getMessage().startswith("nothing to train:") for r in caplog.records)


def test_exported_voice_speaks_the_same_in_mms_and_transformers(trained):
    import transformers

    from mms.tts import TTS

    trainer, summary, _, _ = trained
    out = Path(summary["out"])
    text = "Hello, a small world."
    ours = TTS.load(out, device="cpu")
    original = TTS.load(out / "original", device="cpu")
    assert ours.checkpoint.format == "huggingface" and original.checkpoint.format == "original"
    for name in ("noise_scale", "noise_scale_duration", "speaking_rate"):  # both layouts speak with the same settings
        assert getattr(original.checkpoint.config, name) == getattr(ours.checkpoint.config, name)
    from mms.checkpoints.vits_original import config_from_hparams

    hparams = json.loads((out / "original" / "config.json").read_text())
    hparams["model"].update(noise_scale=0.333, noise_scale_duration=0.0)  # as the demo voice's (0: no noise)
    cfg, _ = config_from_hparams(hparams, 10, "config.json")
    assert (cfg.noise_scale, cfg.noise_scale_duration, cfg.speaking_rate) == (0.333, 0.0, 1.0)
    ids = ours.prepare(text)[0][0].ids
    assert ids == original.prepare(text)[0][0].ids == trainer.text.prepare(text).ids
    assert transformers.VitsTokenizer.from_pretrained(out)(text).input_ids == ids

    reference, info = transformers.VitsModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reference.eval()
    for seed in (3, 11):
        torch.manual_seed(seed)
        with torch.no_grad():
            expected = reference(torch.tensor([ids])).waveform[0].numpy()
        for tts in (ours, original):
            got = tts.forward([ids], [seed])[0]
            assert got.shape == expected.shape
            assert np.abs(got - expected).max() <= 1e-5
    # and the trainer's own generator (weight norms unfolded) gives the same speech
    trainer.generator.eval()
    with torch.no_grad():
        own, _ = trainer.generator(torch.tensor([ids]), seeds=[3])
    trainer.generator.train()
    torch.manual_seed(3)
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).waveform[0]
    assert (own[0] - expected).abs().max().item() <= 1e-5


def test_fine_tuning_starts_from_the_voice_and_its_discriminators(trained, corpus, tmp_path):
    from mms.tts.synthesizer import load_voice

    _, summary, _, _ = trained
    source = Path(summary["out"]) / "original"
    trainer = TTSTrainer(options(corpus, tmp_path / "tuned", init_config=None, model=str(source), max_steps=1,
                                 train=[str(corpus / "small.jsonl")]))
    assert "D_40.pth" in trainer.voice.source
    expected = load_voice(source).state_dict
    folded = vt.folded_state_dict(trainer.generator)
    assert all(torch.equal(folded[k], v) for k, v in expected.items())
    saved_d = torch.load(next(source.glob("D_*.pth")), weights_only=True)["model"]
    d_state, _, _ = vt.convert_weight_norms(trainer.discriminator, saved_d)
    assert all(torch.equal(trainer.discriminator.state_dict()[k], v) for k, v in d_state.items())
    # the HF layout (no discriminators of its own): the trainer's export directory finds them in original/
    hf = TTSTrainer(options(corpus, tmp_path / "tuned-hf", init_config=None, model=summary["out"], max_steps=1,
                            train=[str(corpus / "small.jsonl")]))
    assert "huggingface" in hf.voice.source and "D_40.pth" in hf.voice.source
    folded = vt.folded_state_dict(hf.generator)
    assert all((folded[k] - v).abs().max() <= 1e-6 for k, v in expected.items())
    assert hf.text.symbols == trainer.text.symbols
    hf.run()
    assert load_voice(tmp_path / "tuned-hf").state_dict.keys() == expected.keys()


def test_fine_tuning_a_transformers_voice_without_discriminators(corpus, tmp_path):
    """A facebook/mms-tts-like directory: posterior encoder in it, no discriminators (they start fresh)."""
    from tests.tts_factory import random_voice, write_hf

    voice = random_voice(seed=2, upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8], spectrogram_bins=513)
    directory = write_hf(voice, tmp_path / "mms-tts-eng")
    trainer = TTSTrainer(options(corpus, tmp_path / "out", init_config=None, model=str(directory), max_steps=1,
                                 train=[str(corpus / "small.jsonl")]))
    assert trainer.text.style == "transformers" and trainer.text.symbols[0] == "k"
    assert trainer.cfg.posterior_encoder_num_wavenet_layers == voice.config.posterior_encoder_num_wavenet_layers
    own = trainer.generator.state_dict()
    for key in ("posterior_encoder.conv_pre.weight", "duration_predictor.post_flows.2.conv_proj.bias",
                "flow.flows.1.wavenet.in_layers.0." + vt.WN_V):
        assert torch.equal(own[key], voice.state[key])
    assert torch.allclose(vt.folded_state_dict(trainer.generator)["decoder.upsampler.0.weight"],
                          voice.state["decoder.upsampler.0.weight"], atol=1e-6)
    trainer.run()
    exported = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert exported["pad_token"] == "k" and exported["language"] == "eng"
    # the original layout keeps the language too (its folder is "original", not models/<iso>/): Romanian's fix
    from mms.checkpoints import vits_original

    assert vits_original.load(tmp_path / "out" / "original").lang == "eng"


def test_command_line(corpus, tmp_path, capsys):
    from mms.cli import main

    out = tmp_path / "cli-voice"
    code = main(["train-tts", "--config", "tiny", "--train", str(corpus / "small.jsonl"), "--out", str(out),
                 "--max-steps", "1", "--batch-size", "3", "--segment-frames", "8", "--threads", "1", "--device", "cpu",
                 "--sample-every", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 steps" in err and str(out) in err
    assert (out / "model.safetensors").exists() and (out / "original" / "G_1.pth").exists()
    code = main(["train-tts", "--config", "nonsense", "--train", str(corpus / "small.jsonl"), "--out", str(out)])
    assert code == 2 and "--config nonsense" in capsys.readouterr().err
    code = main(["train-tts", "--config", "tiny", "--lang", "eng", "--train", str(corpus / "small.jsonl"),
                 "--out", str(tmp_path / "short-segments"), "--segment-frames", "1"])  # had been a torch error
    assert code == 2 and "--segment-frames 1: at least 2" in capsys.readouterr().err
    for lang, reason in (("English", "--lang 'English': not an ISO 639-3 language code"),
                         ("en", "--lang 'en': give the ISO 639-3 code, 'eng'")):
        code = main(["train-tts", "--config", "tiny", "--lang", lang, "--train", str(corpus / "small.jsonl"),
                     "--out", str(tmp_path / "lang")])
        assert code == 2 and reason in capsys.readouterr().err
    keys = tmp_path / "keys.jsonl"  # a manifest with other keys than "text": named, with the keys it needs
    keys.write_text(json.dumps({"audio_filepath": str(corpus / "0.wav"), "sentence": "hello"}) + "\n")
    code = main(["train-tts", "--config", "tiny", "--train", str(keys), "--out", str(tmp_path / "keys")])
    assert code == 2 and f'{keys}: no line has a transcript (a JSON line needs "text"' in capsys.readouterr().err


def test_architecture_from_a_config_file(tmp_path):
    from mms.train.tts import read_config

    values = {k: (list(map(list, v)) if k == "resblock_dilation_sizes" else list(v) if isinstance(v, tuple) else v)
              for k, v in TINY_CFG.items()}
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vits", **values}))
    cfg, spectrogram, width = read_config(str(tmp_path / "config.json"))
    assert cfg == VitsConfig(**TINY_CFG) and width == 1.0
    assert (spectrogram.filter_length, spectrogram.hop_length, spectrogram.n_mel_channels) == (1024, 256, 80)
    tiny, _, tiny_width = read_config("tiny")
    assert tiny.hidden_size == 32 and tiny_width == 1 / 16
    for change, reason in (({"hidden_size": 0}, "hidden_size must be a positive integer, not 0"),
                           ({"hiden_size": 64}, "unknown setting 'hiden_size' (did you mean 'hidden_size'?)"),
                           ({"num_attention_heads": 3}, "is not a multiple of num_attention_heads 3"),
                           ({"upsample_rates": [8, 8]}, "upsample_rates and upsample_kernel_sizes"),
                           ({"resblock_dilation_sizes": [[1, 0]]}, "resblock_dilation_sizes must be a list of"),
                           ({"noise_scale": "high"}, "noise_scale must be a finite number"),
                           ({"hidden_act": "swish"}, "hidden_act 'swish': one of relu, gelu")):
        (tmp_path / "bad.json").write_text(json.dumps({"model_type": "vits", **values, **change}))
        with pytest.raises(TrainError, match=re.escape(reason)):
            read_config(str(tmp_path / "bad.json"))
    (tmp_path / "hf.json").write_text(json.dumps({"model_type": "vits", **values, "attention_dropout": 0.1,
                                                  "torch_dtype": "float32"}))
    assert read_config(str(tmp_path / "hf.json"))[0] == cfg  # transformers' own keys are not settings of ours
    for other in ({}, {"foo": 1}, {**values}, {"model_type": "wav2vec2", "hidden_size": 32}):
        # without VITS's marks, any JSON object had built the full 83M-weight architecture
        (tmp_path / "other.json").write_text(json.dumps(other))
        with pytest.raises(TrainError, match="not a VITS config|is not vits"):
            read_config(str(tmp_path / "other.json"))


class _Planted:
    """Unpickling this creates a file: a resumed state must never run it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_state_holding_code_is_refused_without_running_it(tmp_path):
    from mms.train.data import TrainError
    from mms.train.export import read_state, restore_rng, rng_state, write_state

    marker = tmp_path / "ran"
    torch.save({"format": "mms train-tts 1", "planted": _Planted(marker)}, tmp_path / STATE_FILE)
    with pytest.raises(TrainError) as caught:
        read_state(tmp_path / STATE_FILE)
    message = str(caught.value)
    print(message)
    assert "not unpickled" in message and "\n" not in message and not marker.exists()

    # what the trainers save (global RNG states included) loads back weights_only and restores the same streams
    np.random.seed(3)
    torch.manual_seed(3)
    write_state(tmp_path / "ok.pt", {"rng": rng_state()})
    expected = (np.random.rand(4), torch.rand(4))
    restore_rng(read_state(tmp_path / "ok.pt")["rng"])
    assert np.array_equal(np.random.rand(4), expected[0]) and torch.equal(torch.rand(4), expected[1])

    # a state of an earlier version (numpy's RNG state as an ndarray) still resumes, without running any code
    np.random.seed(4)
    torch.manual_seed(4)
    torch.save({"rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}}, tmp_path / "old.pt")
    expected = (np.random.rand(4), torch.rand(4))
    restore_rng(read_state(tmp_path / "old.pt")["rng"])
    assert np.array_equal(np.random.rand(4), expected[0]) and torch.equal(torch.rand(4), expected[1])


def test_an_out_that_is_a_file_is_one_line(corpus, tmp_path):
    from mms.train.data import TrainError

    (tmp_path / "a-file").write_text("")
    for out, reason in ((tmp_path / "a-file", "is a file; give a folder"),
                        (tmp_path / "a-file" / "voice", "a-file is a file, not a folder")):
        with pytest.raises(TrainError, match=reason):
            TTSTrainer(options(corpus, out))


def test_a_character_dropped_from_train_and_dev_transcripts_is_counted_in_both(trained, corpus, tmp_path, caplog):
    _, summary, _, _ = trained
    line = lambda i, text: json.dumps({"audio_filepath": str(corpus / f"{i}.wav"), "text": text})  # noqa: E731
    (tmp_path / "train.jsonl").write_text(line(0, "Hello there!") + "\n" + line(1, "And more") + "\n")
    (tmp_path / "dev.jsonl").write_text(line(2, "Wow!") + "\n" + line(3, "Again!") + "\n")
    with caplog.at_level("WARNING", logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out", init_config=None, model=summary["out"],
                           train=[str(tmp_path / "train.jsonl")], dev=[str(tmp_path / "dev.jsonl")]))
    said = [r.getMessage() for r in caplog.records if "'!'" in r.getMessage()]
    assert said == ["character '!' is not in the voice's vocabulary: dropped from 3 transcripts"]


def test_options_that_would_be_ignored_are_refused(corpus, tmp_path, trained):
    _, summary, _, _ = trained
    for overrides, reason in (
            (dict(init_config=None, model=summary["out"], uroman=True), "--uroman is for a new voice"),
            (dict(sample_texts=["hello"], sample_every=0), "--sample-text with --sample-every 0"),
            (dict(discriminator="D_1.pth", discriminator_width=0.5), "--discriminator-width with --discriminator"),
            (dict(lr_decay=2.0), "--lr-decay 2.0: must be in (0, 1]")):
        with pytest.raises(TrainError, match=re.escape(reason)):
            options(corpus, tmp_path / "out", **overrides).check()
    # a voice that brings its discriminators (the trained one has its D_*.pth): their width, not another
    with pytest.raises(TrainError, match="comes with its discriminators"):
        TTSTrainer(options(corpus, tmp_path / "out", init_config=None, model=summary["out"], discriminator_width=0.5))
    assert not (tmp_path / "out").exists()


def test_a_sample_text_the_voice_cannot_speak_is_named_and_keeps_its_number(corpus, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out", train=[str(corpus / "small.jsonl")], max_steps=1,
                           sample_every=1, sample_texts=["???", "", "Hello there"])).run()
    assert sorted(p.name for p in (tmp_path / "out" / "samples").iterdir()) == ["step0000001-2.wav"]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--sample-text")]
    assert said == ["--sample-text '???': no character of it is in the voice's vocabulary: no sample 0",
                    "--sample-text '': no character of it is in the voice's vocabulary: no sample 1"]


def test_a_resumed_run_keeps_the_settings_it_was_started_with(corpus, tmp_path):
    short = dict(train=[str(corpus / "small.jsonl")], batch_size=2, max_steps=1)
    TTSTrainer(options(corpus, tmp_path / "out", **short)).run()
    with pytest.raises(TrainError, match=r"--batch-size 3: this run was started with 2 .*resume with the same"):
        TTSTrainer(options(corpus, tmp_path / "out", **dict(short, batch_size=3, max_steps=2))).run()
    with pytest.raises(TrainError, match=r"--uroman True: this run was started with False"):  # other ids
        TTSTrainer(options(corpus, tmp_path / "out", **dict(short, uroman=True, max_steps=2))).run()
    lines = (corpus / "small.jsonl").read_text().splitlines()
    (corpus / "small-reordered.jsonl").write_text("\n".join(lines[::-1]) + "\n")  # the same symbols, other order
    other = dict(short, train=[str(corpus / "small-reordered.jsonl")], max_steps=2)  # mid-epoch: its batches
    # index its data
    with pytest.raises(TrainError, match="stopped mid-epoch on other training data"):
        TTSTrainer(options(corpus, tmp_path / "out", **other)).run()
    resumed = TTSTrainer(options(corpus, tmp_path / "out", **dict(short, max_steps=2)))  # --max-steps may grow
    resumed.run()
    assert resumed.step == 2


def test_a_changed_discriminator_width_on_resume_is_said(corpus, tmp_path, caplog):
    short = dict(train=[str(corpus / "small.jsonl")], batch_size=2, max_steps=1)
    TTSTrainer(options(corpus, tmp_path / "out", **short)).run()
    with caplog.at_level("WARNING", logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out", **dict(short, max_steps=2, discriminator_width=0.5))).run()
    assert "--discriminator-width 0.5: the run continues its saved discriminators" in caplog.text


def test_each_skipped_utterance_is_named_with_its_reason(tmp_path):
    from mms.manifest import Item
    from mms.models.vits_train import SpectrogramConfig
    from mms.text.tts_text import TtsText
    from mms.train.tts import prepare_utterances

    text = TtsText(["_", " ", "a", "b"], "transformers", special_tokens=("_",))
    for name, seconds in (("ok", 1.0), ("blip", 0.03), ("rushed", 0.1), ("long", 3.0)):
        sf.write(tmp_path / f"{name}.wav", np.full(int(16000 * seconds), 0.1, np.float32), 16000)
    items = [Item(str(tmp_path / "ok.wav"), text="ab ba"), Item(str(tmp_path / "gone.wav"), text="ab"),
             Item(str(tmp_path / "ok.wav"), text="  "), Item(str(tmp_path / "ok.wav"), text="?!"),
             Item(str(tmp_path / "blip.wav"), text="ab"), Item(str(tmp_path / "rushed.wav"), text="ab " * 20),
             Item(str(tmp_path / "long.wav"), text="ab")]
    kept, problems, dropped = prepare_utterances(items, text, SpectrogramConfig(), 16000, max_seconds=2.0)
    assert [u.audio for u in kept] == [str(tmp_path / "ok.wav")] and dropped == {"?": 1, "!": 1}
    assert problems == [
        f"{tmp_path / 'gone.wav'}: no such file, skipped",
        f"{tmp_path / 'ok.wav'}: no transcript, skipped",
        f"{tmp_path / 'ok.wav'}: no character of the transcript is in the voice's vocabulary, skipped",
        f"{tmp_path / 'blip.wav'}: shorter than one spectrogram window (480 samples, the window 1024), skipped",
        f"{tmp_path / 'rushed.wav'}: too short for its transcript (6 frames for 119 ids), skipped",
        f"{tmp_path / 'long.wav'}: longer than 2.0 s, skipped"]


def test_an_out_folder_holding_a_voice_no_run_made_is_refused(corpus, tmp_path):
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "config.json").write_text("{}")
    with pytest.raises(TrainError) as error:
        TTSTrainer(options(corpus, tmp_path / "voice"))
    assert str(error.value) == (f"--out {tmp_path / 'voice'}: holds a model that no training run left there; give a "
                                "new folder")


def test_a_new_voices_alphabet_leaves_out_utterances_that_cannot_be_trained_on(corpus, tmp_path):
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, np.zeros(16000 * 5, np.float32), 16000)
    lines = [json.dumps({**record, "audio_filepath": str(corpus / record["audio_filepath"])}) for record in
             map(json.loads, (corpus / "small.jsonl").read_text().splitlines())] + [
        json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "text": "ñ"}),  # missing: skipped
        json.dumps({"audio_filepath": str(long_clip), "text": "Ω"})]  # over --max-seconds: skipped
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    trainer = TTSTrainer(options(corpus, tmp_path / "out", train=[str(tmp_path / "train.jsonl")], max_seconds=4.0))
    assert len(trainer.train_set) == 3
    assert not {"ñ", "ω", "Ω"} & set(trainer.text.symbols)


def test_a_folder_another_run_is_training_into_is_refused(corpus, tmp_path):
    """Two runs on one --out would overwrite each other's state: the second is refused while the first holds the
    folder's lock; the lock goes with the run (here: released), so the folder trains again."""
    from filelock import FileLock

    from mms.train.data import TrainError

    short = dict(train=[str(corpus / "small.jsonl")], batch_size=2, max_steps=1)
    (tmp_path / "out").mkdir()
    other = FileLock(tmp_path / "out" / ".train.lock")
    other.acquire(timeout=0)  # another process's run, as the operating system sees it (a second open file)
    with pytest.raises(TrainError, match=r"another training run is using this folder; wait for it to end"):
        TTSTrainer(options(corpus, tmp_path / "out", **short)).run()
    assert not (tmp_path / "out" / "train_state.pt").exists()
    other.release()
    TTSTrainer(options(corpus, tmp_path / "out", **short)).run()
    assert (tmp_path / "out" / "train_state.pt").exists()


def test_discriminator_width_and_max_seconds_limits(corpus, tmp_path):
    from mms.train.data import TrainError

    with pytest.raises(TrainError, match=r"--discriminator-width 1000: must be above 0 and at most 4"):
        TTSTrainer(options(corpus, tmp_path / "out", discriminator_width=1000))
    with pytest.raises(TrainError, match=r"--max-seconds 0: must be positive \(None: keep every utterance\)"):
        TTSTrainer(options(corpus, tmp_path / "out", max_seconds=0))
    kept = TTSTrainer(options(corpus, tmp_path / "out", max_seconds=None))  # `--max-seconds 0` on the command line
    assert len(kept.train_set) == len(SENTENCES)


def test_a_segment_longer_than_most_utterances_is_warned(corpus, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out", segment_frames=100000))
    assert f"--segment-frames 100000 is longer than {len(SENTENCES)} of the {len(SENTENCES)} training utterances" \
        in caplog.text and "padded with silence" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mms.train"):
        TTSTrainer(options(corpus, tmp_path / "out2"))
    assert "--segment-frames" not in caplog.text
