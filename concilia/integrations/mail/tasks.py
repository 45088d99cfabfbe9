"""Background jobs of the email channel: reading mailboxes (from the periodic sweep), processing
what a provider's webhook posted, trying failed emails again, and deciding new email cases."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Q

from concilia.cases.models import Case
from concilia.core.jobs import job
from concilia.core.ports import triage
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome

logger = logging.getLogger(__name__)

# A failed email is tried again after 2, 4, 8... minutes, this many times in all.
RETRIES = 6


@job(attempts=1, queue_name="mail")
def read_mailbox(*, mailbox_id: int) -> int:
    """Read one mailbox; a server that cannot be reached is recorded on the mailbox, and the
    next sweep tries again."""
    from concilia.integrations.mail.imap import read_mailbox as read

    mailbox = Mailbox.objects.filter(pk=mailbox_id, active=True).exclude(host="").first()
    if mailbox is None:
        return 0
    try:
        return read(mailbox).read
    except Exception:
        logger.warning("Mailbox %s could not be read", mailbox, exc_info=True)
        return 0


@job(queue_name="mail")
def process_inbound_email(*, email_id: int) -> str:
    from concilia.integrations.mail.actions import process_email

    email = InboundEmail.objects.filter(pk=email_id).first()
    return process_email(email=email).outcome if email else ""


@job(queue_name="mail")
def triage_email_case(*, case_id: int) -> str:
    """Ask the company's policies about a case an email opened (after commit)."""
    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    if case is None or not case.is_open:
        return ""
    return triage()(case).action


def sweep(*, now: dt.datetime) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): read every active IMAP mailbox nobody is
    reading, and try failed emails again with backoff. Returns the jobs queued."""
    free = Q(polling_until__isnull=True) | Q(polling_until__lt=now)
    queued = 0
    for mailbox_id in (
        Mailbox.objects.filter(free, active=True).exclude(host="").values_list("pk", flat=True)
    ):
        read_mailbox.enqueue(mailbox_id=mailbox_id)
        queued += 1
    for email in InboundEmail.objects.filter(
        Q(outcome=Outcome.FAILED, attempts__lt=RETRIES)
        | Q(outcome=Outcome.RECEIVED, received_at__lt=now - dt.timedelta(minutes=5))
    ).only("pk", "attempts", "received_at"):
        if email.received_at + dt.timedelta(minutes=2**email.attempts) <= now:
            process_inbound_email.enqueue(email_id=email.pk)
            queued += 1
    return queued
