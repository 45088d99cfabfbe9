"""What the resolution engine adds to the helpdesk's case page: every decision with its full
trace, the open offer, what was agreed, and the override form."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from concilia.cases.access import can_supervise, may_change
from concilia.cases.models import Case
from concilia.resolution.engine import describe
from concilia.resolution.forms import OverrideForm
from concilia.resolution.models import Decision, Offer, OfferStatus


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
