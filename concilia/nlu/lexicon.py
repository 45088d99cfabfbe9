"""Text helpers shared by the NLU rules: accent folding that keeps offsets, and word splitting."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    lowered = char.lower()
    if len(lowered) != 1:  # "İ".lower() is two characters: keep offsets instead
        return char
    decomposed = unicodedata.normalize("NFD", lowered)
    return decomposed[0] if decomposed else lowered


def fold(text: str) -> str:
    """Lower-case `text` and drop its accents (ñ → n), one character for one, so offsets still match."""
    if text.isascii():
        return text.lower()
    return "".join(_fold_char(char) for char in text)


def words(folded: str) -> list[str]:
    """The words of an already folded text (apostrophes kept inside: "don't")."""
    return WORD_RE.findall(folded.replace("\u2019", "'"))


def wordset(*lines: str) -> frozenset[str]:
    """A set of folded words written as space-separated lines (easier to read and review)."""
    return frozenset(fold(" ".join(lines)).split())
