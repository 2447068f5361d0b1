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
    path.write_text("{'weights': __import__('os').getcwd()}")
    with pytest.raises(RerankError):
        load_weights(path)
    path.write_text("{'weights': [1, 2]}")
    with pytest.raises(RerankError, match="6 numbers"):
        load_weights(path)
    (tmp_path / "bad.yaml").write_text("features: {slid: 1, vibes: 2}\n")
    with pytest.raises(RerankError, match="unknown features vibes"):
        load_weights(tmp_path / "bad.yaml")


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
    r = mms("asr", "--model", "demo", "--lang", "eng", "--rerank", "3", wavs[0])
    assert r.returncode == 2 and "--lang auto" in r.stderr
    r = mms("asr", "--model", "demo", "--lang", "auto", "--rerank-weights", d / "nope.yaml", wavs[0])
    assert r.returncode == 2 and "need --rerank" in r.stderr
