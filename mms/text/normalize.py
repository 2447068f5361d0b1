"""MMS data-prep text normalisation (`text_normalize` of fairseq examples/mms/data_prep), with its quirks.

Steps, in fairseq's order, for `text_normalize(text, iso)`:
  1. Unicode NFKC, then lower case.
  2. "(...)" holding a digit becomes a space (verse references such as "(Sam 23:17)"); with
     remove_brackets=True every "(...)".
  3. Mappings, in order: "&lt;", "&gt;", "&nbsp" are deleted; a curly apostrophe (U+2019, U+2018, U+201B)
     between two non-space runs becomes "'"; and "ٱ" (alef wasla) becomes "ا" for EVERY language (quirk:
     fairseq adds this Arabic rule to a dictionary shared by all languages).
  4. Every punctuation character becomes a space (PUNCTUATION below). ASCII "-" and "'" are not punctuation:
     "well-known" and "it's" survive.
  5. Format and mark characters are deleted: LRM, RLM, ZWNJ, ZWSP, LRE, PDF, Arabic harakat U+064B-U+0652,
     U+0656-U+0657.
  6. Tokens made only of digits (ASCII, Bengali, Khmer, Devanagari, Oriya, extended Arabic-Indic, Kayah Li,
     fullwidth, Malayalam, Myanmar, small Roman numerals, U+206F) are removed when they stand between spaces
     or at an end next to a space. A text that is one number only ("12345") is kept (quirk); "abc123" is
     kept; "12:30" becomes "12 30" in step 4 and then both numbers go.
  7. Javanese only: transliterate to ASCII with `unidecode` (optional package).
  8. Whitespace runs become one space; the ends are stripped.
Per-language rules: mon/khk also delete the soft hyphen U+00AD; heb also deletes U+05B0-U+05CF (points);
tha turns ZWJ U+200D into a space; ara/arb map "ٱ" to "ا" (as everyone, see 3); jav removes diacritics.

The punctuation set is fairseq's: the ASCII and CJK/Armenian/Arabic/Devanagari marks listed in its
norm_config, plus the first column of its punctuations.lst (188 characters, kept below as code points; the
first ten are C0/C1 control characters and the next 65 private-use characters that the MMS-lab data held).
"""

from __future__ import annotations

import re
import unicodedata

from mms.errors import MMSError


class MissingPackageError(MMSError):
    """A language's rule needs an optional package that is not installed."""

# punctuations.lst, first column, in file order (code points, hex).
PUNCTUATIONS_LST = """
    0081 0090 0008 008D 0094 008F 001A 009D 0093 0092 E295 F21D F62D F173 E514 E293 F523 E233 F50F E232 EA7B
    F172 E290 F519 E292 E328 E2FA E234 E043 E040 E2FB E32B E236 F511 E517 E2FE E492 F52D E2FC F521 E516 E041
    F529 E2F9 E2D9 E32A E291 E296 E518 E32C E2DB E231 F522 F518 F513 E32D E32E E06B EA01 E294 E203 F218 E070
    E013 E2DE E493 F7E8 F7D0 E313 E329 E06D E003 F50E F171 E01D 206F 2060 2015 05BE 0029 005D 230B 3015 3011
    FD3E 0026 0F0D 1362 1365 0F0C 104B 002F 104A 00B7 2038 002A 06D4 1364 104F 17D4 A4FE 166E A92F 2D70 A4FF
    0965 061E 104D 0387 2020 104C 1363 17D6 A92E 203B 1366 2022 00B6 104E FE56 037E 2026 0025 30FB 0F0E 2021
    0023 0040 1361 17DA 17D5 FE50 0F05 0F04 FF0E FE57 FE55 2030 FF65 0028 005B 230A 3014 3010 FD3F 005F 0024
    20AC 00A3 007E 003D 007C 2212 226B 226A 002B FF1C FF1E 00AC 00D7 2192 166D 00B0 109F FFFD 231F 231E 00A9
    202F 2006 02DC 005E 00AF 02C7 207F 0640 0E46 17D7 3005 0EC6 30FC 2071 09F7 2153 00BD 00BC 215F 2044
"""


def _chars(spec: str) -> str:
    """'0041 0043-0045' -> 'ACDE'."""
    out = []
    for item in spec.split():
        first, _, last = item.partition("-")
        out += [chr(c) for c in range(int(first, 16), int(last or first, 16) + 1)]
    return "".join(out)


