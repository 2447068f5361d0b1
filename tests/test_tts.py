"""The text-to-speech pipeline (mms.tts.TTS) and `mms tts`, on a tiny random voice."""

import io
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.tts import TTS, TextError
from mms.tts.synthesizer import build_model, load_voice
from tests.tts_factory import voice_dirs

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tts():
    return TTS.load(voice_dirs().hf, device="cpu")


def alone(tts, text, seed, **options):
    """One sentence, one forward pass, straight through the model."""
    ids = tts.text.prepare(text).ids
    return tts.forward([ids], [seed], **options)[0]


def test_synthesize_a_sentence(tts):
    wave, rate = tts.synthesize("Expanding the language coverage of speech technology", seed=3)
    assert rate == 16000 and wave.dtype == np.float32 and wave.ndim == 1
    assert 0 < np.abs(wave).max() <= 1
    np.testing.assert_array_equal(wave, alone(tts, "Expanding the language coverage of speech technology", 3))
    again, _ = tts.synthesize("Expanding the language coverage of speech technology", seed=3)
    np.testing.assert_array_equal(wave, again)
    other, _ = tts.synthesize("Expanding the language coverage of speech technology", seed=4)
    assert other.shape != wave.shape or np.abs(other - wave).max() > 1e-3


def test_sentences_are_joined_with_a_pause(tts):
    pause = int(0.2 * 16000)
    wave, _ = tts.synthesize("First one here. And the second!", seed=10)
    first, second = alone(tts, "First one here.", 10), alone(tts, "And the second!", 11)
    assert wave.size == first.size + pause + second.size
    np.testing.assert_allclose(wave[:first.size], first, atol=TOLERANCE)
    assert not wave[first.size:first.size + pause].any()
    np.testing.assert_allclose(wave[first.size + pause:], second, atol=TOLERANCE)


def test_batches_equal_one_by_one(tts):
    texts = ["A short one.", "A somewhat longer sentence, with a clause. Then another.", "x", "Mid length text"]
    for noise in (dict(noise_scale=0, noise_scale_duration=0), {}):
        tts.batch_tokens = 10_000
        batched = [s.wave for s in tts.synthesize_iter(texts, seed=1, **noise)]
        tts.batch_tokens = 1  # every sentence alone
        single = [s.wave for s in tts.synthesize_iter(texts, seed=1, **noise)]
        tts.batch_tokens = 1000
        for a, b in zip(batched, single):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=TOLERANCE)


def test_long_text_in_bounded_batches(tts, monkeypatch):
    sentence = "The quick brown fox jumps over the lazy dog near the river bank, and then it rests. "
    text = (sentence * 60)[:5000]
    shapes = []
    forward = tts.model.forward

    def recording_forward(ids, lengths=None, **kw):
        shapes.append(tuple(ids.shape))
        return forward(ids, lengths, **kw)

    monkeypatch.setattr(tts.model, "forward", recording_forward)
    monkeypatch.setattr(tts, "batch_tokens", 400)
    speech = next(tts.synthesize_iter([text], noise_scale=0, noise_scale_duration=0))
    assert speech.error is None
    sentences, _ = tts.prepare(text)
    assert len(sentences) == 60
    assert sum(b for b, _ in shapes) == 60 and max(b * t for b, t in shapes) <= 400
    per_sentence = [alone(tts, s.text, 0, noise_scale=0, noise_scale_duration=0).size for s in sentences]
    assert speech.wave.size == sum(per_sentence) + 59 * int(0.2 * 16000)


def test_speaking_rate_and_resampling(tts):
    normal, _ = tts.synthesize("speaking rate", seed=1, noise_scale_duration=0)
    fast, _ = tts.synthesize("speaking rate", seed=1, noise_scale_duration=0, speaking_rate=2.0)
    assert fast.size < 0.75 * normal.size
    low, rate = tts.synthesize("speaking rate", seed=1, noise_scale_duration=0, sample_rate=8000)
    assert rate == 8000 and abs(low.size - normal.size / 2) <= 2


def test_bad_inputs_get_errors_and_the_others_complete(tts, caplog):
    original = TTS.load(voice_dirs().original, device="cpu")  # its ids for "" would be one blank: [0]
    assert "no character" in next(original.synthesize_iter(["?!"])).error
    with caplog.at_level(logging.WARNING, logger="mms.tts"):
        speeches = list(tts.synthesize_iter(["fine text", "", "!!! ???", "Ünïcode, here"], seed=0))
    assert [s.error is None for s in speeches] == [True, False, False, True]
    assert speeches[1].error == "empty text"
    assert "no character" in speeches[2].error and "'!'" in speeches[2].error
    assert speeches[3].dropped == ["ü", "ï", ","]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'ü' 'ï' ','" in warnings[0]
    with pytest.raises(TextError):
        tts.synthesize("   ")


