"""Numbers written in digits, spelled as words before synthesis ("3 cats" -> "three cats").

MMS-TTS voices have no digits in their vocabularies, so fairseq's infer.py and transformers' VitsTokenizer drop
them: "Call 911 at 10:30" is spoken "call at". Here the digits are spelled in the voice's language by num2words
(a maintained package with rules for about 50 languages) when it knows the language, before romanisation, so a
uroman voice reads the words of its own script. What is read how:

* an integer: a cardinal ("42" -> "forty-two"); thousands grouped with the language's separator are one number,
  never a year nor digit by digit ("1,000,000" in English; "1.000.000" or "1 000 000" in German, French or
  Russian; a no-break or narrow no-break space in any language);
* a decimal with the language's decimal mark ("3.05" in English, "3,5" in French, "1.234,56" in German): the
  integer, the word for the mark, then the fraction digit by digit ("three point zero five"), or num2words' own
  reading where the language declines it (Russian "три целых пять десятых");
* three or more digit groups joined by points that are not one grouped number (a date "1.5.2026", a version
  "3.11.7", an address "192.168.0.1"): each group as an integer, one after the other ("one five twenty
  twenty-six"), so no group is taken for a decimal and no point for a sentence end;
* an ungrouped digit string that starts with 0 or has more than MAX_DIGITS digits (a phone or account number):
  digit by digit;
* an amount of money, a currency sign before or after it ("$3.50", "20 €", "£1,000"), in the languages whose
  num2words converter has that currency ("three dollars, fifty cents"; whole amounts without "zero cents");
* English only: ordinals ("21st"), years (a 4-digit number from 1100 to 2099: "1984" -> "nineteen eighty-four"),
  "%" ("percent") and clock times ("10:30" -> "ten thirty", "9:05 pm" -> "nine oh five p m", "7:00" -> "seven
  o'clock", "14:00" -> "fourteen hundred").
A sign is not read (a hyphen before a digit is more often a range or a dash than a minus). Languages num2words does
not know keep their digits, which the voice then drops with the usual warning.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_DIGITS = 9  # longer ungrouped digit strings are read digit by digit (phone and account numbers)

# ISO 639-3 codes that pycountry gives no two-letter code for (individual languages of a macrolanguage), mapped to
# the num2words language of their macrolanguage.
MEMBER_LANGUAGES = {"arb": "ar", "azj": "az", "azb": "az", "pes": "fa", "prs": "fa", "lvs": "lv", "nob": "no",
                    "nno": "no", "zsm": "id", "ind": "id", "ekk": "et", "kaz": "kz", "tet": "tet", "tgk": "tg"}
# num2words languages left out: Amharic's converter loops forever on millions and fails from 10,000 (0.5.14).
BROKEN = {"am"}
# The word for the decimal mark where num2words has none, or none usable (0.5.14 dropped the fraction in Italian
# and Welsh, misread it in Vietnamese, Persian and Arabic). A decimal is read as its integer, this word (or the
# converter's `pointword`), then the fraction's digits one by one ("3.05" -> "three point zero five"), which keeps
# trailing zeros; languages whose converter reads decimals grammatically with a declined word (Russian "три целых
# пять десятых", Japanese) keep num2words' own reading.
POINT_WORDS = {"it": "virgola", "cy": "pwynt", "id": "koma", "vi": "phẩy", "fa": "ممیز", "ar": "فاصلة",
               "es": "coma"}  # (Spanish: "punto" where the mark is a point; the comma, read "coma", is assumed here)
# Languages writing the decimal mark as a point and grouping thousands with a comma (the others: the reverse, and
# also a space). A no-break or narrow no-break space groups thousands in every language.
POINT_DECIMAL = {"en", "he", "ja", "ko", "th", "te", "kn", "bn", "hi", "ta"}
SPACES = "\u00a0\u202f"

# currency signs and the ISO 4217 codes num2words knows them by
CURRENCIES = {"$": "USD", "€": "EUR", "£": "GBP", "₹": "INR", "¥": "JPY"}
_TIME = re.compile(r"(?<![\d:.,])([01]?\d|2[0-3]):([0-5]\d)(?![\d:])(?:\s?([ap])\.?m\b)?", re.IGNORECASE)
_POINT_CHAIN = re.compile(r"(?<![\d.,])\d+(?:\.\d+){2,}(?![.,]?\d)")
_ORDINAL = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_KEEP_CLOSE = set(".,!?;)]}\"'”’»…%")  # a word written right after a number keeps no space before these


def _marks(code: str) -> tuple[str, str]:
    """(the regex of an integer, thousands grouped or not; the decimal mark, escaped) in the language's writing."""
    group, decimal = ("," + SPACES, ".") if code in POINT_DECIMAL else ("." + SPACES + " ", ",")
    return rf"\d{{1,3}}(?:[{group}]\d{{3}})+", re.escape(decimal)


