"""`mms` through a subprocess, as a user runs it."""

import json
import os
import stat
import subprocess
import sys

import pytest



def mms(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom mms.cli import main\nfor argv in (['--help'], ['asr', '--help']):\n"
            "    try: main(argv)\n    except SystemExit: pass\nprint('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "mms asr" in out or "asr" in out
    assert out.strip().endswith("TORCH False")


def test_transcribe_files_jsonl_to_file(hf_dir, wavs, tmp_path):
    out = tmp_path / "out" / "hyps.jsonl"
    r = mms("asr", "--model", hf_dir, "--lang", "fra", *wavs, "--format", "jsonl", "--output", out)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [rec["audio"] for rec in records] == [str(p) for p in wavs]
    assert all(rec["lang"] == "fra" and rec["text"] and rec["duration"] > 1 for rec in records)
    assert sorted(p.name for p in out.parent.iterdir()) == ["hyps.jsonl", "hyps.jsonl.run.json"]  # no temporary files


def test_txt_single_and_several(fairseq_pt, wavs):
    one = mms("asr", "--model", fairseq_pt, "--lang", "eng", wavs[0])
    assert one.returncode == 0 and "\t" not in one.stdout and one.stdout.strip()
    two = mms("asr", "--model", fairseq_pt, "--lang", "eng", *wavs)
    lines = two.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(p) for p in wavs]
    assert lines[0].split("\t")[1] == one.stdout.strip()


def test_a_closed_stderr_loses_no_records(hf_dir, wavs, tmp_path):
    """`2>&1 | head`, a log pipe that died: the error lines cannot be written, the records and the status can."""
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    out = tmp_path / "out.jsonl"
    read, write = os.pipe()
    os.close(read)  # every write to the standard error fails (EPIPE)
    try:
        status = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", str(hf_dir), "--lang", "fra",
                                 str(bad), *map(str, wavs), "-o", str(out)], stderr=write, timeout=600).returncode
    finally:
        os.close(write)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert status == 1 and len(records) == 1 + len(wavs)  # one input failed; every input has its record
    assert records[0]["error"] and all(r["text"] and not r.get("error") for r in records[1:])


def test_no_lang_for_a_model_without_a_default_language(fairseq_pt, wavs):
    """A fairseq adapter checkpoint has no default language: one error per input, no note of a 'None' default."""
    r = mms("asr", "--model", fairseq_pt, wavs[0])
    assert r.returncode == 1 and "no language given; this model has 2" in r.stderr
    assert "None" not in r.stderr and "note:" not in r.stderr


