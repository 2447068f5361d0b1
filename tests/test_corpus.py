"""Corpus runs (mms.engines): shards, resume after a kill, run.json, merge, the Ray engine; on the demo model."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mms.cli import main
from mms.engines import best_records, parse_shard

EXAMPLES = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "examples").glob("*.wav"))


def mms(*args):
    return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True)


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A manifest of 5 recordings, with one missing file among them (a bad input is a record, not a stop)."""
    folder = tmp_path_factory.mktemp("corpus")
    manifest = folder / "list.txt"
    manifest.write_text("\n".join(EXAMPLES[:3] + [str(folder / "missing.wav")] + EXAMPLES[3:]) + "\n")
    return manifest


@pytest.fixture(scope="module")
def plain(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain") / "out.jsonl"
    r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--format", "jsonl", "--output", out)
    assert r.returncode == 1 and r.stderr.count("error:") == 1 and "missing.wav" in r.stderr
    return records(out)


def test_every_record_has_its_index_and_a_bad_input_is_a_record(plain):
    assert [r["index"] for r in plain] == list(range(6))
    assert "missing.wav" in plain[3]["error"] and all(r["text"] for i, r in enumerate(plain) if i != 3)


def test_shard_option():
    assert parse_shard(None) == (0, 1) and parse_shard("3/16") == (3, 16)
    assert parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert parse_shard("auto", {"RANK": "1", "WORLD_SIZE": "8"}) == (1, 8)
    assert parse_shard("auto", {}) == (0, 1)
    array = {"SLURM_ARRAY_TASK_ID": "16", "SLURM_ARRAY_TASK_COUNT": "16", "SLURM_ARRAY_TASK_MIN": "1"}
    assert parse_shard("auto", array) == (15, 16)  # --array=1-16
    with pytest.raises(ValueError, match="SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT"):
        parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "2"})
    with pytest.raises(ValueError, match=r"SLURM_ARRAY_TASK_ID=3, .*makes shard 3 of 3"):  # not the '3/3' of no one
        parse_shard("auto", {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3"})
    with pytest.raises(ValueError, match="with a step .* is not supported"):
        parse_shard("auto", dict(array, SLURM_ARRAY_TASK_STEP="2"))
    for bad in ("3", "4/4", "-1/2", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_shards_partition_the_inputs_and_merge_joins_them(corpus, plain, tmp_path):
    out = tmp_path / "run"
    for k in range(3):
        r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", out, "--shard", f"{k}/3")
        assert r.returncode == (1 if k == 0 else 0), r.stderr  # index 3 (the missing file) is in shard 0
        assert [rec["index"] for rec in records(out / f"part-{k:05d}-of-00003.jsonl")] == list(range(k, 6, 3))
    merged = tmp_path / "all.jsonl"
    assert mms("merge", out, "--output", merged).returncode == 1  # one input failed
    assert [(r["index"], r["text"]) for r in records(merged)] == [(r["index"], r["text"]) for r in plain]
    tsv = mms("merge", out, "--format", "tsv").stdout.splitlines()
    assert tsv[0].startswith("audio\tlang") and len(tsv) == 7
    description = (out / "run.json").read_text()
    for own in ("run.json", "part-00000-of-00003.jsonl", "part-new.jsonl"):  # the run's own files are not outputs
        r = mms("merge", out, "--output", out / own)
        assert r.returncode == 2 and "is the run's own run.json or a part of it" in r.stderr
    assert (out / "run.json").read_text() == description and not (out / "part-new.jsonl").exists()


def test_merge_after_an_interrupted_shard_then_resume(corpus, tmp_path):
    out = tmp_path / "run"
    for k in range(2):
        mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", out, "--shard", f"{k}/2")
    part = out / "part-00001-of-00002.jsonl"
    lines = part.read_text().splitlines(keepends=True)
    part.write_text(lines[0] + lines[1][:25])  # killed while writing its second record
    r = mms("merge", out)
    assert r.returncode == 1 and "4 of 6 inputs have records" in r.stderr and "2 missing (no part has them" in r.stderr
    assert "failed" not in r.stderr  # (the missing file's shard did not reach it: missing, not failed)
    again = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", out, "--shard", "1/2")
    assert again.returncode == 1 and "1 inputs done before, 2 to do" in again.stderr  # index 3 is the missing file
    merged = [json.loads(line) for line in mms("merge", out).stdout.splitlines()]
    assert [r["index"] for r in merged] == list(range(6))
    assert [r["index"] for r in records(part)] == [1, 3, 5]  # the partial line was cut, the rest appended
    (out / "part-stray.jsonl").write_text('{"index": 9, "audio": "x.wav", "text": "x"}\n')  # another run's part
    r = mms("merge", out)
    assert [json.loads(line)["index"] for line in r.stdout.splitlines()] == list(range(6))
    assert "1 records with an index outside 0..5 ignored" in r.stderr and "6 of 6 inputs have records" in r.stderr
    for damaged, reason in (("{bad", "not a run description (JSON)"), ("{}", "not a run description of mms"),
                            ('{"task": "asr", "inputs": "6"}', "not a run description of mms")):
        (out / "run.json").write_text(damaged)
        r = mms("merge", out)
        assert r.returncode == 2 and r.stderr == f"mms merge: error: {out / 'run.json'}: {reason}" + (
            "" if "JSON" in reason else " (it needs task, inputs and settings)") + "\n"


def test_a_resume_with_other_settings_is_refused(corpus, tmp_path):
    out = tmp_path / "out.jsonl"
    mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--format", "jsonl", "--output", out)
    assert json.loads((tmp_path / "out.jsonl.run.json").read_text())["settings"]["lang"] == "eng"
    r = mms("asr", "--model", "demo", "--lang", "rus", "--manifest", corpus, "--format", "jsonl", "--output", out,
            "--resume")
    assert r.returncode == 2 and "lang ('eng' -> 'rus')" in r.stderr and len(r.stderr.splitlines()) == 1
    r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output", out, "--format", "txt",
            "--resume")
    assert r.returncode == 2 and "jsonl" in r.stderr  # --resume continues a jsonl file
    # settings that change no result may change (they sit in the task's options): the run resumes
    r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--format", "jsonl", "--output", out,
            "--resume", "--batch-seconds", "7")
    assert r.returncode == 1 and "other settings" not in r.stderr and "missing.wav" in r.stderr  # (the failed input)
    # records without their run.json: whose they are cannot be told, so they are not resumed
    (tmp_path / "out.jsonl.run.json").unlink()
    r = mms("asr", "--model", "demo", "--lang", "rus", "--manifest", corpus, "--format", "jsonl", "--output", out,
            "--resume")
    assert r.returncode == 2 and "missing, and the output already holds records" in r.stderr


def test_a_run_continues_in_the_precision_it_was_made_in(corpus, tmp_path):
    """--dtype auto is bfloat16 on one machine and float32 on another: run.json records what the model ran in, and
    a resume (or a shard) elsewhere in another precision is refused."""
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", "eng", "--manifest", str(corpus),
               "--format", "jsonl", "--output", str(out)]
    env = dict(os.environ, MMS_CPU_BF16="0")  # --dtype auto keeps float32 here, on any CPU
    subprocess.run(command, env=env, capture_output=True)
    run = json.loads((tmp_path / "out.jsonl.run.json").read_text())
    assert run["settings"]["dtype"] == "auto" and run["precision"] == "float32"
    resumed = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 1 and "other settings" not in resumed.stderr  # (the missing file fails again)
    (tmp_path / "out.jsonl.run.json").write_text(json.dumps(dict(run, precision="bfloat16")))  # made elsewhere
    elsewhere = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True)
    assert elsewhere.returncode == 2 and "precision ('bfloat16' -> 'float32'; --dtype bfloat16 continues it)" in \
        elsewhere.stderr
    # as it says: the precision is compared, not the spelling of --dtype (auto there, bfloat16 here)
    pinned = subprocess.run(command + ["--resume", "--dtype", "bfloat16"], env=env, capture_output=True, text=True)
    assert pinned.returncode == 1 and "other settings" not in pinned.stderr, pinned.stderr