@lru_cache(maxsize=None)
def _number_pattern(code: str) -> re.Pattern:
    grouped, decimal = _marks(code)
    return re.compile(rf"(?<![\d])({grouped}(?!\d)|\d+)(?:{decimal}(\d+))?")


@lru_cache(maxsize=None)
def _money_pattern(code: str) -> re.Pattern:
    grouped, decimal = _marks(code)
    # (not before a letter: "$5m", "$2bn" are not read as whole dollars)
    amount = rf"({grouped}|\d+)(?:{decimal}(\d{{1,2}}))?(?![.,]?\d)(?![^\W\d_])"
    signs = re.escape("".join(CURRENCIES))
    return re.compile(rf"(?<![\d.,])(?:([{signs}])\s?{amount}|{amount}\s?([{signs}]))")


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
    code = num2words_language(lang) if any(ch.isdecimal() for ch in text) else None
    if code is None:
        return text
    text = _money_pattern(code).sub(lambda m: _pad(text, m, _money(m, code)), text)
    if code == "en":
        text = _ORDINAL.sub(lambda m: _pad(text, m, _words(m.group(1).replace(",", ""), code, "ordinal")), text)
        text = re.sub(r"(?<=\d)\s?%", " percent", text)
        text = _TIME.sub(lambda m: _pad(text, m, _clock(*m.groups())), text)
    text = _POINT_CHAIN.sub(lambda m: _pad(text, m, _point_chain(m.group(0), code)), text)
    return _number_pattern(code).sub(lambda m: _pad(text, m, _spell(m.group(1), m.group(2), code)), text)


def _money(match: re.Match, code: str) -> str | None:
    """An amount with its currency in words, or None (the number alone is read then) where the language's
    converter lacks the currency."""
    from decimal import Decimal

    from num2words import num2words

    sign, whole, cents = match.group(1, 2, 3) if match.group(1) else match.group(6, 4, 5)
    value = Decimal(re.sub(r"\D", "", whole) + "." + (cents or "0").ljust(2, "0"))
    try:  # once with a separator of ours, to drop a whole amount's "zero cents"; else the language's own
        words = num2words(value, lang=code, to="currency", currency=CURRENCIES[sign], separator=" |")
        if not cents or not int(cents):
            words = words.partition(" |")[0]
        else:
            words = num2words(value, lang=code, to="currency", currency=CURRENCIES[sign])
    except Exception:  # noqa: BLE001 - a currency (or a keyword) the converter lacks
        return None
    return re.sub(r"\s+", " ", words.replace(",", " ")).strip()


def _point_chain(chain: str, code: str) -> str | None:
    """A date, version or address written with points, group by group; None (left to the number pattern) where
    the chain is one number with its thousands grouped by points ("1.000.000" in German)."""
    if re.fullmatch(_marks(code)[0], chain):
        return None
    return " ".join(_integer(group.lstrip("0") or "0", code) for group in chain.split("."))


def _clock(hours: str, minutes: str, half: str | None) -> str:
    """English clock time: "ten thirty", "nine oh five p m", "seven o'clock", "fourteen hundred"."""
    hour, minute = _words(hours, "en"), int(minutes)
    if minute == 0 and int(hours) == 0 and not half:
        spoken = "midnight"
    elif minute == 0:
        spoken = hour if half else f"{hour} o'clock" if 1 <= int(hours) <= 12 else f"{hour} hundred"
    else:
        spoken = f"{hour} {'oh ' if minute < 10 else ''}{_words(str(minute), 'en')}"
    return spoken + (f" {half.lower()} m" if half else "")


def _spell(whole: str, fraction: str | None, code: str) -> str:
    grouped = not whole.isdecimal()
    whole = re.sub(r"\D", "", whole)  # thousands: one number, never a year nor digit by digit
    if fraction is None:
        return _integer(whole, code, grouped)
    from num2words import CONVERTER_CLASSES

    point = POINT_WORDS.get(code) or getattr(CONVERTER_CLASSES[code], "pointword", None)
    if not isinstance(point, str):  # a declined decimal word: the converter's own reading
        from decimal import Decimal

        spoken = _words(Decimal(f"{whole}.{fraction}"), code)
        if spoken:
            return spoken
        point = ""
    return " ".join(part for part in (_integer(whole, code, True), point, _digit_by_digit(fraction, code)) if part)


def _digit_by_digit(digits: str, code: str) -> str:
    return " ".join(_words(d, code) or d for d in digits)


def _integer(digits: str, code: str, grouped: bool = False) -> str:
    if not grouped and ((len(digits) > 1 and digits[0] == "0") or len(digits) > MAX_DIGITS):
        return _digit_by_digit(digits, code)
    if not grouped and code == "en" and len(digits) == 4 and 1100 <= int(digits) <= 2099:
        return _words(digits, code, "year") or digits
    return _words(digits, code) or _digit_by_digit(digits, code)  # (too large for the converter)


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
