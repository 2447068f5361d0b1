"""mms.train: CTC training of tiny random MMS models on synthetic "speech" (words made of distinct tones).

One character = one tone of ~0.1 s, so a model that learns the task must emit the right letters in order;
the tests check that it does (CER falls), that resuming continues exactly, that train-adapter leaves every
frozen weight unchanged, and that its output loads through `mms asr --adapter` and by copying into a model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.train.data import TrainError
from mms.train.engine import Trainer, TrainOptions
from tests.factory import random_model, tiny_config, write_hf

TONES = {"a": 500.0, "b": 1100.0, "c": 2000.0}
TONES.update(x=TONES["a"], y=TONES["b"], z=TONES["c"])  # the "new language" writes the same sounds otherwise
TONES.update(p=700.0, q=1500.0, r=2600.0)  # a language of other sounds (for language identification)


def tone_utterance(words: list[str], rng) -> np.ndarray:
    parts = [np.zeros(800)]
    for word in words:
        for ch in word:
            n = 1600 + int(rng.integers(0, 400))
            parts += [0.5 * np.sin(2 * np.pi * TONES[ch] * np.arange(n) / 16000), np.zeros(320)]
        parts.append(np.zeros(2400))
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(x.size)).astype(np.float32)


def tone_corpus(folder: Path, name: str, vocabulary: list[str], n: int, seed: int, lang: str | None = None) -> Path:
    """n utterances of two words each; transcripts in upper case (MMS normalisation lower-cases them)."""
    rng = np.random.default_rng(seed)
    (folder / name).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        words = [vocabulary[j] for j in rng.integers(0, len(vocabulary), 2)]
        path = folder / name / f"{i}.wav"
        sf.write(path, tone_utterance(words, rng), 16000)
        line = {"audio_filepath": f"{name}/{i}.wav", "text": " ".join(words).upper() + "."}
        lines.append(json.dumps(dict(line, lang=lang) if lang else line))
    manifest = folder / f"{name}.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tones")
    base_words, new_words = ["ab", "ca", "bc", "cab"], ["zy", "yxz", "xz"]
    return {
        "folder": folder,
        "train": tone_corpus(folder, "train", base_words, 24, 1),
        "dev": tone_corpus(folder, "dev", base_words, 6, 2),
        "new_train": tone_corpus(folder, "new_train", new_words, 16, 3),
        "new_dev": tone_corpus(folder, "new_dev", new_words, 6, 4),
        "other_train": tone_corpus(folder, "other_train", ["pq", "rp", "qrq"], 12, 5, lang="oth"),
        "other_dev": tone_corpus(folder, "other_dev", ["pq", "rp", "qrq"], 6, 6, lang="oth"),
        "random_base": write_hf(random_model(tiny_config(), {"eng": 12, "fra": 15}, seed=1), folder / "random-base"),
    }


def options(data, out: Path, **overrides) -> TrainOptions:
    values = dict(mode="full", model=str(data["random_base"]), lang="xyz", train=[str(data["train"])],
                  dev=[str(data["dev"])], out=str(out), epochs=30, lr=3e-3, warmup_steps=5, batch_seconds=3.0,
                  progress=False, device="cpu", threads=1, save_every=10)
    values.update(overrides)
    return TrainOptions(**values)


@pytest.fixture(scope="module")
def trained(data):
    """Full training of the random tiny model on the tone language: the base of the adapter tests."""
    trainer = Trainer(options(data, data["folder"] / "full"))
    summary = trainer.run()
    return trainer, summary


def test_full_training_learns_the_words(trained):
    trainer, summary = trained
    history = trainer.history
    first, best = history[0], min(h["dev_cer"] for h in history)
    print(f"loss {first['train_loss']} -> {history[-1]['train_loss']}, dev CER {first['dev_cer']:.1f}% -> best "
          f"{best:.1f}%, {summary['throughput']} audio s/s")
    assert history[-1]["train_loss"] < 0.3 * first["train_loss"]
    assert first["dev_cer"] >= 80.0  # an untrained model emits (almost) nothing right
    assert best <= 40.0
    out = Path(summary["out"])
    for name in ("config.json", "model.safetensors", "adapter.xyz.safetensors", "vocab.json", "train_log.jsonl"):
        assert (out / name).exists(), name
    vocab = json.loads((out / "vocab.json").read_text())["xyz"]
    assert list(vocab) == ["<pad>", "<s>", "</s>", "<unk>", "|", "a", "b", "c"]  # normalised: lower case, no "."


def test_ctrl_c_saves_the_step_under_way_and_a_rerun_continues(data, tmp_path, caplog, python_ctrl_c):
    """The first Ctrl-C stops after the step under way with its state saved (not at the last --save-every save);
    the same command run again ends where an uninterrupted run ends."""
    import os
    import signal

    short = dict(epochs=2, save_every=100)
    whole = Trainer(options(data, tmp_path / "whole", **short))
    whole.run()
    first = Trainer(options(data, tmp_path / "resumed", **short))
    optimizer_step = first.optimizer_step

    def step_then_ctrl_c():
        optimizer_step()
        if first.step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    first.optimizer_step = step_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert first.step == 5 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    second = Trainer(options(data, tmp_path / "resumed", **short))
    assert second.load_state() and second.step == 5
    second = Trainer(options(data, tmp_path / "resumed", **short))
    second.run()
    assert second.step == whole.step
    a, b = dict(whole.model.named_parameters()), dict(second.model.named_parameters())
    assert max(float((a[n] - b[n]).abs().max().detach()) for n in a) <= 1e-5
    # run once more, it has nothing left to do, and says so (a new manifest would otherwise go unnoticed)
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "resumed", **short)).run()
    assert any(r.getMessage().startswith(f"nothing to train: {tmp_path / 'resumed'} holds a run that has reached "
                                         f"its limit (epoch 2, step {whole.step}") for r in caplog.records)


def test_exported_model_transcribes_like_the_trainer(trained, data):
    """The exported directory, read by the ASR loader, gives the trainer's own dev hypotheses at its best epoch."""
    from mms.asr import ASR
    from mms.scoring import score
    from mms.manifest import read_manifest

    trainer, summary = trained
    asr = ASR.load(summary["out"], lang="xyz", device="cpu")
    items = read_manifest(data["dev"])
    hyps = [t.text for t in asr.transcribe([i.audio for i in items])]
    cer = score([i.text.lower().rstrip(".") for i in items], hyps)["cer"]
    best = min(h["dev_cer"] for h in trainer.history)
    print(f"exported model dev CER {cer:.2f}%, trainer's best {best:.2f}%")
    assert abs(cer - best) < 1e-6


