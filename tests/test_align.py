"""mms align: spans and padding as data_prep computes them, windows, the torchaudio loader, outputs, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.align.aligner import Aligner, Pair, fairseq_windows, line_intervals, merge_repeats, padded_spans
from mms.audio import AudioError
from mms.checkpoints import load_checkpoint
from mms.checkpoints.torchaudio_mms_fa import recognizes
from mms.options import AlignOptions
from mms.results import Segment, Word
from mms.writers import get_writer
from tests.conftest import random_audio
from tests.factory import ALIGNMENT_TOKENS, alignment_config, hf_config, hf_state, random_model, write_torchaudio

MANIFEST_KEYS = ["audio_start_sec", "audio_filepath", "duration", "text", "normalized_text", "uroman_tokens"]


def mms(*args):
    return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True)


# -- spans, as data_prep's merge_repeats / get_spans ----------------------------------------------------------

def test_segments_have_inclusive_ends_and_spans_are_padded_like_data_prep():
    tokens = ["<blank>", "a", "b", "c", "d"]
    path = [0, 0, 1, 1, 2, 0, 0, 0, 3, 0, 0, 4, 0, 0, 0]
    segments = merge_repeats(path, tokens, np.zeros(len(path)))
    assert [(s.label, s.start, s.end) for s in segments] == [
        ("<blank>", 0, 1), ("a", 2, 3), ("b", 4, 4), ("<blank>", 5, 7), ("c", 8, 8), ("<blank>", 9, 10),
        ("d", 11, 11), ("<blank>", 12, 14)]
    lines = [["a", "b"], ["c"], [], ["d"]]
    intervals = line_intervals(lines, segments, "<blank>")
    assert intervals == [(1, 2), (4, 4), (4, 4), (6, 6)]  # the empty line gets the segment ending the line before
    # first line: the whole blank before it; last line: the whole blank after it; between lines: the middle of
    # the blank, int((5+7)/2) = 6 on both sides of it, floor((9+10)/2) = 9
    assert padded_spans(intervals, segments, "<blank>") == [(0, 6), (6, 9), (6, 9), (9, 14)]


def test_star_span_and_leading_empty_line():
    segments = merge_repeats([0, 1, 1, 2, 3], ["<blank>", "<star>", "a", "b"], np.zeros(5))
    intervals = line_intervals([["<star>"], ["a", "b"]], segments, "<blank>")
    assert padded_spans(intervals, segments, "<blank>") == [(0, 2), (3, 4)]
    # an empty first line (an assertion error in data_prep) takes the first segment of the next line
    assert line_intervals([[], ["a", "b"]], segments[2:], "<blank>") == [(0, 0), (0, 1)]


def test_windows_are_data_prep_windows():
    def frames(n):  # the standard conv stack
        for k, s in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
            n = (n - k) // s + 1
        return n

    windows = fairseq_windows(70 * 16000, 50.0, n_frames_of=frames)
    got = [(w.start / 16000, w.end / 16000, w.keep_from, w.keep_to, w.out_at) for w in windows]
    # input [i-3, i+33] s, kept frames [i, i+30) s: ftf(i) - ftf(i-3) = 150 frames of left context dropped
    assert got == [(0.0, 33.0, 0, 1500, 0), (27.0, 63.0, 150, 1650, 1500), (57.0, 70.0, 150, 649, 3000)]
    assert windows[-1].out_at + windows[-1].keep_to - windows[-1].keep_from == frames(70 * 16000)


# -- the torchaudio state-dict loader -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fa_model():
    return random_model(alignment_config(), {"x": len(ALIGNMENT_TOKENS)}, seed=5)


@pytest.fixture(scope="module")
def fa_path(fa_model, tmp_path_factory):
    return write_torchaudio(fa_model, tmp_path_factory.mktemp("fa") / "model.pt")


@pytest.mark.parametrize("weight_norm", ["legacy", "parametrizations"])
def test_torchaudio_file_matches_transformers(fa_model, tmp_path, weight_norm):
    import transformers

    from mms.checkpoints import instantiate

    path = write_torchaudio(fa_model, tmp_path / "model.pt", weight_norm=weight_norm)
    assert recognizes(path)
    ckpt = load_checkpoint(path)
    assert ckpt.format == "torchaudio" and not ckpt.normalize
    assert ckpt.vocab.tokens == ALIGNMENT_TOKENS and ckpt.vocab.blank == 0
    ours = instantiate(ckpt)
    reference = transformers.Wav2Vec2ForCTC(hf_config(fa_model.cfg, vocab_size=len(ALIGNMENT_TOKENS))).eval()
    reference.load_state_dict(hf_state(fa_model.state, "parametrizations"), strict=False)
    wave = torch.from_numpy(random_audio(24000, seed=2))[None]
    with torch.no_grad():
        diff = (ours(wave)[0] - reference(wave).logits).abs().max().item()
    assert diff < 1e-4  # measured 0 to ~1e-6


def test_torchaudio_without_dictionary_and_fairseq_files_are_told_apart(fa_model, tmp_path, fairseq_pt):
    model = random_model(alignment_config(vocab_size=28), {"x": 28}, seed=6)
    path = write_torchaudio(model, tmp_path / "bare" / "model.pt", tokens=None)
    ckpt = load_checkpoint(path)
    assert ckpt.vocab.tokens[0] == "-" and ckpt.vocab.blank == 0 and ckpt.notes
    assert not recognizes(fairseq_pt)
    assert load_checkpoint(fairseq_pt).format == "fairseq"


# -- subtitles ------------------------------------------------------------------------------------------------

class Record:
    """A finished result as the writers see it."""

    def __init__(self, record: dict):
        self.record, self.name, self.index, self.error = record, record["audio"], 0, record.get("error")

    def to_dict(self) -> dict:
        return self.record


def subtitles(records: list[dict], fmt: str, path) -> str:
    with get_writer("asr", fmt, path) as writer:
        for record in records:
            writer.write(Record(record))
    return path.read_text()


def test_asr_records_as_srt_and_vtt(tmp_path):
    words = [{"text": "hello", "start": 0.1, "end": 0.5}, {"text": "world", "start": 0.6, "end": 1.0},
             {"text": "again", "start": 3.0, "end": 3.5}]  # a 2 s pause starts a new cue
    records = [{"audio": "a.wav", "text": "hello world again", "duration": 4.0, "words": words},
               {"audio": "b.wav", "text": "no words", "duration": 3661.5},
               {"audio": "c.wav", "text": "", "duration": None, "error": "c.wav: no such file"}]
    assert subtitles(records[:1], "srt", tmp_path / "a.srt") == (
        "1\n00:00:00,100 --> 00:00:01,000\nhello world\n\n"
        "2\n00:00:03,000 --> 00:00:03,500\nagain\n")
    assert subtitles(records[1:2], "srt", tmp_path / "b.srt") == "1\n00:00:00,000 --> 01:01:01,500\nno words\n"
    with get_writer("asr", "srt", tmp_path / "c.srt") as writer:  # a failed input: no file
        writer.write(Record(records[2]))
    assert not (tmp_path / "c.srt").exists()
    assert subtitles(records[:1], "vtt", tmp_path / "a.vtt") == (
        "WEBVTT\n\n00:00:00.100 --> 00:00:01.000\nhello world\n\n00:00:03.000 --> 00:00:03.500\nagain\n")
    long = [{"text": "word%02d" % i, "start": i * 0.5, "end": i * 0.5 + 0.4} for i in range(12)]
    cues = subtitles([{"audio": "l", "text": "", "words": long}], "srt", tmp_path / "l.srt").split("\n\n")
    # 6 words of 6 letters make 41 characters, a 7th would pass 42
    assert [len(cue.splitlines()[2].split()) for cue in cues] == [6, 6]


# -- end to end ------------------------------------------------------------------------------------------------

TEXT = "Hello (Gen 1:1) world!\n\nIt’s 12:30, now.\nΚαλημέρα κόσμε\n"


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "chapter.wav"
    sf.write(path, random_audio(16000 * 35, seed=4), 16000)  # 35 s: two emission windows
    return path


def read_manifest_json(path):
    return [json.loads(line, object_pairs_hook=lambda pairs: pairs) for line in path.read_text().splitlines()]


def test_align_cli_writes_data_prep_outputs(fa_path, audio, tmp_path):
    (tmp_path / "chapter.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "out"
    r = mms("align", "--model", fa_path, "--audio", audio, "--text", tmp_path / "chapter.txt", "--lang", "ell",
            "--outdir", out, "--star")
    assert r.returncode == 0, r.stderr
    rows = read_manifest_json(out / "manifest.json")
    assert [[k for k, _ in row] for row in rows] == [MANIFEST_KEYS] * 5
    rows = [dict(row) for row in rows]
    assert [row["text"] for row in rows] == ["<star>", "Hello (Gen 1:1) world!", "", "It’s 12:30, now.",
                                             "Καλημέρα κόσμε"]
    assert [row["uroman_tokens"] for row in rows] == ["<star>", "h e l l o w o r l d", "", "i t ' s n o w",
                                                      "k a l e m e r a k o s m e"]
    assert rows[3]["normalized_text"] == "it's now" and rows[4]["normalized_text"] == "καλημέρα κόσμε"
    alignment = json.loads((out / "alignment.json").read_text())
    stride = alignment["stride_ms"]
    assert stride == 35 * 16000 * 1000 / 1749 / 16000  # samples * 1000 / frames / 16000 (20.011 ms)
    starts = [row["audio_start_sec"] for row in rows]
    assert starts == sorted(starts) and rows[0]["audio_start_sec"] == 0.0
    for row, line in zip(rows, alignment["lines"]):
        assert row["audio_filepath"] == f"{out}/segment{line['index']}.flac"
        assert row["audio_start_sec"] * 1000 / stride == pytest.approx(round(row["audio_start_sec"] * 1000 / stride))
        data, rate = sf.read(row["audio_filepath"])
        assert rate == 16000
        samples = round((row["audio_start_sec"] + row["duration"]) * 16000) - round(row["audio_start_sec"] * 16000)
        assert len(data) == max(samples, 1)  # one sample for a zero-length (empty) line
    words = alignment["lines"][1]["words"]
    assert [w["text"] for w in words] == ["hello", "world"]
    assert all(0 < w["score"] <= 1 and w["start"] < w["end"] for w in words)
    assert [c["text"] for c in alignment["lines"][1]["chars"]] == list("helloworld")
    srt = (out / "subtitles.srt").read_text()
    assert "Καλημέρα κόσμε" in srt and "<star>" not in srt
    assert (out / "subtitles.vtt").read_text().startswith("WEBVTT\n")
    # an existing output directory is refused unless --overwrite
    again = mms("align", "--model", fa_path, "--audio", audio, "--text", tmp_path / "chapter.txt", "--outdir", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_characters_an_asr_model_cannot_spell_are_named_and_words_keep_their_names(hf_dir, audio, tmp_path):
    (tmp_path / "t.txt").write_text("bad zebra thr face\ncab\n", encoding="utf-8")  # z, t, h, r: not units
    out = tmp_path / "out"
    r = mms("align", "--model", hf_dir, "--lang", "eng", "--audio", audio, "--text", tmp_path / "t.txt",
            "--outdir", f"{out}/")
    assert r.returncode == 0, r.stderr
    assert f"mms align: warning: {audio}: characters the model cannot spell, left out: z r t h; words left out: " \
           "thr" in r.stderr
    alignment = json.loads((out / "alignment.json").read_text())
    assert alignment["unspelled"] == ["z", "r", "t", "h"] and alignment["lost_words"] == ["thr"]
    line = alignment["lines"][0]
    assert [w["text"] for w in line["words"]] == ["bad", "zebra", "face"]  # named as written, not "eba"
    assert "".join(c["text"] for c in line["chars"]) == "badebaface"
    rows = [dict(row) for row in read_manifest_json(out / "manifest.json")]
    assert rows[0]["audio_filepath"] == f"{out}/segment0.flac"  # no "//" from the trailing slash
    (tmp_path / "none.txt").write_text("zzz thr\n", encoding="utf-8")
    r = mms("align", "--model", hf_dir, "--lang", "eng", "--audio", audio, "--text", tmp_path / "none.txt",
            "--outdir", tmp_path / "none")
    assert r.returncode == 1 and "nothing to align: the model cannot spell any character of the text (left out: " \
                                 "z t h r; is --lang that of the text?)" in r.stderr
    # --star adds a line of its own, which must not hide that the text has nothing to align
    r = mms("align", "--model", hf_dir, "--lang", "eng", "--audio", audio, "--text", tmp_path / "none.txt",
            "--outdir", tmp_path / "none-star", "--star")
    assert r.returncode == 1 and "cannot spell any character of the text" in r.stderr
    assert not (tmp_path / "none-star" / "alignment.json").exists()


def test_align_manifest_resumes_and_reports_bad_pairs(fa_path, audio, tmp_path, capsys):
    from mms.cli import main  # in-process (the single-file test above goes through a subprocess)

    (tmp_path / "bad.wav").write_text("not audio")
    (tmp_path / "t.txt").write_text("one line\nanother line\n")
    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in [
        {"audio": str(audio), "text_filepath": "t.txt", "lang": "eng"},
        {"audio": "bad.wav", "text": "whatever"},
        {"audio_filepath": str(audio), "text": "a second copy\nof the same audio"},
    ]) + "\n{\"text\": \"no audio\"}\n" + json.dumps({"audio": str(audio)}) + "\n")
    out = tmp_path / "aligned"
    args = ["align", "--model", str(fa_path), "--manifest", str(manifest), "--outdir", str(out), "-v"]
    assert main(args) == 1
    err = capsys.readouterr().err  # lines that cannot be read fail in their place; the other pairs are aligned
    assert "bad.wav" in err and "corpus.jsonl:4: no audio path" in err and "no transcript" in err
    assert sorted(os.listdir(out)) == ["chapter", "chapter_2", "manifest.json", "run.json"]
    # `mms merge` of it: nothing to merge, said as such (not "every pair missing")
    assert main(["merge", str(out)]) == 2 and "the folder of an `mms align` run" in capsys.readouterr().err
    done = out / "chapter" / "alignment.json"
    stamp = done.stat().st_mtime_ns
    assert main(args) == 1  # the bad pair is tried again and fails again; the others are skipped
    assert "2 pairs done before, 3 to do" in capsys.readouterr().err
    assert done.stat().st_mtime_ns == stamp
    gathered = [dict(row) for row in read_manifest_json(out / "manifest.json")]
    assert [row["text"] for row in gathered] == ["one line", "another line", "a second copy", "of the same audio"]
    assert gathered[0]["audio_filepath"] == f"{out}/chapter/segment0.flac"
    # a resume with other settings, or an edited transcript, would mix alignments: refused (run.json)
    assert main(args + ["--star"]) == 2 and "star (False -> True)" in capsys.readouterr().err
    (tmp_path / "t.txt").write_text("one line\nan edited line\n")
    assert main(args) == 2 and "the inputs (their files, order, texts or languages)" in capsys.readouterr().err


def test_align_manifest_in_shards_gathers_every_pair(fa_path, audio, tmp_path, capsys):
    """Two shards (as two SLURM array tasks would run them) write disjoint pairs; the manifest.json gathered
    by the last one lists every pair, in pair order, as one unsharded run does."""
    from mms.cli import main

    manifest = tmp_path / "corpus.jsonl"
    manifest.write_text("\n".join(json.dumps({"audio": str(audio), "text": f"line {i}\nnext {i}"}) for i in range(3)))
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["align", "--model", str(fa_path), "--manifest", str(manifest), "--outdir", str(whole)]) == 0
    assert main(["align", "--model", str(fa_path), "--manifest", str(manifest), "--outdir", str(split),
                 "--shard", "1/2"]) == 0
    assert sorted(os.listdir(split)) == ["chapter_2", "manifest.json", "run.json"]  # pair 1 only
    assert main(["align", "--model", str(fa_path), "--manifest", str(manifest), "--outdir", str(split),
                 "--shard", "0/2"]) == 0
    capsys.readouterr()
    rows = [dict(row)["text"] for row in read_manifest_json(split / "manifest.json")]
    assert rows == [dict(row)["text"] for row in read_manifest_json(whole / "manifest.json")] and len(rows) == 6
    assert json.loads((split / "chapter_3" / "alignment.json").read_text())["lines"] == \
        json.loads((whole / "chapter_3" / "alignment.json").read_text())["lines"]


def test_align_usage_errors(fa_path, tmp_path):
    assert mms("align", "--model", fa_path, "--outdir", tmp_path / "o").returncode == 2
    r = mms("align", "--model", tmp_path / "missing.pt", "--audio", "a.wav", "--text", "t", "--outdir", tmp_path / "o")
    assert r.returncode == 2 and "missing.pt" in r.stderr and "Traceback" not in r.stderr


def test_a_failed_pair_leaves_no_empty_outdir(fa_path, audio, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    r = mms("align", "--model", fa_path, "--audio", audio, "--text", tmp_path / "empty.txt", "--lang", "ell",
            "--outdir", tmp_path / "o")
    assert r.returncode == 1 and "nothing to align" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()  # made for the pair, removed again when it failed
    (tmp_path / "kept").mkdir()  # a folder the user made stays
    mms("align", "--model", fa_path, "--audio", audio, "--text", tmp_path / "empty.txt", "--lang", "ell",
        "--outdir", tmp_path / "kept")
    assert (tmp_path / "kept").is_dir()


def test_emissions_are_stitched_from_windows(fa_path, audio):
    from mms.audio import load_audio

    aligner = Aligner.load(fa_path, device="cpu", options=AlignOptions(batch_seconds=40))
    wave = load_audio(audio)
    emissions, _ = aligner.emissions(wave)
    model = aligner.runner.model
    worst = 0.0
    with torch.no_grad():
        for w in fairseq_windows(wave.size, 50.0, n_frames_of=model.wav2vec2.frame_lengths):
            alone = model(torch.from_numpy(wave[w.start:w.end])[None])[0][0].log_softmax(-1)
            got = emissions[w.out_at:w.out_at + w.keep_to - w.keep_from]
            worst = max(worst, (got - alone[w.keep_from:w.keep_to]).abs().max().item())
    assert worst < 1e-4  # batched with padding vs one window alone


def test_align_iter_reports_each_pair_and_goes_on(fa_path, audio, tmp_path):
    aligner = Aligner.load(fa_path, device="cpu")
    (tmp_path / "t.txt").write_text("one line\nanother line\n")
    wave = random_audio(16000 * 3, seed=9)
    pairs = [(wave, "hello world"), (str(tmp_path / "missing.wav"), ["x"]),
             Pair(str(audio), str(tmp_path / "t.txt"), "eng", name="chapter"), (wave[:100], ["hello"])]
    results = list(aligner.align_iter(pairs, star=True))
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.name for r in results] == ["array", "missing", "chapter", "array_2"]  # distinct output names
    assert [r.error is None for r in results] == [True, False, True, False]
    assert results[1].error.startswith(str(tmp_path / "missing.wav") + ": ")
    assert results[3].error == "<array 3>: audio too short (0.006 s) for one frame"
    line = results[2].lines[2]
    assert isinstance(line, Segment) and all(isinstance(w, Word) for w in line.words + line.chars)
    assert [w.text for w in line.words] == ["another", "line"] and results[2].wave is None
    record = results[2].to_dict()
    assert list(record) == ["index", "audio", "name", "lang", "duration", "stride_ms", "lines"]
    assert (record["index"], record["name"], record["lang"]) == (2, "chapter", "eng")
    assert list(record["lines"][2]) == ["index", "text", "normalized_text", "tokens", "start", "end", "score",
                                        "words", "chars"]
    # a malformed pair is its own error; a string of lines is split at "\n" (it had been one line per character);
    # a stereo array is refused (it had been flattened, channels interleaved)
    bad = list(aligner.align_iter([(str(audio), None), (wave, ["hello"], "eng")]))
    assert all("not a Pair or an (audio, text) tuple" in r.error for r in bad)
    with pytest.raises(TypeError, match="an iterable of pairs"):  # (a path was taken as pairs, one per character)
        list(aligner.align_iter(str(audio)))
    # the same audio twice (or an absolute path) in a directory: each pair in a folder of its own, inside it
    from mms.writers import get_writer

    with get_writer("align", "dir", str(tmp_path / "out"), single=False) as writer:
        for result in aligner.align_iter([(str(audio), "one line"), (str(audio), ["another line"])], keep_audio=True):
            writer.write(result)
    stem = os.path.splitext(os.path.basename(str(audio)))[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["manifest.json", stem, f"{stem}_2"])
    assert len((tmp_path / "out" / "manifest.json").read_text().splitlines()) == 2
    assert len(aligner.align(str(audio), "one line\nanother line").lines) == 2
    with pytest.raises(AudioError, match="expected a 1-D waveform"):
        aligner.align(np.stack([wave, wave], 1), ["hello"])
    assert list(record["lines"][2]["words"][0]) == ["text", "start", "end", "score"]
    # one pair: align() raises what stopped it
    with pytest.raises(ValueError, match="every line is empty"):
        aligner.align(wave, ["12:30"])


def test_align_help_does_not_import_torch():
    code = ("import sys\nfrom mms.cli import main\ntry: main(['align', '--help'])\nexcept SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "--star" in out and "manifest.json" in out and out.strip().endswith("TORCH False")
    # the output directory writer sits below the tasks: no torch, no mms.align
    code = "import sys, mms.writers.alignment\nprint(sorted(m for m in sys.modules if m in ('torch', 'mms.align')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_a_star_line_in_the_transcript_is_the_token_not_the_word():
    # it had been normalised into the word "star" and aligned as the letters s t a r
    examples = os.path.join(os.path.dirname(__file__), "..", "examples")
    aligner = Aligner.load("demo", lang="eng", device="cpu", dtype="float32")
    text = open(os.path.join(examples, "eng_story.txt"), encoding="utf-8").read().split("\n")[:2]
    result = aligner.align(os.path.join(examples, "eng_story.wav"), ["<star>", text[0], "<star>", text[1]])
    assert [line.tokens for line in result.lines][0::2] == ["<star>", "<star>"]
    assert "s t a r" not in " ".join(line.tokens for line in result.lines)
    assert [line.text for line in result.subtitles] == text[:2]


def test_a_transcript_of_other_speech_is_warned_about(tmp_path):
    # it had aligned with exit 0 and no word of warning (its line scored 0.0003, the right one 0.4-0.7)
    examples = os.path.join(os.path.dirname(__file__), "..", "examples")
    (tmp_path / "other.txt").write_text("completely unrelated words about bananas and elephants\n")
    r = mms("align", "--model", "demo", "--lang", "eng", "--audio", os.path.join(examples, "eng_hello.wav"),
            "--text", tmp_path / "other.txt", "--outdir", tmp_path / "out")
    assert r.returncode == 0 and "scored below 0.01" in r.stderr and "is the transcript that of this audio?" in r.stderr
    (tmp_path / "own.txt").write_text("good morning friend\n")
    r = mms("align", "--model", "demo", "--lang", "eng", "--audio", os.path.join(examples, "eng_hello.wav"),
            "--text", tmp_path / "own.txt", "--outdir", tmp_path / "own")
    assert r.returncode == 0 and "scored below" not in r.stderr


def test_pair_folders_never_collide(tmp_path):
    """Two files named utt.wav and one named utt_2.wav (in three folders) get three folders: the second utt is not
    written into utt_2.wav's (which had lost a pair's alignment and still counted it done)."""
    from mms.align.aligner import read_pairs

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps({"audio": f"{folder}/{name}.wav", "text": "x"}) + "\n" for folder, name in
                                [("a", "utt"), ("b", "utt"), ("c", "utt_2"), ("d", "UTT"), ("e", "utt")]))
    names = [pair.name for pair in read_pairs(str(manifest))]
    assert names == ["utt", "utt_2", "utt_2_2", "UTT", "utt_3"]


def test_overwrite_redoes_the_pairs_with_new_settings(tmp_path):
    """--overwrite starts the run anew (its settings recorded again); without it, other settings are refused before
    anything says "resuming"."""
    root = Path(__file__).resolve().parent.parent
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": str(root / "examples" / "eng_hello.wav"), "text": "good morning friend"})
                        + "\n")
    base = [sys.executable, "-m", "mms", "align", "--model", "demo", "--lang", "eng", "--manifest", str(manifest),
            "--outdir", str(tmp_path / "out")]
    assert subprocess.run(base, capture_output=True, text=True).returncode == 0
    refused = subprocess.run(base + ["--star"], capture_output=True, text=True)
    assert refused.returncode == 2 and "other settings" in refused.stderr and "resuming" not in refused.stderr
    redone = subprocess.run(base + ["--star", "--overwrite"], capture_output=True, text=True)
    assert redone.returncode == 0, redone.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["settings"]["star"] is True


def test_a_line_spanning_far_more_audio_than_its_text_is_named():
    """Lines left out of a transcript: the speech is taken in by a neighbour, which then lasts far longer per
    character than the recording's other lines (a 5-minute espeak-ng recording: 17 and 32 s for 3-second lines)."""
    from types import SimpleNamespace

    from mms.align.aligner import STAR, stretched_lines

    def line(index, text, start, end):
        return SimpleNamespace(index=index, text=text, normalized_text=text, start=start, end=end)

    lines = [line(i, "good morning my friend", 3.0 * i, 3.0 * i + 2.5) for i in range(6)]
    assert stretched_lines(lines) == []
    lines[3].end = lines[3].start + 17.3  # the lines after it missing from the transcript
    lines.append(line(6, STAR, 40.0, 90.0))  # <star> takes what it likes
    assert stretched_lines(lines) == [(3, 17.3)]
    assert stretched_lines(lines[:2]) == []  # too few lines to tell what is usual
