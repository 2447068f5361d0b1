"""`mms asr --lang auto`: LID picks the language, the ASR model transcribes with that adapter."""

import json

import pytest
import torch

from mms.asr.auto import adapter_for, choose
from tests.factory import random_lid_model, write_hf_lid
from tests.test_cli import mms


def test_lid_codes_map_to_adapters():
    languages = {"eng", "cmn-script_simplified", "cmn-script_traditional", "azj-script_latin", "srp-script_cyrillic"}
    assert adapter_for("eng", languages) == "eng"
    assert adapter_for("cmn", languages) == "cmn-script_simplified"  # MMS's preferred script
    assert adapter_for("aze", languages) == "azj-script_latin"
    assert adapter_for("srp", languages) == "srp-script_cyrillic"  # the only variant there is
    assert adapter_for("xyz", languages) is None
    assert choose([("deu", 0.7), ("cmn", 0.2), ("eng", 0.1)], languages) == ("cmn-script_simplified", "cmn", 0.2)


@pytest.fixture(scope="module")
def lid_dir(tmp_path_factory):
    model = random_lid_model(["deu", "fra", "eng", "yor"], seed=2)
    model.state["classifier.bias"] = torch.tensor([12.0, 9.0, 0.0, 0.0])  # deu first, fra second, whatever the audio
    return write_hf_lid(model, tmp_path_factory.mktemp("lid") / "lid")


def test_auto_picks_the_most_probable_language_with_an_adapter(hf_dir, lid_dir, wavs):
    r = mms("asr", "--model", hf_dir, "--lang", "auto", "--lid-model", lid_dir, *wavs, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["lang"] for rec in records] == ["fra", "fra"]  # deu is more probable, but has no adapter
    assert all(rec["lid_lang"] == "fra" and 0 < rec["lang_probability"] < 0.5 for rec in records)
    direct = mms("asr", "--model", hf_dir, "--lang", "fra", *wavs, "--format", "jsonl")
    assert [rec["text"] for rec in records] == [json.loads(line)["text"] for line in direct.stdout.splitlines()]


def test_auto_with_no_usable_language_is_a_per_input_error(hf_dir, tmp_path, wavs):
    model = random_lid_model(["deu", "yor"], seed=3)
    lid = write_hf_lid(model, tmp_path / "lid2")
    r = mms("asr", "--model", hf_dir, "--lang", "auto", "--lid-model", lid, wavs[0], "--format", "jsonl")
    assert r.returncode == 1
    record = json.loads(r.stdout)
    assert "no adapter" in record["error"] and record["text"] == ""
    assert r.stderr.count("error:") == 1


def test_auto_keeps_an_items_own_language_and_names_what_is_no_input(hf_dir, lid_dir, wavs):
    """lang="auto" is the language of the inputs without their own: an Item's language is kept (LID had replaced
    it), and an input that is no audio is its own error (a TypeError had ended the batch)."""
    from mms.asr import ASR
    from mms.manifest import Item

    asr = ASR.load(str(hf_dir), lang="auto", lid_model=str(lid_dir), device="cpu")
    results = asr.transcribe([Item(str(wavs[0]), lang="eng"), str(wavs[1]), 42])
    assert [r.lang for r in results[:2]] == ["eng", "fra"] and results[0].lid is None
    assert results[1].lid["lid_lang"] == "fra"
    assert results[2].error == "<input 2: int>: not an audio path, mms.manifest.Item or 16 kHz array"
    direct = ASR.load(str(hf_dir), lang="eng", device="cpu").transcribe([str(wavs[0])])[0]
    assert results[0].text == direct.text
