"""The text-to-speech pipeline (mms.tts.TTS) and `mms tts`, on a tiny random voice."""

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.errors import MMSError
from mms.options import TTSOptions
from mms.results import Result
from mms.tts import TTS, TextError
from mms.tts.synthesizer import Speech, build_model, load_voice
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


def test_split_none_speaks_the_whole_text_in_one_pass(tts):
    """As fairseq's infer.py and transformers' VitsModel: one sequence, no sentences, no pauses."""
    text = "First one here. And the second! A third, with a comma.\n"
    for noise in (dict(noise_scale=0, noise_scale_duration=0), {}):
        wave, _ = tts.synthesize(text, split="none", seed=4, **noise)
        whole = tts.text.prepare(text).ids
        np.testing.assert_array_equal(wave, tts.forward([whole], [4], **noise)[0])
        split, _ = tts.synthesize(text, seed=4, **noise)
        assert split.size != wave.size
    # a text over --max-chars stays whole too
    long = "word " * 100
    sentences, _ = tts.prepare(long, TTSOptions(split="none", max_chars=20))
    assert len(sentences) == 1 and sentences[0].text == long.strip()


def test_options_object_and_overrides(tts):
    options = TTSOptions(seed=6, noise_scale=0, pause=0.5)
    wave, _ = tts.synthesize("One. Two.", options)
    again, _ = tts.synthesize("One. Two.", TTSOptions(seed=1, noise_scale=0, pause=0.5), seed=6)
    np.testing.assert_array_equal(wave, again)
    assert wave.size == sum(alone(tts, t, s, noise_scale=0).size for t, s in (("One.", 6), ("Two.", 7))) + 8000
    with pytest.raises(MMSError, match="unknown split"):
        tts.synthesize("x", split="paragraphs")


def test_batches_equal_one_by_one(tts):
    texts = ["A short one.", "A somewhat longer sentence, with a clause. Then another.", "x", "Mid length text"]
    for noise in (dict(noise_scale=0, noise_scale_duration=0), {}):
        batched = [s.wave for s in tts.synthesize_iter(texts, seed=1, batch_tokens=10_000, **noise)]
        single = [s.wave for s in tts.synthesize_iter(texts, seed=1, batch_tokens=1, **noise)]  # one by one
        for a, b in zip(batched, single):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=TOLERANCE)


def record_batches(tts, monkeypatch) -> list[tuple]:
    """The [batch, ids] shape of every forward pass of the voice's model, from now on."""
    shapes = []
    forward = tts.model.forward

    def recording_forward(ids, lengths=None, **kw):
        shapes.append(tuple(ids.shape))
        return forward(ids, lengths, **kw)

    monkeypatch.setattr(tts.model, "forward", recording_forward)
    return shapes


def test_the_cpu_default_is_one_sentence_per_pass(tts, monkeypatch):
    """Padded batches ran 1.2-1.3x slower than one sentence at a time on the CPU (docs/performance.md)."""
    shapes = record_batches(tts, monkeypatch)
    texts = ["One sentence here. And a second one.", "A third", "the fourth."]
    default = [s.wave for s in tts.synthesize_iter(texts, seed=2)]
    assert [b for b, _ in shapes] == [1, 1, 1, 1]
    shapes.clear()
    batched = [s.wave for s in tts.synthesize_iter(texts, seed=2, batch_tokens=1000)]
    assert [b for b, _ in shapes] == [4]  # the buffer's four sentences in one padded batch
    for a, b in zip(default, batched):
        np.testing.assert_allclose(a, b, atol=TOLERANCE)


def test_long_text_in_bounded_batches(tts, monkeypatch):
    sentence = "The quick brown fox jumps over the lazy dog near the river bank, and then it rests. "
    text = (sentence * 60)[:5000]
    shapes = record_batches(tts, monkeypatch)
    speech = next(tts.synthesize_iter([text], noise_scale=0, noise_scale_duration=0, batch_tokens=400))
    assert speech.error is None
    sentences, _ = tts.prepare(text)
    assert len(sentences) == 60
    assert sum(b for b, _ in shapes) == 60 and max(b * t for b, t in shapes) <= 400
    per_sentence = [alone(tts, s.text, 0, noise_scale=0, noise_scale_duration=0).size for s in sentences]
    assert speech.wave.size == sum(per_sentence) + 59 * int(0.2 * 16000)


