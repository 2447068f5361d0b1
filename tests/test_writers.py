"""The writer layer (mms.writers) and atomic files (mms.files)."""

import json
import os
from dataclasses import dataclass

import pytest

from mms.errors import MMSError
from mms.files import atomic_path, write_text_atomic
from mms.results import Word
from mms.writers import JsonWriter, WriterError, formats, get_writer

RECORDS = [
    {
        "audio": "a.wav",
        "lang": "eng",
        "text": "hello\nwörld",
        "duration": 1.5,
        "words": [{"text": "hello", "start": 0.1, "end": 0.4}],
    },
    {"audio": "b.wav", "lang": None, "text": "", "duration": None, "error": "b.wav: no such file"},
]


@dataclass
class Record:
    """A result as the writers see it: index, name, error, to_dict()."""

    record: dict
    index: int = 0

    @property
    def name(self):
        return self.record["audio"]

    @property
    def error(self):
        return self.record.get("error")

    def to_dict(self):
        return self.record


def render(fmt, records, task="asr", **options):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "out")
        with get_writer(task, fmt, path, **options) as writer:
            for i, record in enumerate(records):
                writer.write(Record(record, i))
        return open(path, encoding="utf-8").read()


def test_txt_two_records():
    assert render("txt", RECORDS) == "a.wav\thello wörld\nb.wav\t\n"


def test_txt_one_record_is_just_the_text():
    assert render("txt", RECORDS[:1], single=True) == "hello wörld\n"


def test_jsonl():
    assert render("jsonl", RECORDS) == (
        '{"audio": "a.wav", "lang": "eng", "text": "hello\\nwörld", "duration": 1.5, '
        '"words": [{"text": "hello", "start": 0.1, "end": 0.4}]}\n'
        '{"audio": "b.wav", "lang": null, "text": "", "duration": null, '
        '"error": "b.wav: no such file"}\n'
    )


def test_json():
    output = render("json", RECORDS)
    assert output.endswith("]\n")
    assert 'hello\\nwörld' in output  # non-ASCII not escaped
    assert output.startswith('[\n  {\n    "audio": "a.wav",')
    assert json.loads(output) == RECORDS


def test_tsv():
    assert render("tsv", RECORDS) == (
        "audio\tlang\tduration\ttext\terror\n"
        "a.wav\teng\t1.500\thello wörld\t\n"
        "b.wav\t\t\t\tb.wav: no such file\n"
    )


def test_tabs_in_fields_are_replaced():
    record = {"audio": "x\ty.wav", "lang": "eng", "text": "a\tb\r\nc", "duration": 2}
    assert render("txt", [record, record]) == "x y.wav\ta b c\n" * 2
    assert render("tsv", [record]).splitlines()[1] == "x y.wav\teng\t2.000\ta b c\t"


def test_no_records():
    assert render("txt", []) == ""
    assert render("jsonl", []) == ""
    assert render("json", []) == "[]\n"
    assert render("tsv", []) == "audio\tlang\tduration\ttext\terror\n"


def test_subtitles_are_numbered_cues_of_one_recording(tmp_path):
    words = [{"text": "hello", "start": 0.1, "end": 0.5}, {"text": "world", "start": 0.6, "end": 1.0},
             {"text": "again", "start": 3.0, "end": 3.5}]  # a 2 s pause starts a new cue
    assert render("srt", [{"audio": "a.wav", "text": "hello world again", "words": words}]) == (
        "1\n00:00:00,100 --> 00:00:01,000\nhello world\n\n2\n00:00:03,000 --> 00:00:03,500\nagain\n")
    plain = {"audio": "b.wav", "text": "plain text", "duration": 2.0}
    assert render("vtt", [plain]) == "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nplain text\n"
    # a second recording's cues would overlap the first's on one clock: refused
    with pytest.raises(WriterError, match="a subtitle file holds one recording's cues"):
        with get_writer("asr", "srt", str(tmp_path / "two.srt")) as writer:
            for record in (plain, dict(plain, audio="c.wav")):
                writer.write(Record(record))
    assert not (tmp_path / "two.srt").exists()


