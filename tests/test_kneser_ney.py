"""Modified Kneser-Ney estimation (mms.lm.kneser_ney) and the ARPA reader/scorer (mms.lm.arpa).

What must hold: hand-computed probabilities on a tiny corpus; lmplz's own numbers on KenLM's toy corpus;
probabilities summing to one over the vocabulary in every context; KenLM (through flashlight-text) reading
the file and scoring sentences as the Python scorer does; the lmplz path, with a stand-in lmplz.
"""

import math
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from mms.lm.arpa import ArpaError, ArpaLM
from mms.lm.kneser_ney import FALLBACK_DISCOUNTS, LMError, build_arpa, corpus_lines


def build(tmp_path, sentences, order, name="lm.arpa"):
    path = tmp_path / name
    stats = build_arpa(sentences, path, order=order, use_lmplz=False)
    return ArpaLM.read(path), stats, path


def random_corpus(n_sentences, n_words, seed):
    """Zipf-distributed words, so that every order has singletons, doubletons, ... (closed-form discounts)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n_words)]
    return [
        " ".join(words[min(int(r), n_words) - 1] for r in rng.zipf(1.3, size=rng.integers(0, 9)))
        for _ in range(n_sentences)
    ]


def assert_sums_to_one(lm, contexts):
    """sum over the vocabulary (without <s>, which is never predicted) of p(w | context) = 1."""
    predicted = [w for w in lm.vocabulary if w != "<s>"]
    worst = 0.0
    for context in contexts:
        total = sum(10.0 ** lm.log10_prob(w, context) for w in predicted)
        worst = max(worst, abs(total - 1.0))
    assert worst < 1e-6, worst  # measured 3.4e-8 at most (ARPA values have 8 significant digits)
    return worst


def test_hand_computed_bigram_model(tmp_path):
    # Corpus: "<s> a b </s>", "<s> b a b </s>", "<s> a </s>"; order 2.
    # Bigram counts (the highest order keeps raw counts): <s> a 2, a b 2, b </s> 2, <s> b 1, b a 1, a </s> 1.
    # Unigram continuation counts (distinct words before): a {<s>, b} 2, b {a, <s>} 2, </s> {b, a} 2.
    # Count-of-counts lack singletons (unigrams) or threes (bigrams): both orders fall back to
    # D1, D2, D3+ = 0.5, 1, 1.5.
    # Unigrams: S = 6, gamma = D2 * 3 / 6 = 1/2, |V| = |{a, b, </s>, <unk>}| = 4:
    #   p(a) = p(b) = p(</s>) = (2 - 1) / 6 + (1/2) / 4 = 7/24;  p(<unk>) = (1/2) / 4 = 1/8.
    # Context <s>: a 2, b 1: S = 3, gamma = (D2 + D1) / 3 = 1/2, which is the backoff weight of <s>:
    #   p(a | <s>) = (2 - 1) / 3 + 1/2 * 7/24 = 23/48;  p(b | <s>) = (1 - 0.5) / 3 + 1/2 * 7/24 = 15/48.
    # Likewise p(b | a) = 23/48, p(</s> | a) = 15/48, p(</s> | b) = 23/48, p(a | b) = 15/48, backoffs 1/2.
    # Unlisted: p(a | a) = b(a) p(a) = 7/48, p(<unk> | a) = 1/2 * 1/8 = 1/16.
    lm, stats, _ = build(tmp_path, ["a b", "b a b", "a"], order=2)
    expected = {
        ("<unk>",): 1 / 8, ("a",): 7 / 24, ("b",): 7 / 24, ("</s>",): 7 / 24, ("<s>",): 1.0,
        ("<s>", "a"): 23 / 48, ("<s>", "b"): 15 / 48, ("a", "b"): 23 / 48, ("a", "</s>"): 15 / 48,
        ("b", "</s>"): 23 / 48, ("b", "a"): 15 / 48,
    }
    assert set(lm.log10_probs) == set(expected)
    for gram, probability in expected.items():
        assert lm.log10_probs[gram] == pytest.approx(math.log10(probability), abs=1e-7), gram
    assert lm.log10_backoffs == pytest.approx(
        {("<unk>",): 0.0, ("<s>",): math.log10(0.5), ("a",): math.log10(0.5), ("b",): math.log10(0.5),
         ("</s>",): 0.0}, abs=1e-7)
    assert 10 ** lm.log10_prob("a", ["a"]) == pytest.approx(7 / 48, abs=1e-8)
    assert 10 ** lm.log10_prob("zzz", ["a"]) == pytest.approx(1 / 16, abs=1e-8)  # unknown -> <unk>
    assert stats.fallback_orders == [1, 2]
    assert stats.discounts == [list(FALLBACK_DISCOUNTS)] * 2
    assert (stats.sentences, stats.words, stats.ngrams) == (3, 6, [5, 6])


def test_closed_form_discounts_order_1(tmp_path):
    # One sentence; raw unigram counts a b c 1, d e 2, f 3, g 4, </s> 1:
    # t1 = 4, t2 = 2, t3 = 1, t4 = 1; Y = 4 / (4 + 2*2) = 1/2 (Chen & Goodman eq. 26):
    # D1 = 1 - 2 Y t2/t1 = 1/2, D2 = 2 - 3 Y t3/t2 = 5/4, D3+ = 3 - 4 Y t4/t3 = 1.
    # S = 15, gamma = (4 D1 + 2 D2 + 2 D3) / 15 = 6.5/15, |V| = 9 (7 words, </s>, <unk>):
    # p(a) = 0.5/15 + 6.5/(15*9); p(d) = 0.75/15 + ...; p(g) = 3/15 + ...; p(<unk>) = 6.5/135.
    lm, stats, _ = build(tmp_path, ["a b c d d e e f f f g g g g"], order=1)
    assert stats.discounts == [pytest.approx([0.5, 1.25, 1.0])]
    assert stats.fallback_orders == []
    share = 6.5 / 135
    for word, probability in {"a": 0.5 / 15, "d": 0.75 / 15, "f": 2 / 15, "g": 3 / 15, "<unk>": 0}.items():
        assert 10 ** lm.log10_prob(word) == pytest.approx(probability + share, abs=1e-8), word
    assert lm.order == 2  # the one dummy bigram (<s> </s>) that KenLM needs to load a unigram model
    assert_sums_to_one(lm, [()])


# lmplz's output for this corpus (lmplz --discount_fallback -o 3), as published in KenLM's repository,
# lm/common/test_data/toy0.arpa: (log10 prob, log10 backoff or None).
KENLM_TOY0 = {
    ("<unk>",): (-0.90309, 0), ("<s>",): (0, -0.30103), ("a",): (-0.46943438, -0.30103),
    ("</s>",): (-0.5720968, 0), ("b",): (-0.5720968, -0.30103),
    ("<s>", "a"): (-0.37712017, -0.30103), ("a", "a"): (-0.37712017, -0.30103),
    ("b", "a"): (-0.2984526, -0.30103), ("a", "</s>"): (-0.58682007, 0), ("b", "</s>"): (-0.5220179, 0),
    ("<s>", "b"): (-0.41574955, -0.30103), ("a", "b"): (-0.58682007, -0.30103),
    ("<s>", "a", "a"): (-0.14885087, None), ("b", "a", "a"): (-0.33741078, None),
    ("<s>", "b", "a"): (-0.124077894, None), ("a", "b", "a"): (-0.2997394, None),
    ("b", "a", "</s>"): (-0.42082912, None), ("a", "b", "</s>"): (-0.397617, None),
    ("a", "a", "b"): (-0.20102891, None),
}


def test_matches_lmplz_on_kenlm_toy_corpus(tmp_path):
    lm, stats, _ = build(tmp_path, ["a a b a", "b a a b"], order=3)
    assert set(lm.log10_probs) == set(KENLM_TOY0)
    worst = 0.0
    for gram, (log_prob, log_backoff) in KENLM_TOY0.items():
        worst = max(worst, abs(lm.log10_probs[gram] - log_prob))
        if log_backoff is not None:
            worst = max(worst, abs(lm.log10_backoffs[gram] - log_backoff))
        else:
            assert gram not in lm.log10_backoffs
    assert worst < 1e-6, worst  # lmplz computes in float32; measured 5.0e-8
    assert stats.ngrams == [5, 7, 7]


@pytest.mark.parametrize("order", [2, 3, 4])
def test_probabilities_sum_to_one_in_every_context(tmp_path, order):
    sentences = random_corpus(400, 40, seed=order)
    lm, stats, _ = build(tmp_path, sentences, order=order)
    assert len(stats.fallback_orders) < order  # some order uses the closed-form discounts
    contexts = {gram for gram in lm.log10_probs if len(gram) < order and gram[-1] != "</s>"}
    contexts |= {(), ("w1", "never-seen"), ("never-seen",) * (order - 1)}
    assert len(contexts) > 30
    assert_sums_to_one(lm, sorted(contexts))


def test_corpus_too_short_for_the_order_is_built_at_the_longest_order_it_fills(tmp_path):
    # A word list (one word per line, some two-word lines: <s> w1 w2 </s> at most) has no 5-grams: the model
    # is the 4-gram model of the same text (identical file), not a crash, and KenLM reads it.
    sentences = [f"w{i % 17}" for i in range(60)] + ["w1 w2", "w3 w1", "w2 w2"]
    lm, stats, path = build(tmp_path, sentences, order=5)
    assert stats.order == 4 and len(stats.ngrams) == 4
    _, _, path4 = build(tmp_path, sentences, order=4, name="lm4.arpa")
    assert path.read_text() == path4.read_text()
    contexts = {gram for gram in lm.log10_probs if len(gram) < 4 and gram[-1] != "</s>"} | {()}
    assert_sums_to_one(lm, sorted(contexts))
    kenlm_module = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    dictionary = pytest.importorskip("flashlight.lib.text.dictionary")
    kenlm_module.KenLM(str(path), dictionary.Dictionary([w for w in lm.vocabulary if w not in ("<s>", "</s>")]))
    # One word per line, every line: the longest order is 3 (<s> w </s>) as well
    assert build(tmp_path, ["a", "b", "a"], order=5, name="lm5.arpa")[1].order == 3


def test_continuation_counts_and_sentence_starts(tmp_path):
    # "x" follows many different words but is rare after <s>; "y" always follows "q". A lower-order
    # estimate by raw counts would favour y; Kneser-Ney's continuation counts favour x.
    sentences = [f"w{i} x" for i in range(20)] + ["q y"] * 40
    lm, _, _ = build(tmp_path, sentences, order=2)
    assert lm.log10_prob("x") > lm.log10_prob("y")
    # Bigrams after <s> keep raw counts (nothing precedes <s>): "<s> q" seen 40 times beats "<s> w1".
    assert lm.log10_probs[("<s>", "q")] > lm.log10_probs[("<s>", "w1")]


def test_kenlm_reads_the_file_and_agrees_with_the_python_scorer(tmp_path):
    kenlm_module = pytest.importorskip("flashlight.lib.text.decoder.kenlm")
    dictionary = pytest.importorskip("flashlight.lib.text.dictionary")
    sentences = random_corpus(300, 30, seed=7) + ["ẹ̀kọ́ 日本 naïve", "naïve ẹ̀kọ́"]
    lm, _, path = build(tmp_path, sentences, order=3)
    words = [w for w in lm.vocabulary if w not in ("<s>", "</s>")] + ["unseen-word"]
    word_dict = dictionary.Dictionary(words)
    kenlm = kenlm_module.KenLM(str(path), word_dict)
    tests = sentences[:50] + [["ẹ̀kọ́", "naïve", "日本"], ["unseen-word", "w1"], []]
    worst = 0.0
    for sentence in tests:
        tokens = sentence.split() if isinstance(sentence, str) else sentence
        state = kenlm.start(False)
        total = 0.0
        for word in tokens:
            state, log10_score = kenlm.score(state, word_dict.get_index(word))
            total += log10_score
        state, log10_score = kenlm.finish(state)
        total += log10_score
        worst = max(worst, abs(total - lm.sentence_log10(tokens)))
    assert worst < 1e-4, worst  # KenLM stores float32; measured 2.8e-7


def test_unicode_words_and_markers(tmp_path):
    lm, stats, path = build(tmp_path, ["ẹ̀kọ́ <s> 日本", "naïve </s> ẹ̀kọ́ <unk>"], order=2)
    assert {"ẹ̀kọ́", "日本", "naïve"} <= set(lm.vocabulary)
    assert stats.skipped_markers == 3 and stats.words == 4
    assert ("ẹ̀kọ́", "日本") in lm.log10_probs  # the marker between them was dropped
    assert path.read_text(encoding="utf-8").count("<s>\t") == 1


def test_empty_lines_are_sentences_as_lmplz_counts_them(tmp_path):
    lm, stats, _ = build(tmp_path, ["a b", "", "a"], order=2)
    assert stats.sentences == 3
    assert ("<s>", "</s>") in lm.log10_probs


@pytest.mark.parametrize("sentences", [[], [""], ["  ", "<s> </s>"]])
def test_empty_corpus_is_a_clear_error(tmp_path, sentences):
    with pytest.raises(LMError, match="no words"):
        build_arpa(sentences, tmp_path / "lm.arpa", use_lmplz=False)
    assert not (tmp_path / "lm.arpa").exists()


@pytest.mark.parametrize("order", [0, -1, 2.5])
def test_bad_order(tmp_path, order):
    with pytest.raises(LMError, match="order"):
        build_arpa(["a b"], tmp_path / "lm.arpa", order=order, use_lmplz=False)


def test_corpus_lines(tmp_path):
    good = tmp_path / "corpus.txt"
    good.write_bytes("\ufeffa b\nẹ̀kọ́\n".encode())
    assert list(corpus_lines(good)) == ["a b\n", "ẹ̀kọ́\n"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a b\nc \xff d\n")
    with pytest.raises(LMError, match=r"bad.txt:2: not UTF-8"):
        list(corpus_lines(bad))
    with pytest.raises(LMError, match="no such file"):
        list(corpus_lines(tmp_path / "missing.txt"))


# ---------------------------------------------------------------------------------------------------
# The lmplz path, with a stand-in lmplz that records what it was given.

FAKE_ARPA = "\\data\\\nngram 1=3\n\n\\1-grams:\n-1\t<unk>\n0\t<s>\n-0.1\t</s>\n\n\\end\\\n"


def fake_lmplz(directory, status=0):
    directory.mkdir()
    script = directory / "lmplz"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, json, os\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "json.dump({'args': sys.argv[1:], 'stdin': sys.stdin.read()},"
        " open(os.path.join(here, 'call.json'), 'w'))\n"
        f"sys.stdout.write({FAKE_ARPA!r})\n"
        f"sys.stderr.write('=== 1/5 Counting ===\\nERROR: the stand-in was told to fail\\n' if {status} else '')\n"
        f"sys.exit({status})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


def test_runs_lmplz_when_on_path(tmp_path, monkeypatch):
    import json

    bin_dir = fake_lmplz(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "lm.arpa"
    stats = build_arpa(["hello  world", "", "<unk> ẹ̀kọ́\t x"], out, order=3)
    call = json.loads((bin_dir / "call.json").read_text())
    assert call["args"] == ["-o", "3", "--discount_fallback", "--skip_symbols"]
    assert call["stdin"] == "hello world\n\nẹ̀kọ́ x\n"  # whitespace as the Python estimator splits it
    assert out.read_text() == FAKE_ARPA
    assert (stats.tool, stats.sentences, stats.words, stats.skipped_markers, stats.ngrams) == (
        "lmplz", 3, 4, 1, [3])

    # use_lmplz=False ignores it.
    (bin_dir / "call.json").unlink()
    stats = build_arpa(["hello world"], out, order=2, use_lmplz=False)
    assert stats.tool == "python" and not (bin_dir / "call.json").exists()


def test_failing_lmplz_is_a_one_line_error(tmp_path, monkeypatch):
    bin_dir = fake_lmplz(tmp_path / "bin", status=1)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "lm.arpa"
    with pytest.raises(LMError, match=r"^lmplz failed \(exit status 1\): ERROR: the stand-in was told to fail$"):
        build_arpa(["a b"], out, order=2)
    assert not out.exists() and os.listdir(tmp_path) == ["bin"]  # no temporary file left behind


def test_lmplz_required_but_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LMError, match="not on PATH"):
        build_arpa(["a b"], tmp_path / "lm.arpa", use_lmplz=True)


@pytest.mark.skipif(shutil.which("lmplz") is None, reason="KenLM's lmplz is not installed")
def test_matches_real_lmplz(tmp_path):
    sentences = random_corpus(3000, 300, seed=3)
    corpus = "".join(s + "\n" for s in sentences)
    out = subprocess.run(["lmplz", "-o", "4", "--discount_fallback"], input=corpus.encode(),
                         capture_output=True, check=True).stdout
    (tmp_path / "lmplz.arpa").write_bytes(out)
    reference = ArpaLM.read(tmp_path / "lmplz.arpa")
    lm, _, _ = build(tmp_path, sentences, order=4)
    assert set(lm.log10_probs) == set(reference.log10_probs)
    assert set(lm.log10_backoffs) == set(reference.log10_backoffs)
    worst = max(abs(lm.log10_probs[g] - p) for g, p in reference.log10_probs.items())
    worst = max([worst] + [abs(lm.log10_backoffs[g] - b) for g, b in reference.log10_backoffs.items()])
    assert worst < 1e-4, worst


# ---------------------------------------------------------------------------------------------------
# The ARPA reader


def test_arpa_reader_errors(tmp_path):
    path = tmp_path / "bad.arpa"
    path.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<unk>\n\n\\end\\\n")
    with pytest.raises(ArpaError, match="declares 2 1-grams, the file has 1"):
        ArpaLM.read(path)
    path.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\t<unk>\n")
    with pytest.raises(ArpaError, match="no \\\\end\\\\"):
        ArpaLM.read(path)
    path.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nx\t<unk>\n\\end\\\n")
    with pytest.raises(ArpaError, match=r"bad.arpa:5: log10 probability"):
        ArpaLM.read(path)
    with pytest.raises(ArpaError, match="no such file"):
        ArpaLM.read(tmp_path / "missing.arpa")
