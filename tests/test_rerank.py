"""N-best LID + ASR re-ranking: weights files, features (the alignment score against a brute force), selection, and
`mms asr --lang auto --rerank N` end to end on the shipped demo model with a tiny zero-shot model."""

import itertools
import json
import math

import numpy as np
import pytest
import soundfile as sf

from mms.asr.rerank import (FEATURES, UASR_FAILED, RerankError, RerankWeights, dump_weights, greedy_path_score,
                            load_weights, log_softmax, select, uroman_targets, viterbi_score)
from tests.conftest import random_audio
from tests.factory import random_zeroshot_model, write_zeroshot_hf
from tests.test_cli import mms


def test_weights_yaml_round_trip(tmp_path):
    weights = RerankWeights({"slid": 31.5, "asr": 2.25, "uasr": 4.0, "len": -0.125}, n=10,
                            extra={"dev": {"lid_acc": 0.9, "wer": 12.5}})
    (tmp_path / "w.yaml").write_text(dump_weights(weights))
    again = load_weights(tmp_path / "w.yaml")
    assert again.weights == {name: weights.weights.get(name, 0.0) for name in FEATURES}
    assert again.n == 10 and again.extra == {"dev": {"lid_acc": 0.9, "wer": 12.5}}
    assert dump_weights(again) == dump_weights(weights)


def test_fairseq_best_coefficients_are_parsed_not_evaluated(tmp_path):
    path = tmp_path / "best_coefficients"
    path.write_text(str({"lid_acc": 0.93, "asr_wer": 0.21, "weights": [52.1, 0.0, 3.3, 0.0, 7.7, -0.2]}))
    weights = load_weights(path)
    assert weights.weights == dict(zip(FEATURES, [52.1, 0.0, 3.3, 0.0, 7.7, -0.2]))
    for expression in ("{'weights': __import__('os').getcwd()}", "{'weights': [1, 0, 0.5, 0, 0, 0.1], "
                                                                    "'lid_acc': float('nan')}"):
        path.write_text(expression)
        with pytest.raises(RerankError, match="best_coefficients file must be a plain Python literal"):
            load_weights(path)
    path.write_text("{'weights': [1, 2]}")
    with pytest.raises(RerankError, match="6 numbers"):
        load_weights(path)
    (tmp_path / "bad.yaml").write_text("features: {slid: 1, vibes: 2}\n")
    with pytest.raises(RerankError, match="unknown features vibes"):
        load_weights(tmp_path / "bad.yaml")
    for value in (".nan", ".inf", "-.inf"):  # a NaN score picks nothing and writes invalid JSON
        (tmp_path / "nan.yaml").write_text(f"features: {{slid: 1, asr: {value}}}\n")
        with pytest.raises(RerankError, match="weight of asr is not a finite number"):
            load_weights(tmp_path / "nan.yaml")
    path.write_text("{'weights': [1, 2, 3, 4, float('nan'), 6]}")
    with pytest.raises(RerankError):
        load_weights(path)
    for n in ("abc", "0", "2.7", "-3"):  # the number of candidates: a whole number from 1
        (tmp_path / "n.yaml").write_text(f"features: {{slid: 1}}\nn: {n}\n")
        with pytest.raises(RerankError, match="`n` .* must be a whole number from 1"):
            load_weights(tmp_path / "n.yaml")


def test_default_weights_are_lid_only():
    assert RerankWeights().score({"slid": -0.5, "asr": -100.0, "len": 30}) == -0.5


def test_select_takes_the_first_on_ties():
    assert select([1.0, 3.0, 3.0, 2.0]) == 1 and select([0.0]) == 0


def brute_force_best_path(log_probs, targets, blank=0):
    """Every frame labelling that collapses to `targets` (CTC: merge repeats, drop blanks): the best summed score."""
    best = -math.inf
    for path in itertools.product(range(log_probs.shape[1]), repeat=len(log_probs)):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        if collapsed == list(targets):
            best = max(best, sum(log_probs[t, k] for t, k in enumerate(path)))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("targets", [[1], [1, 2], [2, 2], [1, 2, 1], [3, 3, 3]])