def test_manifest_with_languages_and_a_bad_line(hf_dir, wavs, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    manifest = wavs[0].parent / "m.jsonl"  # relative paths resolve against the manifest's folder
    manifest.write_text("\n".join(json.dumps(x) for x in [
        {"audio_filepath": str(wavs[0]), "lang": "fra"}, {"audio": str(bad)}, {"audio": wavs[1].name}]))
    r = mms("asr", "--model", hf_dir, "--lang", "eng", "--manifest", manifest, "--format", "json")
    assert r.returncode == 1  # one input failed, the others are written
    records = json.loads(r.stdout)
    assert [rec["lang"] for rec in records] == ["fra", "eng", "eng"]
    assert records[1]["error"].startswith(str(bad)) and records[1]["text"] == ""
    assert records[2]["audio"] == str(wavs[1]) and records[2]["text"]
    assert r.stderr.count("error:") == 1 and str(bad) in r.stderr


def test_fairseq_tsv_manifest_and_dict_file(fairseq_pt, wavs, tmp_path):
    tsv = tmp_path / "dev.tsv"
    tsv.write_text(f"{wavs[0].parent}\n{wavs[0].name}\t20000\n{wavs[1].name}\t36000\n")
    plain = mms("asr", "--model", fairseq_pt, "--lang", "fra", "--manifest", tsv, "--format", "tsv")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines()[0] == "audio\tlang\tduration\ttext\terror"
    # the same vocabulary given as a fairseq dict file
    from mms.checkpoints import load_checkpoint
    tokens = load_checkpoint(fairseq_pt).adapters.load("fra")[1].tokens[4:]
    dict_file = tmp_path / "fra.txt"
    dict_file.write_text("".join(f"{t} 1\n" for t in tokens))
    with_dict = mms("asr", "--model", fairseq_pt, "--lang", "fra", "--dict", dict_file, "--manifest", tsv,
                    "--format", "tsv")
    assert with_dict.stdout == plain.stdout


@pytest.mark.parametrize("args,message", [
    (["--model", "/nonexistent/model"], "no such model"),
    (["--lang", "xx"], "no adapter for language 'xx'"),
    (["--manifest", "/nonexistent.tsv"], "nonexistent.tsv"),
    (["--device", "cuda:7"], "cuda"),
])
def test_usage_errors_exit_2_with_one_line(hf_dir, wavs, args, message):
    base = {"--model": str(hf_dir), "--lang": "eng"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv]
    r = mms("asr", *argv, *([] if "--manifest" in base else [wavs[0]]))
    assert r.returncode == 2
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_an_output_that_is_an_input_is_refused_before_it_is_touched(hf_dir, wavs, tmp_path):
    manifest = tmp_path / "dev.jsonl"
    manifest.write_text(json.dumps({"audio": str(wavs[0])}) + "\n")
    before = manifest.read_bytes(), wavs[1].read_bytes()
    for argv in (["--manifest", manifest, "-f", "jsonl", "-o", manifest],   # the manifest
                 [wavs[1], "-o", wavs[1]],                                 # an audio file
                 ["--manifest", manifest, "-o", tmp_path / "." / "dev.jsonl"]):  # the manifest by another name
        r = mms("asr", "--model", hf_dir, "--lang", "eng", *argv)
        assert r.returncode == 2 and "the output is an input of this run" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert (manifest.read_bytes(), wavs[1].read_bytes()) == before


def test_manifests_add_up_and_a_closed_pipe_is_not_an_error(hf_dir, wavs, tmp_path):
    first, second = tmp_path / "one.jsonl", tmp_path / "two.lst"
    first.write_text(json.dumps({"audio": str(wavs[0])}) + "\n")
    second.write_text(f"{wavs[1]}\n{wavs[0]}\n")
    r = mms("asr", "--model", hf_dir, "--lang", "eng", "--manifest", first, "--manifest", second, "-f", "jsonl")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["audio"] for line in r.stdout.splitlines()] == [str(wavs[0]), str(wavs[1]), str(wavs[0])]
    # `| head -1`: the reader goes away after one line; the run stops quietly with status 0
    many = tmp_path / "many.lst"
    many.write_text(f"{wavs[0]}\n" * 3000)
    shell = (f"{sys.executable} -m mms asr --model {hf_dir} --lang eng --manifest {many} -f jsonl | head -1; "
             "echo status=${PIPESTATUS[0]}")
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=600)
    assert run.stdout.count("\n") == 2 and run.stdout.rstrip().endswith("status=0"), run.stdout
    assert run.stderr == ""


