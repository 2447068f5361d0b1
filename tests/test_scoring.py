"""WER/CER scoring (mms.scoring): hand-counted pairs, corpus-level sums as fairseq computes them, the
two ways of treating spaces in CER, empty references, unicode, and reading reference files."""

import itertools
import json
import random

import pytest

from mms.errors import MMSError
from mms.scoring import (
    CorpusScorer,
    ScoringError,
    edit_counts,
    format_summary,
    letters_to_words,
    read_texts,
    score,
    score_utterance,
)


def counts(ref, hyp, errors, substitutions, deletions, insertions):
    return {"ref": ref, "hyp": hyp, "errors": errors, "substitutions": substitutions,
            "deletions": deletions, "insertions": insertions}


@pytest.mark.parametrize("ref, hyp, expected", [
    # sat -> sit (S), second "the" missing (D)
    ("the cat sat on the mat", "the cat sit on mat", counts(6, 5, 2, 1, 1, 0)),
    # x and e inserted
    ("a b c d", "a x b c d e", counts(4, 6, 2, 0, 0, 2)),
    # everything deleted
    ("hello world", "", counts(2, 0, 2, 0, 2, 0)),
    # "one" deleted, two -> too, four -> for
    ("one two three four", "too three for", counts(4, 3, 3, 2, 1, 0)),
    # swapped words: two substitutions (a match/substitution is preferred over a deletion + insertion)
    ("a b", "b a", counts(2, 2, 2, 2, 0, 0)),
    ("", "", counts(0, 0, 0, 0, 0, 0)),
])
def test_word_counts_hand_counted(ref, hyp, expected):
    assert edit_counts(ref.split(), hyp.split()) == expected


def test_character_counts_hand_counted():
    # "abc" -> "xaby": x inserted, c -> y
    assert score_utterance("abc", "xaby")["chars"] == counts(3, 4, 2, 1, 0, 1)
    # "the cat sat on the mat" (22 chars with spaces) -> "the cat sit on mat" (18): a -> i, "the " deleted
    result = score_utterance("the cat sat on the mat", "the cat sit on mat")
    assert result["chars"] == counts(22, 18, 5, 1, 4, 0)
    assert result["cer"] == pytest.approx(100 * 5 / 22)
    assert result["wer"] == pytest.approx(100 * 2 / 6)


def test_spaces_in_cer():
    # Counted (default): whitespace runs become one space and the ends are stripped; a space is a char.
    assert score_utterance("ab cd", "abcd")["chars"] == counts(5, 4, 1, 0, 1, 0)
    assert score_utterance("  hello \t  world ", "hello world")["chars"] == counts(11, 11, 0, 0, 0, 0)
    # Ignored (lid_rerank's spaced-out CER): all whitespace goes before comparing.
    assert score_utterance("ab cd", "abcd", ignore_spaces=True)["chars"] == counts(4, 4, 0, 0, 0, 0)
    assert score_utterance("ab cd", "a bxd", ignore_spaces=True)["chars"] == counts(4, 4, 1, 1, 0, 0)
    assert score(["ab cd"], ["abcd"], ignore_spaces=True)["cer_spaces"] == "ignored"
    assert score(["ab cd"], ["abcd"])["cer_spaces"] == "counted"


def test_unicode_is_compared_by_code_point():
    assert score_utterance("日本語 です", "日本 です")["chars"] == counts(6, 5, 1, 0, 1, 0)
    assert score_utterance("naïve café", "naive café")["words"] == counts(2, 2, 1, 1, 0, 0)
    # NFC first: "i + combining diaeresis" is the same text as "ï" (a model's vocabulary may hold either form)
    assert score_utterance("naïve", "nai\u0308ve")["chars"] == counts(5, 5, 0, 0, 0, 0)
    assert score_utterance("nai\u0308ve", "naive")["chars"] == counts(5, 5, 1, 1, 0, 0)
    result = score_utterance("ẹ̀kọ́ ilé", "ẹ̀kọ́ ile")
    assert result["words"]["substitutions"] == 1 and result["chars"]["errors"] == 1


