"""uroman romanisation (the `uroman` Python package: no Perl, no git clone at run time).

Used by TTS for uroman-trained voices and by alignment; the uroman object (its tables take ~1 s to load) is
built once per process.
"""

from __future__ import annotations

from functools import lru_cache

from mms.errors import MMSError


class RomanizerMissing(MMSError):
    """The uroman package is not installed: a usage error (exit 2) naming the pip command, not a bug."""


@lru_cache(maxsize=1)
def _uroman():
    try:
        import uroman
    except ImportError:
        raise RomanizerMissing("romanisation needs the `uroman` package: pip install uroman") from None
    return uroman.Uroman()


def romanize(text: str, lang: str | None = None) -> str:
    """Latin-script rendering of `text`; `lang` is an ISO 639-3 code that refines some scripts (or None)."""
    return _uroman().romanize_string(text, lcode=lang)


def romanize_lines(lines: list[str], lang: str | None = None) -> list[str]:
    return [romanize(line, lang) for line in lines]