def test_shards_started_together_with_other_settings_cannot_share_an_output(tmp_path):
    """Both found no run.json when they started (a SLURM array starts every task at once); the one that writes it
    second is checked against it, as a resume is."""
    from mms.engines import CorpusError, check_run, run_description, write_run

    path = str(tmp_path / "run.json")
    rows = [{"index": 0, "audio": "a.wav"}]
    eng, rus = (run_description("asr", {"lang": lang}, rows) for lang in ("eng", "rus"))
    assert check_run(path, eng) and check_run(path, rus)  # neither sees the other's yet
    write_run(path, eng, claim=True)
    write_run(path, eng, claim=True)  # a shard with the same settings joins the run
    with pytest.raises(CorpusError, match="lang \\('eng' -> 'rus'\\)"):
        write_run(path, rus, claim=True)
    assert json.loads(Path(path).read_text())["settings"]["lang"] == "eng"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no staged file left
    write_run(path, rus)  # a new run over an old output (not a claim) replaces it
    assert json.loads(Path(path).read_text())["settings"]["lang"] == "rus"
    # a `mms tts --format wav` run of an earlier version (which recorded "wav") resumes under today's spelling
    old = run_description("tts", {"audio_format": "wav"}, rows)
    write_run(path, old)
    assert check_run(path, run_description("tts", {"audio_format": None}, rows)) is False