def test_corpus_rate_is_total_errors_over_total_reference_words():
    # fairseq: 100 * sum(edit distances) / sum(reference words), not the mean of per-utterance rates.
    result = score(["a", "b c d e f g h i j"], ["x", "b c d e f g h i j"])
    assert result["per_utterance"][0]["wer"] == 100.0
    assert result["per_utterance"][1]["wer"] == 0.0
    assert result["wer"] == pytest.approx(10.0)
    assert result["words"] == counts(10, 10, 1, 1, 0, 0)
    assert result["utterances"] == 2


def test_empty_references():
    result = score(["", "", "a b"], ["", "uh", "a b"])
    first, second, third = result["per_utterance"]
    assert (first["wer"], first["cer"]) == (0.0, 0.0)  # nothing to say, nothing said
    assert (second["wer"], second["cer"]) == (None, None)  # no rate against an empty reference
    assert second["words"] == counts(0, 1, 1, 0, 0, 1)
    assert result["words"] == counts(2, 3, 1, 0, 0, 1)  # its insertion still counts in the corpus
    assert result["wer"] == pytest.approx(50.0)
    only_empty = score([""], ["uh"])
    assert only_empty["wer"] is None and only_empty["cer"] is None
    assert "n/a" in format_summary(only_empty)


def test_failed_hypothesis_scores_as_empty_and_bad_input_is_an_error():
    assert score(["a b"], [None])["words"] == counts(2, 0, 2, 0, 2, 0)
    with pytest.raises(ScoringError, match="2 references but 1 hypotheses"):
        score(["a", "b"], ["a"])
    with pytest.raises(ScoringError, match="reference 1 is NoneType"):
        score([None], ["a"])


def reference_distance(a, b):
    """Textbook Levenshtein distance, for checking the vectorised one."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_random_pairs_against_textbook_levenshtein():
    rng = random.Random(0)
    for _ in range(300):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        result = edit_counts(a, b)
        assert result["errors"] == reference_distance(a, b)
        assert result["errors"] == result["substitutions"] + result["deletions"] + result["insertions"]
        # The breakdown is a real alignment: hyp length = ref length - deletions + insertions.
        assert len(b) == len(a) - result["deletions"] + result["insertions"]
        assert result["substitutions"] + result["deletions"] <= len(a)


def test_result_is_json_and_summary_is_one_line():
    result = score(["the cat sat on the mat", "hello world"], ["the cat sit on mat", "hello world"])
    assert json.loads(json.dumps(result)) == result
    assert [u["index"] for u in result["per_utterance"]] == [0, 1]
    assert "per_utterance" not in score(["a"], ["a"], per_utterance=False)
    summary = format_summary(result)
    assert "\n" not in summary
    assert summary.startswith("WER 25.00% (2 errors / 8 words: 1 sub, 1 del, 0 ins), CER ")


def test_corpus_scorer_adds_up_to_score_on_random_data():
    """The incremental scorer (constant memory, for `mms asr --ref`) gives score()'s summary: the totals are the
    sums of the per-utterance counts and the rates those totals' ratios, for either treatment of spaces."""
    rng = random.Random(1)

    def text():
        return " ".join("".join(rng.choice("abé ") for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 6)))

    for ignore_spaces in (False, True):
        refs = [text() for _ in range(60)]
        hyps = [None if rng.random() < 0.1 else text() for _ in refs]
        scorer = CorpusScorer(ignore_spaces)
        for ref, hyp in zip(refs, hyps):
            scorer.add(ref, hyp)
        full = score(refs, hyps, ignore_spaces=ignore_spaces)
        assert scorer.summary() == score(refs, hyps, ignore_spaces=ignore_spaces, per_utterance=False)
        assert scorer.summary() == {k: v for k, v in full.items() if k != "per_utterance"}
        for level, rate in (("words", "wer"), ("chars", "cer")):
            sums = {k: sum(u[level][k] for u in full["per_utterance"]) for k in full[level]}
            assert full[level] == sums
            assert full[rate] == pytest.approx(100.0 * sums["errors"] / sums["ref"])
    assert CorpusScorer().summary()["utterances"] == 0
    with pytest.raises(ScoringError, match="hypothesis 1 is int"):
        CorpusScorer().add("a", 3)
    assert issubclass(ScoringError, MMSError)