def test_resume_continues_like_an_uninterrupted_run(data, tmp_path):
    short = dict(epochs=3, save_every=4)
    whole = Trainer(options(data, tmp_path / "whole", **short))
    whole.run()
    first = Trainer(options(data, tmp_path / "resumed", max_steps=11, **short))  # stops mid-epoch 2
    summary = first.run()
    assert summary["stopped_early"] and summary["step"] == 11 and first.epoch == 1
    with pytest.raises(TrainError, match="--batch-seconds 2.0: the run in .* stopped mid-epoch with 3.0"):
        Trainer(options(data, tmp_path / "resumed", **dict(short, batch_seconds=2.0))).run()
    second = Trainer(options(data, tmp_path / "resumed", **short))
    second.run()
    assert second.step == whole.step
    a, b = dict(whole.model.named_parameters()), dict(second.model.named_parameters())
    diff = max(float((a[n] - b[n]).abs().max().detach()) for n in a)
    print(f"resumed vs uninterrupted: max abs weight difference {diff:.3g} after {whole.step} steps")
    assert diff <= 1e-5
    assert [h["dev_cer"] for h in second.history] == pytest.approx([h["dev_cer"] for h in whole.history], abs=1e-6)
    # the interrupted epoch's logged loss is the mean over all its steps, those before the interruption too
    assert [h["train_loss"] for h in second.history] == pytest.approx([h["train_loss"] for h in whole.history],
                                                                       abs=2e-4)
    # an epoch logged, then redone after a kill before its state was saved, is logged once: the log is the history
    (tmp_path / "resumed" / "train_log.jsonl").write_text("stale\n" * 7)
    last = Trainer(options(data, tmp_path / "resumed", epochs=4, save_every=4))
    last.run()
    log = [json.loads(line) for line in (tmp_path / "resumed" / "train_log.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in log] == [h["epoch"] for h in last.history] == [1, 2, 3, 4]

    # resumed with another dev set, the saved best (of the old dev set) is dropped: the next epoch is the best
    third = Trainer(options(data, tmp_path / "resumed", epochs=4, save_every=4, dev=[str(data["new_dev"])]))
    third.load_state()
    assert third.best is None
    again = Trainer(options(data, tmp_path / "resumed", epochs=4, save_every=4))
    again.load_state()
    assert again.best == min(h["dev_cer"] for h in whole.history)


def test_audio_is_read_per_batch_not_held(data, tmp_path):
    # a corpus of any size trains in bounded memory: examples keep their length, not their samples, and the
    # batches read the files again (the same standardised waveforms as a reading at start would give)
    from mms.audio import load_audio, standardize
    from mms.train.data import DataError

    folder = tmp_path / "copy"
    shutil.copytree(data["folder"] / "train", folder / "train")
    manifest = folder / "train.jsonl"
    shutil.copy(data["train"], manifest)
    trainer = Trainer(options(data, tmp_path / "out", train=[str(manifest)], epochs=1))
    example = trainer.train_set[0]
    assert not [name for name, value in vars(example).items() if isinstance(value, np.ndarray) and name != "labels"]
    expected = standardize(load_audio(example.audio), 1e-7).astype(np.float32)
    np.testing.assert_array_equal(example.wave, expected)
    assert example.samples == expected.size and example.seconds == expected.size / 16000
    # a file that changes under a running training stops it with a one-line error naming the file
    sf.write(example.audio, np.zeros(example.samples + 800, np.float32), 16000)
    with pytest.raises(DataError, match=r"0\.wav: the file changed since training started"):
        trainer.run()
    Path(example.audio).unlink()
    with pytest.raises(DataError, match=r"0\.wav.*it was read when training started"):
        example.wave


def test_a_run_without_progress_bar_logs_progress_lines(data, tmp_path, monkeypatch, caplog):
    # logged to a file (no terminal), an epoch of a large corpus said nothing until its end
    import logging

    from mms.train import engine

    monkeypatch.setattr(engine, "REPORT_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="mms.train"):
        Trainer(options(data, tmp_path / "out", epochs=1)).run()
    lines = [r.getMessage() for r in caplog.records if ", batch " in r.getMessage()]
    assert lines and lines[0].startswith("epoch 1, batch 1/") and "loss " in lines[0] and "audio s/s" in lines[-1]


def test_time_limit_decays_the_rate_and_ends_the_epoch_with_a_dev_pass(data, tmp_path):
    from mms.train.engine import lr_factor

    # after warm-up the rate falls linearly to zero at the step total or at the time limit, whichever is first
    assert lr_factor(10, 10, 110) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, elapsed=30.0, time_limit=100.0) == pytest.approx(0.5)  # steps: 50% left
    assert lr_factor(60, 10, 110, elapsed=80.0, time_limit=100.0) == pytest.approx(0.2)  # time: 20% left
    assert lr_factor(60, 10, 110, elapsed=120.0, time_limit=100.0) == 0.0
    assert lr_factor(3, 10, 110, elapsed=120.0, time_limit=100.0) == pytest.approx(0.4)  # warm-up is by steps

    trainer = Trainer(options(data, tmp_path / "timed", epochs=50, time_limit=1e-6))
    summary = trainer.run()
    # one step, then the limit: that epoch ends there (dev pass, export) instead of being thrown away
    assert summary["stopped_early"] and trainer.step == 1 and trainer.epoch == 1
    assert len(trainer.history) == 1 and trainer.history[0]["dev_cer"] is not None
    assert (tmp_path / "timed" / "model.safetensors").exists()
    again = Trainer(options(data, tmp_path / "timed", epochs=50, time_limit=1e-6)).run()  # resumed: nothing to do
    assert again["step"] == 1 and again["epochs_done"] == 1


def test_max_steps_is_exact_and_an_epoch_it_ends_is_finished(data, tmp_path):
    # 24 utterances of ~1.2 s in batches of 3 s: a few steps per epoch; --max-steps at an epoch's last step
    probe = Trainer(options(data, tmp_path / "probe", epochs=1))
    per_epoch = probe.run()["step"]
    trainer = Trainer(options(data, tmp_path / "exact", epochs=5, max_steps=per_epoch))
    summary = trainer.run()
    assert summary["step"] == per_epoch and summary["stop_reason"] == "max_steps"
    assert trainer.epoch == 1 and len(trainer.history) == 1 and trainer.history[0]["train_loss"] is not None
    assert summary["exported"]  # that epoch ended: dev pass and export, not left for a rerun
    again = Trainer(options(data, tmp_path / "exact", epochs=5, max_steps=per_epoch)).run()  # rerun at the limit
    assert again["step"] == per_epoch and again["epochs_done"] == 1 and again["stop_reason"] == "max_steps"
    log = (tmp_path / "exact" / "train_log.jsonl").read_text().splitlines()
    assert len(log) == 1  # no second record of the same epoch
    mid = Trainer(options(data, tmp_path / "mid", epochs=5, max_steps=1)).run()
    assert mid["step"] == 1 and not mid["exported"]
    assert not [p.name for p in (tmp_path / "exact").iterdir() if ".tmp" in p.name]


def test_bad_options_and_outputs_are_usage_errors(data, tmp_path):
    from mms.train.data import DataError
    from mms.train.engine import TrainError

    for overrides in (dict(lr=float("nan")), dict(lr=-1.0), dict(save_every=0), dict(max_steps=0),
                      dict(weight_decay=-0.1), dict(warmup_steps=-1), dict(lang="en.x"), dict(lang="../x")):
        with pytest.raises((TrainError, DataError)):
            Trainer(options(data, tmp_path / "bad", **overrides))
    sneaky = tmp_path / "sneaky.jsonl"
    sneaky.write_text(data["train"].read_text().replace('"text"', '"lang": "../../x", "text"', 1))
    (tmp_path / "sneaky.jsonl").write_text(sneaky.read_text().replace("train/", str(data["folder"] / "train") + "/"))
    with pytest.raises(DataError, match="is not a code"):
        Trainer(options(data, tmp_path / "bad", train=[str(sneaky)]))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(TrainError, match="is a file"):
        Trainer(options(data, tmp_path / "a-file"))
    with pytest.raises(TrainError, match="a-file is a file, not a folder"):
        Trainer(options(data, tmp_path / "a-file" / "inside"))
    # a folder holding the state of the other training command is not continued (its optimizer is another's)
    Trainer(options(data, tmp_path / "adapter-run", mode="adapter", model=str(data["random_base"]), max_steps=1,
                    train=[str(data["new_train"])], dev=[str(data["new_dev"])])).run()
    with pytest.raises(TrainError, match="saved by `mms train-adapter`"):
        Trainer(options(data, tmp_path / "adapter-run", max_steps=2)).run()


def test_train_adapter_learns_a_new_language_and_freezes_the_rest(trained, data, tmp_path):
    from mms.checkpoints import load_checkpoint

    base = trained[1]["out"]
    trainer = Trainer(options(data, tmp_path / "adapter", mode="adapter", model=base, lang="new",
                              train=[str(data["new_train"])], dev=[str(data["new_dev"])], epochs=15, lr=1e-2))
    trainer.run()
    history = trainer.history
    print(f"adapter: loss {history[0]['train_loss']} -> {history[-1]['train_loss']}, dev CER "
          f"{history[0]['dev_cer']:.1f}% -> {min(h['dev_cer'] for h in history):.1f}%")
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert min(h["dev_cer"] for h in history) <= 0.6 * history[0]["dev_cer"]
    assert sorted(p.name for p in (tmp_path / "adapter").glob("*.safetensors")) == ["adapter.new.safetensors"]
    state = load_checkpoint(base).state_dict
    changed, frozen = 0, 0
    for name, value in trainer.model.wav2vec2.state_dict().items():
        if ".adapter_layer." in name:
            changed += not torch.equal(value, state["wav2vec2." + name].float())
        else:
            frozen += 1
            assert torch.equal(value, state["wav2vec2." + name].float()), name
    assert frozen > 0 and changed > 0


def run_mms(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_cli_train_adapter_then_asr_adapter_and_copied_into_the_base(trained, data, tmp_path):
    base = Path(trained[1]["out"])
    out = tmp_path / "xyz-adapter"
    result = run_mms("train-adapter", "--model", base, "--lang", "new", "--train", data["new_train"], "--dev",
                     data["new_dev"], "--out", out, "--epochs", "2", "--batch-seconds", "3", "--threads", "1",
                     "--precision", "bf16", "--lr", "5e-3")
    assert "2 epochs" in result.stderr and "dev CER" in result.stderr
    wavs = sorted((data["folder"] / "new_dev").glob("*.wav"))[:3]
    via_option = run_mms("asr", "--model", base, "--adapter", out, "--lang", "new", "--format", "jsonl", *wavs)
    texts = [json.loads(line)["text"] for line in via_option.stdout.splitlines()]
    assert len(texts) == 3
    # the base's own languages stay usable beside the added one
    run_mms("asr", "--model", base, "--adapter", out, "--lang", "xyz", wavs[0])
    # copying the adapter file into the base and adding the vocab.json entry works the same
    copy = tmp_path / "base-copy"
    shutil.copytree(base, copy)
    shutil.copy(out / "adapter.new.safetensors", copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    vocab["new"] = json.loads((out / "vocab.json").read_text())["new"]
    (copy / "vocab.json").write_text(json.dumps(vocab))
    copied = run_mms("asr", "--model", copy, "--lang", "new", "--format", "jsonl", *wavs)
    assert [json.loads(line)["text"] for line in copied.stdout.splitlines()] == texts


def test_short_audio_and_a_changed_base_are_handled(data, tmp_path):
    """A dev utterance shorter than the feature encoder's window is scored as empty (it had stopped the run); a
    training set of only too-short utterances is an error, not a run of 0 steps; a run's state is not resumed
    from another base model."""
    from mms.train.engine import TrainError

    (tmp_path / "short").mkdir()
    sf.write(tmp_path / "short" / "0.wav", np.full(200, 0.1, dtype=np.float32), 16000)  # no output frame
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"audio_filepath": str(tmp_path / "short" / "0.wav"), "text": "ab"}) + "\n")
    trainer = Trainer(options(data, tmp_path / "run", dev=[str(data["dev"]), str(short)], max_steps=1))
    trainer.run()
    dev = trainer.evaluate(trainer.dev_set)
    assert trainer.step == 1 and dev["dev_per_language"]["xyz"]["utterances"] == len(trainer.dev_set)
    assert any(e.audio.endswith("short/0.wav") for e in trainer.dev_set)
    with pytest.raises(TrainError, match="too short for its transcript"):
        Trainer(options(data, tmp_path / "only-short", train=[str(short)]))
    # a line that cannot be read is skipped and said, as a line without text is (it had stopped the run)
    (tmp_path / "train").symlink_to(data["folder"] / "train")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(data["train"].read_text() + '{"audio_filepath": "train/0.wav", "text": ["ab"]}\nnot json\n')
    trainer = Trainer(options(data, tmp_path / "mixed-run", train=[str(mixed)], max_steps=1))
    assert len(trainer.train_set) == len(data["train"].read_text().splitlines())
    with pytest.raises(TrainError, match="saved when training from .*random-base"):
        Trainer(options(data, tmp_path / "run", model=None, init_config=tiny_config(), max_steps=2)).run()


def test_cli_errors_are_one_line(data, tmp_path):
    from mms.errors import MMSError
    from mms.train.data import DataError
    from mms.train.engine import TrainError

    assert issubclass(TrainError, MMSError) and issubclass(DataError, MMSError)  # exit 2 through mms.command
    result = run_mms("train-adapter", "--model", data["random_base"], "--train", data["train"], "--out",
                     tmp_path / "x", check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--lang" in result.stderr
    result = run_mms("train", "--model", tmp_path / "missing", "--train", data["train"], "--out", tmp_path / "y",
                     check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing" in result.stderr
    result = run_mms("asr", "--model", data["random_base"], "--adapter", tmp_path, "--lang", "eng",
                     data["folder"] / "dev" / "0.wav", check=False)
    assert result.returncode == 2 and "no vocab.json" in result.stderr


def test_multilingual_training_with_a_lid_head(data, tmp_path):
    """Two languages in mixed batches, one output layer each, and a LID head; the exports load in mms.lid and
    mms.asr and reproduce the trainer's numbers."""
    from mms.asr import ASR
    from mms.lid.identifier import LID
    from mms.manifest import read_manifest

    trainer = Trainer(options(data, tmp_path / "multi", train=[str(data["train"]), str(data["other_train"])],
                              dev=[str(data["dev"]), str(data["other_dev"])], epochs=8, lid=True))
    trainer.run()
    last = trainer.history[-1]
    print(f"multilingual: LID {trainer.history[0]['dev_lid_accuracy']:.0f}% -> {last['dev_lid_accuracy']:.0f}%, "
          f"dev CER {last['dev_per_language']}")
    assert trainer.history[0]["dev_lid_accuracy"] < 100.0 and last["dev_lid_accuracy"] == 100.0
    out = tmp_path / "multi"
    assert json.loads((out / "lid" / "config.json").read_text())["id2label"] == {"0": "oth", "1": "xyz"}
    assert sorted(json.loads((out / "vocab.json").read_text())) == ["oth", "xyz"]
    items = read_manifest(data["dev"]) + read_manifest(data["other_dev"])
    results = LID.load(out / "lid", device="cpu").identify([i.audio for i in items])
    assert [r.lang for r in results] == [i.lang or "xyz" for i in items]
    assert LID.load(out, device="cpu").checkpoint.path == str(out / "lid")  # the model's folder finds its head
    asr = ASR.load(out, device="cpu")
    assert sorted(asr.languages) == ["oth", "xyz"]
    assert all(r.error is None for r in asr.transcribe([i.audio for i in items[-2:]], lang="oth"))
    # --lang auto identifies with the model's own lid/ head, not the registry's LID model (which would be fetched)
    auto = ASR.load(str(out), lang="auto", device="cpu")
    assert auto.lid_model == str(out / "lid")
    assert [r.lang for r in auto.transcribe([i.audio for i in items])] == [i.lang or "xyz" for i in items]

    # full training from this model continues from its LID head: before any step, the dev pass identifies the
    # languages as the exported (best) epoch did, not as an untrained head does
    again = Trainer(options(data, tmp_path / "again", model=str(out), train=[str(data["train"]), str(data["other_train"])],
                            dev=[str(data["dev"]), str(data["other_dev"])], epochs=1, lid=True))
    best = [h for h in trainer.history if h["best"]][-1]
    assert again.evaluate(again.dev_set)["dev_lid_accuracy"] == best["dev_lid_accuracy"] == 100.0


def test_full_training_from_a_model_keeps_its_output_layer(trained, data, tmp_path):
    from mms.checkpoints import load_checkpoint

    first, summary = trained
    base = summary["out"]
    again = Trainer(options(data, tmp_path / "again", model=base, epochs=1))
    before, best = again.evaluate(again.dev_set)["dev_cer"], min(h["dev_cer"] for h in first.history)
    print(f"continued from the export: dev CER {before:.2f}% before any step (its best epoch: {best:.2f}%)")
    assert before == pytest.approx(best, abs=1e-6)

    # transcripts with letters the base's "xyz" alphabet (a, b, c) lacks: those get fresh rows, a, b, c keep theirs
    more = tone_corpus(tmp_path, "more", ["ap", "qb", "rc"], 12, 9, lang="xyz")
    trainer = Trainer(options(data, tmp_path / "more-out", model=base, train=[str(data["train"]), str(more)],
                              epochs=1))
    state, vocab = load_checkpoint(base).adapters.load("xyz")
    head, tokens = trainer.model.heads["xyz"], trainer.vocabs["xyz"].tokens
    assert {"a", "b", "c"} < set(tokens) and set(tokens) - set(vocab.tokens)
    for i, token in enumerate(tokens):
        if token in vocab.tokens:
            assert torch.equal(head.weight[i], state["lm_head.weight"][vocab.tokens.index(token)].float()), token
        else:
            assert head.bias[i] == 0 and float(head.weight[i].detach().std()) < 0.05  # a fresh N(0, 0.02) row

    # a fine-tuning corpus without the letter c: the base's alphabet is kept whole, in its order (c keeps its row)
    fewer = tone_corpus(tmp_path, "fewer", ["ab", "ba"], 8, 5, lang="xyz")
    trainer = Trainer(options(data, tmp_path / "fewer-out", model=base, train=[str(fewer)], epochs=1))
    assert trainer.vocabs["xyz"].tokens == vocab.tokens
    c = vocab.tokens.index("c")
    assert torch.equal(trainer.model.heads["xyz"].weight[c], state["lm_head.weight"][c].float())


def test_cli_train_from_random_weights_of_a_config(data, tmp_path):
    """`mms train --config`: no base model, the architecture from a config.json; the export loads in mms.asr
    with that architecture. Bad configs are one-line usage errors."""
    from mms.asr import ASR

    config = tmp_path / "arch.json"
    config.write_text(json.dumps(dict(tiny_config().to_dict(), model_type="wav2vec2", hidden_dropout=0.1)))
    out = tmp_path / "scratch"
    result = run_mms("train", "--config", config, "--lang", "xyz", "--train", data["train"], "--dev", data["dev"],
                     "--out", out, "--epochs", "2", "--batch-seconds", "3", "--threads", "1", "--lr", "3e-3")
    assert "2 epochs" in result.stderr
    exported = json.loads((out / "config.json").read_text())
    assert exported["hidden_size"] == tiny_config().hidden_size
    assert exported["num_hidden_layers"] == tiny_config().num_hidden_layers
    asr = ASR.load(out, device="cpu")
    assert asr.languages == ["xyz"]
    assert asr.transcribe([str(data["folder"] / "dev" / "0.wav")], lang="xyz")[0].error is None

    bad, no_heads, short_conv = tmp_path / "bad.json", tmp_path / "no_heads.json", tmp_path / "short_conv.json"
    bad.write_text(json.dumps({"model_type": "hubert"}))
    no_heads.write_text(json.dumps({"num_attention_heads": 0}))
    short_conv.write_text(json.dumps({"conv_dim": [32, 32]}))
    for arguments, reason in (([bad], "'hubert' is not wav2vec2"), ([tmp_path / "absent.json"], "No such file"),
                              ([no_heads], "num_attention_heads must be a positive integer"),
                              ([short_conv], "same (non-zero) length"),
                              ([config, "--model", data["random_base"]], "not allowed with")):
        result = run_mms("train", "--config", *arguments, "--train", data["train"], "--out", tmp_path / "z",
                         check=False)
        assert result.returncode == 2 and result.stderr.startswith("mms train: error"), result.stderr
        assert reason in result.stderr.splitlines()[-1]


def test_delay_penalised_ctc_is_the_sum_over_penalised_paths():
    """ctc_loss with a delay penalty against brute force over every frame labelling: -log of the summed
    exp(score) of the paths that collapse to the target, each non-blank frame t scored log p - penalty * t;
    value and gradient. Without a penalty it is F.ctc_loss's "mean"."""
    import itertools

    import torch
    import torch.nn.functional as F

    from mms.train.engine import ctc_loss

    torch.manual_seed(0)
    vocab, penalty = 4, 0.3
    log_probs = torch.randn(2, 6, vocab).log_softmax(-1).requires_grad_()
    targets, frames, lengths = torch.tensor([1, 2, 3, 3]), torch.tensor([6, 5]), torch.tensor([2, 2])
    plain = F.ctc_loss(log_probs.transpose(0, 1), targets, frames, lengths, reduction="mean", zero_infinity=True)
    assert torch.allclose(ctc_loss(log_probs, targets, frames, lengths), plain)

    def collapse(path):
        out = [k for i, k in enumerate(path) if k != 0 and (i == 0 or path[i - 1] != k)]
        return out

    expected = 0.0
    for b, (target, n) in enumerate([([1, 2], 6), ([3, 3], 5)]):
        scores = [sum(log_probs[b, t, k] - (penalty * t if k else 0.0) for t, k in enumerate(path))
                  for path in itertools.product(range(vocab), repeat=n) if collapse(path) == target]
        expected = expected - torch.logsumexp(torch.stack(scores), 0) / len(target) / 2
    # an utterance with more letters than frames adds nothing, penalty or not (F.ctc_loss's zero_infinity)
    impossible = torch.randn(1, 3, vocab).log_softmax(-1).requires_grad_()
    for p in (0.0, penalty):
        nothing = ctc_loss(impossible, torch.tensor([1, 2, 1, 2]), torch.tensor([3]), torch.tensor([4]), p)
        assert nothing.item() == 0.0 and not torch.autograd.grad(nothing, impossible)[0].any()
    got = ctc_loss(log_probs, targets, frames, lengths, delay_penalty=penalty)
    grad_got, = torch.autograd.grad(got, log_probs)
    grad_expected, = torch.autograd.grad(expected, log_probs)
    assert abs(got.item() - expected.item()) < 1e-5
    assert float((grad_got - grad_expected).abs().max()) < 1e-5


def test_an_out_folder_holding_a_model_no_run_made_is_refused(data, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.safetensors").write_bytes(b"")
    with pytest.raises(TrainError, match="no training run left there; give a new folder \\(to add an adapter"):
        Trainer(options(data, tmp_path / "model"))


def test_a_folder_another_run_is_training_into_is_refused(data, tmp_path):
    from filelock import FileLock

    (tmp_path / "out").mkdir()
    other = FileLock(tmp_path / "out" / ".train.lock")
    other.acquire(timeout=0)
    trainer = Trainer(options(data, tmp_path / "out", max_steps=1))
    with pytest.raises(TrainError, match=r"--out .*out: another training run is using this folder"):
        trainer.run()
    other.release()
    trainer.run()
    assert (tmp_path / "out" / "train_state.pt").exists()


def test_a_filesystem_without_locks_warns_and_trains(tmp_path, monkeypatch, caplog):
    import filelock

    from mms.train.export import lock_out_folder

    def unsupported(self, *args, **kwargs):
        raise NotImplementedError("FileSystem does not appear to support flock")

    monkeypatch.setattr(filelock.FileLock, "acquire", unsupported)
    with caplog.at_level("WARNING", logger="mms.train"):
        with lock_out_folder(tmp_path):
            pass
    assert "this filesystem cannot lock files: make sure no other run trains into it" in caplog.text


def test_a_language_the_base_has_under_another_code_is_refused(data, tmp_path, caplog):
    """--lang en on a base with eng started a new output layer beside eng, saying nothing; the base's languages left
    out of full training are said to be dropped from the export."""
    for other in ("en", "eng_Latn"):
        with pytest.raises(TrainError, match=f"language '{other}': the base model has it as 'eng'"):
            Trainer(options(data, tmp_path / "en", lang=other))
    # another script or dialect of a base language is a new language (cmn-script_traditional beside _simplified)
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "eng-dialect", lang="eng-dialect_x"))
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "eng", lang="eng"))
    assert "transcribes eng only: the base's other languages (fra) are not carried over" in caplog.text
    assert "not an ISO 639 code" not in caplog.text
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "english", lang="english"))
    assert "language 'english' is not an ISO 639 code: trained as a new language" in caplog.text
    # a dev transcript with letters no training transcript has (the tone corpus writes a, b, c only)
    odd = tone_corpus(tmp_path, "odd", ["ab", "ca"], 3, 7)
    odd.write_text(odd.read_text().replace('"text": "', '"text": "ZZ '))
    caplog.clear()
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "odd-out", lang="eng", dev=[str(odd)]))
    assert "dev transcripts hold characters no training transcript has (z)" in caplog.text


