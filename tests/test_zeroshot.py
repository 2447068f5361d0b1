"""MMS zero-shot ASR: the model in both layouts, the uroman lexicon, the unigram LM and lexicon-only beam search."""

import itertools
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from mms.asr.zeroshot import (PRESET_LM, PRESET_NO_LM, WordList, build_uroman_lexicon, norm_uroman, prepare,
                              unigram_arpa, uroman_spelling)
from mms.asr import ASR
from mms.checkpoints import CheckpointError, instantiate, load_checkpoint
from mms.decoding.beam import BeamOptions, BeamSearchDecoder, pseudo_bigram
from mms.text.vocab import Vocabulary, VocabularyError, read_vocabulary_file
from tests.conftest import random_audio
from tests.factory import random_zeroshot_model, write_zeroshot_fairseq, write_zeroshot_hf
from tests.test_cli import mms


@pytest.fixture(scope="module")
def zs():
    return random_zeroshot_model(seed=3)


@pytest.fixture(scope="module")
def zs_fairseq(zs, tmp_path_factory):
    return write_zeroshot_fairseq(zs, tmp_path_factory.mktemp("zs") / "fairseq")


@pytest.fixture(scope="module")
def zs_hf(zs, tmp_path_factory):
    return write_zeroshot_hf(zs, tmp_path_factory.mktemp("zs") / "mms-zeroshot-300m")


# -- the model -----------------------------------------------------------------------------------------------

def test_token_file_reader(tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_text("<s>\n<pad>\n</s>\n<unk>\n|\nb\na\n'\n\n")
    vocab = Vocabulary.from_tokens_file(path)
    assert vocab.tokens == ["<s>", "<pad>", "</s>", "<unk>", "|", "b", "a", "'"]
    assert (vocab.blank, vocab.word_delimiter, vocab.silent, vocab.romanized) == (0, "|", frozenset({2}), True)
    assert read_vocabulary_file(path).tokens == vocab.tokens  # --dict takes token files too
    (tmp_path / "dict.txt").write_text("a 5\nb 3\n")
    assert read_vocabulary_file(tmp_path / "dict.txt").tokens == ["<s>", "<pad>", "</s>", "<unk>", "a", "b"]
    path.write_text("<s>\na\na\n")
    with pytest.raises(VocabularyError, match="duplicate"):
        Vocabulary.from_tokens_file(path)
    path.write_text("<s>\n<pad>\n</s>\n<unk>\n|\nа\n")  # Cyrillic: not the uroman alphabet
    assert not Vocabulary.from_tokens_file(path).romanized


def test_both_layouts_give_the_same_model(zs, zs_fairseq, zs_hf):
    fs, hf = load_checkpoint(zs_fairseq), load_checkpoint(zs_hf)
    for ckpt in (fs, hf):
        assert ckpt.vocab.tokens == zs.vocabs["mms_eng"]  # tokens.txt, not vocab.json's order
        assert ckpt.vocab.blank == 0 and ckpt.vocab.romanized and ckpt.language_free
        assert ckpt.adapters is None and ckpt.config.vocab_size == 32  # `mms_eng` is not taken for an adapter
    wave = torch.from_numpy(random_audio(8000, seed=1))[None]
    with torch.no_grad():
        a, b = instantiate(fs)(wave), instantiate(hf)(wave)
    a, b = (x[0] if isinstance(x, tuple) else getattr(x, "logits", x) for x in (a, b))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_token_file_size_must_match_the_head(zs, tmp_path):
    pt = write_zeroshot_fairseq(zs, tmp_path / "bad")
    (tmp_path / "bad" / "tokens.txt").write_text("<s>\n<pad>\n</s>\n<unk>\n|\na\n")
    with pytest.raises(Exception, match="6 tokens.*32 rows"):
        load_checkpoint(pt)


def test_a_model_file_without_its_tokens_is_refused_at_load(zs, tmp_path):
    """model.pt without tokens.txt beside it: one error naming the model when it loads (it was an error of every
    input, "no language given; this model has 0")."""
    pt = write_zeroshot_fairseq(zs, tmp_path / "alone")
    (tmp_path / "alone" / "tokens.txt").unlink()
    with pytest.raises(CheckpointError, match="model.pt: no vocabulary .*give one with --dict"):
        ASR.load(str(pt), device="cpu")


def test_registry_entry():
    from mms.hub.registry import find_model

    info = find_model("mms-zeroshot-300m")
    assert info.task == "asr" and info.hf == "mms-meta/mms-zeroshot-300m" and info.adapter is None
    assert "tokens.txt" in info.files and info.url[1].endswith("/zeroshot/tokens.txt")


# -- the lexicon ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,normed", [
    ("Abc’d", "abc'd"), ("ab-cd  ef", "ab cd ef"), ("x1y", "x y"), ("123", ""), (" É ", ""), ("a\tb", "a b")])
