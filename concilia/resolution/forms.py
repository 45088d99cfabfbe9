"""Forms of the mediation pages: inviting a party, a proposal, a statement, an answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from concilia.resolution.models import PartyRole
from concilia.resolution.panels import KIND_LABELS
from concilia.resolution.policy import KINDS, MONEY_KINDS


class InvitePartyForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=PartyRole.choices)
    name = forms.CharField(label=_("Name"), max_length=200)
    email = forms.EmailField(label=_("Email"))
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)


class ProposalForm(forms.Form):
    kind = forms.ChoiceField(label=_("Proposal"), choices=[(k, KIND_LABELS[k]) for k in KINDS])
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
        decimal_places=2,
    )
    explanation = forms.CharField(
        label=_("Explanation for every party"), widget=forms.Textarea, max_length=4000
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind in MONEY_KINDS and data.get("amount") is None:
            self.add_error("amount", _("Give the amount."))
        if kind == "discount_code" and data.get("percent") is None:
            self.add_error("percent", _("Give the discount's percentage."))
        return data


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