def test_out_of_memory_halves_the_batch_and_fails_only_its_input(tts, monkeypatch):
    forward = tts.model.forward

    def short_of_memory(ids, lengths=None, **kw):
        if ids.shape[0] > 1 or ids.shape[1] > 60:  # a batch, or the long sentence alone
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB\nmore lines")
        return forward(ids, lengths, **kw)

    monkeypatch.setattr(tts.model, "forward", short_of_memory)
    texts = ["short.", "A much longer sentence that needs more memory than there is", "tiny"]
    speeches = list(tts.synthesize_iter(texts, seed=0, noise_scale=0, batch_tokens=1000))  # one batch at first
    assert [s.error is None for s in speeches] == [True, False, True]
    assert speeches[1].error == "text: model failed (RuntimeError: CUDA out of memory. Tried to allocate 2 GiB)"
    np.testing.assert_array_equal(speeches[0].wave, alone(tts, "short.", 0, noise_scale=0))


def test_speech_is_a_result_named_by_its_line(tts):
    speeches = list(tts.synthesize_iter([(3, "a line"), (7, "?!"), "plain"], seed=0))
    assert all(isinstance(s, Result) for s in speeches)
    assert [(s.index, s.name) for s in speeches] == [(0, "line 3"), (1, "line 7"), (2, "text")]
    assert speeches[1].error.startswith("line 7: no character")
    assert speeches[0].to_dict() == {"index": 0, "line": 3, "text": "a line", "path": None,
                                     "duration": speeches[0].duration, "error": None, "dropped": []}
    assert speeches[2].to_dict()["line"] is None


def test_synthesize_iter_is_lazy(tts):
    def texts():
        yield "first"
        raise AssertionError("read too far")

    assert next(tts.synthesize_iter(texts(), batch_tokens=1)).error is None  # its buffer is full at once


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
    assert speeches[1].error == "text: empty text"
    assert "no character" in speeches[2].error and "'!'" in speeches[2].error
    assert speeches[2].dropped == ["!", "?"]  # named in its record too
    assert speeches[3].dropped == ["ü", "ï", ","]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'ü' 'ï' ','" in warnings[0]
    with pytest.raises(TextError, match="empty text"):
        tts.synthesize("   ")
    with TTS.load("demo", lang="eng", device="cpu") as demo, \
            pytest.raises(TextError, match="nothing to speak: '- -' holds no letter"):  # (it said "dropped: none")
        demo.synthesize("- -")
    assert issubclass(TextError, MMSError)


def test_absurd_durations_fail_their_input_not_the_machine(tts):
    """A duration noise or speaking rate that would make hours of speech of a few letters (gigabytes of frames)
    fails that input with a clear error; the other inputs complete."""
    speeches = list(tts.synthesize_iter(["fine text", "a b"], seed=0, noise_scale_duration=1e4))
    assert all(s.error and "is too long (is --noise-scale-duration or --speaking-rate extreme?)" in s.error
               for s in speeches), [s.error for s in speeches]
    speeches = list(tts.synthesize_iter(["fine text", "a b"], seed=0, speaking_rate=1e-6))
    assert all(s.error and "too long" in s.error for s in speeches)
    assert all(s.error is None for s in tts.synthesize_iter(["fine text", "a b"], seed=0))


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


def mms(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "mms", "tts", *map(str, args)], input=stdin,
                          capture_output=True, env=env)


def hub_cache_with(voice, repo: str, cache):
    """The environment of a huggingface_hub cache at `cache` holding `voice`'s files as the download of `repo`,
    offline: the hub finds the voice there and never reaches for the network."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    commit = "0" * 40
    shutil.copytree(voice, folder / "snapshots" / commit)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    return {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


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


def test_cli_wav_into_a_named_pipe(tts, tmp_path):
    """`--wav >(...)` or a FIFO: the wav is built in memory (its header needs seeking) and written into the pipe,
    which stays a pipe."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    r = mms("--model-dir", voice_dirs().hf, "--txt", "Hello there", "--wav", fifo, "--format", "wav", "--seed", "5")
    got = reader.communicate(timeout=60)[0]
    assert r.returncode == 0, r.stderr
    assert os.path.exists(fifo) and not os.path.isfile(fifo)
    expected, _ = tts.synthesize("Hello there", seed=5)
    assert sf.info(io.BytesIO(got)).frames == expected.size