def test_norm_uroman(raw, normed):
    assert norm_uroman(raw) == normed


@pytest.mark.parametrize("word,spelling", [
    ("abiikira", "a b i i k i r a |"),  # the README's examples
    ("úwangaba", "u w a n g a b a |"),
    ("привет", "p r i v e t |"),
    ("नमस्ते", "n a m a s t e |"),
    ("café’s", "c a f e ' s |"),
    ("new-york", "n e w y o r k |"),  # spaces and punctuation inside a word are dropped
    ("123", None),  # no letter: not in the lexicon, reported
])
def test_uroman_spelling(word, spelling):
    result = uroman_spelling(word)
    assert (" ".join(result) if result else None) == spelling


def test_lexicon_order_normalisation_and_dedupe():
    words = WordList.read(["Résumé, world! 42", "resume résumé", "", "hi 7"])
    assert words.counts == {"résumé": 2, "world": 1, "resume": 1, "hi": 1} and words.lines == 3 and words.sentences
    lexicon = build_uroman_lexicon(words)
    assert lexicon.entries[0] == ("résumé", list("resume") + ["|"])  # most frequent first, then alphabetical
    assert [w for w, _ in lexicon.entries] == ["résumé", "hi", "resume", "world"]  # the user's spelling is kept
    deduped = build_uroman_lexicon(words, dedupe=True)
    assert [w for w, _ in deduped.entries] == ["résumé", "hi", "world"] and deduped.merged == 1
    words.counts["resume"] = 2  # same count: the shorter word wins
    assert "resume" in [w for w, _ in build_uroman_lexicon(words, dedupe=True).entries]


# -- the unigram LM ------------------------------------------------------------------------------------------

def test_unigram_arpa_is_the_space_formula_and_loads_in_kenlm(tmp_path):
    from flashlight.lib.text import dictionary
    from flashlight.lib.text.decoder.kenlm import KenLM

    words = WordList.read(["the cat", "the dog the"])
    text = unigram_arpa(words)
    z = (5 + 2 * 2 + 1) * 1.01
    expected = {"the": (3.01) / z, "cat": 1.01 / z, "dog": 1.01 / z, "<unk>": 1 / z, "<s>": 2.01 / z, "</s>": 2.01 / z}
    written = {line.split("\t")[1]: float(line.split("\t")[0]) for line in text.split("\\1-grams:")[1]
               .split("\\2-grams:")[0].strip().splitlines()}
    assert written == pytest.approx({w: math.log10(p) for w, p in expected.items()}, abs=1e-6)
    (tmp_path / "u.arpa").write_text(text)
    word_dict = dictionary.create_word_dict({"<unk>": [], "the": [["t"]], "cat": [["c"]], "zebra": [["z"]]})
    lm = KenLM(str(tmp_path / "u.arpa"), word_dict)
    state, first = lm.score(lm.start(False), word_dict.get_index("cat"))
    state, second = lm.score(state, word_dict.get_index("the"))  # no context effect: a unigram model
    _, unknown = lm.score(state, word_dict.get_index("zebra"))
    assert (first, second, unknown) == pytest.approx(
        (math.log10(expected["cat"]), math.log10(expected["the"]), math.log10(expected["<unk>"])), abs=1e-5)


def test_pseudo_bigram_leaves_higher_orders_alone():
    assert pseudo_bigram("\\data\\\nngram 1=2\nngram 2=1\n") == "\\data\\\nngram 1=2\nngram 2=1\n"


