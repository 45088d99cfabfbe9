"""Ports: what lower floors need from higher ones or from other systems, as typed interfaces.

A commerce connector (a shop, an ERP) implements `OrderLookup`; the resolution engine implements
`Triage`; a connector also implements `Fulfilment` (refunds, labels). Which implementation runs is a deployment setting, read by `order_lookup()` and
`triage()`. A CRM implements `CustomerDirectory` (none by default).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class OrderItem:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Shipment:
    carrier: str
    tracking_number: str
    # label_created, in_transit, out_for_delivery, delivered, lost, returned
    status: str
    promised_on: dt.date | None = None
    delivered_on: dt.date | None = None


@dataclass(frozen=True)
class Order:
    number: str
    customer_email: str
    placed_on: dt.date
    total: Decimal
    currency: str
    payment_method: str
    items: tuple[OrderItem, ...] = ()
    shipment: Shipment | None = None

    @property
    def days_late(self) -> int:
        """Calendar days past the promised delivery (today for parcels not yet delivered)."""
        if self.shipment is None or self.shipment.promised_on is None:
            return 0
        end = self.shipment.delivered_on or timezone.localdate()
        return max(0, (end - self.shipment.promised_on).days)


class OrderLookup(Protocol):
    """Finds a customer's order in the shop; None when the number is unknown or not theirs."""

    def find_order(self, *, number: str, email: str) -> Order | None: ...


@dataclass(frozen=True)
class TriageDecision:
    """What the company's policies say about a new case, as far as a channel needs to know."""

    action: Literal["none", "escalate", "resolved", "offer", "evidence", "wait"]
    reason: str = ""
    # Text for the customer in each language ({"es": ..., "en": ...}); empty when none.
    message: dict[str, str] = field(default_factory=dict)
    # The team a policy sends the case to ("" for the usual routing).
    team: str = ""
    # The open offer's public id, for a channel that lets the customer answer it in place.
    offer: str = ""


class Triage(Protocol):
    """Decides a new case. With `hand_over=False` the caller hands an escalated case over
    itself (the chat hands over the live conversation)."""

    def __call__(self, case: Any, *, hand_over: bool = True) -> TriageDecision: ...


@dataclass(frozen=True)
class FulfilmentRequest:
    """What the company agreed to give, for the shop or ERP to carry out."""

    reference: str  # the case's reference: connectors use it as an idempotency key
    order_number: str
    customer_email: str
    kind: str  # refund, partial_refund, credit, replacement, return_label
    amount: Decimal | None
    currency: str


class Fulfilment(Protocol):
    """Carries out an agreed resolution in the shop (refund, label…); returns the shop's id for
    it, or raises when it could not (the resolution is then kept and a person told)."""

    def carry_out(self, request: FulfilmentRequest) -> str: ...


@dataclass(frozen=True)
class CustomerProfile:
    """What a CRM knows of a customer, and what Concilia tells it."""

    email: str
    name: str = ""
    phone: str = ""
    tier: str = ""  # the CRM's segment ("gold", "vip"…), "" when it has none


@dataclass(frozen=True)
class CaseSummary:
    """A case as a CRM's timeline shows it; `event` is "opened" or "closed"."""

    reference: str
    customer_email: str
    event: str
    category: str
    status: str
    outcome: str = ""
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    url: str = ""


class CustomerDirectory(Protocol):
    """A CRM: customers and case summaries pushed to it (idempotently: pushing the same thing
    twice changes nothing), customer data pulled from it. Each push returns the CRM's id."""

    def push_customer(self, customer: CustomerProfile) -> str: ...

    def push_case_summary(self, summary: CaseSummary) -> str: ...

    def pull_customer(self, *, email: str) -> CustomerProfile | None: ...


class NoCustomerDirectory:
    """The directory used until a CRM is configured: pushes go nowhere, pulls find nobody."""

    def push_customer(self, customer: CustomerProfile) -> str:
        return ""

    def push_case_summary(self, summary: CaseSummary) -> str:
        return ""

    def pull_customer(self, *, email: str) -> CustomerProfile | None:
        return None


def no_policy(case: Any, *, hand_over: bool = True) -> TriageDecision:
    """The triage used until policies are configured: the case simply goes to the queue."""
    return TriageDecision(action="none")


@lru_cache(maxsize=4)
def _load(path: str) -> Any:
    target = import_string(path)
    return target() if isinstance(target, type) else target


def order_lookup() -> OrderLookup:
    return _load(settings.ORDER_LOOKUP)


def triage() -> Triage:
    return _load(settings.TRIAGE)


def fulfilment() -> Fulfilment:
    return _load(settings.FULFILMENT)


def customer_directory() -> CustomerDirectory:
    return _load(getattr(settings, "CUSTOMER_DIRECTORY", "concilia.core.ports.NoCustomerDirectory"))
