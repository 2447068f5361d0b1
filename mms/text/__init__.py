"""Text: vocabularies, MMS normalisation, romanisation, TTS text preparation."""

import unicodedata


def show_chars(chars) -> str:
    """Characters for a message, one by one: a letter or mark as itself, one that would not show (a byte-order
    mark, a zero-width joiner, a combining mark on its own, a control) as its code, U+FEFF."""
    def shown(ch: str) -> str:
        invisible = unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Zl", "Zp", "Mn", "Me") or (ch.isspace())
        return f"U+{ord(ch):04X}" if invisible else ch
    return " ".join(shown(ch) for ch in chars)
