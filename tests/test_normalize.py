"""MMS data-prep text_normalize: cases from the reference's behaviour (fairseq examples/mms/data_prep),
including its quirks. (Checked once against fairseq's own text_normalize on 60,140 random strings over every
character of its sets: no difference; that check needs a fairseq checkout and is not part of the suite.)"""

import pytest

from mms.text.normalize import PUNCTUATIONS_LST, SHARED_PUNCTUATION, MissingPackageError, text_normalize


@pytest.mark.parametrize("text, lang, expected", [
    ("Hello, World!", "eng", "hello world"),
    ("well-known it's", "eng", "well-known it's"),  # ASCII - and ' are kept
    ("It’s John‘s dog‛s", "eng", "it's john's dog's"),  # curly apostrophes inside words become '
    ("’quoted’", "eng", "quoted"),  # ... but not at word edges: then they are punctuation
    ("don’t’s", "eng", "don t's"),  # one substitution per non-overlapping match, the rest is punctuation
    ("In the beginning (Gen 1:1) God", "eng", "in the beginning god"),  # parentheses holding a digit go
    ("a (note) b", "eng", "a note b"),  # without a digit only the brackets go (they are punctuation)
    ("12345", "eng", "12345"),  # a lone number is kept
    ("abc123 456", "eng", "abc123"),  # digits inside a word stay, a number token goes
    ("at 12:30 today", "eng", "at today"),  # "12:30" -> "12 30" -> both removed
    ("12:30", "eng", ""),
    ("x ١٢٣ y", "eng", "x ١٢٣ y"),  # Arabic-Indic digits are not in the set (only extended ones are)
    ("x ۱۲۳ y", "fas", "x y"),
    ("ٱلْحَمْدُ", "ara", "الحمد"),  # alef wasla mapped, harakat deleted
    ("ٱ", "eng", "ا"),  # the Arabic mapping leaks to every language
    ("&lt;b&gt;bold&nbsp;", "eng", "bbold"),  # HTML entities are deleted, not spaced
    ("ＡＢＣ　１２", "eng", "abc"),  # NFKC: fullwidth letters, space and digits
    ("½ cup", "eng", "cup"),  # NFKC "1⁄2": fraction slash is punctuation, then the digits go
    ("soft\u00adhyphen", "mon", "softhyphen"),
    ("soft\u00adhyphen", "khk", "softhyphen"),
    ("soft\u00adhyphen", "eng", "soft\u00adhyphen"),
    ("שָׁלוֹם", "heb", "שלום"),
    ("ก\u200dข", "tha", "ก ข"),
    ("ก\u200dข", "eng", "ก\u200dข"),
    ("zero\u200bwidth\u200e", "eng", "zerowidth"),
    ("«Bonjour» — ça va ?", "fra", "bonjour — ça va"),  # em dash U+2014 is not in the set
    ("a―b", "eng", "a b"),  # horizontal bar U+2015 is (punctuations.lst)
    ("50% & 3/4 * x", "eng", "x"),
    ("  many   spaces\t\n", "eng", "many spaces"),
    ("Mixed CASE", None, "mixed case"),
])
def test_text_normalize(text, lang, expected):
    assert text_normalize(text, lang) == expected


def test_options():
    assert text_normalize("A (note) B", "eng", remove_brackets=True) == "a b"
    assert text_normalize("Room 12 B", "eng", remove_numbers=False) == "room 12 b"
    assert text_normalize("ABC", "eng", lower_case=False) == "ABC"


def test_punctuation_list_has_the_188_characters_of_punctuations_lst():
    codes = PUNCTUATIONS_LST.split()
    assert len(codes) == len(set(codes)) == 188
    assert {"0029", "0028", "005B", "002F", "2044", "00BD"} <= set(codes)
    assert "-" not in SHARED_PUNCTUATION and "'" not in SHARED_PUNCTUATION


def test_javanese_removes_diacritics_or_says_what_is_missing():
    try:
        import unidecode  # noqa: F401
    except ImportError:
        with pytest.raises(MissingPackageError, match="unidecode"):
            text_normalize("Basa Jåwå", "jav")
    else:
        assert text_normalize("Basa Jåwå", "jav") == "basa jawa"