def test_subtitles_are_one_document_written_whole(tmp_path):
    """srt/vtt hold one recording: written atomically at the end, so an interrupted run or a failed input leaves
    the file that was there."""
    path = tmp_path / "out.srt"
    path.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with get_writer("asr", "srt", str(path)) as writer:
            writer.write(Record({"audio": "a.wav", "text": "new", "duration": 1.0}))
            raise KeyboardInterrupt
    with get_writer("asr", "srt", str(path)) as writer:
        writer.write(Record({"audio": "b.wav", "text": "", "duration": None, "error": "b.wav: no such file"}))
    assert path.read_text() == "old\n"
    with get_writer("asr", "vtt", str(path)) as writer:
        writer.write(Record({"audio": "a.wav", "text": "new", "duration": 1.0}))
    assert path.read_text() == "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nnew\n"


def test_unknown_format_is_an_mms_error():
    assert set(formats("asr")) == {"txt", "jsonl", "json", "tsv", "srt", "vtt"}
    with pytest.raises(MMSError, match="unknown output format 'csv' for asr"):
        get_writer("asr", "csv", "-")


def test_line_formats_are_on_disk_after_each_result_and_json_only_at_the_end(tmp_path):
    """A killed run keeps every finished line: each is flushed before the next result is asked for."""
    lines = tmp_path / "out.jsonl"
    with get_writer("asr", "jsonl", str(lines)) as writer:
        for i, record in enumerate(RECORDS):
            writer.write(Record(record, i))
            assert len(lines.read_text(encoding="utf-8").splitlines()) == i + 1
    document = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt):
        with get_writer("asr", "json", str(document)) as writer:
            writer.write(Record(RECORDS[0]))
            raise KeyboardInterrupt
    assert not document.exists()  # a single document is written whole or not at all
    assert isinstance(get_writer("asr", "json", str(document)), JsonWriter)


def test_append_continues_a_file_without_a_second_header(tmp_path):
    path = tmp_path / "out.tsv"
    with get_writer("asr", "tsv", str(path)) as writer:
        writer.write(Record(RECORDS[0]))
    with get_writer("asr", "tsv", str(path), append=True) as writer:
        writer.write(Record(RECORDS[1], 1))
    assert path.read_text(encoding="utf-8").count("audio\tlang") == 1
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_word_keys_are_the_same_everywhere():
    assert Word("hi", 0.1, 0.2).to_dict() == {"text": "hi", "start": 0.1, "end": 0.2}
    assert Word("h", 0.1, 0.2, 0.9).to_dict() == {"text": "h", "start": 0.1, "end": 0.2, "score": 0.9}


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


def test_errors_name_the_output_never_a_temporary_file(tmp_path, monkeypatch):
    folder = tmp_path / "adir"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_text_atomic(folder, "x")
    assert caught.value.filename == str(folder)
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file" / "out.txt", tmp_path / "file" / "deeper" / "out.txt"):  # a parent that is a file
        with pytest.raises(NotADirectoryError) as caught:
            write_text_atomic(out, "x")
        assert caught.value.filename == str(out) and caught.value.strerror == f"{tmp_path / 'file'} is a file, not a folder"

    def failing_replace(source, target):  # e.g. a full disk or a lost mount as the file moves into place
        raise OSError(28, "No space left on device", source)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError) as caught:
        write_text_atomic(folder / "out.txt", "x")
    assert caught.value.filename == str(folder / "out.txt") and caught.value.strerror == "No space left on device"
    assert list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "file"]


def test_json_output_that_cannot_be_written_fails_before_the_run(tmp_path):
    # the document is written at the end of a run; that it cannot be is said when the writer is made
    (tmp_path / "file").write_text("")
    for dest, reason in ((tmp_path, "is a directory"), (tmp_path / "file" / "out.json", "cannot write output")):
        with pytest.raises(MMSError, match=reason):
            get_writer("asr", "json", str(dest))
    get_writer("asr", "json", str(tmp_path / "new" / "out.json"))  # a folder to be made is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "new"]
    assert list((tmp_path / "new").iterdir()) == []


def test_vtt_cue_text_escapes_markup_characters():
    # WebVTT reads cue text as markup: "<b>" would be bold and "&" starts an entity; SubRip keeps them as written
    from mms.writers.text import format_subtitles

    cues = [(0.0, 1.5, "good morning & friend <b>")]
    assert "good morning &amp; friend &lt;b&gt;\n" in format_subtitles(cues, "vtt")
    assert "good morning & friend <b>\n" in format_subtitles(cues, "srt")


def test_a_misspelt_writer_option_is_refused():
    """get_writer passes each format the options it has a use for; one no writer knows is a typo, not dropped."""
    from mms.writers import get_writer

    with pytest.raises(TypeError, match="unknown option appendd"):
        get_writer("asr", "jsonl", "-", appendd=True)