def test_output_dir_with_another_format_is_refused(corpus, tmp_path):
    r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", tmp_path / "r",
            "--format", "tsv")
    assert r.returncode == 2 and "--output-dir writes jsonl parts, not tsv" in r.stderr and "--format tsv" in r.stderr


def test_a_run_that_fails_to_start_leaves_no_run_description(corpus, tmp_path):
    # else the corrected command would be refused as "started with other settings"
    for bad, good in ((["--lang", "engg"], ["--lang", "eng"]), (["--lang", "eng", "--engine", "ray", "--workers", "0"],
                                                                 ["--lang", "eng"])):
        r = mms("asr", "--model", "demo", *bad, "--manifest", corpus, "--output-dir", tmp_path / "run")
        assert r.returncode == 2 and not (tmp_path / "run" / "run.json").exists(), r.stderr
        r = mms("asr", "--model", "demo", *good, "--manifest", corpus, "--output-dir", tmp_path / "run")
        assert r.returncode == 1 and (tmp_path / "run" / "run.json").exists(), r.stderr  # (missing.wav)
        (tmp_path / "run" / "run.json").unlink()
        for part in (tmp_path / "run").glob("part-*"):
            part.unlink()


def test_ray_missing_leaves_no_run_description(corpus, tmp_path, monkeypatch, capsys):
    from mms.cli import main
    from mms.engines import CorpusError, ray as ray_engine

    def missing():
        raise CorpusError('--engine ray needs Ray: pip install "mms[ray]"')

    monkeypatch.setattr(ray_engine, "require_ray", missing)
    assert main(["asr", "--model", "demo", "--lang", "eng", "--manifest", str(corpus), "--engine", "ray",
                 "--output-dir", str(tmp_path / "run")]) == 2
    assert 'needs Ray: pip install "mms[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "run" / "run.json").exists()  # the corrected command is not refused by it


