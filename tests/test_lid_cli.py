"""`mms lid` through a subprocess, as a user runs it."""

import json
import subprocess
import sys

import pytest
import soundfile as sf

from tests.conftest import random_audio
from tests.factory import random_lid_model, write_fairseq_lid

LABELS = ["eng", "fra", "deu", "swh", "hin", "urd"]


def mms(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A fairseq LID checkpoint whose output 3 (swh) is forced, two wavs and a fairseq manifest with a bad line."""
    d = tmp_path_factory.mktemp("lid_cli")
    model = random_lid_model(LABELS, seed=4)
    model.state["classifier.bias"][3] += 50.0
    write_fairseq_lid(model, d / "mms1b_l6.pt", task_state=False)  # labels from dict.lang.txt
    for name, n in [("a.wav", 20000), ("b.wav", 36000)]:
        sf.write(d / name, random_audio(n, seed=n), 16000)
    (d / "dev.tsv").write_text(f"{d}\na.wav\t20000\nmissing.wav\t100\nb.wav\t36000\n")
    return d


def test_help_does_not_import_torch():
    code = ("import sys\nfrom mms.cli import main\ntry: main(['lid', '--help'])\nexcept SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "--window S" in out and "examples:" in out and "predictions.txt" in out
    assert out.strip().endswith("TORCH False")


def test_manifest_jsonl_and_fairseq_predictions(corpus, tmp_path):
    out = tmp_path / "lid.jsonl"
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "dev.tsv", "--format", "jsonl", "--output", out,
            "--top-k", "2", "--names")
    assert r.returncode == 1  # one input failed, the others are written
    assert r.stderr.strip() == f"mms lid: error: {corpus / 'missing.wav'}: no such file"
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [rec["audio"] for rec in records] == [str(corpus / n) for n in ("a.wav", "missing.wav", "b.wav")]
    for rec in (records[0], records[2]):
        (top, p), second = rec["predictions"]
        assert top == "swh" and p > 0.999 and len(rec["predictions"]) == 2
        assert rec["names"][0].startswith("Swahili")
    assert records[1]["predictions"] == [] and "no such file" in records[1]["error"]

    # fairseq's lid/infer.py output: --output DIR -> DIR/predictions.txt, one JSON list per manifest line
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", "--manifest", corpus / "dev.tsv", "--format", "fairseq",
            "--output", tmp_path, "--top-k", "2")
    assert r.returncode == 1
    lines = (tmp_path / "predictions.txt").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [rec["predictions"] for rec in records]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lid.jsonl", "lid.jsonl.run.json", "predictions.txt"]  # no temporary files
    # a folder that does not exist yet, named with a trailing slash, is made
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", "--manifest", corpus / "dev.tsv", "--format", "fairseq",
            "--output", f"{tmp_path / 'new'}/", "--top-k", "2")
    assert r.returncode == 1 and (tmp_path / "new" / "predictions.txt").read_text().splitlines() == lines


def test_candidates_from_a_file_tsv_and_windows(corpus, tmp_path):
    langs = tmp_path / "langs.txt"
    langs.write_text("# candidates\neng\nfra, deu\n")
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", "--langs", langs, "--window", "0.5", "--format", "tsv",
            corpus / "a.wav", corpus / "b.wav")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split("\t") == ["audio", "lang", "probability", "predictions", "duration", "error"]
    for row, (name, seconds) in zip(rows, [("a.wav", "1.250"), ("b.wav", "2.250")]):
        audio, lang, prob, predictions, duration, err = row.split("\t")
        codes = [item.split(":")[0] for item in predictions.split()]
        assert audio == str(corpus / name) and sorted(codes) == ["deu", "eng", "fra"] and lang == codes[0]
        assert abs(sum(float(item.split(":")[1]) for item in predictions.split()) - 1) <= 1e-4
        assert duration == seconds and err == ""


def test_unknown_candidates_are_a_usage_error(corpus):
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", "--langs", "en,swa", corpus / "a.wav")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1
    assert "'en' (close matches: eng" in r.stderr and "'swa' (close matches: swh" in r.stderr


def test_txt_names_and_verbose(corpus):
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "a.wav", "--top-k", "2", "--names", "-v")
    assert r.returncode == 0, r.stderr
    (line,) = r.stdout.splitlines()  # a single input: the predictions alone
    assert line.startswith("swh (Swahili") and len(line.split(") ")) == 3
    assert "device cpu" in r.stderr and f"[1/1] {corpus / 'a.wav'}: swh 1.000" in r.stderr
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "a.wav", corpus / "b.wav", "--top-k", "1")
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [str(corpus / "a.wav"), str(corpus / "b.wav")]
    assert all(line.split("\t")[1].startswith("swh 1.0000") for line in r.stdout.splitlines())


def test_usage_errors_are_one_line(corpus, tmp_path):
    r = mms("lid", "--model", corpus / "mms1b_l6.pt")
    assert r.returncode == 2 and r.stderr == "mms lid: error: no inputs: give audio files or a manifest\n"
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "a.wav", "--output", blocker / "out.txt")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "cannot write output" in r.stderr
    r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "a.wav", "--window", "0.01")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "--window (window_seconds) 0.01: shorter than the model's one frame of output" in r.stderr
    # --langs: a file that is not UTF-8, an empty file, a folder, nothing
    (tmp_path / "latin1.txt").write_bytes("eng\nfra # fran\xe7ais\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("# none\n")
    for value, message in ((tmp_path / "latin1.txt", "latin1.txt: not UTF-8 text"),
                           (tmp_path / "empty.txt", f"--langs {tmp_path / 'empty.txt'}: no language codes"),
                           (tmp_path, "is a directory; give a file of language codes"), ("", "--langs '': no language")):
        r = mms("lid", "--model", corpus / "mms1b_l6.pt", corpus / "a.wav", "--langs", value)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and message in r.stderr, r.stderr


def test_what_was_classified_and_options_that_would_do_nothing(corpus, tmp_path):
    model = corpus / "mms1b_l6.pt"
    # b.wav is 2.25 s: with --max-seconds 1 only its first second is classified, and that is said
    r = mms("lid", "--model", model, corpus / "a.wav", corpus / "b.wav", "--max-seconds", "1", "-f", "jsonl")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec.get("classified_seconds") for rec in records] == [1.0, 1.0], records
    assert "note: 2 inputs are longer than --max-seconds 1: only 1 s were classified, the first that are not silence" in r.stderr
    r = mms("lid", "--model", model, corpus / "a.wav", "--top-k", "all", "-f", "jsonl")  # as LIDOptions(top_k="all")
    assert len(json.loads(r.stdout)["predictions"]) == len(LABELS)
    r = mms("lid", "--model", model, corpus / "a.wav", "-f", "jsonl")  # whole: no key, no note
    assert "classified_seconds" not in r.stdout and "note" not in r.stderr
    for args, message in ((["--window", "10", "--max-seconds", "5"], "--max-seconds limits what is classified "
                                                                      "without --window"),
                          (["--names", "-f", "fairseq", "-o", tmp_path / "fs"], "--names: the fairseq predictions")):
        r = mms("lid", "--model", model, corpus / "a.wav", *args)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
