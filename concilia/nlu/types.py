"""What the NLU tells the rest of Concilia about one message: plain, typed, engine-independent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

# The label an engine gives when its confidence is under the threshold chosen on validation data.
UNKNOWN = "unknown"

EntityKind = Literal["order_number", "date", "amount", "email", "phone", "tracking_number"]

# What the customer is doing with this message, whatever the topic.
Act = Literal[
    "request_human",  # wants a person ("quiero hablar con una persona", "agent please")
    "affirm",  # yes / correct / sí, vale
    "deny",  # no / that's wrong
    "correct",  # fixes something said before ("no, the order is 4471")
    "greet",
    "thank",
    "cancel",  # stop / forget it / déjalo
    "question",  # asks something (a candidate for the knowledge base)
    "inform",  # anything else: tells what happened, gives data
]


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str  # ISO 4217, e.g. "EUR"


@dataclass(frozen=True)
class Entity:
    """A piece of data found in the text, with its normalised value and where it was written."""

    kind: EntityKind
    text: str
    # order_number, tracking_number, email: str (normalised: stripped, email lower-cased);
    # phone: str in E.164 ("+34600111222"); date: datetime.date; amount: Money.
    value: str | dt.date | Money
    start: int
    end: int


@dataclass(frozen=True)
class Prediction:
    """A label with the engine's confidence (0..1); the label is UNKNOWN under the threshold."""

    label: str
    confidence: float
    # The best label even when it is under the threshold, for "did you mean…?" questions.
    best: str = ""
    # The next most likely labels with their confidences, most likely first.
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Understanding:
    """Everything the NLU read in one message."""

    text: str
    language: str  # "es" or "en"
    language_confidence: float
    kind: Prediction  # complaint / question / suggestion / thanks
    category: Prediction  # a category code, or UNKNOWN
    frustration: float  # 0 calm .. 1 furious
    act: Act
    entities: tuple[Entity, ...] = field(default=())
    engine: str = "local"

    def first(self, kind: EntityKind) -> Entity | None:
        return next((e for e in self.entities if e.kind == kind), None)