def test_kill_then_resume_gives_every_input_exactly_once(tmp_path):
    manifest = tmp_path / "big.txt"
    inputs = EXAMPLES * 40
    manifest.write_text("\n".join(inputs) + "\n")
    preset = tmp_path / "small-buffer.yaml"
    preset.write_text("buffer_seconds: 6\n")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "mms", "asr", "--model", "demo", "--lang", "eng", "--manifest", str(manifest),
               "--format", "jsonl", "--output", str(out), "--config", str(preset)]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not (out.exists() and out.read_text().count("\n") >= 20):
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = out.read_text().count("\n")
    r = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{before} inputs done before" in r.stderr
    done = records(out)
    assert sorted(rec["index"] for rec in done) == list(range(len(inputs)))  # each exactly once
    by_file = {}
    for rec in done:
        by_file.setdefault(rec["audio"], set()).add(rec["text"])
    assert all(len(texts) == 1 for texts in by_file.values())  # the same text as an uninterrupted run


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    home = tmp_path_factory.mktemp("ray-home")
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)  # ray writes ~/.ray
    ray.init(num_cpus=4, include_dashboard=False, object_store_memory=200 * 1024 * 1024,
             _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
    yield ray
    ray.shutdown()
    if old_home is not None:
        os.environ["HOME"] = old_home


def test_ray_equals_local_and_resumes_each_input_once(ray_cluster, corpus, plain, tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["asr", "--model", "demo", "--lang", "eng", "--manifest", str(corpus), "--output-dir", str(out),
                   "--engine", "ray", "--workers", "2"])
    assert status == 1 and "missing.wav" in capsys.readouterr().err  # the bad input is a record, the run goes on
    parts = sorted(out.glob("part-ray-*.jsonl"))
    assert parts
    merged = best_records(r for part in parts for r in records(part))
    assert [(r["index"], r["text"]) for r in merged] == [(r["index"], r["text"]) for r in plain]
    # a crash: one input's good record lost, the last line half written; the rerun redoes exactly what is missing
    kept = [r for r in merged if r["index"] != 4]
    for part in parts:
        part.unlink()
    (out / "part-ray-crashed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"index": 4, "au')
    status = main(["asr", "--model", "demo", "--lang", "eng", "--manifest", str(corpus), "--output-dir", str(out),
                   "--engine", "ray"])
    assert "2 to do" in capsys.readouterr().err  # index 4, and index 3 which failed
    merged = [json.loads(line) for line in mms("merge", out).stdout.splitlines()]
    assert [(r["index"], r["text"]) for r in merged] == [(r["index"], r["text"]) for r in plain]


def test_ray_needs_an_output_dir(corpus, capsys):
    assert main(["asr", "--model", "demo", "--lang", "eng", "--manifest", str(corpus), "--engine", "ray"]) == 2
    assert "--output-dir" in capsys.readouterr().err


def test_ray_options_on_a_local_run_are_refused(tmp_path):
    # ignored, they would leave the user believing the run was spread over actors
    wav = next(e for e in EXAMPLES if e.endswith("eng_hello.wav"))
    for command in (["asr", "--model", "demo", "--lang", "eng", wav, "--workers", "4"],
                    ["lid", "--model", "demo", wav, "--cpus-per-worker", "2"],
                    ["tts", "--model", "demo", "--lang", "eng", "--txt", "hi", "--wav", str(tmp_path / "a.wav"),
                     "--ray-address", "auto"],
                    ["align", "--model", "demo", "--lang", "eng", "--audio", wav, "--text",
                     str(Path(wav).with_name("eng_story.txt")), "--outdir", str(tmp_path / "al"), "--gpus-per-worker", "1"]):
        r = mms(*command)
        flag = command[-2]
        assert r.returncode == 2 and f"{flag}: for Ray actors; add --engine ray" in r.stderr, (command, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a.wav").exists() and not (tmp_path / "al").exists()


def test_a_file_name_that_is_not_utf8_is_read_and_written(tmp_path):
    # Python holds such a name's bytes as lone surrogates, which soundfile and a UTF-8 output could not encode:
    # it had stopped the whole run with an internal error
    name = os.fsdecode(b"caf\xe9.wav")
    wav = next(e for e in EXAMPLES if e.endswith("eng_hello.wav"))
    (tmp_path / name).write_bytes(Path(wav).read_bytes())
    inputs = [wav, str(tmp_path / name)]
    r = mms("asr", "--model", "demo", "--lang", "eng", *inputs, "--output-dir", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    merged = [json.loads(line) for line in mms("merge", tmp_path / "run").stdout.splitlines()]
    assert [m["audio"] for m in merged] == inputs and merged[0]["text"] == merged[1]["text"] != ""
    for fmt in ("txt", "tsv", "json"):
        r = mms("asr", "--model", "demo", "--lang", "eng", *inputs, "--format", fmt, "-o", tmp_path / f"out.{fmt}")
        assert r.returncode == 0, r.stderr
    assert os.fsencode(str(tmp_path / name)) in (tmp_path / "out.txt").read_bytes()  # its bytes, as on disk
    assert [m["audio"] for m in json.loads((tmp_path / "out.json").read_text())] == inputs


def test_a_shard_leaves_the_other_shards_parts_as_they_are(corpus, tmp_path):
    """A shard that starts while another is half way through writing a line must not cut that line (the other
    shard then finishes it): only its own part is repaired."""
    out = tmp_path / "run"
    assert mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", out,
               "--shard", "0/2").returncode == 0
    other = out / "part-00000-of-00002.jsonl"
    whole = other.read_text()
    other.write_text(whole + '{"index": 99, "audio": "being writ')  # shard 0 still writing (as if)
    assert mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--output-dir", out,
               "--shard", "1/2").returncode == 1  # (index 3, the missing file, is shard 1's)
    assert other.read_text() == whole + '{"index": 99, "audio": "being writ'


def test_shards_into_one_output_file_are_refused(corpus, tmp_path):
    """Each shard its own --output is fine (out_$SLURM_ARRAY_TASK_ID.jsonl); a second shard into the first one's
    file would replace its results, and is refused."""
    for k in range(2):
        r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "-o", tmp_path / f"out{k}.jsonl",
                "--shard", f"{k}/2")
        assert r.returncode == k, r.stderr  # (index 3, the missing file, is shard 1's)
    out = tmp_path / "out0.jsonl"
    before = out.read_text()
    r = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "-o", out, "--shard", "1/2")
    assert r.returncode == 2 and "holds the results of shard 0/2, which this shard (1/2) would replace" in r.stderr
    assert out.read_text() == before
    again = mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "-o", out, "--shard", "0/2", "--resume")
    assert again.returncode == 0 and "resuming: 3 inputs done before, 0 to do" in again.stderr
    text = tmp_path / "t.txt"
    text.write_text("one\ntwo\n")
    r = mms("tts", "--model", "demo", "--lang", "eng", "--file", text, "--outdir", tmp_path / "voice", "--shard", "0/2")
    assert r.returncode == 2 and "--shard 0/2 with --outdir" in r.stderr
    assert mms("asr", "--model", "demo", "--lang", "eng", "--manifest", corpus, "--shard", "0/2").returncode == 0  # stdout


