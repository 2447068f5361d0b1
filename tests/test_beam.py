"""KenLM beam search through flashlight-text: the lexicon and the LM must be able to overrule the acoustics,
and the result must be the best-scoring hypothesis (checked by brute force on a tiny case)."""

import itertools
import math

import numpy as np
import pytest

from mms.decoding.beam import BeamOptions, BeamSearchDecoder, BeamSearchError, DecoderPool
from mms.decoding.ctc import greedy_decode
from mms.text.vocab import Vocabulary

SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", "|", "a", "c", "d", "t", "o"]
VOCAB = Vocabulary.from_fairseq_symbols(SYMBOLS)
ID = {s: i for i, s in enumerate(SYMBOLS)}
LOG10_LM = {  # (context, word) -> log10 p ; unigram backoff weights below
    ("<s>", "cat"): -0.2, ("cat", "cad"): -0.1, ("cad", "</s>"): -0.3}
UNIGRAMS = {"<s>": (-1.0, -0.3), "</s>": (-0.7, 0.0), "cat": (-0.4, -0.2), "cad": (-0.9, -0.25), "<unk>": (-2.0, 0.0)}


def write_arpa(path):
    lines = ["\\data\\", f"ngram 1={len(UNIGRAMS)}", f"ngram 2={len(LOG10_LM)}", "", "\\1-grams:"]
    lines += [f"{p}\t{w}\t{b}" for w, (p, b) in UNIGRAMS.items()]
    lines += ["", "\\2-grams:"] + [f"{p}\t{a} {b}" for (a, b), p in LOG10_LM.items()] + ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    return str(path)


def lm_log10(words):
    total, context = 0.0, "<s>"
    for word in list(words) + ["</s>"]:
        total += LOG10_LM[(context, word)] if (context, word) in LOG10_LM else UNIGRAMS[context][1] + UNIGRAMS[word][0]
        context = word
    return total


def ctc_best_path(emissions, labels):
    """Viterbi over the CTC topology (blank 0 between labels, repeats need a blank): best sum of logits."""
    ext = [0]
    for label in labels:
        ext += [label, 0]
    score = np.full(len(ext), -np.inf)
    score[0], score[1] = emissions[0, ext[0]], emissions[0, ext[1]]
    for t in range(1, len(emissions)):
        new = np.full(len(ext), -np.inf)
        for s in range(len(ext)):
            best = max(score[s], score[s - 1] if s > 0 else -np.inf)
            if s > 1 and ext[s] != 0 and ext[s] != ext[s - 2]:
                best = max(best, score[s - 2])
            new[s] = best + emissions[t, ext[s]]
        score = new
    return max(score[-1], score[-2])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    lexicon = d / "lexicon.txt"
    lexicon.write_text("cat c a t |\ncad c a d |\n")
    return write_arpa(d / "lm.arpa"), str(lexicon)


def emissions_for(frames, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    em = rng.normal(0, noise, (len(frames), len(SYMBOLS))).astype(np.float32)
    for t, symbol in enumerate(frames):
        em[t, ID[symbol]] += 4
    return em


def test_lexicon_overrules_acoustics(files):
    lm, lexicon = files
    em = emissions_for(["c", "<s>", "o", "t", "|"], noise=0.1)  # "cot" is not a word, "cat" is
    em[2, ID["a"]] = em[2, ID["o"]] - 0.5
    assert greedy_decode(em.argmax(-1), VOCAB).text == "cot"
    hyp = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=lexicon, lm_weight=0.5)).decode(em)
    assert hyp.text == "cat"
    assert [(u.token, u.start) for u in hyp.units] == [("c", 0), ("a", 2), ("t", 3), ("|", 4)]


def test_lm_overrules_acoustics(files):
    lm, lexicon = files
    em = emissions_for(["c", "a", "t", "|", "c", "a", "t", "|"], noise=0.1)
    em[6, ID["d"]] = em[6, ID["t"]] - 0.3  # the second word sounds a little more like "cat"
    plain = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=lexicon, lm_weight=0.0)).decode(em)
    with_lm = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=lexicon, lm_weight=2.0)).decode(em)
    assert plain.text == "cat cat" and with_lm.text == "cat cad"  # "cat cad" is what the LM knows


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("lm_weight,word_score", [(0.0, 0.0), (1.5, 0.3), (3.0, -1.0)])
def test_result_is_the_brute_force_best(files, seed, lm_weight, word_score):
    lm, lexicon = files
    em = emissions_for(["c", "<s>", "a", "t", "|", "c", "a", "d", "|"], seed=seed, noise=1.5)
    hyp = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=lexicon, beam=1000, lm_weight=lm_weight,
                                               word_score=word_score)).decode(em)
    spell = {"cat": "c a t |", "cad": "c a d |"}
    candidates = {}
    for n in (1, 2):
        for words in itertools.product(spell, repeat=n):
            units = [ID[u] for w in words for u in spell[w].split()]
            acoustic = max(ctc_best_path(em, units), ctc_best_path(em, [ID["|"]] + units))
            candidates[" ".join(words)] = acoustic + lm_weight * lm_log10(words) + word_score * n
    best = max(candidates, key=candidates.get)
    assert hyp.text == best
    assert hyp.score == pytest.approx(candidates[best], abs=1e-3)
    assert set(hyp.text.split()) <= set(spell)  # lexicon-constrained: only lexicon words