def test_bad_side_files_are_one_line_errors_before_any_audio(hf_dir, wavs, tmp_path):
    small_dict, arpa, config = tmp_path / "small.txt", tmp_path / "bad.arpa", tmp_path / "bad.yaml"
    small_dict.write_text("a 1\nb 1\n")
    arpa.write_text("garbage\n")
    config.write_text("beam: [1\n")
    (tmp_path / "adir").mkdir()
    presets = {}  # values a flag refuses are refused in a --config file too (a 0 s window ran forever)
    for name, text in [("zero", "chunk_seconds: 0"), ("context", "context_seconds: -3"), ("nan", "lm_weight: nan"),
                       ("choice", "quantize: int4"), ("pair", "time_offsets: abc"), ("list", "hello world")]:
        presets[name] = tmp_path / f"{name}.yaml"
        presets[name].write_text(text + "\n")
    cases = [(["--dict", small_dict], "the vocabulary has 6 symbols, the output layer"),
             (["--lm", arpa, "--unit-lm"], "bad.arpa: KenLM cannot load it: not an ARPA file or KenLM binary"),
             (["--config", config], "bad.yaml: not valid YAML: expected ',' or ']'"),
             (["--config", wavs[0]], f"--config {wavs[0]}: not UTF-8 text"),
             (["--config", presets["zero"]], "zero.yaml: chunk_seconds: must be positive, got 0"),
             (["--config", presets["context"]], "context.yaml: context_seconds: must be 0 or more, got -3"),
             (["--config", presets["nan"]], "nan.yaml: lm_weight: must be a finite number, got nan"),
             (["--config", presets["choice"]], "choice.yaml: quantize: 'int4' is not one of int8"),
             (["--config", presets["pair"]], "pair.yaml: time_offsets: 'abc': give two numbers of seconds"),
             (["--config", presets["list"]], "list.yaml: not a preset (a YAML mapping of options"),
             (["--lm-weight", "nan"], "argument --lm-weight: must be a finite number, got nan"),
             (["--beam-threshold", "-1"], "argument --beam-threshold: must be 0 or more, got -1"),
             (["--device", "mps"], "device 'mps' requested but MPS (Apple GPUs) is not available here"),
             (["-f", "jsonl", "-o", tmp_path / "adir"], "adir: is a folder"),
             (["-f", "json", "-o", tmp_path / "adir"], "adir: is a folder")]
    for argv, message in cases:
        r = mms("asr", "--model", hf_dir, "--lang", "eng", *argv, wavs[0])
        assert r.returncode == 2 and message in r.stderr, (argv, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list((tmp_path / "adir").iterdir()) == [] and not (tmp_path / "adir.run.json").exists()


def test_a_file_in_the_way_of_the_output_folder_is_named(hf_dir, wavs, tmp_path):
    (tmp_path / "file").write_text("")
    for fmt in ("jsonl", "txt"):
        r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], "--format", fmt, "--output", tmp_path / "file" / "o")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"mms asr: error: {tmp_path}/file/o")
        assert f"{tmp_path / 'file'} is a file, not a folder" in r.stderr
    r = mms("align", "--model", hf_dir, "--lang", "eng", "--audio", wavs[0], "--text", tmp_path / "file", "--outdir",
            tmp_path / "file")
    assert r.returncode == 2 and f"{tmp_path / 'file'}: is a file; --outdir names a folder" in r.stderr


def test_no_inputs_is_a_usage_error(hf_dir):
    r = mms("asr", "--model", hf_dir)
    assert r.returncode == 2 and "no inputs" in r.stderr


@pytest.mark.parametrize("argv,flag,reason", [
    (["asr", "--chunk-seconds", "0", "a.wav"], "--chunk-seconds", "must be positive, got 0"),
    (["asr", "--batch-seconds", "nan", "a.wav"], "--batch-seconds", "must be positive, got nan"),
    (["asr", "--context-seconds", "-1", "a.wav"], "--context-seconds", "must be 0 or more, got -1"),
    (["asr", "--decode-workers", "-2", "a.wav"], "--decode-workers", "must be 0 or more, got -2"),
    (["lm", "build", "--order", "0", "corpus.txt", "-o", "lm.arpa"], "--order", "must be positive, got 0"),
    (["tune", "--beam", "0"], "--beam", "must be positive, got 0"),
    (["train-adapter", "--lr", "inf"], "--lr", "must be positive, got inf"),
    (["asr", "--format", "doc", "a.wav"], "--format", "invalid choice"),
])
def test_bad_numbers_and_choices_are_one_line_usage_errors(argv, flag, reason):
    r = mms(*argv)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and f"argument {flag}" in r.stderr and reason in r.stderr, r.stderr