def test_lm_build_order_1_loads_in_kenlm(tmp_path):
    from flashlight.lib.text import dictionary
    from flashlight.lib.text.decoder.kenlm import KenLM

    (tmp_path / "c.txt").write_text("the cat\nthe dog\n")
    r = mms("lm", "build", tmp_path / "c.txt", "--order", "1", "--no-lmplz", "-o", tmp_path / "u.arpa")
    assert r.returncode == 0, r.stderr
    assert "ngram 2=1" in (tmp_path / "u.arpa").read_text()
    KenLM(str(tmp_path / "u.arpa"), dictionary.create_word_dict({"<unk>": [], "the": [["t"]]}))


# -- lexicon-only beam search --------------------------------------------------------------------------------

SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", "|", "a", "c", "d", "t", "o"]


def lexicon_path_score(em, spellings, blank=0, silence=4):
    """Best path of a word sequence as flashlight's lexicon decoder allows it: each word's units (its `|` included)
    with blanks between (required between equal units), and before, between and after the words any run of blanks
    and silences. A Viterbi over that graph (states: one "gap" per word boundary, one state per unit, one blank
    between units)."""
    emit, edges, starts, ends = [], {}, [], []

    def node(label):
        emit.append(label)
        edges[len(emit) - 1] = []
        return len(emit) - 1

    gap = node("gap")
    starts.append(gap)
    for k, units in enumerate(spellings):
        previous = gap
        for i, unit in enumerate(units):
            current = node(unit)
            if i == 0:
                edges[gap].append(current)
                if k == 0:
                    starts.append(current)
                elif emit[last] != unit:  # the gap may be empty
                    edges[last].append(current)
            else:
                between = node(blank)
                edges[previous].append(between)
                edges[between].append(current)
                if units[i - 1] != unit:
                    edges[previous].append(current)
            previous = current
        gap = node("gap")
        edges[previous].append(gap)
        last = previous
    ends += [gap, last]
    score_of = [lambda t, label=label: em[t, [blank, silence]].max() if label == "gap" else em[t, label]
                for label in emit]
    score = np.full(len(emit), -np.inf)
    for s in starts:
        score[s] = score_of[s](0)
    for t in range(1, len(em)):
        new = score.copy()  # self-loops
        for a, targets in edges.items():
            for b in targets:
                new[b] = max(new[b], score[a])
        score = np.array([new[s] + score_of[s](t) for s in range(len(emit))])
    return max(score[e] for e in ends)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("word_score", [0.0, -3.5, 1.0])
def test_lexicon_only_search_is_the_brute_force_best(tmp_path, seed, word_score):
    (tmp_path / "tokens.txt").write_text("\n".join(SYMBOLS) + "\n")
    vocab = Vocabulary.from_tokens_file(tmp_path / "tokens.txt")
    spell = {"cat": "c a t |", "cad": "c a d |", "to": "t o |"}
    (tmp_path / "lexicon.txt").write_text("".join(f"{w}\t{s}\n" for w, s in spell.items()))
    rng = np.random.default_rng(seed)
    frames = ["c", "<s>", "a", "t", "|", "t", "o", "|", "c", "a", "d", "|"]
    em = rng.normal(0, 1.5, (len(frames), len(SYMBOLS))).astype(np.float32)
    for t, symbol in enumerate(frames):
        em[t, SYMBOLS.index(symbol)] += 3
    hyp = BeamSearchDecoder(vocab, BeamOptions(lm=None, lexicon=str(tmp_path / "lexicon.txt"), beam=1000,
                                               lm_weight=0.0, word_score=word_score)).decode(em)
    candidates = {"": em[:, [0, 4]].max(1).sum()}  # no word: blanks and silences
    for n in (1, 2, 3):
        for words in itertools.product(spell, repeat=n):
            spellings = [[SYMBOLS.index(u) for u in spell[w].split()] for w in words]
            candidates[" ".join(words)] = lexicon_path_score(em, spellings) + word_score * n
    best = max(candidates, key=candidates.get)
    assert hyp.text == best
    assert hyp.score == pytest.approx(candidates[best], abs=1e-3)


def test_presets_are_the_reference_values():
    assert (PRESET_NO_LM["word_score"], PRESET_NO_LM["lm_weight"]) == (-3.5, 0.0)
    assert (PRESET_LM["word_score"], PRESET_LM["lm_weight"]) == (-0.18, 1.48)
    assert PRESET_LM["beam"] == PRESET_NO_LM["beam"] == 500 and PRESET_NO_LM["beam_size_token"] == 50


