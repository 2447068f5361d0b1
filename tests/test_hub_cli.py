"""`mms models`, `mms langs` and `mms asr` without --model, through subprocesses, against the fake Hub of
tests/test_hub.py (HF_ENDPOINT on 127.0.0.1). No network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from mms import langs
from mms.hub import demo_model
from tests.conftest import random_audio
from tests.test_hub import FakeHub


def mms(*args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def environment(home: Path, endpoint: str | None = None, offline: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_OFFLINE"))}
    env["HF_HOME"] = str(home)
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture
def server(hf_dir):
    with FakeHub({"facebook/mms-1b-all": hf_dir}) as fake:
        yield fake


def test_download_path_list_then_asr_offline_without_model(server, hf_dir, tmp_path):
    env = environment(tmp_path / "home", server.url)
    r = mms("models", "path", "mms-1b-all", "--lang", "fra", env=env)
    assert r.returncode == 1 and "fetch it with: mms models download mms-1b-all --lang fra" in r.stderr

    r = mms("models", "download", "mms-1b-all", "--lang", "fra", env=env)
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    assert (snapshot / "adapter.fra.safetensors").is_file() and not (snapshot / "adapter.eng.safetensors").exists()
    assert "CC-BY-NC-4.0" in r.stderr and "model.safetensors: 100%" in r.stderr
    assert "adapter.eng.safetensors" not in server.requested()

    requests = len(server.log)
    again = mms("models", "download", "mms-1b-all", "--lang", "fra", env=env)
    assert again.returncode == 0 and again.stdout == r.stdout and "CC-BY-NC" not in again.stderr
    assert len(server.log) == requests  # cached: not even a HEAD request
    offline = mms("models", "download", "mms-1b-all", "--lang", "fra,eng", "--offline", env=env)
    assert offline.returncode == 1 and "adapter.eng.safetensors not in the cache" in offline.stderr
    assert "fetch with: mms models download mms-1b-all --lang fra,eng" in offline.stderr
    assert len(server.log) == requests  # --offline: no request at all

    r = mms("models", "path", "mms-1b-all", "--lang", "fra", env=env)
    assert r.returncode == 0 and Path(r.stdout.strip()) == snapshot
    listing = json.loads(mms("models", "list", "--format", "json", env=env).stdout)
    row = next(m for m in listing["models"] if m["name"] == "mms-1b-all")
    assert row["cached"] == "hf, adapters: fra" and row["default"] and listing["licence"] == "CC-BY-NC-4.0"
    table = mms("models", "list", "--task", "asr", env=env).stdout
    assert "mms-1b-all *" in table and "mms-lid-126" not in table

    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(24000, seed=3), 16000)
    offline = environment(tmp_path / "home", server.url, offline=True)
    by_name = mms("asr", "--lang", "fra", wav, env=offline)  # no --model: mms-1b-all, from the cache
    assert by_name.returncode == 0, by_name.stderr
    from mms.asr import ASR

    by_path = ASR.load(hf_dir, lang="fra", device="cpu").transcribe([wav])[0]
    assert by_name.stdout.strip() == by_path.text and by_path.text
    missing = mms("asr", "--lang", "eng", wav, env=offline)
    assert missing.returncode == 2
    assert "not in the cache" in missing.stderr and "mms models download mms-1b-all --lang eng" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert len(server.log) == requests


def test_a_killed_download_leaves_nothing_taken_as_complete(server, hf_dir, tmp_path):
    env = environment(tmp_path / "home", server.url)
    server.hold.add("model.safetensors")
    process = subprocess.Popen([sys.executable, "-m", "mms", "models", "download", "mms-1b-all", "--lang", "fra"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert server.half_sent.wait(60), "the download never started"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        server.hold.clear()
        server.release.set()
    cache = tmp_path / "home" / "hub"
    assert not list(cache.rglob("model.safetensors"))  # only a *.incomplete blob, under another name
    r = mms("models", "path", "mms-1b-all", "--lang", "fra", env=env)
    assert r.returncode == 1
    offline = mms("models", "download", "mms-1b-all", "--lang", "fra", env=environment(tmp_path / "home", offline=True))
    assert offline.returncode == 1 and "model.safetensors not in the cache" in offline.stderr

    r = mms("models", "download", "mms-1b-all", "--lang", "fra", env=env)
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    assert (snapshot / "model.safetensors").read_bytes() == (hf_dir / "model.safetensors").read_bytes()


def test_an_unreachable_hub_is_one_line_at_once(tmp_path):
    """No network: `mms asr` without --model stops with one line (exit 2), without huggingface_hub's retries."""
    with FakeHub() as closed:
        url = closed.url  # nothing listens there any more
    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(8000, seed=1), 16000)
    r = mms("asr", "--lang", "fra", wav, env=environment(tmp_path / "home", url))
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("mms asr: error: facebook/mms-1b-all/config.json: download failed (cannot connect to")
    assert "Traceback" not in r.stderr and "Retrying" not in r.stderr


