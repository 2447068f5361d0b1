import os

import pytest

from mms.manifest import Item, ManifestError, items_from_paths, read_manifest


def test_fairseq_tsv_absolute_root(tmp_path):
    manifest = tmp_path / "dev.tsv"
    manifest.write_text("/data/audio\nspk1/a.flac\t16000\nb.wav\t32000\n\n")
    assert read_manifest(manifest) == [
        Item(audio="/data/audio/spk1/a.flac"),
        Item(audio="/data/audio/b.wav"),
    ]


def test_fairseq_tsv_relative_root_and_slash_root(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = tmp_path / "sub" / "train.tsv"
    manifest.write_text("clips\nx.wav\t10\n")
    assert read_manifest(manifest)[0].audio == str(tmp_path / "sub" / "clips" / "x.wav")

    # fairseq's quirk: root "/" joined with a relative path gives "/rel".
    manifest.write_text("/\nrel/x.wav\t10\n")
    assert read_manifest(manifest)[0].audio == "/rel/x.wav"


def test_fairseq_wrd_sidecar(tmp_path):
    manifest = tmp_path / "test.tsv"
    manifest.write_text("/d\na.wav\t1\nb.wav\t2\n")
    (tmp_path / "test.wrd").write_text("hello world\nsecond line\n")
    items = read_manifest(manifest)
    assert [item.text for item in items] == ["hello world", "second line"]


def test_fairseq_wrd_with_wrong_line_count_is_ignored(tmp_path, caplog):
    manifest = tmp_path / "test.tsv"
    manifest.write_text("/d\na.wav\t1\nb.wav\t2\n")
    (tmp_path / "test.wrd").write_text("only one\n")
    with caplog.at_level("WARNING", logger="mms.manifest"):
        items = read_manifest(manifest)
    assert caplog.messages == [f"{tmp_path / 'test.wrd'}: 1 lines but {manifest} has 2 entries; ignoring the transcripts"]
    assert [item.text for item in items] == [None, None]


def test_fairseq_tsv_bad_lines(tmp_path):
    manifest = tmp_path / "bad.tsv"
    manifest.write_text("/d\na.wav\t1\nb.wav 2\n")
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest)
    assert str(caught.value).startswith(f"{manifest}:3: expected 2 tab-separated fields")

    manifest.write_text("/d\na.wav\tmany\n")
    with pytest.raises(ManifestError, match=r"bad\.tsv:2: num_samples 'many'"):
        read_manifest(manifest)

    manifest.write_text("\na.wav\t1\n")
    with pytest.raises(ManifestError, match=r"bad\.tsv:1: first line must be the audio root"):
        read_manifest(manifest)
    manifest.write_text("a.wav\t1\nb.wav\t2\n")
    with pytest.raises(ManifestError, match=r"bad\.tsv:1: first line must be the audio root directory, found an entry"):
        read_manifest(manifest)


