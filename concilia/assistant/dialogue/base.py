"""What every part of the dialogue shares: replies, the hand-over rules, reading helpers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from concilia.assistant.models import (
    HandoverRules,
)
from concilia.cases.models import Case
from concilia.core.memo import remember_for
from concilia.customers.models import Customer
from concilia.nlu import Money, Understanding

HUMAN = "__human"
SKIP = "__skip"
YES, NO = "yes", "no"
NEW_CASE = "__new"
_ORDER_TOKEN = re.compile(r"^#?\s*([A-Za-z0-9][A-Za-z0-9\-/]{2,29})$")
_BARE_AMOUNT = re.compile(r"^\s*(\d{1,9}(?:[.,]\d{1,2})?)\s*$")


class Reply:
    """What the assistant says in one message: text, buttons, and what it then waits for."""

    def __init__(self, body: str, choices: Sequence[tuple[str, str]] = (), expects: str = "text"):
        self.body = body
        self.choices = [{"value": value, "label": str(label)} for value, label in choices]
        self.expects = expects


@dataclass(frozen=True)
class Rules:
    """The hand-over rules in force, as read from the admin's one row."""

    frustration_threshold: float
    frustration_warning: float
    frustration_repeats: int
    confidence_threshold: float
    low_confidence_turns: int
    amount_limit: Decimal | None
    person_categories: frozenset[int]


@remember_for(seconds=10)
def rules() -> Rules:
    found = HandoverRules.objects.first() or HandoverRules()
    return Rules(
        frustration_threshold=found.frustration_threshold,
        frustration_warning=found.frustration_warning,
        frustration_repeats=found.frustration_repeats,
        confidence_threshold=found.confidence_threshold,
        low_confidence_turns=found.low_confidence_turns,
        amount_limit=found.amount_limit,
        person_categories=frozenset(
            found.person_categories.values_list("pk", flat=True) if found.pk else ()
        ),
    )


def open_case_references(customer: Customer) -> list[str]:
    """The references of a customer's three most recent open cases (to ask which one it is)."""
    cases = Case.objects.open().for_customer(customer).order_by("-created_at")[:3]
    return list(cases.values_list("reference", flat=True))


def understanding_record(reading: Understanding) -> dict[str, Any]:
    """What the NLU read in a message, as kept with it (and in the hand-over snapshot)."""
    return {
        "language": reading.language,
        "kind": reading.kind.label,
        "kind_confidence": round(reading.kind.confidence, 3),
        "category": reading.category.label,
        "category_best": reading.category.best or reading.category.label,
        "category_confidence": round(reading.category.confidence, 3),
        "frustration": round(reading.frustration, 3),
        "act": reading.act,
        "engine": reading.engine,
        "entities": [{"kind": e.kind, "text": e.text} for e in reading.entities],
    }


def _shorten(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _iso_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def _money(reading: Understanding, text: str) -> Money | None:
    entity = reading.first("amount")
    if entity is not None and isinstance(entity.value, Money):
        return entity.value
    bare = _BARE_AMOUNT.match(text)
    if bare:
        try:
            return Money(Decimal(bare.group(1).replace(",", ".")), "EUR")
        except InvalidOperation:
            return None
    return None


def _fold(text: str) -> str:
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def _match_option(text: str, options: dict[str, str], keywords: dict[str, str]) -> str:
    """The option a typed answer names: its label, its start, or one of its keywords."""
    typed = _fold(text)
    if not typed:
        return ""
    for key, label in options.items():
        if typed == _fold(label) or typed == key:
            return key
    for key, label in options.items():
        folded = _fold(label)
        if len(typed) >= 3 and (folded.startswith(typed) or typed in folded):
            return key
    for key, words in keywords.items():
        for word in re.split(r"[,\s]+", words):
            if len(word) >= 3 and _fold(word) in typed:
                return key
    return ""


def shipment_status(status: str) -> str:
    names = {
        "label_created": _("label created, not yet collected"),
        "in_transit": _("in transit"),
        "out_for_delivery": _("out for delivery"),
        "delivered": _("delivered"),
        "lost": _("lost by the carrier"),
        "returned": _("returned to us"),
    }
    return str(names.get(status, status))