def test_prepare_chooses_the_lm_as_the_space(tmp_path):
    (tmp_path / "list.txt").write_text("cat\ndog\n")
    (tmp_path / "text.txt").write_text("the cat\nthe dog\n")
    assert prepare(tmp_path / "list.txt", tmp_path).lm is None
    text = prepare(tmp_path / "text.txt", tmp_path)
    assert text.auto_lm and text.lm.endswith("unigram.arpa")
    assert prepare(tmp_path / "text.txt", tmp_path, auto_lm=False).lm is None
    assert prepare(tmp_path / "list.txt", tmp_path, lm="given.arpa").lm == "given.arpa"


# -- the command line ----------------------------------------------------------------------------------------

def test_cli_lexicon_uroman(tmp_path):
    (tmp_path / "words.txt").write_text("Привет мир\nпривет 2024\n")
    r = mms("lexicon", "--uroman", tmp_path / "words.txt", "-o", tmp_path / "lex.txt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lex.txt").read_text() == "привет\tp r i v e t |\nмир\tm i r |\n"
    assert "2 words spelled in uroman" in r.stderr


def test_cli_asr_greedy_says_romanised_and_words_give_list_words(zs_hf, zs_fairseq, tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, random_audio(24000, seed=5), 16000)
    r = mms("asr", "--model", zs_hf, wav, "--format", "jsonl")
    assert r.returncode == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["romanized"] is True and "romanised" in r.stderr
    assert set(record["text"]) <= set("abcdefghijklmnopqrstuvwxyz' ")
    (tmp_path / "words.txt").write_text("Кот\nсобака\nmaison\n")
    outputs = []
    for model in (zs_hf, zs_fairseq):
        r = mms("asr", "--model", model, wav, "--words", tmp_path / "words.txt", "--format", "jsonl",
                "--decode-workers", "0")
        assert r.returncode == 0, r.stderr
        assert "3 words in the lexicon, no LM" in r.stderr
        record = json.loads(r.stdout)
        assert "romanized" not in record and set(record["text"].split()) <= {"кот", "собака", "maison"}
        outputs.append(record["text"])
    assert outputs[0] == outputs[1]
    # word times and subtitle cues show the list's words too, not their romanised spelling
    r = mms("asr", "--model", zs_hf, wav, "--words", tmp_path / "words.txt", "--format", "jsonl",
            "--decode-workers", "0", "--timestamps", "word")
    record = json.loads(r.stdout)
    assert [w["text"] for w in record["words"]] == record["text"].split() and record["words"]
    r = mms("asr", "--model", zs_hf, wav, "--words", tmp_path / "words.txt", "--format", "srt",
            "--decode-workers", "0")
    cue_words = [w for line in r.stdout.splitlines() if line and "-->" not in line and not line.isdigit()
                 for w in line.split()]
    assert cue_words == record["text"].split(), r.stdout
    r = mms("asr", "--model", zs_hf, wav, "--lang", "auto")  # one output layer: nothing for LID to choose
    assert r.returncode == 2 and "--lang auto has nothing to choose" in r.stderr
    # --lang is recorded (and with --words picks the normalisation rules): a code ISO 639 does not know is refused
    for args in (["--lang", "xyz"], ["--lang", "xxx", "--words", tmp_path / "words.txt"],
                 ["--uroman-lang", "xxx", "--words", tmp_path / "words.txt"]):
        r = mms("asr", "--model", zs_hf, wav, *args)
        assert r.returncode == 2 and f"{args[0]} {args[1]}: not an ISO 639 language code" in r.stderr, r.stderr
    r = mms("asr", "--model", zs_hf, wav, "--lang", "rus", "--words", tmp_path / "words.txt", "--decode-workers", "0")
    assert r.returncode == 0 and "does not change it" not in r.stderr, r.stderr  # (it picks the rules)
    r = mms("asr", "--model", zs_hf, wav, "--lang", "rus")
    assert r.returncode == 0 and "--lang rus is recorded with each result but does not change it" in r.stderr
    r = mms("asr", "--model", zs_hf, wav, "--auto-lm")
    assert r.returncode == 2 and "need --words" in r.stderr