def test_original_voice_through_the_api():
    tts = TTS.load(voice_dirs().root / "models", lang="eng", device="cpu")
    assert tts.checkpoint.format == "original" and tts.lang == "eng"
    wave, _ = tts.synthesize("original voice", seed=2)
    ids = tts.text.prepare("original voice").ids
    model = build_model(load_voice(voice_dirs().hf), torch.device("cpu"), torch.float32)
    with torch.no_grad():
        reference = model(torch.tensor([ids]), seeds=[2])[0][0].numpy()
    np.testing.assert_array_equal(wave, reference)


# ---------------------------------------------------------------------------------------------------------
# CLI


def mms(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "mms", "tts", *map(str, args)], input=stdin,
                          capture_output=True)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom mms.cli import main\ntry: main(['tts', '--help'])\nexcept SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "--speaking-rate" in out and "--model-dir" in out
    assert out.strip().endswith("TORCH False")


def test_cli_text_to_float_wav_matches_the_api(tts, tmp_path):
    out = tmp_path / "out.wav"
    r = mms("--model-dir", voice_dirs().hf, "--txt", "Hello there", "--wav", out, "--seed", "5", "--device", "cpu",
            "--float")
    assert r.returncode == 0, r.stderr
    info = sf.info(out)
    assert info.samplerate == 16000 and info.subtype == "FLOAT"
    written, _ = sf.read(out, dtype="float32")
    expected, _ = tts.synthesize("Hello there", seed=5)
    np.testing.assert_array_equal(written, expected)


def test_cli_stdin_to_stdout_resampled_pcm(tts):
    r = mms("--model", voice_dirs().original, "--wav", "-", "--seed", "1", "--sample-rate", "22050",
            stdin=b"Some text from a pipe.")
    assert r.returncode == 0, r.stderr
    info = sf.info(io.BytesIO(r.stdout))
    assert info.samplerate == 22050 and info.subtype == "PCM_16"
    expected, _ = tts.synthesize("Some text from a pipe.", seed=1, sample_rate=22050)
    assert info.frames == expected.size


def test_cli_file_to_outdir_with_index(tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text("first line\n\n?!?\nthird, with a comma\n", encoding="utf-8")
    outdir = tmp_path / "wavs"
    r = mms("--model", voice_dirs().root, "--lang", "eng", "--file", lines, "--outdir", outdir, "--seed", "2",
            "--format", "flac")
    assert r.returncode == 1  # one line failed; the others are written
    stderr = r.stderr.decode()
    assert stderr.count("error:") == 1 and "line 3: no character" in stderr
    assert "warning:" in stderr and "','" in stderr
    index = [json.loads(line) for line in (outdir / "index.jsonl").read_text().splitlines()]
    assert [(r["index"], r["line"]) for r in index] == [(1, 1), (2, 3), (3, 4)]
    assert [r["text"] for r in index] == ["first line", "?!?", "third, with a comma"]
    assert index[1]["error"] and index[1]["path"] is None and index[1]["duration"] is None
    for record in (index[0], index[2]):
        assert record["error"] is None and record["path"] == str(outdir / f"{record['index']:04d}.flac")
        assert abs(sf.info(record["path"]).duration - record["duration"]) < 1e-3
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.flac", "0003.flac", "index.jsonl"]


def test_cli_usage_and_model_errors(tmp_path):
    for args, fragment in [
        (("--model", voice_dirs().hf, "--txt", "x"), "--wav"),
        (("--model", voice_dirs().hf, "--file", tmp_path / "none.txt", "--outdir", tmp_path), "none.txt"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.mp3"), "suffix"),
        (("--model", tmp_path / "missing", "--txt", "x", "--wav", tmp_path / "x.wav"), "missing"),
        (("--model", voice_dirs().root, "--lang", "xyz", "--txt", "x", "--wav", tmp_path / "x.wav"),
         "unknown language 'xyz'"),
    ]:
        r = mms(*args)
        stderr = r.stderr.decode()
        assert r.returncode == 2, (args, stderr)
        assert fragment in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
