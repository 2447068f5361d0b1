"""Numbers written in digits, spelled as words before synthesis ("3 cats" -> "three cats").

MMS-TTS voices have no digits in their vocabularies, so fairseq's infer.py and transformers' VitsTokenizer drop
them: "Call 911 at 10:30" is spoken "call at". Here the digits are spelled in the voice's language by num2words
(a maintained package with rules for about 50 languages) when it knows the language, before romanisation, so a
uroman voice reads the words of its own script. What is read how:

* an integer: a cardinal ("42" -> "forty-two"); thousands written with the language's group separator are one
  number ("1,000,000" in English, "1.000.000" in German), never a year;
* a decimal with the language's decimal mark ("3.5" in English, "3,5" in French), in the languages where
  num2words' decimals were checked (DECIMAL_LANGUAGES); elsewhere its parts are read as two integers;
* a digit string that starts with 0 or has more than MAX_DIGITS digits (a phone or account number): digit by digit;
* English only: ordinals ("21st"), years (a 4-digit number from 1100 to 2099: "1984" -> "nineteen eighty-four")
  and "%" ("percent").
A sign is not read (a hyphen before a digit is more often a range or a dash than a minus). Languages num2words does
not know keep their digits, which the voice then drops with the usual warning.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_DIGITS = 9  # longer digit strings are read digit by digit (num2words stops at 10 digits in some languages)

# ISO 639-3 codes that pycountry gives no two-letter code for (individual languages of a macrolanguage), mapped to
# the num2words language of their macrolanguage.
MEMBER_LANGUAGES = {"arb": "ar", "azj": "az", "azb": "az", "pes": "fa", "prs": "fa", "lvs": "lv", "nob": "no",
                    "nno": "no", "zsm": "id", "ind": "id", "ekk": "et", "kaz": "kz", "tet": "tet", "tgk": "tg"}
# num2words languages left out: Amharic's converter loops forever on millions and fails from 10,000 (0.5.14).
BROKEN = {"am"}
# Languages whose decimals num2words reads correctly ("three point five"); Vietnamese, Persian and Arabic gave
# wrong words for some decimals in 0.5.14, so the others read the two parts as integers.
DECIMAL_LANGUAGES = {"en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl", "cs", "sk", "sv", "da", "no", "fi",
                     "tr", "id", "ro", "ca", "hu", "lt", "lv", "sl", "sr", "be", "is", "cy", "eo"}
# Languages writing the decimal mark as a point and grouping thousands with a comma (the others: the reverse).
POINT_DECIMAL = {"en", "he", "ja", "ko", "th", "te", "kn", "bn", "hi", "ta"}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_KEEP_CLOSE = set(".,!?;)]}\"'”’»…%")  # a word written right after a number keeps no space before these


@lru_cache(maxsize=None)
def num2words_language(lang: str | None) -> str | None:
    """The num2words language of an MMS code ("eng", "fra", "azj-script_latin"), or None when it has none."""
    if not lang:
        return None
    try:
        from num2words import CONVERTER_CLASSES
        import pycountry
    except ImportError:
        return None
    base = lang.split("-")[0].lower()
    code = MEMBER_LANGUAGES.get(base)
    if code is None:
        language = pycountry.languages.get(alpha_3=base)
        code = getattr(language, "alpha_2", None) if language else None
    return code if code in CONVERTER_CLASSES and code not in BROKEN else None


def spell_numbers(text: str, lang: str | None) -> str:
    """`text` with its numbers spelled in `lang` (an MMS/ISO 639-3 code); unchanged when num2words does not know
    the language or the text has no digit."""
    code = num2words_language(lang) if any(ch.isdigit() for ch in text) else None
    if code is None:
        return text
    if code == "en":
        text = _ORDINAL.sub(lambda m: _pad(text, m, _words(m.group(1), code, "ordinal")), text)
        text = re.sub(r"(?<=\d)\s?%", " percent", text)
    return _NUMBER.sub(lambda m: _pad(text, m, _spell(m.group(0), code)), text)


def _spell(number: str, code: str) -> str:
    group, decimal = (",", ".") if code in POINT_DECIMAL else (".", ",")
    if re.fullmatch(rf"\d{{1,3}}(?:{re.escape(group)}\d{{3}})+", number):
        return _integer(number.replace(group, ""), code, year=False)  # thousands: one number, never a year
    parts = re.split(r"[.,]", number)
    if len(parts) == 2 and decimal in number and code in DECIMAL_LANGUAGES and len(parts[0]) <= MAX_DIGITS:
        from decimal import Decimal

        spoken = _words(Decimal(number.replace(decimal, ".")), code)
        if spoken:
            return spoken
    return " ".join(_integer(part, code) for part in parts)


def _integer(digits: str, code: str, year: bool = True) -> str:
    if (len(digits) > 1 and digits[0] == "0") or len(digits) > MAX_DIGITS:
        return " ".join(_words(d, code) or d for d in digits)
    if year and code == "en" and len(digits) == 4 and 1100 <= int(digits) <= 2099:
        return _words(digits, code, "year") or digits
    return _words(digits, code) or digits


def _words(number, code: str, to: str = "cardinal") -> str | None:
    from num2words import num2words

    try:
        words = num2words(int(number) if isinstance(number, str) else number, lang=code, to=to)
    except Exception:  # noqa: BLE001 - a converter's gap (an unsupported form) leaves the digits as written
        return None
    return re.sub(r"\s+", " ", words.replace(",", " ")).strip()


def _pad(text: str, match: re.Match, words: str | None) -> str:
    """The words, with a space on each side where the number touched a letter, digit or other mark ("10:30",
    "mp3"), so the words do not run into their neighbours."""
    if not words:
        return match.group(0)
    before = text[match.start() - 1] if match.start() else " "
    after = text[match.end()] if match.end() < len(text) else " "
    return ("" if before.isspace() else " ") + words + ("" if after.isspace() or after in _KEEP_CLOSE else " ")