def test_transcripts_with_digits_are_warned_about(tmp_path):
    from mms.train.data import read_examples

    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32) + 0.01, 16000)
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio_filepath": "a.wav", "text": "I have 3 cats"}) + "\n"
                                      + json.dumps({"audio_filepath": "a.wav", "text": "no numbers"}) + "\n")
    examples, problems = read_examples([str(tmp_path / "m.jsonl")], "eng")
    assert [e.text for e in examples] == ["i have cats", "no numbers"]
    assert problems == [f"1 transcripts hold numbers in digits, which the MMS normalisation removes (e.g. "
                        f"{tmp_path / 'a.wav'}: 'I have 3 cats'): spell them out"]


def test_a_run_stopped_mid_epoch_resumes_only_on_its_own_training_data(data, tmp_path):
    """The saved batch plan indexes the training set: another --train (same alphabet) is refused mid-epoch, and the
    state names the languages when those differ."""
    Trainer(options(data, tmp_path / "run", max_steps=1)).run()
    (tmp_path / "train").symlink_to(data["folder"] / "train")
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(data["train"].read_text().splitlines(keepends=True)[:12]))
    with pytest.raises(TrainError, match="stopped mid-epoch on other training data"):
        Trainer(options(data, tmp_path / "run", train=[str(fewer)], max_steps=2)).run()
    with pytest.raises(TrainError, match="saved for the language\\(s\\) xyz, not abc"):
        Trainer(options(data, tmp_path / "run", lang="abc", max_steps=2)).run()
    # other weights to train: the optimizer's state is not theirs (it was an internal error)
    with pytest.raises(TrainError, match="--lid: the run in .* was started without it"):
        Trainer(options(data, tmp_path / "run", lid=True, max_steps=2)).run()
    with pytest.raises(TrainError, match="--freeze-feature-encoder: the run in .* was started without it"):
        Trainer(options(data, tmp_path / "run", freeze_feature_encoder=True, max_steps=2)).run()