def test_beam_search_with_lexicon_and_lm(hf_dir, wavs, tmp_path):
    # the tiny model's English units are | a b c d e f g: a lexicon of words over them, a bigram LM of the words
    words = ["bad", "cab", "dace", "face", "fed", "bead", "aged"]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w} {' '.join(w)} |\n" for w in words))
    unigrams = ["<s>", "</s>", "<unk>"] + words
    arpa = ["\\data\\", f"ngram 1={len(unigrams)}", "ngram 2=1", "", "\\1-grams:"]
    arpa += [f"-1.0\t{w}\t-0.1" for w in unigrams] + ["", "\\2-grams:", "-0.2\tbad cab", "", "\\end\\", ""]
    lm = tmp_path / "lm.arpa"
    lm.write_text("\n".join(arpa))
    outputs = []
    for workers in ("0", "2"):
        r = mms("asr", "--model", hf_dir, "--lang", "eng", *wavs, "--lm", lm, "--lexicon", lexicon,
                "--lm-weight", "1", "--word-score", "2", "--decode-workers", workers, "--format", "jsonl")
        assert r.returncode == 0, r.stderr
        records = [json.loads(line) for line in r.stdout.splitlines()]
        assert all(rec["text"] and set(rec["text"].split()) <= set(words) for rec in records)
        outputs.append([rec["text"] for rec in records])
    assert outputs[0] == outputs[1]
    greedy = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0]).stdout.strip()
    assert greedy != outputs[0][0]  # the random model's greedy output is not made of lexicon words


def test_beam_search_usage_errors(hf_dir, wavs, tmp_path):
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], "--lexicon", tmp_path / "x.txt")  # (no LM is allowed)
    assert r.returncode == 2 and "x.txt: no such lexicon file" in r.stderr
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], "--lm", tmp_path / "missing.arpa", "--unit-lm")
    assert r.returncode == 2 and "missing.arpa" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_subtitles_from_word_times(hf_dir, wavs):
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[1], "--format", "srt")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1" and " --> " in lines[1] and lines[1].startswith("00:00:0")
    vtt = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[1], "--format", "vtt").stdout
    assert vtt.startswith("WEBVTT") and " --> " in vtt
    # two recordings have two clocks: one subtitle file cannot hold both
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], wavs[1], "--format", "srt")
    assert r.returncode == 2 and r.stdout == "" and r.stderr.strip() == (
        "mms asr: error: --format srt: one recording per subtitle file, and 2 inputs were given; run once per file, "
        "or use --format jsonl (word times of every input)")


def test_a_killed_run_keeps_every_finished_record(hf_dir, wavs, tmp_path):
    """kill -9 in the middle of a jsonl run: every record written so far is whole and in input order."""
    import os
    import signal
    import time

    manifest = tmp_path / "big.tsv"
    manifest.write_text(f"{wavs[0].parent}\n" + "".join(f"{w.name}\t1\n" for w in wavs * 400))
    preset = tmp_path / "small-buffer.yaml"
    preset.write_text("buffer_seconds: 4\n")  # results leave the buffer every few inputs
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "mms", "asr", "--model", str(hf_dir), "--lang", "eng",
                             "--manifest", str(manifest), "--format", "jsonl", "--output", str(out),
                             "--config", str(preset)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines = out.read_text().split("\n")
    whole = [json.loads(line) for line in lines[:-1]]  # the last piece is "" or at most one partial line
    assert len(whole) >= 10 and len(whole) < len(wavs) * 400
    assert [rec["audio"] for rec in whole] == [str(w) for w in wavs * 400][:len(whole)]
    assert all(rec["text"] for rec in whole)


def test_errors_and_bugs_have_distinct_exit_codes(capsys):
    """An MMSError is a one-line usage error (2); any other exception is a bug (3), never 2."""
    import argparse

    from mms.command import execute
    from mms.errors import MMSError

    def raising(error):
        def run(args):
            raise error
        return argparse.Namespace(command="asr", verbose=False, run=run)

    assert execute(raising(MMSError("x.wav: bad\nsecond line"))) == 2
    assert capsys.readouterr().err == "mms asr: error: x.wav: bad\n"
    assert execute(raising(ValueError("a bug"))) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "ValueError: a bug" in err and "--verbose" in err
    assert execute(raising(FileNotFoundError(2, "No such file or directory", "m.pt"))) == 2
    assert capsys.readouterr().err == "mms asr: error: m.pt: No such file or directory\n"
    assert execute(raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "mms asr: interrupted\n"


def test_ctrl_c_while_the_commands_load_is_not_a_traceback(monkeypatch, capsys):
    from mms import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["asr", "a.wav"]) == 130
    assert capsys.readouterr().err == "mms: interrupted\n"


