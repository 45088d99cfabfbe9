"""Background jobs of the resolution engine: carrying out agreed resolutions in the shop."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks import task

from concilia.cases import actions as case_actions
from concilia.cases.models import ActorKind, Case, Status
from concilia.core.jobs import job
from concilia.core.ports import FulfilmentRequest, fulfilment
from concilia.resolution.models import Decision, DecisionSource, FollowUp, Resolution

logger = logging.getLogger(__name__)


@job()
def carry_out_resolution(*, resolution_id: int) -> None:
    """Ask the shop to do what was agreed (refund, credit, label, replacement), once. When it
    fails the resolution stands, and a person is told to do it by hand."""
    claimed = Resolution.objects.filter(pk=resolution_id, follow_up=FollowUp.PENDING)
    resolution = claimed.select_related("case__customer").first()
    if resolution is None:
        return
    case = resolution.case
    request = FulfilmentRequest(
        reference=case.reference,
        order_number=case.order_number,
        customer_email=case.customer.email,
        kind=resolution.kind,
        amount=resolution.amount,
        currency=resolution.currency,
    )
    try:
        shop_id = fulfilment().carry_out(request)
    except Exception as error:
        logger.warning("Fulfilment failed for %s", case.reference, exc_info=True)
        with transaction.atomic():
            if not claimed.update(follow_up=FollowUp.FAILED, follow_up_detail=repr(error)[:300]):
                return
            if not case.is_open:  # settled for the customer, not yet done: back to a person
                case_actions.change_status(
                    case=case, status=Status.PENDING_AGENT, actor_kind=ActorKind.SYSTEM
                )
            with translation.override(case.language):
                note = _(
                    "The shop could not carry out the agreed %(kind)s (%(error)s). The customer "
                    "was promised it: do it by hand."
                ) % {"kind": resolution.kind, "error": repr(error)[:200]}
            case_actions.hand_over_to_person(case=case, reason="fulfilment_failed", note=note)
        return
    claimed.update(follow_up=FollowUp.DONE, follow_up_detail=str(shop_id)[:300])


@task(queue_name="customer")
def decide_again(*, case_id: int, after_decision: int) -> str:
    """Decide a case again now that the evidence its policy asked for has arrived (once: a job
    that finds a newer decision than the one that asked does nothing)."""
    from concilia.resolution.actions import triage_case

    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    latest = Decision.objects.filter(case_id=case_id, source=DecisionSource.ENGINE).first()
    if case is None or not case.is_open or latest is None or latest.pk != after_decision:
        return ""
    return triage_case(case=case, again=True).outcome


@job(queue_name="mail")
def send_party_email(*, party_id: int, what: str) -> None:
    """Email a third party its link to the case: the invitation, or a proposal to answer."""
    from django.conf import settings
    from django.urls import reverse

    from concilia.core.mail import compose
    from concilia.resolution.mediation import party_link_token
    from concilia.resolution.models import CaseParty, Proposal, ProposalStatus

    party = (
        CaseParty.objects.select_related("case__category")
        .filter(pk=party_id, revoked_at__isnull=True)
        .first()
    )
    if party is None:
        return
    case = party.case
    with translation.override(party.language):
        context = {
            "party": party,
            "case": case,
            "what": what,
            "proposal": Proposal.objects.filter(case=case, status=ProposalStatus.OPEN).first(),
            "link": settings.BASE_URL + reverse("parties:page", args=[party_link_token(party)]),
        }
        subject = (
            _("[%(reference)s] A proposal to settle the case") % {"reference": case.reference}
            if what == "proposal"
            else _("[%(reference)s] Your account of a customer's complaint")
            % {"reference": case.reference}
        )
        compose(
            subject=subject,
            template="resolution/email/party",
            context=context,
            to=[party.email],
            reference=case.reference,
            automatic=False,
        ).send()