def test_alignment_feature_is_the_brute_force_best_path(seed, targets):
    rng = np.random.default_rng(seed)
    log_probs = log_softmax(rng.normal(0, 2, (6, 4)))
    expected = brute_force_best_path(log_probs, targets)
    got = viterbi_score(log_probs, targets)
    if expected == -math.inf:
        assert got == UASR_FAILED
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def test_alignment_feature_failures():
    log_probs = log_softmax(np.zeros((2, 4)))
    assert viterbi_score(log_probs, []) == UASR_FAILED
    assert viterbi_score(log_probs, [1, 1]) == UASR_FAILED  # a repeat needs a blank between: 3 frames
    assert UASR_FAILED == pytest.approx(-20.7233, abs=1e-4)


def test_asr_feature_is_the_greedy_path():
    logits = np.random.default_rng(0).normal(0, 3, (7, 5))
    assert greedy_path_score(logits) == pytest.approx(log_softmax(logits).max(-1).sum())


def test_uroman_targets():
    tokens = ["<s>", "<pad>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
    ids = uroman_targets("Привет  мир", "rus", tokens)
    assert [tokens[i] for i in ids] == list("privet|mir|")
    assert [tokens[i] for i in uroman_targets("你好", "cmn", tokens)] == list("ni|hao|")  # per character
    assert uroman_targets("", "eng", tokens) == []
    assert uroman_targets("abc", "eng", tokens[:5]) is None


# -- end to end ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("rerank")
    zs = write_zeroshot_hf(random_zeroshot_model(seed=4), d / "zs")
    wavs = []
    for i, n in enumerate([24000, 40000]):
        wavs.append(d / f"r{i}.wav")
        sf.write(wavs[-1], random_audio(n, seed=10 + i), 16000)
    return d, zs, wavs


def run_jsonl(*args):
    r = mms("asr", "--model", "demo", "--lang", "auto", "--lid-model", "demo", *args, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_rerank_end_to_end_on_the_demo_model(setup):
    d, zs, wavs = setup
    plain = run_jsonl(*wavs)
    default = run_jsonl(*wavs, "--rerank", "3")  # LID only: the same choice as without re-ranking
    assert [(r["lang"], r["text"]) for r in default] == [(r["lang"], r["text"]) for r in plain]
    (d / "w.yaml").write_text("features: {slid: 1.0, asr: 0.5, uasr: 2.0, len: -0.1}\nn: 3\n")
    reranked = run_jsonl(*wavs, "--rerank", "3", "--rerank-weights", d / "w.yaml", "--zeroshot-model", zs)
    for record in reranked:
        candidates = record["candidates"]
        assert len(candidates) == 3 and len({c["lang"] for c in candidates}) == 3
        for c in candidates:
            f = c["features"]
            assert f["len"] == len(c["text"]) and f["uasr"] <= 0 and f["asr"] <= 0 and f["slid"] <= 0
            assert c["score"] == pytest.approx(f["slid"] + 0.5 * f["asr"] + 2 * f["uasr"] - 0.1 * f["len"], abs=1e-3)
        best = max(candidates, key=lambda c: c["score"])
        assert (record["lang"], record["text"]) == (best["lang"], best["text"])
        # each candidate's text is what a plain run in that language gives
        direct = mms("asr", "--model", "demo", "--lang", best["lang"], wavs[reranked.index(record)])
        assert direct.stdout.strip() == best["text"]


def test_rerank_usage_errors(setup):
    d, zs, wavs = setup
    # the uasr feature needs a uroman zero-shot model: a model with per-language letters is refused
    (d / "uasr.yaml").write_text("features: {slid: 1.0, uasr: 2.0}\n")
    r = mms("asr", "--model", "demo", "--lang", "auto", "--rerank", "2", "--rerank-weights", d / "uasr.yaml",
            "--zeroshot-model", "demo", wavs[0])
    assert r.returncode == 2 and "--zeroshot-model demo: not a uroman zero-shot model" in r.stderr, r.stderr
    # the weights file's recorded zero-shot model (`mms tune-rerank` writes it) is the default
    (d / "recorded.yaml").write_text(f"features: {{slid: 1.0, uasr: 2.0}}\nzeroshot_model: {zs}\n")
    r = mms("asr", "--model", "demo", "--lang", "auto", "--lid-model", "demo", "--rerank", "2", "--rerank-weights",
            d / "recorded.yaml", "--format", "jsonl", wavs[0])
    assert r.returncode == 0, r.stderr
    assert "uasr" in json.loads(r.stdout)["candidates"][0]["features"]
    (d / "recorded.yaml").write_text("features: {slid: 1.0, uasr: 2.0}\nzeroshot_model: demo\n")
    r = mms("asr", "--model", "demo", "--lang", "auto", "--lid-model", "demo", "--rerank", "2", "--rerank-weights",
            d / "recorded.yaml", "--zeroshot-model", zs, wavs[0])
    assert r.returncode == 0 and "was tuned with the zero-shot model demo" in r.stderr, r.stderr
    r = mms("asr", "--model", "demo", "--lang", "eng", "--rerank", "3", wavs[0])
    assert r.returncode == 2 and "--lang auto" in r.stderr
    r = mms("asr", "--model", "demo", "--lang", "auto", "--rerank-weights", d / "nope.yaml", wavs[0])
    assert r.returncode == 2 and "need --rerank" in r.stderr


# -- text features (lm, wlid) -----------------------------------------------------------------------------------

ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.3
-0.5\t</s>\t0
-0.7\thello\t-0.2
-0.9\tworld\t0

\\2-grams:
-0.1\t<s> hello
-0.2\thello world

\\end\\
"""


def test_kenlm_feature_is_the_natural_log_probability_of_the_words(tmp_path):
    from mms.asr.rerank_features import LM_MISSING_PER_WORD, FeatureError, KenLMFeature, parse_lm_specs

    (tmp_path / "eng.arpa").write_text(ARPA)
    lm = KenLMFeature(parse_lm_specs([str(tmp_path)]))  # a directory of LANG.arpa files
    ln10 = math.log(10)
    assert lm("hello world", "eng") == pytest.approx(ln10 * (-0.1 - 0.2), abs=1e-6)  # bigrams from <s>, no </s>
    # world after <s>: backoff(<s>) + p(world); zebra is <unk>
    assert lm("world zebra", "eng") == pytest.approx(ln10 * (-0.3 - 0.9 - 1.0), abs=1e-6)
    assert lm("", "eng") == 0.0
    assert lm("hello world", "rus") == 2 * LM_MISSING_PER_WORD and lm.missing == 1  # no LM for the language
    by_adapter = KenLMFeature({"cmn-script_simplified": str(tmp_path / "eng.arpa")})
    assert by_adapter("hello", "cmn") == pytest.approx(-0.1 * ln10, abs=1e-6)  # the ISO part of the key matches
    assert parse_lm_specs([f"fra={tmp_path / 'eng.arpa'}"]) == {"fra": str((tmp_path / "eng.arpa").resolve())}
    with pytest.raises(FeatureError, match="no such file"):
        parse_lm_specs([f"fra={tmp_path / 'nope.arpa'}"])
    (tmp_path / "bin.arpa").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0\0")
    with pytest.raises(FeatureError, match="not an ARPA file"):
        KenLMFeature({"eng": str(tmp_path / "bin.arpa")})  # when it is built, before any model runs


FAKE_FASTTEXT = '''"""A stand-in for the fasttext package: a script guesser with fastText's API."""
import numpy as np

SCRIPTS = [("eng_Latn", "a", "z"), ("rus_Cyrl", "\\u0400", "\\u04ff"), ("ell_Grek", "\\u0370", "\\u03ff"),
           ("hin_Deva", "\\u0900", "\\u097f"), ("zho_Hans", "\\u4e00", "\\u9fff")]


class _Model:
    def predict(self, text, k=1):
        assert "\\n" not in text
        counts = np.array([1 + sum(lo <= ch <= hi for ch in text.lower()) for _, lo, hi in SCRIPTS], float)
        order = np.argsort(-counts, kind="stable")
        probs = counts[order] / counts.sum()
        labels = tuple("__label__" + SCRIPTS[i][0] for i in order)
        return (labels, probs) if k == -1 else (labels[:k], probs[:k])


def load_model(path):
    open(path).close()
    return _Model()
'''


@pytest.fixture
def fake_fasttext(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "fakeft").mkdir()
    (tmp_path / "fakeft" / "fasttext.py").write_text(FAKE_FASTTEXT)
    monkeypatch.syspath_prepend(str(tmp_path / "fakeft"))
    monkeypatch.delitem(__import__("sys").modules, "fasttext", raising=False)
    importlib.invalidate_caches()
    (tmp_path / "lid.bin").write_text("model")
    return tmp_path / "lid.bin"


def test_fasttext_wlid_feature(fake_fasttext):
    from mms.asr.rerank_features import WLID_MISSING, FastTextLID, fasttext_code

    assert fasttext_code("__label__eng_Latn") == "eng" and fasttext_code("__label__zho_Hans") == "cmn"
    wlid = FastTextLID(str(fake_fasttext))
    assert wlid("привет", "rus") == pytest.approx(math.log(7 / 11))  # 6 Cyrillic letters + 1, over 6 + 5
    assert wlid("привет", "eng") == pytest.approx(math.log(1 / 11))
    assert wlid("你好", "cmn") == pytest.approx(math.log(3 / 7))  # zho -> cmn, as the reference remaps
    assert wlid("hello", "yor") == WLID_MISSING  # a language the text LID model does not have


def test_fasttext_numpy2_fallback_and_missing_package(fake_fasttext, monkeypatch):
    import sys

    from mms.asr.rerank_features import FastTextLID, FeatureError

    wlid = FastTextLID(str(fake_fasttext))

    class Broken:  # fasttext 0.9.2 under numpy 2: predict raises, the core's list of (prob, label) still works
        def predict(self, text, k=1):
            raise ValueError("Unable to avoid copy while creating an array as requested")

        class f:
            @staticmethod
            def predict(text, k, threshold, on_unicode_error):
                return [(0.75, "__label__rus_Cyrl"), (0.25, "__label__eng_Latn")]

    wlid._model = Broken()
    assert wlid("привет", "rus") == pytest.approx(math.log(0.75))
    monkeypatch.setitem(sys.modules, "fasttext", None)  # not installed
    with pytest.raises(FeatureError, match="needs the fasttext package"):
        FastTextLID(str(fake_fasttext))


def test_weights_carry_plug_ins_through_the_weights_file(tmp_path):
    (tmp_path / "eng.arpa").write_text(ARPA)
    weights = RerankWeights({"slid": 10.0, "lm": 2.0}, n=3, plugins={"lm": {"eng": str(tmp_path / "eng.arpa")}})
    (tmp_path / "w.yaml").write_text(dump_weights(weights))
    loaded = load_weights(tmp_path / "w.yaml")
    assert loaded.plugins == weights.plugins and loaded.extra == {} and dump_weights(loaded) == dump_weights(weights)


# -- the search -------------------------------------------------------------------------------------------------

def synthetic_tables(seed=1, files=300, n=4):
    """Candidates whose right choice follows hidden weights: the known answer of the search."""
    from mms.asr.tune_rerank import Tables

    rng = np.random.default_rng(seed)
    hidden = np.array([40.0, 0.0, 3.0, 0.0, 6.0, -0.25])  # slid, wlid, asr, lm, uasr, len
    f = np.zeros((files, n, 6))
    f[..., 0] = np.log(rng.dirichlet(np.ones(n), files))
    f[..., 2] = rng.normal(-100, 20, (files, n))
    f[..., 4] = rng.normal(-60, 10, (files, n))
    f[..., 5] = rng.integers(5, 80, (files, n))
    best = (f @ hidden).argmax(-1)
    errors = rng.integers(1, 6, (files, n))
    errors[np.arange(files), best] = 0
    correct = np.zeros((files, n), bool)
    correct[np.arange(files), best] = True
    return Tables(f, np.ones((files, n), bool), errors, correct, ref_length=1000, failed_errors=0, failed=0), hidden


def test_search_finds_the_known_best_weights():
    from mms.asr.tune_rerank import search

    tables, hidden = synthetic_tables()
    result = search(tables, ["slid", "asr", "uasr", "len"], trials=10000, seed=0)
    found = np.array([result["weights"][name] for name in FEATURES])
    assert found[1] == found[3] == 0.0  # wlid and lm are off
    cosine = found @ hidden / np.linalg.norm(found) / np.linalg.norm(hidden)
    assert cosine > 0.999  # the same direction: the same choices
    assert result["after"]["lid_acc"] >= 0.98 and result["after"]["wer"] <= 1.0 and result["oracle_wer"] == 0.0
    assert result["before"]["lid_acc"] < 0.6 and result["before"]["wer"] > 40  # LID alone (draw 0) is poor here
    assert result["seconds"] < 5


def test_vectorised_evaluation_is_the_per_draw_selection():
    from mms.asr.tune_rerank import draw_weights, evaluate

    tables, _ = synthetic_tables(seed=2, files=40, n=5)
    tables.valid[::3, 3:] = False  # files with fewer candidates
    draws = draw_weights(60, seed=5, enabled=FEATURES)
    errors, correct = evaluate(draws, tables, chunk_values=333)  # several chunks
    for d, w in enumerate(draws):
        weights = RerankWeights(dict(zip(FEATURES, w)))
        picks = [select([weights.score(dict(zip(FEATURES, tables.features[u, j])))
                         for j in range(tables.valid[u].sum())]) for u in range(len(tables.valid))]
        assert errors[d] == sum(tables.errors[u, j] for u, j in enumerate(picks))
        assert correct[d] == sum(tables.correct[u, j] for u, j in enumerate(picks))


def test_draws_follow_the_reference_ranges_and_the_seed():
    from mms.asr.tune_rerank import RANGES, draw_weights

    draws = draw_weights(5000, seed=3, enabled=["slid", "asr", "uasr", "len"])
    for k, name in enumerate(FEATURES):
        if name in ("wlid", "lm"):
            assert (draws[:, k] == 0).all()
        else:
            low, high = RANGES[name]
            assert low <= draws[:, k].min() and draws[:, k].max() < high
            assert draws[:, k].min() < low + 0.02 * (high - low) and draws[:, k].max() > high - 0.02 * (high - low)
    assert RANGES == {"slid": (0, 100), "wlid": (0, 100), "asr": (0, 10), "lm": (0, 10), "uasr": (0, 10),
                      "len": (-0.5, 0.5)}
    assert (draw_weights(100, 3, FEATURES) == draw_weights(100, 3, FEATURES)).all()
    assert not (draw_weights(100, 3, FEATURES) == draw_weights(100, 4, FEATURES)).all()


def test_lid_accuracy_is_against_the_reference_languages():
    """The reference's tuning compares the chosen language with the reference TRANSCRIPT (ref_lid=ref_asr): here
    with the reference language, by ISO 639-3 code; and CER is chosen by the reference language."""
    from mms.asr.tune_rerank import build_tables, search

    candidates = [
        [{"lang": "eng", "lid_lang": "eng", "text": "hello world", "slid": -0.1, "asr": -5, "len": 11},
         {"lang": "rus", "lid_lang": "rus", "text": "привет мир", "slid": -2.0, "asr": -1, "len": 10}],
        [{"lang": "cmn-script_simplified", "lid_lang": "cmn", "text": "你好吗", "slid": -0.2, "asr": -3, "len": 3}],
        "bad.wav: cannot decode",
    ]
    refs, langs = ["привет мир", "你好", "one two"], ["rus", "cmn-script_simplified", "en"]
    tables = build_tables(candidates, refs, langs, ["slid", "asr", "len"])
    assert tables.correct.tolist() == [[False, True], [True, False]]  # cmn matches cmn-script_simplified
    assert tables.errors.tolist() == [[2, 0], [1, 0]]  # 你好吗 vs 你好: one character inserted (CER for cmn)
    assert tables.ref_length == 2 + 2 + 2 and tables.failed == 1 and tables.failed_errors == 2
    result = search(tables, ["slid", "asr", "len"], trials=200, seed=0)
    assert result["before"] == {"lid_acc": round(1 / 3, 4), "wer": round(100 * (2 + 1 + 2) / 6, 2)}
    assert result["after"] == {"lid_acc": round(2 / 3, 4), "wer": round(100 * (0 + 1 + 2) / 6, 2)}
    assert result["weights"]["asr"] > 0


def test_dev_set_errors_are_one_line(tmp_path):
    from mms.asr.tune_rerank import TuneRerankError, read_dev_set

    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "dev.lst").write_text("a.wav\na.wav\n")
    (tmp_path / "dev.wrd").write_text("one\ntwo\n")
    (tmp_path / "dev.lang").write_text("eng\nxx1\n")
    with pytest.raises(TuneRerankError, match=r"dev.lang:2: unknown language code 'xx1'"):
        read_dev_set(tmp_path / "dev.lst", tmp_path / "dev.wrd", tmp_path / "dev.lang")
    (tmp_path / "dev.lang").write_text("eng\n")
    with pytest.raises(TuneRerankError, match="1 languages for 2 dev files"):
        read_dev_set(tmp_path / "dev.lst", tmp_path / "dev.wrd", tmp_path / "dev.lang")
    with pytest.raises(TuneRerankError, match="no language: give --ref-lang"):
        read_dev_set(tmp_path / "dev.lst", tmp_path / "dev.wrd")
    items, refs, langs = read_dev_set(tmp_path / "dev.lst", ["x", "y"], ["eng", "fra"])
    assert len(items) == 2 and refs == ["x", "y"] and langs == ["eng", "fra"]


# -- tune-rerank end to end -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dev_set(setup):
    """The shipped examples (real espeak speech of the demo's four languages) and two noise files, as JSONL."""
    from pathlib import Path

    d, zs, wavs = setup
    examples = Path(__file__).resolve().parents[1] / "examples"
    rows = [{"audio": str(examples / f"{name}.wav"), "text": (examples / f"{name}.txt").read_text().strip(),
             "lang": name[:3]} for name in ("eng_hello", "ell_book", "hin_book", "rus_day")]
    rows += [{"audio": str(w), "text": "good morning", "lang": "eng"} for w in wavs]
    (d / "dev.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (d / "eng.arpa").write_text(ARPA.replace("hello", "good").replace("world", "morning"))
    return d / "dev.jsonl", rows


def test_cached_candidates_are_reused(setup, dev_set, tmp_path, monkeypatch):
    from mms.asr import tune_rerank as tr

    d, zs, _ = setup
    manifest, rows = dev_set
    calls = {"asr": 0, "zs": 0}

    def count(name, key):
        original = getattr(tr, name)

        def loading(*args, **kwargs):
            calls[key] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(tr, name, loading)

    count("load_asr", "asr")
    count("load_zeroshot", "zs")
    common = dict(model="demo", lid_model="demo", zeroshot_model=str(zs), device="cpu", dtype="float32",
                  cache=tmp_path / "cache")
    audios = [r["audio"] for r in rows[:3]]
    first = tr.dev_candidates(audios, 2, uasr=False, **common)
    assert calls == {"asr": 1, "zs": 0} and all(len(c) == 2 for c in first)
    assert tr.dev_candidates(audios, 1, uasr=False, **common) == [c[:1] for c in first]  # a smaller N: cached
    with_uasr = tr.dev_candidates(audios, 2, uasr=True, **common)  # only the zero-shot model runs
    assert calls == {"asr": 1, "zs": 1}
    assert all(c["uasr"] <= 0 and {k: v for k, v in c.items() if k != "uasr"} == p
               for rows_, prev in zip(with_uasr, first) for c, p in zip(rows_, prev))
    assert tr.dev_candidates(audios, 2, uasr=True, **common) == with_uasr and calls == {"asr": 1, "zs": 1}
    tr.dev_candidates(audios, 3, uasr=False, **common)  # a larger N: computed again
    assert calls == {"asr": 2, "zs": 1}


def test_tune_rerank_cli_end_to_end_on_the_demo_model(setup, dev_set, fake_fasttext, tmp_path):
    import os
    import subprocess
    import sys

    from mms.asr.tune_rerank import RANGES, error_tokens
    from mms.scoring import edit_counts

    d, zs, _ = setup
    manifest, rows = dev_set
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_fasttext.parent / "fakeft"),
                                                        os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mms", *map(str, args)], capture_output=True, text=True, env=env)

    out = tmp_path / "rerank.yaml"
    # no --lid-model: the demo's own LID head (offline), not the registry's mms-lid-4017
    argv = ["tune-rerank", "--model", "demo", "--zeroshot-model", zs, "--manifest", manifest,
            "--rerank", "3", "--rerank-lm", f"eng={d / 'eng.arpa'}", "--rerank-wlid", fake_fasttext,
            "--cache", tmp_path / "cache", "-o", out]
    r = run(*argv)
    assert r.returncode == 0, r.stderr
    assert "computing the 3-best candidates of 6 dev files" in r.stderr and "uasr feature of 6 dev files" in r.stderr
    assert "6 dev files (0 failed), 18 candidates, 10000 draws" in r.stderr
    weights = load_weights(out)
    dev = weights.extra["dev"]
    assert weights.extra["lid_model"] == "demo"
    assert weights.n == 3 and dev["features"] == list(FEATURES) and (dev["files"], dev["candidates"]) == (6, 18)
    assert all(RANGES[k][0] <= w < RANGES[k][1] for k, w in weights.weights.items())
    assert weights.plugins == {"lm": {"eng": str((d / "eng.arpa").resolve())}, "wlid": str(fake_fasttext.resolve())}
    assert dev["after"]["wer"] <= dev["before"]["wer"] and dev["oracle_wer"] <= dev["after"]["wer"]
    assert f"LID accuracy {100 * dev['before']['lid_acc']:.2f}%" in r.stderr

    # mms asr with the written file (its plug-ins included) makes the choices the search scored
    a = run("asr", "--model", "demo", "--lang", "auto", "--lid-model", "demo", "--rerank", "3", "--rerank-weights",
            out, "--zeroshot-model", zs, "--manifest", manifest, "--format", "jsonl")
    assert a.returncode == 0, a.stderr
    records = [json.loads(line) for line in a.stdout.splitlines()]

    def rates(choices):
        errors = sum(edit_counts(error_tokens(row["text"], row["lang"]), error_tokens(c["text"], row["lang"]))["errors"]
                     for row, c in zip(rows, choices))
        total = sum(len(error_tokens(row["text"], row["lang"])) for row in rows)
        return round(sum(c["lid_lang"] == row["lang"] for row, c in zip(rows, choices)) / len(rows), 4), \
            round(100 * errors / total, 2)

    assert rates([rec["candidates"][0] for rec in records]) == (dev["before"]["lid_acc"], dev["before"]["wer"])
    assert rates(records) == (dev["after"]["lid_acc"], dev["after"]["wer"])
    for name in ("lm", "wlid"):  # a feature is computed only when its weight is not 0 (the search may give 0)
        assert all((c["features"][name] < 0) == bool(weights.weights[name]) for rec in records
                   for c in rec["candidates"] if c["lid_lang"] == "eng" and c["text"])

    # the text plug-ins, named in a weights file, run inside `mms asr`
    (tmp_path / "plugins.yaml").write_text(dump_weights(RerankWeights({"slid": 1.0, "lm": 1.0, "wlid": 1.0}, n=3,
                                                                      plugins=weights.plugins)))
    p = run("asr", "--model", "demo", "--lang", "auto", "--lid-model", "demo", "--rerank", "3", "--rerank-weights",
            tmp_path / "plugins.yaml", "--manifest", manifest, "--format", "jsonl")
    assert p.returncode == 0, p.stderr
    eng = [c for line in p.stdout.splitlines() for c in json.loads(line)["candidates"]
           if c["lid_lang"] == "eng" and c["text"]]
    assert eng and all(c["features"]["lm"] < 0 and c["features"]["wlid"] < 0 for c in eng)

    # another search over the cached features runs no model
    again = run(*argv[:-2], "--trials", "50", "--seed", "7", "--features", "slid,asr,len", "-o", tmp_path / "b.yaml")
    assert again.returncode == 0, again.stderr
    assert "computing" not in again.stderr and "50 draws" in again.stderr
    b = load_weights(tmp_path / "b.yaml")
    assert b.weights["wlid"] == b.weights["lm"] == b.weights["uasr"] == 0 and b.plugins == {}
    assert b.extra["dev"]["before"] == dev["before"]


def test_tune_rerank_bad_inputs_are_one_line_errors(setup, dev_set, tmp_path):
    d, zs, _ = setup
    manifest, rows = dev_set
    (tmp_path / "short.lang").write_text("eng\n")
    (tmp_path / "bad.lang").write_text("eng\nell\nhin\nrus\neng\nqqq\n")
    base = ["tune-rerank", "--model", "demo", "--lid-model", "demo", "--manifest", manifest, "-o", tmp_path / "w.yaml"]
    for extra, message in [
        (["--manifest", tmp_path / "missing.tsv"], "missing.tsv: no such file"),
        (["--ref-lang", tmp_path / "short.lang"], "1 languages for 6 dev files"),
        (["--ref-lang", tmp_path / "bad.lang"], "bad.lang:6: unknown language code 'qqq'"),
        (["--ref", tmp_path / "short.lang"], "1 texts for 6 inputs"),
        (["--features", "slid,vibes"], "unknown vibes"),
        (["--features", "slid,lm"], "the lm feature has a weight but no model: give --rerank-lm"),
        (["--rerank-lm", "eng=" + str(tmp_path / "none.arpa")], "none.arpa: no such file"),
        (["--rerank-wlid", d / "eng.arpa"], "needs the fasttext package"),
    ]:
        r = mms(*base, *extra)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, (extra, r.stderr)
    assert not (tmp_path / "w.yaml").exists()
    r = mms("asr", "--model", "demo", "--lang", "auto", "--rerank-lm", f"eng={d / 'eng.arpa'}", manifest)
    assert r.returncode == 2 and "need --rerank N" in r.stderr
    (tmp_path / "lm.yaml").write_text("features: {slid: 1, lm: 2}\n")
    r = mms("asr", "--model", "demo", "--lang", "auto", "--rerank", "2", "--rerank-weights", tmp_path / "lm.yaml",
            manifest)
    assert r.returncode == 2 and "give --rerank-lm" in r.stderr
