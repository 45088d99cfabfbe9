"""The engine facade: which engine reads a message, chosen by settings, same answer shape for all."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from concilia.nlu import acts, entities, frustration, language
from concilia.nlu.classifier import load_model
from concilia.nlu.types import Understanding


class Engine(Protocol):
    name: str

    def understand(self, text: str, *, language: str | None, today: dt.date) -> Understanding: ...


class LocalEngine:
    """The default: models trained with scikit-learn and bilingual rules, no network."""

    name = "local"

    def understand(self, text: str, *, language: str | None, today: dt.date) -> Understanding:
        lang, lang_confidence = _language(text, language)
        return Understanding(
            text=text,
            language=lang,
            language_confidence=lang_confidence,
            kind=load_model(settings.NLU_KIND_MODEL).predict(text),
            category=load_model(settings.NLU_CATEGORY_MODEL).predict(text),
            frustration=frustration.score(text, lang),
            act=acts.detect(text, lang),
            entities=tuple(entities.extract(text, language=lang, today=today)),
            engine=self.name,
        )


def _language(text: str, hint: str | None) -> tuple[str, float]:
    return language.detect(text, hint=hint)


@lru_cache(maxsize=1)
def _engine(name: str) -> Engine:
    if name == "llm":
        from concilia.nlu.llm import LLMEngine

        return LLMEngine(fallback=LocalEngine())
    return LocalEngine()


def understand(
    text: str, *, language: str | None = None, today: dt.date | None = None
) -> Understanding:
    """Read one message. `language` is a hint (the conversation's language so far)."""
    return _engine(settings.NLU_ENGINE).understand(
        text, language=language, today=today or timezone.localdate()
    )