def test_cli_stdin_to_stdout_resampled_pcm(tts):
    r = mms("--model", voice_dirs().original, "--wav", "-", "--seed", "1", "--sample-rate", "22050",
            stdin=b"Some text from a pipe.")
    assert r.returncode == 0, r.stderr
    info = sf.info(io.BytesIO(r.stdout))
    assert info.samplerate == 22050 and info.subtype == "PCM_16"
    expected, _ = tts.synthesize("Some text from a pipe.", seed=1, sample_rate=22050)
    assert info.frames == expected.size
    named = mms("--model", voice_dirs().original, "--txt", "-", "--wav", "-", "--seed", "1", "--sample-rate", "22050",
                stdin=b"Some text from a pipe.")  # --txt -: the same (as --file - and --wav -)
    assert named.returncode == 0 and named.stdout == r.stdout, named.stderr
    empty = mms("--model", voice_dirs().original, "--txt", "-", "--wav", "-", stdin=b"  \n")
    assert empty.returncode == 2 and b"standard input: empty text" in empty.stderr


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
    assert [(r["index"], r["line"]) for r in index] == [(0, 1), (1, 3), (2, 4)]  # index: 0-based, as every record
    assert [r["text"] for r in index] == ["first line", "?!?", "third, with a comma"]
    assert index[1]["error"] and index[1]["path"] is None and index[1]["duration"] is None
    for record in (index[0], index[2]):
        assert record["error"] is None and record["path"] == f"{record['index'] + 1:04d}.flac"  # relative to the index
        assert abs(sf.info(outdir / record["path"]).duration - record["duration"]) < 1e-3
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.flac", "0003.flac", "index.jsonl", "index.jsonl.run.json"]

    # a new run that fails to start (a language the voices lack) leaves the previous run as it was
    r = mms("--model", voice_dirs().root, "--lang", "xyz", "--file", lines, "--outdir", outdir)
    assert r.returncode == 2 and "removed" not in r.stderr.decode()
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.flac", "0003.flac", "index.jsonl", "index.jsonl.run.json"]
    # a new run (no --resume) in that folder: the previous run's audio goes with its index, none stays unlisted;
    # lines are split as an editor numbers them (not at U+2028), and standard input is read as --file is
    r = mms("--model", voice_dirs().root, "--lang", "eng", "--file", "-", "--outdir", outdir, "--seed", "2",
            "--format", "flac", stdin="\ufeffone\u2028line\r\nnext\n".encode())
    assert r.returncode == 0 and "its 2 audio files removed" in r.stderr.decode()
    index = [json.loads(line) for line in (outdir / "index.jsonl").read_text().splitlines()]
    assert [(r["line"], r["text"]) for r in index] == [(1, "one\u2028line"), (2, "next")]
    assert sorted(p.name for p in outdir.iterdir()) == ["0001.flac", "0002.flac", "index.jsonl", "index.jsonl.run.json"]
    r = mms("--model", voice_dirs().root, "--lang", "eng", "--wav", tmp_path / "x.wav", stdin=b"caf\xe9")
    assert r.returncode == 2 and "standard input: cannot read text" in r.stderr.decode()

    # --output-dir alone (a corpus run's folder: run.json and part files instead of index.jsonl)
    run = tmp_path / "run"
    r = mms("--model", voice_dirs().root, "--lang", "eng", "--file", lines, "--output-dir", run, "--seed", "2")
    assert r.returncode == 1 and "Traceback" not in r.stderr.decode()
    parts = [json.loads(line) for line in (run / "part-00000-of-00001.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in parts) == [0, 1, 2] and (run / "run.json").exists()
    assert sorted(p.name for p in run.glob("*.wav")) == ["0001.wav", "0003.wav"]


def test_without_model_the_language_picks_the_default_voice(tts, tmp_path, monkeypatch):
    env = hub_cache_with(voice_dirs().hf, "facebook/mms-tts-eng", tmp_path / "hub")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    voice = load_voice(None, "eng")
    assert voice.lang == "eng" and (tmp_path / "hub") in Path(voice.path).parents
    with pytest.raises(MMSError, match="give --lang"):
        load_voice(None, None)

    out = tmp_path / "out.wav"
    text = "Expanding the language coverage. Of speech technology!"
    r = mms("--lang", "eng", "--txt", text, "--wav", out, "--seed", "5", "--split", "none", "--float",
            env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    written, _ = sf.read(out, dtype="float32")
    np.testing.assert_array_equal(written, tts.forward([tts.text.prepare(text).ids], [5])[0])


def test_the_index_of_an_outdir_is_a_manifest_for_asr(tmp_path):
    """index.jsonl names its files relative to itself, as manifests do: `mms asr --manifest DIR/index.jsonl` reads
    them from another working directory and scores them against their text (the paths had been relative to the
    cwd of the TTS run, which the manifest reader resolved to DIR/DIR/0001.wav)."""
    (tmp_path / "lines.txt").write_text("good morning\nhello friend\n")
    r = subprocess.run([sys.executable, "-m", "mms", "tts", "--model", "demo", "--lang", "eng", "--file", "lines.txt",
                        "--outdir", "voice", "--seed", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (tmp_path / "elsewhere").mkdir()
    r = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", "eng", "--manifest",
                        tmp_path / "voice" / "index.jsonl", "--format", "jsonl"], cwd=tmp_path / "elsewhere",
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["audio"] for rec in records] == [str(tmp_path / "voice" / f"000{i}.wav") for i in (1, 2)]
    assert "CER" in r.stderr and all(rec["text"] for rec in records)


def test_merged_and_resumed_indexes_name_their_files_from_where_they_are(tmp_path):
    """mms merge of a tts --output-dir writes paths from the merged file's folder; resuming an index.jsonl of an
    older run (paths from that run's cwd) rewrites its lines to the index-relative names the new lines get."""
    def run(*args):
        r = subprocess.run([sys.executable, "-m", "mms", *map(str, args)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r

    (tmp_path / "lines.txt").write_text("good morning\nhello friend\n")
    run("tts", "--model", "demo", "--lang", "eng", "--file", "lines.txt", "--output-dir", "run", "--seed", "1")
    run("merge", "run", "-o", "out/all.jsonl")
    merged = [json.loads(line) for line in (tmp_path / "out" / "all.jsonl").read_text().splitlines()]
    assert [r["path"] for r in merged] == [os.path.join("..", "run", "0001.wav"), os.path.join("..", "run", "0002.wav")]
    assert all((tmp_path / "out" / r["path"]).is_file() for r in merged)

    run("tts", "--model", "demo", "--lang", "eng", "--file", "lines.txt", "--outdir", "wavs", "--seed", "1")
    index = tmp_path / "wavs" / "index.jsonl"
    first = json.loads(index.read_text().splitlines()[0])
    index.write_text(json.dumps(dict(first, path="wavs/0001.wav")) + "\n")  # as an older run wrote it, one line done
    # the same folder spelt otherwise (absolute, a trailing slash) and wav named: the same run, resumed
    run("tts", "--model", "demo", "--lang", "eng", "--file", "lines.txt", "--outdir", f"{tmp_path / 'wavs'}/",
        "--seed", "1", "--resume", "--format", "wav")
    assert [json.loads(line)["path"] for line in index.read_text().splitlines()] == ["0001.wav", "0002.wav"]


def test_speech_writer_streams_the_index_and_names_failed_writes(tmp_path):
    from mms.writers import get_writer

    outdir = tmp_path / "out"
    speeches = [Speech(i, f"text {i}", 8000, np.full(800, 0.1 * i, np.float32), line=i + 1) for i in range(12)]
    speeches[4].error = "line 5: no character of the text is in the voice's vocabulary (dropped: '?')"
    speeches[4].wave = None
    (outdir / "00007.wav").mkdir(parents=True)  # where input 7's file would go: it cannot be written
    with get_writer("tts", "audio", str(outdir), outdir=True, count=12000) as writer:
        for n, speech in enumerate(speeches, 1):
            writer.write(speech)
            assert len((outdir / "index.jsonl").read_text().splitlines()) == n  # on disk at once
    records = [json.loads(line) for line in (outdir / "index.jsonl").read_text().splitlines()]
    assert [r["path"] is None for r in records] == [i in (4, 6) for i in range(12)]
    assert records[6]["error"].startswith(f"line 7: {outdir / '00007.wav'}: cannot write audio")
    assert speeches[6].error == records[6]["error"]
    written, rate = sf.read(outdir / records[3]["path"], dtype="float32")
    assert rate == 8000 and records[3]["path"] == "00004.wav" and abs(written[0] - 0.3) < 1e-4
    assert speeches[3].path == str(outdir / "00004.wav")  # the Python result: where the file is
    assert not any(p.name.endswith(".tmp") for p in outdir.iterdir())

    single = get_writer("tts", "audio", str(tmp_path / "one.flac"))
    single.write(speeches[1])
    assert sf.info(tmp_path / "one.flac").format == "FLAC" and speeches[1].path == str(tmp_path / "one.flac")
    with pytest.raises(MMSError, match="one text"):
        single.write(speeches[2])


def test_writers_do_not_import_torch():
    code = "import sys, mms.writers.audio\nprint('torch' in sys.modules, 'mms.tts' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_cli_usage_and_model_errors(tmp_path):
    for args, fragment in [
        (("--model", voice_dirs().hf, "--txt", "x"), "--wav"),
        (("--model", voice_dirs().hf, "--file", tmp_path / "none.txt", "--outdir", tmp_path), "none.txt"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.mp3"), "suffix"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--format", "flac"),
         "would write FLAC into a .wav file"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "y.FLAC", "--float"), "--float applies"),
        (("--model", tmp_path / "missing", "--txt", "x", "--wav", tmp_path / "x.wav"), "missing"),
        (("--model", voice_dirs().root, "--lang", "xyz", "--txt", "x", "--wav", tmp_path / "x.wav"),
         "unknown language 'xyz'"),
        (("--txt", "x", "--wav", tmp_path / "x.wav"), "give --lang"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--pause", "-1"), "--pause"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--noise-scale", "nan"),
         "--noise-scale"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--noise-scale-duration", "-1"),
         "--noise-scale-duration"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--pause", "1e9"),
         "--pause: at most 60 seconds"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--seed", "9" * 20),
         "--seed: must be from 0 to 2**62"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--sample-rate", "1"),
         "--sample-rate: a sample rate from 1000 to 384000 Hz"),
        (("--model", voice_dirs().hf, "--txt", " ", "--wav", tmp_path / "x.wav"), "--txt: empty text"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--progress"),
         "--progress shows the progress of a folder of outputs"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--output-dir", tmp_path / "d"),
         "give either --wav or --output-dir"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--split", "none", "--pause", "1"),
         "--pause and --max-chars apply to --split sentences"),
        (("--model", voice_dirs().hf, "--txt", "x", "--wav", tmp_path / "x.wav", "--split", "none",
          "--max-chars", "50"), "--pause and --max-chars apply to --split sentences"),
    ]:
        r = mms(*args)
        stderr = r.stderr.decode()
        assert r.returncode == 2, (args, stderr)
        assert fragment in stderr and "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_api_options_are_checked_when_given(tts):
    # they had divided by zero, looped forever (max_chars 0), or returned silence (a negative rate)
    for bad, message in ((dict(max_chars=0), "max_chars must be an integer above 0"),
                         (dict(speaking_rate=0), "speaking_rate must be a number above 0"),
                         (dict(speaking_rate=-1), "speaking_rate must be"), (dict(pause=-1), "pause must be"),
                         (dict(seed=2 ** 64), "seed must be"), (dict(seed=1.5), "seed must be an integer"),
                         (dict(sample_rate=0), "sample_rate must be"), (dict(split="x"), "unknown split")):
        with pytest.raises(MMSError, match=message):
            tts.synthesize_iter(["good morning. today"], **bad)  # at the call, not at the first next()
    # a numpy integer seed is an integer (torch's generator took only a Python int); one string is not a list
    np_seed = [s.wave for s in tts.synthesize_iter(["good morning"], seed=np.int64(3))]
    np.testing.assert_array_equal(np_seed[0], tts.synthesize_iter(["good morning"], seed=3).__next__().wave)
    with pytest.raises(TypeError, match="an iterable of texts"):
        tts.synthesize_iter("good morning")


def test_library_warnings_are_not_printed_unless_logging_is_set_up():
    """The dropped-character warning goes to the application's logging; a library user who set none gets no
    stderr lines per text (the Speech carries `dropped`), a user who did gets it through logging."""
    code = ("import logging, sys\nfrom mms.tts import TTS\n"
            "tts = TTS.load('demo', lang='eng', device='cpu')\n"
            "print(list(tts.synthesize_iter(['good morning!']))[0].dropped)\n"
            "logging.basicConfig(stream=sys.stdout, format='LOG %(message)s')\n"
            "list(tts.synthesize_iter(['good morning!']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.splitlines()[0] == "['!']" and "LOG " in r.stdout and "dropped characters" in r.stdout


def test_the_audio_writer_refuses_what_it_cannot_write_when_made(tmp_path):
    from mms.writers import WriterError, get_writer

    for dest, message in ((tmp_path / "out.mp3", "cannot write audio format 'mp3'"),
                          (tmp_path, "is a directory (a folder of numbered files: outdir=True)")):
        with pytest.raises(WriterError, match=re.escape(message)):
            get_writer("tts", "audio", str(dest))
