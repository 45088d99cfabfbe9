"""What the resolution engine adds to the helpdesk's case page: every decision with its full
trace, the open offer, what was agreed, and the override form."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from concilia.cases.access import can_supervise, may_change
from concilia.cases.models import Case
from concilia.resolution.engine import describe
from concilia.resolution.models import Decision, Offer, OfferStatus
from concilia.resolution.policy import KINDS, MONEY_KINDS

KIND_LABELS = {
    "refund": _("Refund"),
    "partial_refund": _("Partial refund"),
    "credit": _("Store credit"),
    "replacement": _("Replacement"),
    "return_label": _("Return label"),
    "discount_code": _("Discount code"),
}


class OverrideForm(forms.Form):
    """An agent replaces the automated decision: a settlement, or none (set it aside)."""

    decision = forms.IntegerField(widget=forms.HiddenInput)
    kind = forms.ChoiceField(
        label=_("Settle with"),
        required=False,
        choices=[("", _("Nothing: set the decision aside and handle the case myself"))]
        + [(k, KIND_LABELS[k]) for k in KINDS],
    )
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
    reason = forms.CharField(
        label=_("Why (required, kept in the case's history)"),
        widget=forms.Textarea,
        max_length=2000,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        if kind in MONEY_KINDS and data.get("amount") is None:
            self.add_error("amount", _("Give the amount."))
        if kind == "discount_code" and data.get("percent") is None:
            self.add_error("percent", _("Give the discount's percentage."))
        return data


def decisions_panel(request: HttpRequest, case: Case) -> SafeString:
    decisions = list(
        Decision.objects.filter(case=case).select_related("policy_version__policy", "actor_user")
    )
    may_mediate = can_supervise(request.user) and may_change(request.user, case)
    if not decisions and not may_mediate:
        return SafeString("")
    for decision in decisions:
        # Flat rows: a fact named "items" would otherwise shadow the dict's items() in a template.
        decision.fact_rows = [  # type: ignore[attr-defined]
            (f"{ns}.{name}", value)
            for ns, fields in decision.facts.items()
            for name, value in fields.items()
        ]
    language = case.language
    offer = Offer.objects.filter(case=case, status=OfferStatus.OPEN).first()
    latest = decisions[0] if decisions else None
    return render_to_string(
        "resolution/helpdesk/_decisions_panel.html",
        {
            "case": case,
            "decisions": decisions,
            "offer": offer,
            "offer_options": [describe(s, language) for s in offer.settlements()] if offer else [],
            "agreed": [
                (r, describe(r.settlement(), language))
                for r in case.resolutions.select_related("agreed_by_user").order_by("created_at")
            ],
            "may_change": may_change(request.user, case) and latest is not None,
            "may_mediate": may_mediate,
            # A refused override comes back with what was typed (see helpdesk_views.override).
            "form": getattr(request, "override_form", None)
            or OverrideForm(initial={"decision": latest.pk if latest else None}),
        },
        request=request,
    )
