"""Greedy CTC decoding (mms/decoding/ctc.py) against transformers' Wav2Vec2CTCTokenizer.decode and fairseq's
viterbi decoder + `letter` post-processing, and word / character times."""

import json

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2CTCTokenizer

from mms.checkpoints import load_checkpoint
from mms.checkpoints.huggingface import language_vocab
from mms.decoding.ctc import SECONDS_PER_FRAME, greedy_decode
from mms.options import AlignOptions
from mms.results import Word
from mms.text.vocab import Vocabulary
from tests.factory import fairseq_symbols

PIPE = 4  # "|" in both orders (specials 0-3, then "|")


def random_frame_ids(rng: np.random.Generator, vocab_size: int, max_len: int = 40) -> list[int]:
    """Runs of blanks (0), specials (1-3), word delimiters and letters, with repeats."""
    ids = []
    for _ in range(rng.integers(0, max_len)):
        r = rng.random()
        if r < 0.3:
            token = 0
        elif r < 0.45:
            token = PIPE
        elif r < 0.55:
            token = int(rng.integers(1, 4))
        else:
            token = int(rng.integers(5, vocab_size))
        ids += [token] * int(rng.choice([1, 1, 2, 3]))
    return ids


def sequences(vocab_size: int, n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    fixed = [[], [0], [0, 0, 0], [PIPE], [PIPE, 0, PIPE, PIPE], [1, 2, 3], [3, 3, 0, 3], [5, 5, 5],
             [5, 0, 5], [PIPE, 5, PIPE, 0, PIPE, 6, PIPE], [0, 1, 5, 2, 0, 6, 3, PIPE, PIPE, 0, 0]]
    return fixed + [random_frame_ids(rng, vocab_size) for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------
# transformers


@pytest.fixture(scope="module")
def hf_fra(hf_dir):
    tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(hf_dir, target_lang="fra")
    vocab = load_checkpoint(hf_dir).adapters.load("fra")[1]
    return tokenizer, vocab


def test_greedy_matches_transformers_tokenizer(hf_fra, tiny):
    tokenizer, vocab = hf_fra
    assert vocab.tokens == tiny.vocabs["fra"] and len(tokenizer) == len(vocab)
    seqs = sequences(len(vocab), 400, seed=0)
    assert any("<s>" in tokenizer.decode(ids) for ids in seqs)  # the inputs exercise the printed specials
    assert any("  " in tokenizer.decode(ids) for ids in seqs)
    for ids in seqs:
        expected = tokenizer.decode(ids)
        assert greedy_decode(np.array(ids, dtype=np.int64), vocab).text == expected, ids


@pytest.mark.parametrize("lower", [False, True])
def test_greedy_matches_transformers_cleanup_and_case(tmp_path, lower):
    """A vocabulary with punctuation: clean_up_tokenization_spaces (" ." -> ".", " 's" -> "'s") and
    do_lower_case must match transformers too."""
    tokens = ["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "n", "t", "s", "'", ".", "?", "!", ","]
    token_to_id = {t: i for i, t in enumerate(tokens)}
    tok_cfg = {"word_delimiter_token": "|", "pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>",
               "eos_token": "</s>", "do_lower_case": lower, "replace_word_delimiter_char": " ",
               "clean_up_tokenization_spaces": True, "tokenizer_class": "Wav2Vec2CTCTokenizer"}
    (tmp_path / "vocab.json").write_text(json.dumps(token_to_id))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    tokenizer = Wav2Vec2CTCTokenizer.from_pretrained(tmp_path)
    vocab = language_vocab(token_to_id, None, tok_cfg)
    assert vocab.cleanup_spaces and vocab.lower_case == lower

    apostrophe_s, dot = token_to_id["'"], token_to_id["."]
    fixed = [[5, PIPE, apostrophe_s, 9, PIPE, 6], [5, PIPE, dot], [7, PIPE, apostrophe_s, 8]]
    assert tokenizer.decode(fixed[0]) == ("a's b" if lower else "A's B")  # cleanup really applies
    for ids in fixed + sequences(len(tokens), 300, seed=1):
        assert greedy_decode(np.array(ids), vocab).text == tokenizer.decode(ids), ids


# ---------------------------------------------------------------------------------------------------------
# fairseq


def fairseq_viterbi_letter(ids: list[int], symbols: list[str]) -> str:
    """fairseq W2lViterbiDecoder (blank = bos = 0) + Dictionary.string + post_process(..., "letter")."""
    tokens = torch.tensor(ids, dtype=torch.long).unique_consecutive()
    tokens = tokens[tokens != 0]
    pieces = " ".join(symbols[i] for i in tokens.tolist() if i not in (0, 2))  # bos and eos skipped
    return pieces.replace(" ", "").replace("|", " ").strip()


@pytest.fixture(scope="module")
def fairseq_fra(fairseq_pt):
    return load_checkpoint(fairseq_pt).adapters.load("fra")[1]


def test_greedy_matches_fairseq_viterbi_letter(fairseq_fra, tiny):
    vocab = fairseq_fra
    assert vocab.tokens == fairseq_symbols(tiny.vocabs["fra"])
    seqs = sequences(len(vocab), 400, seed=2)
    assert any("<pad>" in fairseq_viterbi_letter(ids, vocab.tokens) for ids in seqs)
    assert any("<unk>" in fairseq_viterbi_letter(ids, vocab.tokens) for ids in seqs)
    for ids in seqs:
        assert greedy_decode(np.array(ids), vocab).text == fairseq_viterbi_letter(ids, vocab.tokens), ids


def test_fairseq_keeps_double_spaces(tmp_path):
    dict_path = tmp_path / "dict.ltr.txt"
    dict_path.write_text("".join(f"{c} 1\n" for c in "|abcdefghijklmnopqrstuvwxyz'"))
    vocab = Vocabulary.from_fairseq_dict_file(dict_path)
    index = {s: i for i, s in enumerate(vocab.tokens)}
    frames = "h e l _ l o | _ | w o r l d |".split()
    ids = [0 if f == "_" else index[f] for f in frames]
    assert " ".join(vocab.tokens[i] for i in torch.tensor(ids).unique_consecutive().tolist() if i) == \
        "h e l l o | | w o r l d |"
    assert fairseq_viterbi_letter(ids, vocab.tokens) == "hello  world"
    assert greedy_decode(np.array(ids), vocab).text == "hello  world"


# ---------------------------------------------------------------------------------------------------------
# Times


def test_word_and_char_times(hf_fra):
    _, vocab = hf_fra  # <pad>=0 (blank) <s>=1 </s>=2 <unk>=3 |=4 a=5 b=6 c=7 ...
    #          0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15 16
    frames = [0, 0, 5, 5, 0, 6, 4, 4, 7, 7, 7, 0, 5, 4, 0, 4, 9]
    hyp = greedy_decode(np.array(frames), vocab, score=-1.5)
    assert hyp.text == "ab ca  e" and hyp.score == -1.5
    assert [(u.token, u.start, u.end) for u in hyp.units] == [
        ("a", 2, 4), ("b", 5, 6), ("|", 6, 8), ("c", 8, 11), ("a", 12, 13), ("|", 13, 14), ("|", 15, 16),
        ("e", 16, 17)]
    assert hyp.words(vocab) == [Word("ab", 0.04, 0.12), Word("ca", 0.16, 0.26), Word("e", 0.32, 0.34)]
    assert hyp.chars(vocab) == [Word("a", 0.04, 0.08), Word("b", 0.1, 0.12), Word("c", 0.16, 0.22),
                                Word("a", 0.24, 0.26), Word("e", 0.32, 0.34)]
    assert SECONDS_PER_FRAME == 0.02
    assert hyp.words(vocab, seconds_per_frame=0.04)[1] == Word("ca", 0.32, 0.52)

    shifted = greedy_decode(np.array(frames), vocab, frame_offset=100)  # a chunk starting 2 s in
    assert shifted.text == hyp.text
    assert [w.start for w in shifted.words(vocab)] == [2.04, 2.16, 2.32]
    assert [w.end for w in shifted.words(vocab)] == [2.12, 2.26, 2.34]


def test_times_skip_silent_specials(fairseq_fra):
    vocab = fairseq_fra  # <s>=0 (blank) <pad>=1 </s>=2 <unk>=3 |=4 a=5 b=6 ...
    frames = [2, 5, 5, 2, 6, 0, 4, 3, 3, 1]
    hyp = greedy_decode(np.array(frames), vocab)
    assert hyp.text == "ab <unk><pad>"
    assert hyp.words(vocab) == [Word("ab", 0.02, 0.1), Word("<unk><pad>", 0.14, 0.2)]
    assert [c.text for c in hyp.chars(vocab)] == ["a", "b", "<unk>", "<pad>"]


def test_empty_and_all_blank():
    vocab = Vocabulary.from_fairseq_symbols(["<s>", "<pad>", "</s>", "<unk>", "|", "a"])
    for frames in ([], [0, 0, 0], [4, 0, 4], [2, 0, 2]):
        hyp = greedy_decode(np.array(frames, dtype=np.int64), vocab)
        assert hyp.text == "" and hyp.words(vocab) == [] and hyp.chars(vocab) == []


def test_time_offsets_move_times_in_order_and_inside_the_audio():
    from mms.results import shift_times

    words = [Word("a", 0.05, 0.30), Word("b", 0.32, 0.60), Word("c", 0.90, 1.00)]
    shift_times(words, -0.10, -0.02, duration=0.95)
    assert [(w.start, w.end) for w in words] == [(0.0, 0.28), (0.28, 0.58), (0.8, 0.95)]
    same = [Word("x", 0.1, 0.2)]
    shift_times(same, 0.0, 0.0, duration=1.0)
    assert same == [Word("x", 0.1, 0.2)]
    # a word at the start of a 0.1 s clip: the offsets would clamp both ends to 0 (a zero-length subtitle cue)
    short = [Word("hi", 0.0, 0.06)]
    shift_times(short, -0.13, -0.07, duration=0.1)
    assert [(w.start, w.end) for w in short] == [(0.0, 0.06)]


def test_a_model_config_states_its_time_offsets(hf_dir, tmp_path, wavs):
    """config.json "word_time_offsets" shifts the word times of mms.asr and mms.align; an explicit
    time_offsets (--time-offsets) overrides it."""
    import shutil

    from mms.align.aligner import Aligner
    from mms.asr import ASR

    shifted_dir = tmp_path / "lagging"
    shutil.copytree(hf_dir, shifted_dir)
    config = json.loads((shifted_dir / "config.json").read_text())
    (shifted_dir / "config.json").write_text(json.dumps(dict(config, word_time_offsets=[0.04, -0.02])))
    plain = ASR.load(hf_dir, lang="eng", device="cpu")
    lagging = ASR.load(shifted_dir, lang="eng", device="cpu")
    assert plain.time_offsets == (0.0, 0.0) and lagging.time_offsets == (0.04, -0.02)
    assert ASR.load(shifted_dir, lang="eng", device="cpu", time_offsets=(0, 0)).time_offsets == (0, 0)
    a = plain.transcribe([str(wavs[1])], timestamps="word")[0].words
    b = lagging.transcribe([str(wavs[1])], timestamps="word")[0].words
    assert a and len(a) == len(b)
    assert b[0].start == round(a[0].start + 0.04, 3)
    assert b[-1].end == round(max(a[-1].end - 0.02, b[-1].start), 3)

    text = " ".join(w.text for w in a)
    raw = Aligner(plain.runner).align(str(wavs[1]), [text], lang="eng").lines[0].words
    aligner = Aligner(lagging.runner)
    assert aligner.time_offsets == (0.04, -0.02)
    assert Aligner(lagging.runner, options=AlignOptions(time_offsets=(0, 0))).time_offsets == (0, 0)
    moved = aligner.align(str(wavs[1]), [text], lang="eng").lines[0].words
    assert moved[0].start == round(raw[0].start + 0.04, 3)
    assert moved[-1].end == round(max(raw[-1].end - 0.02, moved[-1].start), 3)