# ---------------------------------------------------------------------------------------------------
# Reading references


def test_read_plain_text_lines(tmp_path):
    path = tmp_path / "ref.txt"
    path.write_bytes("\ufeffhello world\r\n\nẹ̀kọ́\n".encode())
    assert read_texts(path) == ["hello world", "", "ẹ̀kọ́"]  # an empty line is an empty reference
    assert read_texts(path, count=3) == ["hello world", "", "ẹ̀kọ́"]
    with pytest.raises(ScoringError, match=r"ref.txt: 3 texts for 4 inputs"):
        read_texts(path, count=4)
    # A text starting with a bracket is still text.
    path.write_text("[noise] hello\n")
    assert read_texts(path) == ["[noise] hello"]


def test_read_letter_units(tmp_path):
    assert letters_to_words("h e l l o | | w o r l d |") == "hello world"
    path = tmp_path / "dev.ltr"
    path.write_text("h e l l o | w o r l d |\nẹ̀ k ọ́ |\n")
    assert read_texts(path) == ["hello world", "ẹ̀kọ́"]


def test_read_json_lines_and_json_arrays(tmp_path):
    lines = tmp_path / "dev.jsonl"
    lines.write_text('{"audio": "a.wav", "text": "hello"}\n\n{"audio": "b.wav", "text": ""}\n')
    assert read_texts(lines) == ["hello", ""]
    array = tmp_path / "results.json"
    array.write_text(json.dumps([{"audio": "a.wav", "text": "x y"}, {"audio": "b.wav", "text": "z"}]))
    assert read_texts(array) == ["x y", "z"]
    lines.write_text('{"audio": "a.wav", "text": "hello"}\n{"audio": "b.wav"}\n')
    with pytest.raises(ScoringError, match=r"dev.jsonl: line 2 has no 'text'"):
        read_texts(lines)
    lines.write_text('{"audio": "a.wav"\n')
    with pytest.raises(ScoringError, match=r"dev.jsonl:1: bad JSON"):
        read_texts(lines)


def test_read_the_results_of_mms_asr_in_every_line_format(tmp_path):
    # What `mms asr` writes is scored as it was written: txt of several inputs is `audio<TAB>text`, tsv has a
    # header and a text column, and jsonl lists the inputs in the order they finished (a resumed run).
    from mms.writers import JsonlWriter
    from mms.writers.text import TranscriptTsvWriter, TranscriptTxtWriter

    records = [{"index": 2, "audio": "c d.wav", "lang": "eng", "text": "third one", "duration": 1.0},
               {"index": 0, "audio": "a.wav", "lang": "eng", "text": "first", "duration": 2.0},
               {"index": 1, "audio": "b.wav", "lang": "eng", "text": "", "duration": None, "error": "b.wav: bad"}]
    for name, writer in (("h.txt", TranscriptTxtWriter), ("h.tsv", TranscriptTsvWriter), ("h.jsonl", JsonlWriter)):
        with writer(str(tmp_path / name)) as out:
            for record in records:
                out._put(out.format(record))
    assert read_texts(tmp_path / "h.txt") == ["third one", "first", ""]  # txt keeps no index: file order
    assert read_texts(tmp_path / "h.tsv", count=3) == ["third one", "first", ""]
    assert read_texts(tmp_path / "h.jsonl", count=3) == ["first", "", "third one"]
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    (tmp_path / "twice.jsonl").write_text("\n".join([lines[0], lines[1], lines[1]]) + "\n")
    with pytest.raises(ScoringError, match=r"twice.jsonl: line 3 has index 0, again"):
        read_texts(tmp_path / "twice.jsonl")
    (tmp_path / "gap.jsonl").write_text("\n".join([lines[0], lines[1]]) + "\n")
    with pytest.raises(ScoringError, match=r"gap.jsonl: line 1 has index 2, for 2 results"):
        read_texts(tmp_path / "gap.jsonl")
    # a reference with a tab on one line only is plain text
    (tmp_path / "ref.txt").write_text("a\tb\nc\n")
    assert read_texts(tmp_path / "ref.txt") == ["a\tb", "c"]
    # a one-line reference holding a tab is text too (it had been read as `audio<TAB>text`, dropping words)
    (tmp_path / "ref.txt").write_text("ther wetheris\tnice day\n")
    assert read_texts(tmp_path / "ref.txt") == ["ther wetheris\tnice day"]


