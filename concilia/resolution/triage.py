"""The resolution engine as the `Triage` port the channels call when they open a case."""

from __future__ import annotations

from typing import Any

from concilia.core.ports import TriageDecision
from concilia.resolution import actions
from concilia.resolution.models import DecisionOutcome, Offer, OfferStatus

_ACTIONS = {
    DecisionOutcome.RESOLVE: "resolved",
    DecisionOutcome.OFFER: "offer",
    DecisionOutcome.ASK_EVIDENCE: "evidence",
    DecisionOutcome.ESCALATE: "escalate",
    DecisionOutcome.MEDIATE: "escalate",
    DecisionOutcome.WAIT: "wait",
    DecisionOutcome.NONE: "none",
}


def triage(case: Any, *, hand_over: bool = True) -> TriageDecision:
    record = actions.triage_case(case=case, hand_over=hand_over)
    offer = Offer.objects.filter(decision=record, status=OfferStatus.OPEN).first()
    message = {}
    if record.outcome != DecisionOutcome.NONE:
        message = {"es": record.reason_es, "en": record.reason_en}
    return TriageDecision(
        action=_ACTIONS[record.outcome],  # type: ignore[arg-type]
        reason=f"{record.rule}: {record.get_outcome_display()}" if record.rule else "",
        message=message,
        team=record.detail.get("team", ""),
        offer=str(offer.public_id) if offer else "",
    )
