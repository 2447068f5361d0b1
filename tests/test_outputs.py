import json

import pytest

from mms.outputs import FORMATS, atomic_path, format_results, write_text_atomic

RECORDS = [
    {
        "audio": "a.wav",
        "lang": "eng",
        "text": "hello\nwörld",
        "duration": 1.5,
        "words": [{"word": "hello", "start": 0.1, "end": 0.4}],
    },
    {"audio": "b.wav", "lang": None, "text": "", "duration": None, "error": "b.wav: no such file"},
]


def test_txt_two_records():
    assert format_results(RECORDS, "txt") == "a.wav\thello wörld\nb.wav\t\n"


def test_txt_one_record_is_just_the_text():
    assert format_results(RECORDS[:1], "txt") == "hello wörld\n"


def test_jsonl():
    assert format_results(RECORDS, "jsonl") == (
        '{"audio": "a.wav", "lang": "eng", "text": "hello\\nwörld", "duration": 1.5, '
        '"words": [{"word": "hello", "start": 0.1, "end": 0.4}]}\n'
        '{"audio": "b.wav", "lang": null, "text": "", "duration": null, '
        '"error": "b.wav: no such file"}\n'
    )


def test_json():
    output = format_results(RECORDS, "json")
    assert output.endswith("]\n")
    assert 'hello\\nwörld' in output  # non-ASCII not escaped
    assert output.startswith('[\n  {\n    "audio": "a.wav",')
    assert json.loads(output) == RECORDS


def test_tsv():
    assert format_results(RECORDS, "tsv") == (
        "audio\tlang\tduration\ttext\terror\n"
        "a.wav\teng\t1.500\thello wörld\t\n"
        "b.wav\t\t\t\tb.wav: no such file\n"
    )


def test_tabs_in_fields_are_replaced():
    record = {"audio": "x\ty.wav", "lang": "eng", "text": "a\tb\r\nc", "duration": 2}
    assert format_results([record, record], "txt") == "x y.wav\ta b c\n" * 2
    assert format_results([record], "tsv").splitlines()[1] == "x y.wav\teng\t2.000\ta b c\t"


def test_no_records():
    assert format_results([], "txt") == ""
    assert format_results([], "jsonl") == ""
    assert format_results([], "json") == "[]\n"
    assert format_results([], "tsv") == "audio\tlang\tduration\ttext\terror\n"


def test_unknown_format():
    assert FORMATS == ("txt", "jsonl", "json", "tsv")
    with pytest.raises(ValueError, match="unknown output format 'csv'"):
        format_results(RECORDS, "csv")


def test_write_text_atomic_creates_parents_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "dir" / "out.txt"
    write_text_atomic(target, "héllo\n")
    assert target.read_bytes() == "héllo\n".encode("utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]

    write_text_atomic(target, "replaced\n")
    assert target.read_text(encoding="utf-8") == "replaced\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_write_text_atomic_dash_is_stdout(capsys):
    write_text_atomic("-", "to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"


def test_atomic_path_temp_name_is_hidden_in_same_directory(tmp_path):
    target = tmp_path / "result.json"
    with atomic_path(target) as temp_path:
        assert temp_path.startswith(str(tmp_path / ".result.json."))
        assert temp_path.endswith(".tmp")
        with open(temp_path, "w") as f:
            f.write("done")
    assert target.read_text() == "done"


def test_atomic_path_exception_keeps_target_and_removes_temp(tmp_path):
    target = tmp_path / "result.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as temp_path:
            with open(temp_path, "w") as f:
                f.write("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.txt"]


def test_atomic_path_exception_before_temp_exists(tmp_path):
    target = tmp_path / "never.txt"
    with pytest.raises(KeyError):
        with atomic_path(target):
            raise KeyError("nothing written")
    assert list(tmp_path.iterdir()) == []
