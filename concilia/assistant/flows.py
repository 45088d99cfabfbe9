"""What the assistant asks for each kind of problem: the slots of every category's flow.

The order, purchase-date and amount slots follow the category's field rules, exactly as the form
does (required, optional, or not asked at all); the other slots belong to one flow each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import FieldRule

Choices = tuple[tuple[str, Promise], ...]

DESIRED: Choices = (
    ("refund", _("A refund")),
    ("replacement", _("A replacement")),
    ("repair", _("A repair")),
    ("apology", _("An apology / explanation")),
    ("other", _("Something else")),
)
CONDITION: Choices = (
    ("unopened", _("Unopened")),
    ("used", _("Opened or used, works")),
    ("faulty", _("Faulty")),
    ("damaged", _("Damaged")),
)
RETURN_REASON: Choices = (
    ("changed_mind", _("I changed my mind")),
    ("wrong_item", _("I got the wrong item")),
    ("faulty", _("It is faulty")),
    ("not_as_described", _("Not as described")),
    ("other", _("Another reason")),
)
DELIVERY_PROBLEM: Choices = (
    ("damaged", _("It arrived damaged")),
    ("missing_items", _("Items are missing")),
    ("not_delivered", _("It never arrived")),
)


@dataclass(frozen=True)
class Slot:
    """One thing the assistant asks for."""

    name: str
    question: Promise
    # text, email, name, order, date, amount, choice, file
    expects: str
    required: bool = True
    choices: Choices = ()
    # The case field it fills, where there is one (order_number, purchase_date, amount).
    case_field: str = ""
    # Asked only when this holds for the fields collected so far.
    when: Callable[[dict[str, Any]], bool] | None = None
    label: Promise | str = ""

    def applies(self, fields: dict[str, Any]) -> bool:
        return self.when is None or self.when(fields)


def _order_slot(required: bool) -> Slot:
    return Slot(
        "order_number",
        _("What is the order number? You will find it in the order confirmation email."),
        "order",
        required,
        case_field="order_number",
        label=_("Order number"),
    )


def _date_slot(required: bool) -> Slot:
    return Slot(
        "purchase_date",
        _("When did you buy it? A date, or something like “last Tuesday”, is fine."),
        "date",
        required,
        case_field="purchase_date",
        label=_("Purchase date"),
    )


def _amount_slot(required: bool) -> Slot:
    return Slot(
        "amount",
        _("What amount is it about? For example: 49.90 €."),
        "amount",
        required,
        case_field="amount",
        label=_("Amount"),
    )


_INVOICE = Slot(
    "invoice",
    _(
        "If you have the invoice or a screenshot of the charge, please attach it "
        "(PDF or picture). Otherwise, skip this step."
    ),
    "file",
    required=False,
    label=_("Invoice"),
)
_DESIRED = Slot(
    "desired",
    _("What would you like us to do?"),
    "choice",
    required=False,
    choices=DESIRED,
    label=_("What you would like"),
)

EXTRA_SLOTS: dict[str, tuple[Slot, ...]] = {
    "billing_error": (_INVOICE, _DESIRED),
    "refund": (_INVOICE,),
    "return": (
        Slot("item", _("Which item do you want to return?"), "text", label=_("Item")),
        Slot(
            "condition",
            _("What condition is it in?"),
            "choice",
            choices=CONDITION,
            label=_("Condition"),
        ),
        Slot(
            "return_reason",
            _("Why are you returning it?"),
            "choice",
            choices=RETURN_REASON,
            label=_("Reason"),
        ),
    ),
    "shipping_delay": (_DESIRED,),
    "damaged_missing": (
        Slot(
            "delivery_problem",
            _("What happened with the delivery?"),
            "choice",
            choices=DELIVERY_PROBLEM,
            label=_("Problem"),
        ),
        Slot(
            "photo",
            _("Please send a photo of the damage (the parcel and the item)."),
            "file",
            required=False,
            when=lambda fields: fields.get("delivery_problem") == "damaged",
            label=_("Photo"),
        ),
        _DESIRED,
    ),
    "technical_problem": (
        Slot("product", _("Which product is it?"), "product", label=_("Product")),
    ),
    "staff_conduct": (
        Slot(
            "incident_date",
            _("When did it happen? A date, or something like “yesterday”, is fine."),
            "date",
            required=False,
            label=_("When"),
        ),
        Slot(
            "incident_place",
            _("Where did it happen? A shop, a phone call, the delivery…"),
            "text",
            label=_("Where"),
        ),
        Slot(
            "account_more",
            _(
                "Is there anything else you would like to add: names, witnesses, what was said? "
                "Take your time; a person will read every word."
            ),
            "text",
            required=False,
            label=_("More details"),
        ),
    ),
    "other": (),
}


@dataclass(frozen=True)
class Flow:
    category: str
    slots: tuple[Slot, ...] = field(default=())

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)


def flow_for(category: Any) -> Flow:
    """The slots of a category: its field rules first (order, date, amount), then its own."""
    slots: list[Slot] = []
    for name, make in (
        ("order_number", _order_slot),
        ("purchase_date", _date_slot),
        ("amount", _amount_slot),
    ):
        rule = category.rule(name)
        if rule != FieldRule.HIDDEN:
            slots.append(make(rule == FieldRule.REQUIRED))
    slots.extend(EXTRA_SLOTS.get(category.code, ()))
    return Flow(category=category.code, slots=tuple(slots))


def choice_label(choices: Choices, value: str) -> str:
    return next((str(label) for key, label in choices if key == value), value)
