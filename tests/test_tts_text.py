"""Text preparation for MMS-TTS against its two references: transformers' VitsTokenizer (Hugging Face voices)
and fairseq's examples/mms/tts/infer.py (original voices), plus sentence splitting."""

import random
import re
import shutil

import pytest

from mms.checkpoints import vits_hf, vits_original
from mms.text.romanize import romanize
from mms.text.tts_text import TtsText, read_vocab_txt, split_sentences
from tests.tts_factory import ENG_SYMBOLS, voice_dirs

# (not a tab, dash or slash between words: a word break here, test_a_tab_no_break_space_...)
TRICKY = ["kat", "akka", "stinks", "k", "kk k", " k a k ", "KAT", "Kk", "Hello, World!", "don't – stop_3 -1",
          "naïve CAFÉ", "<unk> x", "!!!", "", "   ", "12 + 34 = 46", "k.k.k", "Q&A: 42%"]


def infer_py_ids(text: str, symbols: list[str], lang=None, uroman=False) -> list[int]:
    """fairseq examples/mms/tts/infer.py (TextMapper), step by step; uroman.pl -l xxx is the uroman package."""
    symbol_to_id = {s: i for i, s in enumerate(symbols)}
    if uroman:
        text = re.sub(r"\s+", " ", romanize(text)).strip()
    text = text.lower()
    if lang == "ron":
        text = text.replace("ț", "ţ")
    text = "".join(filter(lambda x: x in symbol_to_id, text))
    sequence = [symbol_to_id[symbol] for symbol in text.strip()]
    result = [0] * (len(sequence) * 2 + 1)
    result[1::2] = sequence
    return result


@pytest.fixture(scope="module")
def hf_tokenizer():
    import transformers

    return transformers.VitsTokenizer.from_pretrained(voice_dirs().hf)


@pytest.fixture(scope="module")
def hf_text():
    return vits_hf.load(voice_dirs().hf).text


@pytest.fixture(scope="module")
def original_text():
    return vits_original.load(voice_dirs().original).text


def test_transformers_style_matches_vits_tokenizer(hf_tokenizer, hf_text):
    rng = random.Random(0)
    alphabet = "katsKATS k.,!?'-é É" + "".join(ENG_SYMBOLS[:12])
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(300)]
    for text in TRICKY + fuzz:
        assert hf_text.prepare(text).ids == hf_tokenizer(text)["input_ids"], text


def test_the_pad_letter_is_not_interspersed_by_transformers(hf_text, original_text):
    """mms-tts-eng's id-0 symbol is "k": transformers emits it bare, fairseq intersperses it like any letter."""
    assert original_text.prepare("kat").ids == [0, 0, 0, 26, 0, 33, 0]
    assert hf_text.prepare("kat").ids == [0, 0, 26, 0, 33, 0]
    assert len(original_text.prepare("akka").ids) == 9 and len(hf_text.prepare("akka").ids) == 8
    assert original_text.prepare("stinks").ids == hf_text.prepare("stinks").ids


def test_fairseq_style_matches_infer_py(original_text):
    for text in TRICKY:
        assert original_text.prepare(text).ids == infer_py_ids(text, ENG_SYMBOLS), text


def test_case_folding_differs_as_in_the_references():
    """fairseq lower-cases everything; transformers keeps characters that are in the vocabulary as they are."""
    symbols = ["_", " ", "a", "b", "A"]
    fairseq = TtsText(symbols, "fairseq")
    hf = TtsText(symbols, "transformers", special_tokens=("_", "<unk>"))
    assert fairseq.prepare("Ab").text == "ab"
    assert hf.prepare("AB").text == "Ab"


def test_out_of_vocabulary_characters_are_reported(original_text, hf_text):
    for text in (original_text, hf_text):
        prepared = text.prepare("Héllo, wörld!")
        assert prepared.text == "hllo wrld"
        assert prepared.dropped == ["é", ",", "ö", "!"]


def test_romanian_fix(tmp_path):
    symbols = ["_", " ", "a", "ţ", "t"]
    for style in ("fairseq", "transformers"):
        ron = TtsText(symbols, style, lang="ron", special_tokens=("_",))
        assert ron.prepare("ța").text == "ţa", style
        assert TtsText(symbols, style, lang="mol").prepare("ța").text == "a"  # other languages: dropped
    import transformers

    vocab = tmp_path / "vocab.json"
    vocab.write_text('{"_": 0, " ": 1, "a": 2, "ţ": 3, "t": 4}')
    reference = transformers.VitsTokenizer(str(vocab), pad_token="_", language="ron", phonemize=False)
    ours = TtsText(symbols, "transformers", lang="ron", special_tokens=("_", "<unk>"))
    for text in ("ța Ța", "Țţ t", "ța_ț"):
        assert ours.prepare(text).ids == reference(text)["input_ids"], text