def test_training_on_a_one_layer_for_every_language_base_says_its_layer_is_left(data, tmp_path, caplog):
    """An Omnilingual ASR base: its output layer of SentencePiece pieces is not a language's; the new character
    output layer is said to start from scratch (it was silent)."""
    from mms.text.sentencepiece_vocab import from_sentencepiece
    from tests.factory import random_omniasr_model, write_omniasr, write_sentencepiece

    pieces = write_sentencepiece(tmp_path / "tok" / "literal.model")
    pt = write_omniasr(random_omniasr_model(len(from_sentencepiece(pieces)), seed=2), tmp_path / "omni" / "o.pt",
                       tokenizer=pieces)
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "out", model=str(pt), lang="eng"))
    assert "one output layer for every language" in caplog.text and "trained from scratch" in caplog.text


@pytest.mark.parametrize("failure, said", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 87168 vs 87056"), "came up short"),
    (OSError(28, "No space left on device"), "No space left on device) (the disk is full)"),
])
def test_a_state_that_cannot_be_written_is_one_line_naming_it(tmp_path, monkeypatch, failure, said):
    """A full disk: torch's zip writer says only "unexpected pos"; the state file is named, nothing half-written."""
    from mms.train import export

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(export.torch, "save", fail)
    with pytest.raises(TrainError, match=f"{tmp_path / 'train_state.pt'}: cannot write it .*{re.escape(said)}"):
        export.write_state(tmp_path / "train_state.pt", {"step": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_warm_up_longer_than_the_run_and_a_tsv_without_transcripts_are_said(data, tmp_path, caplog):
    from mms.train.data import DataError

    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "short", epochs=1, warmup_steps=1000))
    assert "--warmup-steps 1000 is more than the run's" in caplog.text and "never reaches --lr" in caplog.text
    dashed = data["folder"] / "dashed.jsonl"  # (beside the corpus: its relative paths)
    lines = data["train"].read_text().splitlines()
    first = json.loads(lines[0])
    dashed.write_text("\n".join([json.dumps(dict(first, text=first["text"] + " — " + first["text"]))] + lines[1:]))
    caplog.clear()
    with caplog.at_level("WARNING", logger="mms.train"):
        Trainer(options(data, tmp_path / "dashed", train=[str(dashed)]))
    assert "xyz: the transcripts keep — after MMS normalisation" in caplog.text
    wav = data["folder"] / "dev" / "0.wav"
    (tmp_path / "x.tsv").write_text(f"{wav.parent}\n{wav.name}\t16000\n")  # no x.wrd beside it
    with pytest.raises(DataError, match=r"x.tsv: no transcripts: a fairseq .tsv takes them from .*x.wrd"):
        Trainer(options(data, tmp_path / "tsv", train=[str(tmp_path / "x.tsv")]))