def test_a_language_the_model_lacks(server, tmp_path):
    env = environment(tmp_path / "home", server.url)
    lid_only = sorted(set(langs.shipped_languages("mms-lid-256")) - set(langs.shipped_languages("mms-1b-all")))[0]
    r = mms("models", "download", "mms-1b-all", "--lang", lid_only, env=env)
    assert r.returncode == 1 and f"has no language '{lid_only}'" in r.stderr
    assert "models that have it" not in r.stderr and server.log == []  # (an LID model is no use for ASR)
    r = mms("models", "path", "mms-1b-all", "--lang", lid_only, env=env)  # not a hint to a download that would fail
    assert r.returncode == 2 and f"has no language '{lid_only}'" in r.stderr and "fetch it with" not in r.stderr
    for command in ("path", "download"):  # the demo models' languages are checked too
        r = mms("models", command, "demo", "--task", "tts", "--lang", "rus", env=env)
        assert r.returncode in (1, 2) and "demo (tts) has no language rus (it has eng)" in r.stderr
    r = mms("models", "download", "mms-lid-126", "no-such-model", env=env)  # a usage error, before any download
    assert r.returncode == 2 and "unknown model 'no-such-model'" in r.stderr and server.log == []


def test_langs_search_and_model_lists(tmp_path):
    env = environment(tmp_path / "home")
    r = mms("langs", "--search", "swahili", env=env)
    assert r.returncode == 0
    swh = next(line for line in r.stdout.splitlines() if line.startswith("swh "))
    assert "Swahili" in swh and "mms-1b-all" in swh and "mms-lid-256" in swh

    r = mms("langs", "--task", "asr", "--search", "azerbaijani", "--format", "json", env=env)
    found = {x["code"]: x for x in json.loads(r.stdout)}
    assert found["azj-script_latin"]["script"] == "Latin" and found["azj-script_cyrillic"]["script"] == "Cyrillic"
    assert all(x["models"] == ["mms-1b-all"] for code, x in found.items() if "-" in code)
    assert found["aze_Latn"]["name"] == "Azerbaijani (Latin script)"  # Omnilingual ASR's codes have names too
    assert "omniasr-ctc-300m" in found["aze_Latn"]["models"]

    r = mms("langs", "--model", "mms-lid-256", "--format", "tsv", env=env)
    assert len(r.stdout.splitlines()) == 1 + 256
    r = mms("langs", "qqqzz", env=env)
    assert r.returncode == 1 and "no language matches" in r.stderr
    r = mms("langs", "--model", "mms-1b-fl102", env=env)
    assert r.returncode == 1 and "mms models download mms-1b-fl102" in r.stderr
    r = mms("langs", "--model", "demo", "--format", "tsv", env=env)  # the shipped model, by its name
    assert r.returncode == 0 and [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == [
        "ell", "eng", "hin", "rus"]
    assert all(line.split("\t")[3].startswith("demo, ") for line in r.stdout.splitlines()[1:])  # the model asked
    for model in (["demo", "--task", "tts"], [str(demo_model("tts"))]):  # the demo voice speaks English only
        r = mms("langs", "--model", *model, "--format", "tsv", env=env)
        assert r.returncode == 0 and [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == ["eng"]
    r = mms("langs", "--model", tmp_path, env=env)  # a local folder that is no model: not a download hint
    assert r.returncode == 2 and "its files do not list its languages" in r.stderr and "download" not in r.stderr
    # the zero-shot model has no list to download: it takes any language from a word list
    r = mms("langs", "--model", "mms-zeroshot-300m", env=env)
    assert r.returncode == 2 and "has no language list: it transcribes any language" in r.stderr
    r = mms("langs", "swahili", env=env)
    assert "any language, from a word list (no list): mms-zeroshot-300m" in r.stderr
    assert "mms-zeroshot-300m" not in r.stderr.split("known once downloaded")[1].splitlines()[0]
    # a model of one output layer fetches nothing per language: --lang is refused, and not offered in hints
    r = mms("models", "download", "omniasr-ctc-1b", "--lang", "xyz", env=env)
    assert r.returncode == 1 and "omniasr-ctc-1b has no per-language files" in r.stderr
    from mms.hub import find_model, fetch_command

    assert fetch_command(find_model("omniasr-ctc-1b"), ["eng"]) == "mms models download omniasr-ctc-1b"
    assert fetch_command(find_model("mms-1b-all"), ["eng"]) == "mms models download mms-1b-all --lang eng"


def test_help_does_not_import_torch():
    code = ("import sys\nfrom mms.cli import main\nfor argv in (['models', '--help'], ['langs', '--help'], "
            "['models', 'download', '--help']):\n    try: main(argv)\n    except SystemExit: pass\n"
            "print('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "mms models download mms-1b-all --lang fra,deu" in out and "mms langs --search swahili" in out
    assert out.strip().endswith("TORCH False")


def test_the_shipped_demo_model_is_listed_and_located(tmp_path):
    """`demo` lives in the package: listed for asr/lid/align/tts, its paths need no cache or network."""
    env = environment(tmp_path / "home", offline=True)
    listing = json.loads(mms("models", "list", "--format", "json", env=env).stdout)["models"]
    demo = [m for m in listing if m["name"] == "demo"]
    assert len(demo) == 1 and demo[0]["cached"] == "shipped" and demo[0]["languages"] == 4
    # its held-out quality (metrics.json), in the JSON and under the table
    assert sorted(demo[0]["held_out"]) == ["ell", "eng", "hin", "rus"]
    assert all(0 <= m["cer"] <= 100 and 0 <= m["lid_accuracy"] <= 100 for m in demo[0]["held_out"].values())
    table = mms("models", "list", env=env).stdout
    assert "demo on sentences of words it never heard" in table and f"eng {demo[0]['held_out']['eng']['cer']:.1f}" in table
    tts = json.loads(mms("models", "list", "--task", "tts", "--format", "json", env=env).stdout)["models"]
    voice = [m for m in tts if m["name"] == "demo"]
    assert len(voice) == 1 and 0 <= voice[0]["voice"]["cer"] <= 100 and voice[0]["voice"]["real_time_factor"] > 0
    assert voice[0]["languages"] == 1 and voice[0]["size"] == "2.7 MB"  # --task tts: the English voice alone
    assert f"demo voice (eng) read back by the demo model on sentences of words it never heard: CER " \
           f"{voice[0]['voice']['cer']:.1f} %" in table
    asr = mms("models", "path", "demo", env=env)
    lid = mms("models", "download", "demo", "--task", "lid", env=env)
    assert asr.returncode == 0 and (Path(asr.stdout.strip()) / "vocab.json").is_file()
    assert lid.returncode == 0 and Path(lid.stdout.strip()) == Path(asr.stdout.strip()) / "lid"
    assert not (tmp_path / "home").exists()  # nothing cached
    tts_path = mms("models", "path", "demo", "--task", "tts", env=env)
    assert tts_path.returncode == 0 and Path(tts_path.stdout.strip()).name == "demo-tts"
    assert (Path(tts_path.stdout.strip()) / "model.safetensors").is_file()
    pretrained = mms("models", "path", "demo", "--task", "pretrained", env=env)
    assert pretrained.returncode == 2 and "no shipped demo model for pretrained" in pretrained.stderr


def test_a_damaged_cached_file_names_the_command_that_fetches_it_again(tmp_path):
    home = tmp_path / "home"
    (home / "mms" / "mms-fa").mkdir(parents=True)
    (home / "mms" / "mms-fa" / "model.pt").write_text("<html>log in</html>")  # saved by an older version
    (home / "mms" / "mms-fa" / "dictionary.txt").write_text("a\nb\n")
    (tmp_path / "t.txt").write_text("good morning\n")
    r = mms("align", "--lang", "eng", "--audio", Path(__file__).resolve().parent.parent / "examples" / "eng_hello.wav",
            "--text", tmp_path / "t.txt", "--outdir", tmp_path / "o", "--offline", env=environment(home))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "model.pt: not a readable PyTorch checkpoint" in r.stderr
    assert "fetch it again: mms models download mms-fa --source url --force" in r.stderr


def test_download_of_several_voices_fetches_each_it_can(tmp_path):
    from tests.test_hub import fake_tts_repo

    with FakeHub({"facebook/mms-tts-eng": fake_tts_repo(tmp_path / "tts" / "eng")}) as server:
        env = environment(tmp_path / "home", server.url)
        for order in ("eng,amh", "amh,eng"):  # a missing voice fails alone, wherever it stands
            r = mms("models", "download", "mms-tts", "--lang", order, env=env)
            assert r.returncode == 1 and "mms-tts has no language 'amh'" in r.stderr, r.stderr
            assert len(r.stdout.splitlines()) == 1 and "mms-tts-eng" in r.stdout