def test_uroman_voices(tmp_path):
    import transformers

    mixed = "Привет мир ሰላም 你好 abc"
    hf_dir = shutil.copytree(voice_dirs().hf, tmp_path / "mms-tts-amh")
    transformers.VitsTokenizer(str(hf_dir / "vocab.json"), pad_token="k", language="amh", phonemize=False,
                               is_uroman=True).save_pretrained(hf_dir)
    reference = transformers.VitsTokenizer.from_pretrained(hf_dir)
    ours = vits_hf.load(hf_dir).text
    assert ours.uroman
    assert ours.prepare(mixed).ids == reference(mixed)["input_ids"]
    assert ours.prepare("plain ascii").ids == reference("plain ascii")["input_ids"]

    fairseq = TtsText(ENG_SYMBOLS, "fairseq", uroman=True)
    prepared = fairseq.prepare(mixed)
    assert prepared.ids == infer_py_ids(mixed, ENG_SYMBOLS, uroman=True)
    assert "privet mir" in prepared.text and len(prepared.ids) > 2 * len("privet mir")


def test_original_config_marks_uroman_voices(tmp_path):
    import json

    original = shutil.copytree(voice_dirs().original, tmp_path / "amh")
    hps = json.loads((original / "config.json").read_text())
    hps["data"]["training_files"] = "/data/amh/train.ltr.uroman"
    (original / "config.json").write_text(json.dumps(hps))
    text = vits_original.load(original, "amh").text
    assert text.uroman and text.lang == "amh"
    assert not vits_original.load(voice_dirs().original).text.uroman


def test_vocab_txt_keeps_the_space_line():
    assert read_vocab_txt("k\n \na\n") == ["k", " ", "a"]
    assert read_vocab_txt("k\n \na") == ["k", " ", "a"]


# ---------------------------------------------------------------------------------------------------------
# Sentences


def test_split_sentences_by_script():
    assert split_sentences("Hello there. How are you? Fine!  Pi is 3.14 today.") == \
        ["Hello there.", "How are you?", "Fine!", "Pi is 3.14 today."]
    assert split_sentences("“Stop.” He left.\nNew line") == ["“Stop.”", "He left.", "New line"]
    assert split_sentences("今天天气很好。我们去公园吧！好的") == ["今天天气很好。", "我们去公园吧！", "好的"]
    assert split_sentences("ሰላም ነው።እንዴት ነህ፧") == ["ሰላም ነው።", "እንዴት ነህ፧"]
    assert split_sentences("यह एक वाक्य है। यह दूसरा है।") == ["यह एक वाक्य है।", "यह दूसरा है।"]
    assert split_sentences("هل أنت بخير؟ نعم") == ["هل أنت بخير؟", "نعم"]
    assert split_sentences("  \n\n ") == []
    # title abbreviations do not end a sentence; "etc.", "no.", a single letter and a word of two letters do
    assert split_sentences("Dr. Smith met Mrs. Jones, e.g. at St. Mary's. They spoke. Fine etc. Go. It is ok. "
                           "Yes") == ["Dr. Smith met Mrs. Jones, e.g. at St. Mary's.", "They spoke.", "Fine etc.",
                                      "Go.", "It is ok.", "Yes"]
    assert split_sentences("So did I. The answer is no. I took vitamin C. It helped.") == [
        "So did I.", "The answer is no.", "I took vitamin C.", "It helped."]


def test_long_sentences_are_cut_at_clauses_spaces_or_the_limit():
    clauses = "one two three, four five six, seven eight nine"
    assert split_sentences(clauses, max_chars=30) == ["one two three, four five six,", "seven eight nine"]
    words = " ".join(["word"] * 30)
    pieces = split_sentences(words, max_chars=50)
    assert all(len(p) <= 50 for p in pieces) and " ".join(pieces) == words
    unspaced = "字" * 250
    assert [len(p) for p in split_sentences(unspaced, max_chars=100)] == [100, 100, 50]


def test_a_tab_no_break_space_or_dash_between_words_stays_a_word_break():
    """Both references drop such characters (not in the vocabulary) and join the words; here they become the
    space the vocabulary has, unless a space is already there (then the text is the references')."""
    symbols = ["_", " ", "a", "b", "c"]
    for style in ("fairseq", "transformers"):
        text = TtsText(symbols, style, special_tokens=("_",) if style == "transformers" else ())
        assert text.prepare("ab\tcab\u00a0ba\u2014cc/a").text == "ab cab ba cc a"
        assert text.prepare("ab \t ba").text == "ab  ba"  # as the references give it: the tab alone dropped
        assert text.prepare("\tab-\n").text == "ab"
        assert text.prepare("ab\t").dropped == [] and text.prepare("a!").dropped == ["!"]
    assert TtsText(["_", "a", "b"], "fairseq").prepare("a\tb").text == "ab"  # no space in the vocabulary
