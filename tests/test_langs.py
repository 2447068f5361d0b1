"""Language catalogue: names and scripts of MMS codes (pycountry), shipped lists, search, per-model lists."""


import pytest

from mms import langs


@pytest.mark.parametrize("code, name", [
    ("fra", "French"),
    ("azj-script_latin", "North Azerbaijani (Latin script)"),
    ("azj-script_cyrillic", "North Azerbaijani (Cyrillic script)"),
    ("cmn-script_simplified", "Mandarin Chinese (Simplified Han script)"),
    ("cak-dialect_central", "Kaqchikel (central dialect)"),
    ("swh", "Swahili (individual language)"),
    ("en", "English"),  # ISO 639-1 codes are understood too
    ("eng_Latn", "English (Latin script)"),  # Omnilingual ASR: ISO 639-3 _ ISO 15924 [_ variety]
    ("cmn_Hant", "Mandarin Chinese (Traditional Han script)"),
    ("lld_Latn_gherd", "Ladin (Latin script, gherd)"),
])
def test_language_name(code, name):
    assert langs.language_name(code) == name


def test_unknown_codes_have_no_name():
    assert langs.language_name("qqq") is None
    assert langs.language_name("") is None
    assert langs.language_name("qqq-script_latin") is None


@pytest.mark.parametrize("code, script", [
    ("azj-script_latin", "Latn"), ("srp-script_cyrillic", "Cyrl"), ("urd-script_devanagari", "Deva"),
    ("cmn-script_simplified", "Hans"), ("yue-script_traditional", "Hant"), ("crk-script_syllabics", "Cans"),
    ("fra", None), ("cak-dialect_central", None), ("rus_Cyrl", "Cyrl"), ("eng_Qqqq", None),
])
def test_script_codes_are_iso15924(code, script):
    assert langs.script_code(code) == script


def test_parse_splits_suffixes():
    assert langs.parse("cak-dialect_santamariadejesus") == langs.Code("cak-dialect_santamariadejesus", "cak",
                                                                       None, "santamariadejesus")
    assert langs.parse("azj-script_latin").script == "latin"
    assert langs.to_iso639_3("fr") == "fra" and langs.to_iso639_3("azj-script_latin") == "azj"


def test_every_shipped_code_has_a_name_and_every_script_suffix_a_script():
    for list_name, expected in (("mms-1b-all", 1198), ("mms-lid-256", 256), ("omniasr", 1672)):
        codes = langs.shipped_languages(list_name)
        assert len(codes) == len(set(codes)) == expected
        assert all(langs.language_name(c) for c in codes), list_name
        assert all(langs.script_code(c) for c in codes if langs.parse(c).script), list_name
    assert langs.shipped_languages("no-such-list") is None
