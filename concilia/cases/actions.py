"""Every write to cases: opening them, adding to their thread, changing their status."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from concilia.accounts.models import User
from concilia.cases.attachments import CheckedFile
from concilia.cases.models import (
    ActorKind,
    Attachment,
    Case,
    CaseEvent,
    Category,
    EventKind,
    Kind,
    Message,
    Status,
)
from concilia.core.calendar import business_deadline
from concilia.core.models import ReferenceSequence
from concilia.core.references import PREFIX, format_reference
from concilia.core.tasks import enqueue_with_change
from concilia.customers.models import Consent, Customer


def _subject_from(description: str) -> str:
    first_line = description.strip().splitlines()[0] if description.strip() else ""
    return first_line[:120] + ("…" if len(first_line) > 120 else "")


def _store_files(
    *, case: Case, files: Sequence[CheckedFile], message: Message | None, uploaded_by: str
) -> list[Attachment]:
    stored = []
    for checked in files:
        attachment = Attachment(
            case=case,
            message=message,
            original_name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=uploaded_by,
        )
        attachment.file.save(
            f"{uuid.uuid4().hex}.{checked.extension}", ContentFile(checked.content), save=False
        )
        stored.append(attachment)
    Attachment.objects.bulk_create(stored)
    return stored


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def open_case(
    *,
    customer: Customer,
    category: Category,
    channel: str,
    language: str,
    description: str,
    kind: str = Kind.COMPLAINT,
    subject: str = "",
    desired_resolution: str = "",
    order_number: str = "",
    purchase_date: dt.date | None = None,
    amount: Decimal | None = None,
    currency: str = "EUR",
    consent: Consent | None = None,
    files: Sequence[CheckedFile] = (),
    actor_kind: str = ActorKind.CUSTOMER,
    actor_user: User | None = None,
) -> Case:
    """Open a case with a new reference number and deadline, record it, and confirm it by email."""
    now = timezone.now()
    year = timezone.localtime(now).year
    number = ReferenceSequence.next_number(PREFIX, year)
    case = Case.objects.create(
        reference=format_reference(year, number),
        kind=kind,
        category=category,
        channel=channel,
        customer=customer,
        language=language,
        subject=subject.strip()[:200] or _subject_from(description),
        description=description,
        desired_resolution=desired_resolution,
        order_number=order_number,
        purchase_date=purchase_date,
        amount=amount,
        currency=currency,
        privacy_consent=consent,
        deadline=business_deadline(now, category.response_days),
        created_at=now,
    )
    attachments = _store_files(case=case, files=files, message=None, uploaded_by=actor_kind)
    CaseEvent.objects.create(
        case=case,
        kind=EventKind.OPENED,
        actor_kind=actor_kind,
        actor_user=actor_user,
        data={
            "channel": channel,
            "kind": kind,
            "category": category.code,
            "attachments": [a.original_name for a in attachments],
        },
        created_at=now,
    )
    from concilia.cases.tasks import send_case_confirmation

    enqueue_with_change(send_case_confirmation, case_id=case.pk)
    return case


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def add_customer_message(*, case: Case, body: str, files: Sequence[CheckedFile] = ()) -> Message:
    """The customer writes in their case's thread; the case then waits for us again."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    now = timezone.now()
    message = Message.objects.create(
        case=case, author_kind=ActorKind.CUSTOMER, body=body, created_at=now
    )
    attachments = _store_files(
        case=case, files=files, message=message, uploaded_by=ActorKind.CUSTOMER
    )
    CaseEvent.objects.create(
        case=case,
        kind=EventKind.MESSAGE_ADDED,
        actor_kind=ActorKind.CUSTOMER,
        data={"message": message.pk, "attachments": [a.original_name for a in attachments]},
        created_at=now,
    )
    if case.status in (Status.PENDING_CUSTOMER, Status.CLOSED):
        change_status(case=case, status=Status.PENDING_AGENT, actor_kind=ActorKind.CUSTOMER)
    return message


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def change_status(
    *,
    case: Case,
    status: str,
    outcome: str = "",
    actor_kind: str = ActorKind.STAFF,
    actor_user: User | None = None,
) -> Case:
    """Move a case to another status; closing needs an outcome, any other status clears it."""
    previous = case.status
    if previous == status:
        return case
    now = timezone.now()
    case.status = status
    fields = ["status", "outcome", "closed_at", "updated_at"]
    if status == Status.CLOSED:
        if not outcome:
            raise ValueError("Closing a case needs an outcome")
        case.outcome = outcome
        case.closed_at = now
        if case.resolved_at is None:
            case.resolved_at = now
            fields.append("resolved_at")
    else:
        case.outcome = ""
        case.closed_at = None
    case.save(update_fields=fields)
    CaseEvent.objects.create(
        case=case,
        kind=EventKind.STATUS_CHANGED,
        actor_kind=actor_kind,
        actor_user=actor_user,
        data={"from": previous, "to": status, "outcome": case.outcome},
        created_at=now,
    )
    return case