def test_score_pairs_texts_by_audio_when_both_files_name_it(tmp_path):
    from mms.scoring import pair_by_audio

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "b.wav").write_bytes(b"")
    refs = tmp_path / "refs.jsonl"  # a manifest: paths relative to it
    refs.write_text("".join(json.dumps({"audio_filepath": f, "text": t}) + "\n"
                            for f, t in (("a.wav", "one"), ("b.wav", "two"))))
    hyps = tmp_path / "hyps.jsonl"  # results, in the other order, with absolute paths and their index
    hyps.write_text("".join(json.dumps({"index": i, "audio": str(tmp_path / f), "text": t}) + "\n"
                            for i, f, t in ((0, "b.wav", "too"), (1, "a.wav", "won"))))
    notes = []
    texts = read_texts(hyps, 2)
    assert texts == ["too", "won"]
    assert pair_by_audio(refs, hyps, texts, notes.append) == ["won", "too"]
    assert "another order: paired by audio file" in notes[0]
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"audio": f, "text": "x"}) + "\n" for f in ("c.wav", "d.wav")))
    assert pair_by_audio(refs, other, ["x", "y"], notes.append) == ["x", "y"]
    assert "entry 1 is of" in notes[1] and "c.wav" in notes[1]
    plain = tmp_path / "refs.txt"
    plain.write_text("one\ntwo\n")
    assert pair_by_audio(plain, hyps, texts, notes.append) == texts and len(notes) == 2  # nothing to pair by


def test_read_fairseq_manifest_transcripts(tmp_path):
    manifest = tmp_path / "dev.tsv"
    manifest.write_text("/data\na.wav\t16000\nb.wav\t32000\n")
    with pytest.raises(ScoringError, match=r"dev.tsv: no transcripts; expected .*dev.wrd"):
        read_texts(manifest)
    (tmp_path / "dev.wrd").write_text("hello world\nẹ̀kọ́\n")
    assert read_texts(manifest, count=2) == ["hello world", "ẹ̀kọ́"]


def test_unreadable_files(tmp_path):
    with pytest.raises(ScoringError, match="no such file"):
        read_texts(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ScoringError, match="not UTF-8"):
        read_texts(bad)
    with pytest.raises(ScoringError, match="directory"):
        read_texts(tmp_path)


def test_all_alignments_of_small_inputs_are_minimal():
    # Exhaustive over every pair of strings up to length 4 over {a, b}: the counts always describe an
    # alignment of minimal cost.
    strings = ["".join(p) for n in range(5) for p in itertools.product("ab", repeat=n)]
    for a in strings:
        for b in strings:
            result = edit_counts(a, b)
            assert result["errors"] == reference_distance(a, b), (a, b)
            assert len(b) == len(a) - result["deletions"] + result["insertions"], (a, b)
