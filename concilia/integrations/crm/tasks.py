"""The CRM push: a case's customer and a summary of the case, sent to the configured
CustomerDirectory in the background when the case is opened or closed.

Hook: `push_case_event(kind=..., payload=...)` takes an outbox event ("case.created",
"case.closed", as concilia.core.events emits them) and queues the push when CRM_PUSH is on; the
outbox dispatcher calls it for each event it delivers. `push_case_to_crm` may also be queued
directly. Both are safe to repeat: the directory updates the contact and writes one summary per
case and event. A CRM that is down makes the job fail, so the job system tries it again later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.urls import reverse

from concilia.core.jobs import job
from concilia.core.ports import CaseSummary, CustomerProfile, customer_directory
from concilia.core.tasks import enqueue_with_change

logger = logging.getLogger(__name__)

EVENTS = {"case.created": "opened", "case.closed": "closed"}


def push_case_event(*, kind: str, payload: dict[str, Any]) -> bool:
    """Queue the CRM push for an outbox event about a case; False when there is nothing to do."""
    event = EVENTS.get(kind)
    if not settings.CRM_PUSH or event is None or not payload.get("case"):
        return False
    enqueue_with_change(push_case_to_crm, reference=payload["case"], event=event)
    return True


@job(queue_name="webhooks")
def push_case_to_crm(*, reference: str, event: str) -> str:
    """The CRM push as a job: retried with backoff while the CRM is down."""
    return push_case(reference=reference, event=event)


def push_case(*, reference: str, event: str) -> str:
    """Push the case's customer and the case's summary for `event` ("opened" or "closed")."""
    from concilia.cases.models import Case

    case = Case.objects.select_related("customer", "category").filter(reference=reference).first()
    if case is None:
        return ""
    customer = case.customer
    directory = customer_directory()
    directory.push_customer(
        CustomerProfile(email=customer.email, name=customer.name, phone=customer.phone)
    )
    return directory.push_case_summary(
        CaseSummary(
            reference=case.reference,
            customer_email=customer.email,
            event=event,
            category=case.category.code,
            status=case.status,
            outcome=case.outcome,
            opened_at=case.created_at,
            closed_at=case.closed_at if event == "closed" else None,
            url=settings.BASE_URL.rstrip("/")
            + reverse("helpdesk:case", kwargs={"reference": case.reference}),
        )
    )