def test_tts_outdir_holding_other_files_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "0001.wav").write_bytes(b"the user's own recording")
    r = mms("tts", "--model", "demo", "--lang", "eng", "--txt", "hello", "--outdir", mine)
    assert r.returncode == 2 and "holds files but no index.jsonl of an earlier `mms tts` run" in r.stderr
    assert (mine / "0001.wav").read_bytes() == b"the user's own recording"
    assert mms("tts", "--model", "demo", "--lang", "eng", "--txt", "hello", "--outdir", tmp_path / "new").returncode == 0
    assert mms("tts", "--model", "demo", "--lang", "eng", "--txt", "again", "--outdir", tmp_path / "new").returncode == 0


def test_a_run_from_before_a_setting_existed_resumes_with_its_behaviour(tmp_path):
    """A `mms tts` run started before --numbers (digits then left to the voice) resumes with --numbers as-is, and is
    refused, naming the setting, with the new default."""
    from mms.engines import CorpusError, check_run, run_description, write_run

    rows = [{"index": 0, "text": "3 cats"}]
    old = run_description("tts", {"model": "demo", "options": {"seed": 1}}, rows)
    write_run(str(tmp_path / "run.json"), old)
    as_is = run_description("tts", {"model": "demo", "options": {"seed": 1, "numbers": "as-is"}}, rows)
    assert check_run(str(tmp_path / "run.json"), as_is) is False  # the same run: resumed
    words = run_description("tts", {"model": "demo", "options": {"seed": 1, "numbers": "words"}}, rows)
    with pytest.raises(CorpusError, match=r"options.numbers \('as-is' -> 'words'\)"):
        check_run(str(tmp_path / "run.json"), words)


def test_a_recorded_precision_is_compared_with_an_explicit_dtype_before_the_model_loads(tmp_path):
    """(Ray's driver never loads the model: an explicit --dtype is checked against the run's precision there.)"""
    from mms.engines import CorpusError, check_run, run_description, write_run

    path, rows = str(tmp_path / "run.json"), [{"index": 0, "audio": "a.wav"}]
    write_run(path, dict(run_description("asr", {"dtype": "auto"}, rows), precision="bfloat16"))
    for dtype in ("auto", "bfloat16"):  # auto: compared once the model has loaded
        assert check_run(path, run_description("asr", {"dtype": dtype}, rows)) is False
    with pytest.raises(CorpusError, match="dtype \\('bfloat16' -> 'float32'\\)"):
        check_run(path, run_description("asr", {"dtype": "float32"}, rows))