# norm_config's shared punctuation, written out as characters and ranges. Its ASCII "!" stays although the
# name exclamation_mark is later re-bound to the Armenian one (which is in too); U+FF41-U+FF44 are fullwidth
# a-d, which fairseq calls "quotation_mark_vertical" (NFKC has made them ASCII by then, so they never match).
SHARED_PUNCTUATION = (
    ".?,:!{}"  # basic
    + _chars("201C 201D 00AB 00BB 2039 203A 201E 201A 201F 201B 2019 2018")  # quotes
    + "<>" + _chars("00BF 3002") + ";"
    + _chars("055A-055F 0589")  # Armenian
    + _chars("00A1 060C 3001 0964") + '"' + _chars("061B 061F")
    + _chars("3002 FF0C FF01 FF1F FF1B FF1A FF08 FF09 300C-300F FF41-FF44 3008-300B FE4F 22EF 3001 2027 FF0F FF5E "
             "2500 FF3F")  # CJK
    + _chars(PUNCTUATIONS_LST)
)
SHARED_DELETIONS = _chars("200E 200C 0656-0657 200B 064B-0652 202C 200F 202A")
DIGITS = _chars("0030-0039 09E6-09EF 17E0-17E9 0966-096F 0B66-0B6F 06F0-06F9 A900-A909 FF10-FF19 0D66-0D6F "
                "1040-1049 2170-2179 206F")

# (pattern, replacement) applied in order to every language (the last one is the leaked Arabic rule).
MAPPINGS = [
    (re.compile("&lt;"), ""),
    (re.compile("&gt;"), ""),
    (re.compile("&nbsp"), ""),
    (re.compile("(\\S+)[\u201b\u2019\u2018](\\S+)"), "\\1'\\2"),
    (re.compile("\u0671"), "\u0627"),
]
EXTRA_DELETIONS = {"mon": "\u00ad", "khk": "\u00ad", "heb": _chars("05B0-05CF")}
EXTRA_PUNCTUATION = {"tha": "\u200d"}
REMOVE_DIACRITICS = {"jav"}

DIGITS_CLASS = "[" + re.escape(DIGITS) + "]+"
DIGIT_TOKENS = re.compile(f"^{DIGITS_CLASS}(?=\\s)|(?<=\\s){DIGITS_CLASS}(?=\\s)|(?<=\\s){DIGITS_CLASS}$")
BRACKETS_WITH_DIGIT = re.compile(r"\([^\)]*\d[^\)]*\)")
BRACKETS = re.compile(r"\([^\)]*\)")
WHITESPACE = re.compile(r"\s+")


def _class(chars: str) -> re.Pattern:
    return re.compile("[" + "".join(re.escape(c) for c in sorted(set(chars))) + "]")


_PUNCTUATION = {lang: _class(SHARED_PUNCTUATION + extra) for lang, extra in EXTRA_PUNCTUATION.items()}
_PUNCTUATION["*"] = _class(SHARED_PUNCTUATION)
_DELETIONS = {lang: _class(SHARED_DELETIONS + extra) for lang, extra in EXTRA_DELETIONS.items()}
_DELETIONS["*"] = _class(SHARED_DELETIONS)


def text_normalize(text: str, iso_code: str | None = None, lower_case: bool = True, remove_numbers: bool = True,
                   remove_brackets: bool = False) -> str:
    """MMS data-prep normalisation of one line (see the module docstring for the rules)."""
    lang = iso_code or "*"
    text = unicodedata.normalize("NFKC", text)
    if lower_case:
        text = text.lower()
    text = BRACKETS_WITH_DIGIT.sub(" ", text)
    if remove_brackets:
        text = BRACKETS.sub(" ", text)
    for pattern, replacement in MAPPINGS:
        text = pattern.sub(replacement, text)
    text = _PUNCTUATION.get(lang, _PUNCTUATION["*"]).sub(" ", text)
    text = _DELETIONS.get(lang, _DELETIONS["*"]).sub("", text)
    if remove_numbers:
        text = DIGIT_TOKENS.sub(" ", text)
    if lang in REMOVE_DIACRITICS:
        try:
            from unidecode import unidecode
        except ImportError:
            raise MissingPackageError(f"normalising '{lang}' text removes diacritics with the `unidecode` package "
                               "(pip install unidecode)") from None
        text = unidecode(text)
    return WHITESPACE.sub(" ", text).strip()


def normalize_transcript(text: str, lang: str | None) -> str:
    """A reference transcript as MMS models write theirs (text_normalize), for training and scoring; a language
    whose rule needs an optional package falls back to the generic rule."""
    try:
        return text_normalize(text, lang)
    except MissingPackageError:
        return text_normalize(text, None)