def test_a_spelling_without_its_closing_delimiter_is_read_as_one_word(files, tmp_path):
    # `cat c a t` (no `|`) had let the search run words together: "good" came out "good good"
    from mms.decoding.beam import read_lexicon

    lm, _ = files
    (tmp_path / "open.txt").write_text("cat c a t\ncad c a d\n")
    assert read_lexicon(tmp_path / "open.txt", VOCAB) == read_lexicon(files[1], VOCAB) == {
        "cat": [["c", "a", "t", "|"]], "cad": [["c", "a", "d", "|"]]}
    em = emissions_for(["c", "a", "t", "|", "c", "a", "d", "|"], noise=0.1)
    closed = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=files[1])).decode(em)
    opened = BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=str(tmp_path / "open.txt"))).decode(em)
    assert opened.text == closed.text == "cat cad" and opened.score == pytest.approx(closed.score)
    em = emissions_for(["c", "a", "t", "|"], noise=0.1)
    assert BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=str(tmp_path / "open.txt"))).decode(em).text == "cat"
    with pytest.raises(BeamSearchError, match="give one of the two"):  # (KenLM had failed on every input)
        BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=files[1], unit_lm=True))


def test_lexicon_free_with_unit_lm(tmp_path):
    units = ["|", "a", "c", "d", "t", "o"]
    arpa = ["\\data\\", f"ngram 1={len(units) + 3}", "ngram 2=1", "", "\\1-grams:",
            "-1.0\t<s>\t-0.5", "-1.0\t</s>\t0", "-3.0\t<unk>\t0"]
    arpa += [f"{ {'o': -0.2, 'a': -4.0}.get(u, -1.0)}\t{u}\t0" for u in units]
    arpa += ["", "\\2-grams:", "-0.01\tc o", "", "\\end\\", ""]
    (tmp_path / "chars.arpa").write_text("\n".join(arpa))
    em = emissions_for(["c", "a", "t", "|"], noise=0.1)
    em[1, ID["o"]] = em[1, ID["a"]] - 0.4
    options = dict(lm=str(tmp_path / "chars.arpa"), unit_lm=True)
    assert BeamSearchDecoder(VOCAB, BeamOptions(**options, lm_weight=0.0)).decode(em).text == "cat"
    assert BeamSearchDecoder(VOCAB, BeamOptions(**options, lm_weight=1.0)).decode(em).text == "cot"
    with pytest.raises(BeamSearchError, match="unit"):
        BeamSearchDecoder(VOCAB, BeamOptions(lm=str(tmp_path / "chars.arpa")))


def test_an_lm_of_the_other_kind_is_warned_of(files, tmp_path):
    """A word LM as --unit-lm, or a unit LM with a lexicon, decodes into nonsense: said before decoding."""
    from mms.decoding.beam import arpa_words, lm_mismatch

    word_lm, lexicon = files
    units = ["\\data\\", "ngram 1=5", "", "\\1-grams:", "-1\t<s>\t0", "-1\t</s>", "-1\tc", "-1\ta", "-1\tt",
             "", "\\end\\", ""]
    unit_lm = tmp_path / "units.arpa"
    unit_lm.write_text("\n".join(units))
    assert arpa_words(word_lm) == {"cat", "cad"} and arpa_words(unit_lm) == {"c", "a", "t"}
    assert "0 of its 2 words are units of the model: a word LM?" in lm_mismatch(
        VOCAB, BeamOptions(lm=word_lm, unit_lm=True))
    assert "knows 0 of the 2 words of --lexicon" in lm_mismatch(VOCAB, BeamOptions(lm=str(unit_lm), lexicon=lexicon))
    assert lm_mismatch(VOCAB, BeamOptions(lm=str(unit_lm), unit_lm=True)) is None  # the right pairs: nothing said
    assert lm_mismatch(VOCAB, BeamOptions(lm=word_lm, lexicon=lexicon)) is None
    (tmp_path / "binary.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0\xff")
    assert arpa_words(tmp_path / "binary.bin") is None  # a KenLM binary: not read here


def test_bad_files_give_clear_errors(files, tmp_path):
    lm, lexicon = files
    bad = tmp_path / "bad_lexicon.txt"
    bad.write_text("cat c a t |\nzoo z o o |\n")
    with pytest.raises(BeamSearchError, match=r"bad_lexicon.txt:2: units z of 'zoo'"):
        BeamSearchDecoder(VOCAB, BeamOptions(lm=lm, lexicon=str(bad)))
    with pytest.raises(BeamSearchError, match="no such language model"):
        BeamSearchDecoder(VOCAB, BeamOptions(lm=str(tmp_path / "missing.arpa"), lexicon=lexicon))


def test_missing_flashlight_gives_install_hint(files, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_flashlight(name, *args, **kwargs):
        if name.startswith("flashlight"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_flashlight)
    with pytest.raises(BeamSearchError, match="pip install"):
        BeamSearchDecoder(VOCAB, BeamOptions(lm=files[0], lexicon=files[1]))


def test_worker_pool_gives_the_same_results(files):
    lm, lexicon = files
    options = BeamOptions(lm=lm, lexicon=lexicon, lm_weight=1.0)
    inputs = [emissions_for(["c", "a", "t", "|", "c", "a", "d", "|"], seed=s, noise=1.0) for s in range(6)]
    expected = [BeamSearchDecoder(VOCAB, options).decode(em).text for em in inputs]
    pool = DecoderPool(options, workers=2)
    try:
        futures = [pool.submit(VOCAB, em) for em in inputs]
        assert [f.result().text for f in futures] == expected
    finally:
        pool.close()
    assert math.isfinite(BeamSearchDecoder(VOCAB, options).decode(inputs[0]).score)
