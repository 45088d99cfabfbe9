"""Forms of the resolution engine's pages: a settlement given by a person (an override, a
mediator's proposal, one decision for a collective complaint), inviting a party, a statement,
an answer to a proposal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from concilia.resolution.engine import Settlement
from concilia.resolution.models import PartyRole
from concilia.resolution.policy import KINDS, MONEY_KINDS

KIND_LABELS = {
    "refund": _("Refund"),
    "partial_refund": _("Partial refund"),
    "credit": _("Store credit"),
    "replacement": _("Replacement"),
    "return_label": _("Return label"),
    "discount_code": _("Discount code"),
}


class SettlementForm(forms.Form):
    """What a person gives: a kind, with an amount (refunds and credits) or a percentage
    (discount codes). Subclasses name the kind's label and add their own fields."""

    kind_label: Any = _("What is given")
    kind_optional: Any = None  # a label for "nothing", when giving nothing is a choice

    kind = forms.ChoiceField()
    amount = forms.DecimalField(
        label=_("Amount"),
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
    )
    percent = forms.DecimalField(
        label=_("Discount (%)"),
        required=False,
        min_value=Decimal("1"),
        max_value=Decimal("100"),
        max_digits=5,
        decimal_places=2,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["kind"]
        field.label = self.kind_label
        choices = [(k, KIND_LABELS[k]) for k in KINDS]
        if self.kind_optional is not None:
            choices.insert(0, ("", self.kind_optional))
            field.required = False
        field.choices = choices

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind in MONEY_KINDS and data.get("amount") is None:
            self.add_error("amount", _("Give the amount."))
        if kind == "discount_code" and data.get("percent") is None:
            self.add_error("percent", _("Give the discount's percentage."))
        return data

    def settlement(self, currency: str) -> Settlement | None:
        """The settlement the valid form describes (None: nothing is given)."""
        data = self.cleaned_data
        kind = data.get("kind")
        if not kind:
            return None
        money = kind in MONEY_KINDS
        return Settlement(
            kind=kind,
            amount=data["amount"] if money else None,
            currency=currency if money else "",
            percent=data["percent"] if kind == "discount_code" else None,
        )


class OverrideForm(SettlementForm):
    """An agent replaces the automated decision: a settlement, or none (set it aside)."""

    kind_label = _("Settle with")
    kind_optional = _("Nothing: set the decision aside and handle the case myself")

    decision = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Why (required, kept in the case's history)"),
        widget=forms.Textarea,
        max_length=2000,
    )


class InvitePartyForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=PartyRole.choices)
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Email"))
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)


class ProposalForm(SettlementForm):
    """The mediator's proposal to every party."""

    kind_label = _("Proposal")

    explanation = forms.CharField(
        label=_("Explanation for every party"), widget=forms.Textarea, max_length=4000
    )


class StatementForm(forms.Form):
    body = forms.CharField(
        label=_("Your account of what happened"), widget=forms.Textarea, max_length=8000
    )


class ProposalAnswerForm(forms.Form):
    answer = forms.ChoiceField(choices=[("accept", _("Accept")), ("reject", _("Say no"))])
    reason = forms.CharField(
        label=_("Why not? (needed to say no)"),
        required=False,
        widget=forms.Textarea,
        max_length=2000,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("answer") == "reject" and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Tell the mediator why you do not accept."))
        return data