def test_outputs_that_are_not_regular_files_are_written_in_place(hf_dir, wavs, tmp_path):
    """An atomic write replaces a regular file; a pipe or device (`-o /dev/null`, `-o >(gzip ...)`) is written as it
    is (replacing it would destroy it), and a symbolic link keeps pointing at the file it names."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], "-f", "jsonl", "-o", fifo)
    got = reader.communicate(timeout=60)[0]
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and json.loads(got)["audio"] == str(wavs[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no pipe.run.json beside it
    (tmp_path / "real.json").write_text("old\n")
    (tmp_path / "link.json").symlink_to("real.json")
    r = mms("asr", "--model", hf_dir, "--lang", "eng", wavs[0], "-f", "json", "-o", tmp_path / "link.json")
    assert r.returncode == 0, r.stderr
    assert os.readlink(tmp_path / "link.json") == "real.json"
    assert json.loads((tmp_path / "real.json").read_text())[0]["audio"] == str(wavs[0])


def test_closed_standard_output_is_a_one_line_error(hf_dir, wavs):
    for fmt in ("jsonl", "json"):
        run = subprocess.run([sys.executable, "-m", "mms", "asr", "--model", str(hf_dir), "--lang", "eng", str(wavs[0]),
                              "-f", fmt], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600,
                             preexec_fn=lambda: os.close(1))
        assert run.returncode == 2 and "standard output is closed" in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_a_manifest_with_some_reference_texts_transcribes_and_says_it_is_not_scored(hf_dir, wavs, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": str(wavs[0]), "text": "hello"}) + "\n"
                        + json.dumps({"audio": str(wavs[1])}) + "\n")
    r = mms("asr", "--model", hf_dir, "--lang", "eng", manifest)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
    assert "not scored: 1 of 2 inputs have no reference text" in r.stderr and "WER" not in r.stderr


def test_bad_manifest_lines_are_errors_in_their_place(hf_dir, wavs, tmp_path):
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"/\n{wavs[0]}\t1\nnot a line\n{wavs[1]}\t1\n")
    r = mms("asr", "--model", hf_dir, "--lang", "eng", manifest, "-f", "jsonl")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and [rec["audio"] for rec in records] == [str(wavs[0]), f"{manifest}:3", str(wavs[1])]
    assert [bool(rec.get("error")) for rec in records] == [False, True, False]
    assert r.stderr.strip() == f"mms asr: error: {manifest}:3: expected 2 tab-separated fields (path, num_samples), " \
                               "found 1"
    r = mms("lid", "--model", "demo", manifest, "-f", "jsonl")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and [bool(rec.get("error")) for rec in records] == [False, True, False], r.stderr
    assert r.stderr.strip().endswith("m.tsv:3: expected 2 tab-separated fields (path, num_samples), found 1")


def test_options_that_would_do_nothing_are_refused(tmp_path):
    # each had been accepted and silently ignored
    import soundfile as sf

    from tests.conftest import random_audio

    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(16000, seed=4), 16000)
    (tmp_path / "words.txt").write_text("привет мир\n")
    for args, message in ((["--timestamps", "word", "--format", "tsv"], "--format tsv has no times"),
                          (["--timestamps", "char"], "--format txt has no times"),
                          (["--time-offsets", "0.1,0.1"], "--time-offsets shifts word and character times"),
                          (["--timestamps", "char", "--format", "srt"], "cues are made of word times"),
                          (["--time-offsets=-1,5", "--format", "srt"], "at most 1 s either way"),
                          (["--uroman-lang", "rus"], "--uroman-lang picks uroman's rules for spelling --words"),
                          (["--lid-model", "demo"], "--lid-model identifies the language for --lang auto"),
                          (["--words", tmp_path / "words.txt"], "--words needs the MMS zero-shot model")):
        r = mms("asr", "--model", "demo", "--lang", "eng", *args, wav)
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_a_presets_beam_options_without_an_lm_are_said_not_silently_dropped(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = mms("asr", "--model", "demo", "--lang", "eng", "--config", str(root / "configs" / "asr.yaml"),
               str(root / "examples" / "eng_hello.wav"))
    assert done.returncode == 0, done.stderr
    assert "note: --config" in done.stderr and "sets beam-search options (beam, beam_size_token), which do nothing " \
        "without --lm" in done.stderr
    plain = tmp_path / "plain.yaml"
    plain.write_text("chunk_seconds: 20\n")
    done = mms("asr", "--model", "demo", "--lang", "eng", "--config", str(plain), str(root / "examples" / "eng_hello.wav"))
    assert done.returncode == 0 and "note" not in done.stderr, done.stderr


def test_references_with_capitals_and_punctuation_are_also_scored_normalised(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    audio = root / "examples" / "eng_hello.wav"
    heard = mms("asr", "--model", "demo", "--lang", "eng", audio).stdout.strip()
    (tmp_path / "ref.txt").write_text(heard.capitalize() + ".\n")
    done = mms("asr", "--model", "demo", "--lang", "eng", "--ref", tmp_path / "ref.txt", audio)
    assert done.returncode == 0, done.stderr
    assert "against the references normalised as MMS transcripts are" in done.stderr
    assert "CER 0.00%" in done.stderr.split("normalised as MMS")[1] and "WER 0.00%" not in done.stderr.split("\n")[0]
    (tmp_path / "ref.txt").write_text(heard + "\n")  # already as the model writes: one line, no second score
    done = mms("asr", "--model", "demo", "--lang", "eng", "--ref", tmp_path / "ref.txt", audio)
    assert "WER 0.00%" in done.stderr and "normalised" not in done.stderr


def test_buffer_seconds_is_an_option_and_a_checked_preset_value(tmp_path):
    from pathlib import Path

    audio = Path(__file__).resolve().parent.parent / "examples" / "eng_hello.wav"
    bad = tmp_path / "bad.yaml"
    bad.write_text("buffer_seconds: banana\n")
    done = mms("asr", "--model", "demo", "--lang", "eng", "--config", bad, audio)
    assert done.returncode == 2 and "buffer_seconds: not a number: 'banana'" in done.stderr
    good = tmp_path / "good.yaml"
    good.write_text("buffer_seconds: 5\n")
    out = tmp_path / "out.jsonl"
    assert mms("asr", "--model", "demo", "--lang", "eng", "--config", good, "-f", "jsonl", "-o", out, audio).returncode == 0
    assert "--buffer-seconds" in mms("asr", "--help").stdout
    assert mms("lid", "--model", "demo", "--buffer-seconds", "-1", audio).returncode == 2


def test_the_output_suffix_names_the_format_unless_one_is_given(tmp_path):
    from pathlib import Path

    audio = Path(__file__).resolve().parent.parent / "examples" / "eng_hello.wav"
    assert mms("asr", "--model", "demo", "--lang", "eng", audio, "-o", tmp_path / "a.jsonl").returncode == 0
    assert json.loads((tmp_path / "a.jsonl").read_text())["text"]  # jsonl, not bare text
    assert mms("asr", "--model", "demo", "--lang", "eng", audio, "-o", tmp_path / "a.jsonl", "--resume").returncode == 0
    assert mms("asr", "--model", "demo", "--lang", "eng", audio, "-o", tmp_path / "a.srt").returncode == 0
    assert (tmp_path / "a.srt").read_text().startswith("1\n00:00:")
    assert mms("asr", "--model", "demo", "--lang", "eng", audio, "-o", tmp_path / "a.out").returncode == 0
    assert not (tmp_path / "a.out").read_text().startswith("{")  # an unknown suffix: txt
    assert mms("asr", "--model", "demo", "--lang", "eng", audio, "-f", "txt", "-o", tmp_path / "b.jsonl").returncode == 0
    assert not (tmp_path / "b.jsonl").read_text().startswith("{")  # --format wins
    assert mms("lid", "--model", "demo", audio, "-o", tmp_path / "l.json").returncode == 0
    assert json.loads((tmp_path / "l.json").read_text())[0]["predictions"][0][0] == "eng"


def test_an_output_that_cannot_be_written_is_named(tmp_path):
    from pathlib import Path

    audio = Path(__file__).resolve().parent.parent / "examples" / "eng_hello.wav"
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "x.jsonl"
    done = mms("asr", "--model", "demo", "--lang", "eng", audio, "-o", out)
    assert done.returncode == 2 and done.stderr.startswith(f"mms asr: error: {out}: ") and ".run.json" not in done.stderr
