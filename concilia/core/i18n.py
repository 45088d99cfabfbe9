"""Admin-written texts kept in both languages (name_es/name_en, body_es/body_en)."""

from __future__ import annotations

from django.utils.translation import get_language


def in_language(spanish: str, english: str, language: str | None = None) -> str:
    """The English text for an English language (the active one by default), else the Spanish."""
    return english if (language or get_language() or "es").startswith("en") else spanish
