"""The resolution app's personal data (house rule 8): what the customer wrote in answer to offers
and proposals, their statements, the third parties invited to a mediation, and the order number
among a decision's facts; the customer's copy of the decisions about them (with their reasons:
GDPR article 15(1)(h) for automated decisions), and anonymising a case's part.

Decisions, offers, resolutions and proposals keep their outcome, amounts, policy version and
dates (anonymous statistics, and the replay of the policy on the facts left); third parties
become "—" with a stand-in address and lose their link.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from concilia.cases.models import Case
from concilia.core.encrypted_json import filled
from concilia.core.personal_data import (
    ERASED_TEXT,
    Export,
    PersonalFields,
    counted,
    erased_email,
    iso,
)
from concilia.customers.models import Customer
from concilia.resolution.models import (
    CaseParty,
    Decision,
    Offer,
    Proposal,
    ProposalAnswer,
    Resolution,
    Statement,
)

DECLARED = [
    PersonalFields(
        "resolution.Decision",
        fields=("facts", "reason_es", "reason_en", "override_reason"),
        exported=("reason_es", "reason_en"),
        note="Only the order number among the facts, and where the reasons quote it.",
    ),
    PersonalFields(
        "resolution.Offer", fields=("rejection_reason",), exported=("rejection_reason",)
    ),
    PersonalFields("resolution.Statement", fields=("body",), exported=("body",)),
    PersonalFields("resolution.ProposalAnswer", fields=("reason",), exported=("reason",)),
    PersonalFields("resolution.Proposal", fields=("explanation",), exported=("explanation",)),
    PersonalFields(
        "resolution.CaseParty",
        fields=("name", "email"),
        note="Third parties of a mediation: their data goes with the case's.",
    ),
]


def export_customer(customer: Customer) -> Export:
    """Per case: the decisions and why, the offers and the customer's answers, the agreements,
    the customer's statements and answers to mediation proposals."""
    cases = Case.objects.for_customer(customer).order_by("created_at", "pk")
    language = customer.language
    data: dict[str, Any] = {}
    for case in cases.prefetch_related(
        "decisions", "offers", "resolutions", "statements", "proposals__answers"
    ):
        part = {
            "decisions": [
                {
                    "at": iso(decision.created_at),
                    "outcome": decision.outcome,
                    "by": decision.source,
                    "reason": decision.reason(language),
                }
                for decision in sorted(case.decisions.all(), key=lambda d: (d.created_at, d.pk))
            ],
            "offers": [
                {
                    "at": iso(offer.created_at),
                    "options": offer.options,
                    "status": offer.status,
                    "answered_at": iso(offer.answered_at),
                    "chosen_option": offer.chosen_option,
                    "counter_amount": str(offer.counter_amount)
                    if offer.counter_amount is not None
                    else None,
                    "rejection_reason": offer.rejection_reason,
                }
                for offer in sorted(case.offers.all(), key=lambda o: (o.created_at, o.pk))
            ],
            "agreements": [
                {
                    "at": iso(resolution.created_at),
                    "what": resolution.kind,
                    "amount": str(resolution.amount) if resolution.amount is not None else None,
                    "currency": resolution.currency,
                    "agreed_by": resolution.agreed_by,
                }
                for resolution in case.resolutions.all()
            ],
            "statements": [
                {"at": iso(statement.created_at), "body": statement.body}
                for statement in case.statements.all()
                if statement.party_id is None
            ],
            "mediation_proposals": [
                {
                    "at": iso(proposal.created_at),
                    "explanation": proposal.explanation,
                    "status": proposal.status,
                    "your_answer": [
                        {"accepted": answer.accepted, "reason": answer.reason}
                        for answer in proposal.answers.all()
                        if answer.party_id is None
                    ],
                }
                for proposal in case.proposals.all()
            ],
        }
        if any(part.values()):
            data[case.reference] = part
    return Export(data={"resolution": data})


def anonymise_case(case: Case) -> dict[str, int]:
    """Empty the texts people wrote about the case, anonymise its third parties, and take the
    order number out of its decisions."""
    now = timezone.now()
    # Encrypted columns: what is filled is told by the stored text's length (core.encrypted_json).
    statements = Statement.objects.filter(case_id=case.pk).filter(filled("body")).update(body="")
    answers = (
        ProposalAnswer.objects.filter(proposal__case_id=case.pk)
        .filter(filled("reason"))
        .update(reason="")
    )
    proposals = (
        Proposal.objects.filter(case_id=case.pk)
        .filter(filled("explanation"))
        .update(explanation="")
    )
    offers = (
        Offer.objects.filter(case_id=case.pk)
        .exclude(rejection_reason="")
        .update(rejection_reason="")
    )
    follow_ups = (
        Resolution.objects.filter(case_id=case.pk)
        .exclude(follow_up_detail="")
        .update(follow_up_detail="")
    )
    parties = 0
    for party in CaseParty.objects.filter(case_id=case.pk):
        if party.name == ERASED_TEXT:  # decrypted here: the column cannot be compared
            continue
        party.name = ERASED_TEXT
        party.email = erased_email("party", party.pk)
        party.revoked_at = party.revoked_at or now
        party.save(update_fields=["name", "email", "revoked_at"])
        parties += 1
    decisions = _scrub_decisions(case)
    return counted(
        statements=statements,
        proposal_answers=answers,
        proposals=proposals,
        offers=offers,
        resolutions=follow_ups,
        parties=parties,
        decisions=decisions,
    )


def _scrub_decisions(case: Case) -> int:
    changed = []
    numbers = {case.order_number}
    decisions = list(Decision.objects.filter(case_id=case.pk))
    for decision in decisions:
        numbers.add(str((decision.facts.get("order") or {}).get("number") or ""))
    numbers.discard("")
    for decision in decisions:
        before = (decision.facts, decision.reason_es, decision.reason_en, decision.override_reason)
        order = decision.facts.get("order")
        if isinstance(order, dict) and order.get("number"):
            decision.facts = {**decision.facts, "order": {**order, "number": ""}}
        for number in numbers:
            decision.reason_es = decision.reason_es.replace(number, ERASED_TEXT)
            decision.reason_en = decision.reason_en.replace(number, ERASED_TEXT)
        if decision.override_reason:
            # An override must keep a reason (a constraint): what the agent wrote goes.
            decision.override_reason = ERASED_TEXT
        after = (decision.facts, decision.reason_es, decision.reason_en, decision.override_reason)
        if after != before:
            changed.append(decision)
    Decision.objects.bulk_update(
        changed, ["facts", "reason_es", "reason_en", "override_reason"], batch_size=200
    )
    return len(changed)


def open_disputes(customer: Customer) -> list[tuple[str, str]]:
    """The customer's cases under mediation or with an agreement not yet carried out, as
    (reference, what): these hold the customer's data against erasure."""
    held: list[tuple[str, str]] = []
    mediated = (
        Case.objects.for_customer(customer)
        .open()
        .filter(
            Q(parties__revoked_at__isnull=True, parties__isnull=False) | Q(proposals__status="open")
        )
        .distinct()
        .order_by("pk")
    )
    held += [(reference, "mediation") for reference in mediated.values_list("reference", flat=True)]
    unsettled = (
        Resolution.objects.filter(case__customer=customer, follow_up__in=["pending", "failed"])
        .order_by("case_id")
        .values_list("case__reference", flat=True)
        .distinct()
    )
    held += [(reference, "settlement") for reference in unsettled]
    return held