def test_bad_lines_kept_as_inputs_with_their_error(tmp_path):
    """For a batch run (mms asr / mms lid): a line that cannot be read is an input whose error is said in its place;
    the lines around it, and the .wrd transcripts of a tsv, stay in step."""
    tsv = tmp_path / "m.tsv"
    tsv.write_text("/d\na.wav\t1\nb.wav 2\nc.wav\t-5\nd.wav\t3\n")
    (tmp_path / "m.wrd").write_text("one\ntwo\nthree\nfour\n")
    items = read_manifest(tsv, keep_bad_lines=True)
    assert [(i.audio, i.text, i.error) for i in items] == [
        ("/d/a.wav", "one", None),
        (f"{tsv}:3", "two", "expected 2 tab-separated fields (path, num_samples), found 1"),
        (f"{tsv}:4", "three", "num_samples '-5' is not a whole number"),
        ("/d/d.wav", "four", None)]
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"audio": "/a.wav"}\n{"audio": \n[1]\n{"path": "/b.wav", "text": "hi"}\n')
    items = read_manifest(jsonl, keep_bad_lines=True)
    assert [i.audio for i in items] == ["/a.wav", f"{jsonl}:2", f"{jsonl}:3", "/b.wav"]
    assert items[1].error.startswith("bad JSON") and items[2].error == "expected a JSON object"
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: bad JSON"):
        read_manifest(jsonl)  # training and tuning still refuse such a file
    tsv.write_text("a.wav\t1\n")  # no root line: nothing can be read
    with pytest.raises(ManifestError):
        read_manifest(tsv, keep_bad_lines=True)


def test_json_lines_audio_keys_lang_text(tmp_path):
    manifest = tmp_path / "set.jsonl"
    manifest.write_text(
        '{"audio_filepath": "a.wav", "audio": "ignored.wav", "lang": "eng", "text": "hi"}\n'
        "\n"
        '{"audio": "/abs/b.wav"}\n'
        '{"path": "c/d.wav", "lang": "fra", "duration": 1.5}\n'
    )
    assert read_manifest(manifest) == [
        Item(audio=str(tmp_path / "a.wav"), lang="eng", text="hi"),
        Item(audio="/abs/b.wav"),
        Item(audio=str(tmp_path / "c" / "d.wav"), lang="fra"),
    ]


def test_json_lines_detected_by_first_character(tmp_path):
    manifest = tmp_path / "inputs.txt"
    manifest.write_text('\n  {"audio": "a.wav", "text": "ünïcode"}\n')
    assert read_manifest(manifest) == [Item(audio=str(tmp_path / "a.wav"), text="ünïcode")]


def test_json_lines_errors_name_the_line(tmp_path):
    manifest = tmp_path / "set.jsonl"
    manifest.write_text('{"audio": "a.wav"}\n{"audio": "b.wav",\n')
    with pytest.raises(ManifestError) as caught:
        read_manifest(manifest)
    assert str(caught.value).startswith(f"{manifest}:2: bad JSON")
    assert "\n" not in str(caught.value)

    manifest.write_text('{"audio": "a.wav"}\n\n{"file": "b.wav"}\n')
    with pytest.raises(ManifestError, match=r"set\.jsonl:3: no audio path: needs one of audio_filepath"):
        read_manifest(manifest)

    manifest.write_text('["a.wav"]\n')
    with pytest.raises(ManifestError, match=r"set\.jsonl:1: expected a JSON object"):
        read_manifest(manifest)
    # a transcript that is a number is its text; a list is not text
    manifest.write_text('{"audio": "a.wav", "text": 42}\n{"audio": "b.wav", "text": 2.5}\n')
    assert [item.text for item in read_manifest(manifest)] == ["42", "2.5"]
    manifest.write_text('{"audio": "a.wav", "text": ["x"]}\n')
    with pytest.raises(ManifestError, match=r"set\.jsonl:1: 'text' must be a string"):
        read_manifest(manifest)


def test_plain_path_list(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("# my files\na.wav\n\n  /abs/b.flac  \n#c.wav\nsub/c.mp3\n")
    assert [item.audio for item in read_manifest(manifest)] == [
        str(tmp_path / "a.wav"),
        "/abs/b.flac",
        str(tmp_path / "sub" / "c.mp3"),
    ]


def test_relative_manifest_path_gives_absolute_audio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.txt").write_text("a.wav\n")
    assert read_manifest("list.txt")[0].audio == os.path.join(str(tmp_path), "a.wav")


def test_empty_and_missing_manifest(tmp_path):
    manifest = tmp_path / "empty.txt"
    manifest.write_text("# nothing here\n\n")
    with pytest.raises(ManifestError, match="no audio entries"):
        read_manifest(manifest)

    manifest = tmp_path / "header_only.tsv"
    manifest.write_text("/root\n")
    with pytest.raises(ManifestError, match="no audio entries"):
        read_manifest(manifest)

    with pytest.raises(ManifestError, match=r"missing\.tsv: no such file"):
        read_manifest(tmp_path / "missing.tsv")


def test_items_from_paths(tmp_path):
    assert items_from_paths(["a.wav", tmp_path / "b.wav"]) == [
        Item(audio="a.wav"),
        Item(audio=str(tmp_path / "b.wav")),
    ]


def test_collect_inputs_mixes_paths_and_manifests_in_order(tmp_path):
    from mms.manifest import collect_inputs

    listing = tmp_path / "more.lst"
    listing.write_text("c.wav\n")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"audio": "d.wav", "lang": "fra"}\n')
    items = collect_inputs(["a.wav", str(listing), "b.flac"], [str(jsonl)])
    assert [(i.audio, i.lang) for i in items] == [
        ("a.wav", None), ("b.flac", None), (str(tmp_path / "d.wav"), "fra"), (str(tmp_path / "c.wav"), None)]
    with pytest.raises(ManifestError):
        collect_inputs([str(tmp_path / "missing.tsv")])
