"""The shipped `demo` model on held-out synthetic speech: fresh sentences of held-out words (one word in ten of
each language's list, never in any training sentence; scripts/make_demo_models.py word_lists) with seeds the
corpus never used, spoken by espeak-ng, transcribed and identified through the public API and the CLI.

The quality bars: the numbers measured when the model was shipped (mms/configs/demo/metrics.json, on another
held-out sample) with a margin for a different sample, so a broken loader, normalisation or export fails here;
and the issue's targets that the model reaches (LID >= 98%, alignment median under 40 ms, train-adapter of a
new language to CER <= 20%; not yet CER <= 10% in every language).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "mms" / "configs" / "demo"
PER_LANGUAGE = 25  # utterances per language: about 700 characters, so one error moves the CER by ~0.15
ALIGN_MEDIAN_TOLERANCE = 0.25  # seconds: a broken aligner or time scale misses by far more

pytestmark = [
    pytest.mark.skipif(not (DEMO / "config.json").exists(), reason="the demo model is not built"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]


def make_demo_module():
    spec = importlib.util.spec_from_file_location("make_demo_models", ROOT / "scripts" / "make_demo_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def metrics():
    return json.loads((DEMO / "metrics.json").read_text())["held_out"]["per_language"]


def make_held_out(folder: Path) -> list[tuple]:
    """PER_LANGUAGE fresh espeak-ng utterances of held-out words per demo language: (path, language, text)."""
    return make_demo_module().held_out_set(folder, PER_LANGUAGE, seed=2024)


@pytest.fixture(scope="module")
def held_out(demo_held_out_set):
    return demo_held_out_set


@pytest.fixture(scope="module")
def scores(held_out):
    """{language: {"cer", "wer", "lid_accuracy", "utterances"}} of the shipped demo model."""
    results = make_demo_module().evaluate("demo", held_out)
    print("demo on held-out words:", results)
    return results


def test_held_out_words_never_occur_in_training_sentences():
    demo = make_demo_module()
    for lang in demo.LANGUAGES:
        train, held = demo.word_lists(lang)
        assert len(train) > 10000 and len(held) > 1000 and not set(train) & set(held)


def test_demo_matches_its_measured_quality(scores, metrics):
    """Against the numbers `ship` measured on another held-out sample (metrics.json): a broken loader, text
    normalisation or float16 export moves them by far more than the sampling noise of 25 utterances (~1 point)."""
    for lang, got in scores.items():
        assert got["cer"] <= metrics[lang]["cer"] + 4.0, (lang, got, metrics[lang])
        assert got["lid_accuracy"] >= metrics[lang]["lid_accuracy"] - 8.0, (lang, got, metrics[lang])


def test_demo_lid_reaches_the_issue_target(scores):
    """Issue target on held-out words: LID accuracy >= 98% over all languages. (The CER target, <= 10% in every
    language, is not reached yet: docs/train.md has the measured numbers.)"""
    hits = sum(got["lid_accuracy"] * got["utterances"] / 100 for got in scores.values())
    assert 100.0 * hits / sum(got["utterances"] for got in scores.values()) >= 98.0, scores


def test_cli_asr_and_lid_with_the_demo_model(held_out):
    path, lang, _ = held_out[0]
    asr = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", lang, "--format", "jsonl",
                          str(path)], capture_output=True, text=True)
    assert asr.returncode == 0, asr.stderr
    assert json.loads(asr.stdout)["lang"] == lang
    lid = subprocess.run([sys.executable, "-m", "mms", "lid", "--model", "demo", "--format", "jsonl", str(path)],
                         capture_output=True, text=True)
    assert lid.returncode == 0, lid.stderr
    record = json.loads(lid.stdout.splitlines()[0])
    labels = json.loads((DEMO / "lid" / "config.json").read_text())["id2label"].values()
    assert record["predictions"][0][0] in labels


def test_demo_without_lang_says_so_and_auto_uses_its_own_lid():
    russian = str(ROOT / "examples" / "rus_day.wav")
    guessed = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "demo", "--offline", russian],
                             capture_output=True, text=True)
    assert guessed.returncode == 0 and "mms asr: note: no --lang: every input is transcribed as 'eng'" in guessed.stderr
    # --lang auto: the demo's own LID head, nothing to download (offline)
    auto = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", "auto", "--offline",
                           "--format", "jsonl", russian], capture_output=True, text=True)
    assert auto.returncode == 0, auto.stderr
    assert json.loads(auto.stdout)["lang"] == "rus" and "note" not in auto.stderr


@pytest.fixture(scope="module")
def alignment_errors(tmp_path_factory):
    """Words spoken one by one (espeak-ng), trimmed to their sound and joined with 0.3 s pauses: the known
    boundaries; the demo model aligns them (Aligner, as `mms align --model demo`) with its calibrated
    word-time offsets and without. -> {"calibrated": errors, "raw": errors}, absolute, seconds."""
    from mms.align.aligner import Aligner
    from mms.options import AlignOptions

    demo = make_demo_module()
    folder = tmp_path_factory.mktemp("demo-align")
    aligners = {"calibrated": Aligner.load("demo", lang="eng", device="cpu"),
                "raw": Aligner.load("demo", lang="eng", device="cpu", options=AlignOptions(time_offsets=(0.0, 0.0)))}
    voice = demo.LANGUAGES["eng"][0]
    words = demo.word_lists("eng")[1]  # held-out words
    rng = np.random.default_rng(7)
    errors = {name: [] for name in aligners}
    for n in range(4):
        chosen = list(rng.choice(words, size=6, replace=False))
        wave, truth = demo.words_apart(chosen, voice, 160, 50, [0.3] * 7, folder)
        for name, aligner in aligners.items():
            result = aligner.align(wave, [" ".join(chosen)], lang="eng")
            assert result.error is None, result.error
            got = [(w.start, w.end) for w in result.lines[0].words]
            assert len(got) == len(truth)
            errors[name] += [abs(a - b) for pair_got, pair_true in zip(got, truth) for a, b in zip(pair_got, pair_true)]
    for name, values in errors.items():
        print(f"demo alignment ({name}): median boundary error {1000 * np.median(values):.0f} ms, "
              f"90th percentile {1000 * np.percentile(values, 90):.0f} ms over {len(values)} boundaries")
    return {name: np.asarray(values) for name, values in errors.items()}


def test_demo_alignment_boundaries(alignment_errors):
    assert np.median(alignment_errors["raw"]) <= ALIGN_MEDIAN_TOLERANCE
    assert np.median(alignment_errors["calibrated"]) <= np.median(alignment_errors["raw"])


def test_demo_alignment_reaches_the_issue_target(alignment_errors):
    """Issue target: median word-boundary error under 40 ms (with the model's calibrated word-time offsets)."""
    assert float(np.median(alignment_errors["calibrated"])) < 0.040


def test_train_adapter_adds_a_held_out_language(tmp_path):
    """Issue target: `mms train-adapter` from the demo base on a language it never heard (German, espeak-ng,
    300 utterances), dev CER <= 20% within 15 minutes of CPU time (this run: 10 epochs, about a minute)."""
    import time

    from mms.train import TrainOptions, train

    demo = make_demo_module()
    demo.make_corpus(tmp_path, {"train": 300, "dev": 30}, seed=5, languages=demo.HELD_OUT)
    corpus = tmp_path / "corpus"
    started = time.process_time()
    summary = train(TrainOptions(mode="adapter", model="demo", lang="deu", train=[str(corpus / "train.jsonl")],
                                 dev=[str(corpus / "dev.jsonl")], out=str(tmp_path / "deu"), epochs=10, lr=3e-3,
                                 warmup_steps=20, batch_seconds=20.0, threads=1, progress=False, device="cpu"))
    cpu = time.process_time() - started
    print(f"train-adapter deu from demo: dev CER {summary['best_dev_cer']:.2f}% in {cpu:.0f} CPU s, "
          f"{summary['throughput']} audio s/s")
    assert summary["best_dev_cer"] <= 20.0 and cpu < 15 * 60


VOICE = ROOT / "mms" / "configs" / "demo-tts"


@pytest.mark.skipif(not (VOICE / "config.json").exists(), reason="no demo voice shipped in this build")
def test_demo_voice_is_read_back_as_measured():
    """The shipped voice (`mms tts --model demo`) reads 20 fresh sentences of held-out words (another seed than
    ship-voice's) and the demo ASR model transcribes them: within 8 points (the smaller sample) of the CER measured
    when the voice was shipped (metrics.json), so a broken voice loader, text preparation or export fails here.
    The issue's bar (CER <= 15%) is not reached yet: docs/train-tts.md has the numbers."""
    shipped = json.loads((VOICE / "metrics.json").read_text())["round_trip"]
    got = make_demo_module().voice_round_trip("demo", count=20, seed=2025)
    print(f"demo voice round trip: CER {got['cer']:.1f}% (shipped: {shipped['cer']:.1f}%), real-time factor "
          f"{got['real_time_factor']:.3f}; {got['examples'][0]}")
    assert got["cer"] <= shipped["cer"] + 8.0, (got, shipped)


@pytest.mark.skipif(not (VOICE / "config.json").exists(), reason="no demo voice shipped in this build")
def test_cli_tts_with_the_demo_voice_offline(tmp_path):
    import soundfile as sf

    out = tmp_path / "hello.wav"
    r = subprocess.run([sys.executable, "-m", "mms", "tts", "--model", "demo", "--lang", "eng", "--offline", "--txt",
                        "good morning", "--wav", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wave, rate = sf.read(out)
    assert rate == 16000 and 0.3 < wave.size / rate < 5 and np.abs(wave).max() > 0.05
    # the voice speaks English only: another language is one line naming `demo`, not the package's folder
    r = subprocess.run([sys.executable, "-m", "mms", "tts", "--model", "demo", "--lang", "fra", "--offline", "--txt",
                        "bonjour", "--wav", str(tmp_path / "fr.wav")], capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip() == "mms tts: error: demo: this voice speaks 'eng', not 'fra'"
    assert not (tmp_path / "fr.wav").exists()
