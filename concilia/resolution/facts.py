"""The facts a policy's conditions may read: their names and types, and the conversions between
the stored form (JSON, money as decimal strings) and the form the expression language reads.

Facts are grouped in four namespaces: `case`, `customer`, `order` and `calendar`. A condition
names them with dots (`order.days_late >= 3`). Money is a `Decimal` here and in storage; the
expression language compares it as a number, and amounts paid out are always computed from the
`Decimal` (see `engine.amount_of`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _

# Types of facts: what a policy writer compares them with.
BOOL, INT, MONEY, TEXT, LIST = "bool", "int", "money", "text", "list"


@dataclass(frozen=True)
class Fact:
    type: str
    help: Any  # a lazy translated string
    sample: Any  # a typical value: conditions are type-checked against these at save time


def _f(type_: str, help_: Any, sample: Any) -> Fact:
    return Fact(type_, help_, sample)


SCHEMA: dict[str, dict[str, Fact]] = {
    "case": {
        "category": _f(TEXT, _('the category\'s code, e.g. "shipping_delay"'), "shipping_delay"),
        "kind": _f(TEXT, _("complaint, question, suggestion or thanks"), "complaint"),
        "channel": _f(TEXT, _("web, api, chat or email"), "chat"),
        "language": _f(TEXT, _("the customer's language: es or en"), "es"),
        "has_amount": _f(BOOL, _("the customer gave an amount"), True),
        "amount": _f(MONEY, _("the amount the customer claims (0 when none)"), Decimal("40.00")),
        "currency": _f(TEXT, _("the currency of the amount, e.g. EUR"), "EUR"),
        "has_order_number": _f(BOOL, _("the customer gave an order number"), True),
        "has_purchase_date": _f(BOOL, _("the customer gave a purchase date"), True),
        "days_since_purchase": _f(
            INT, _("days from the purchase date the customer gave to today (-1 if none)"), 10
        ),
        "attachments": _f(INT, _("number of files attached"), 1),
        "has_photo": _f(BOOL, _("a photo is attached"), True),
        "has_document": _f(BOOL, _("a PDF (an invoice, a receipt) is attached"), False),
    },
    "customer": {
        "customer_since_days": _f(INT, _("days since the customer's first contact"), 400),
        "complaints_90d": _f(INT, _("the customer's other cases in the last 90 days"), 0),
        "complaints_365d": _f(INT, _("the customer's other cases in the last 365 days"), 1),
        "open_cases": _f(INT, _("the customer's other open cases"), 0),
        "resolutions_365d": _f(
            INT, _("refunds, credits and other settlements given in the last 365 days"), 0
        ),
        "paid_365d": _f(
            MONEY, _("total paid out to the customer in the last 365 days"), Decimal("0")
        ),
    },
    "order": {
        "found": _f(BOOL, _("the shop knows the order and it is the customer's"), True),
        "number": _f(TEXT, _("the order number"), "4471"),
        "total": _f(MONEY, _("the order's total"), Decimal("79.80")),
        "currency": _f(TEXT, _("the order's currency"), "EUR"),
        "payment_method": _f(TEXT, _("card, paypal, transfer…"), "card"),
        "items": _f(INT, _("number of items in the order"), 2),
        "skus": _f(LIST, _("the product codes in the order"), ["SKU-KETTLE"]),
        "days_since_purchase": _f(INT, _("days since the order was placed"), 12),
        "has_shipment": _f(BOOL, _("the order has a shipment"), True),
        "shipment_status": _f(
            TEXT,
            _("label_created, in_transit, out_for_delivery, delivered, lost or returned"),
            "in_transit",
        ),
        "carrier": _f(TEXT, _("the carrier's name"), "SEUR"),
        "delivered": _f(BOOL, _("the parcel was delivered"), False),
        "days_late": _f(INT, _("calendar days past the promised delivery"), 3),
        "business_days_late": _f(INT, _("business days past the promised delivery"), 2),
        "placed_on": _f(
            TEXT, _('the day the order was placed, e.g. "2026-11-28" ("" if unknown)'), "2026-11-28"
        ),
        "promised_on": _f(
            TEXT, _('the promised delivery day, e.g. "2026-12-01" ("" if none)'), "2026-12-01"
        ),
    },
    "calendar": {
        "today": _f(TEXT, _('today\'s date, e.g. "2026-12-05"'), "2026-12-05"),
        "weekday": _f(INT, _("today's day of the week, 1 (Monday) to 7 (Sunday)"), 6),
        "month": _f(INT, _("today's month, 1 to 12"), 12),
        "days_since_purchase": _f(
            INT, _("days since the purchase (the order's date, else the customer's)"), 12
        ),
        "business_days_late": _f(INT, _("business days past the promised delivery"), 2),
    },
}

# Facts that come from the shop: a condition reading them cannot be decided while it is down.
SHOP_FACTS = frozenset(
    {f"order.{name}" for name in SCHEMA["order"]}
    | {"calendar.days_since_purchase", "calendar.business_days_late"}
)

Facts = dict[str, dict[str, Any]]


def known(path: str) -> Fact | None:
    namespace, _dot, name = path.partition(".")
    return SCHEMA.get(namespace, {}).get(name)


def sample() -> Facts:
    return {
        ns: {name: fact.sample for name, fact in fields.items()} for ns, fields in SCHEMA.items()
    }


def empty_order() -> dict[str, Any]:
    """The order facts when the case names no order, or the shop does not know it."""
    return {
        "found": False,
        "number": "",
        "total": Decimal("0"),
        "currency": "",
        "payment_method": "",
        "items": 0,
        "skus": [],
        "days_since_purchase": -1,
        "has_shipment": False,
        "shipment_status": "",
        "carrier": "",
        "delivered": False,
        "days_late": 0,
        "business_days_late": 0,
        "placed_on": "",
        "promised_on": "",
    }


def to_json(facts: Facts) -> dict[str, Any]:
    """The stored form: money as decimal strings, so that nothing passes through a float."""
    return {
        ns: {
            name: (str(value) if isinstance(value, Decimal) else value)
            for name, value in fields.items()
        }
        for ns, fields in facts.items()
    }


def from_json(data: dict[str, Any]) -> Facts:
    facts: Facts = {}
    for ns, fields in data.items():
        facts[ns] = {}
        for name, value in fields.items():
            fact = SCHEMA.get(ns, {}).get(name)
            if fact is not None and fact.type == MONEY and value is not None:
                value = Decimal(str(value))
            facts[ns][name] = value
    return facts


def to_expression_values(facts: Facts) -> dict[str, Any]:
    """What conditions read: money as numbers (for comparisons only), dates as ISO text."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    return {ns: {name: plain(v) for name, v in fields.items()} for ns, fields in facts.items()}
