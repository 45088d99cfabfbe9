"""Every write to cases: opening them, adding to their thread, changing their status."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from concilia.accounts.models import User
from concilia.cases import assignment, legal, search, sla, templating
from concilia.cases.attachments import CheckedFile
from concilia.cases.models import (
    ActorKind,
    Attachment,
    Case,
    CaseEvent,
    CaseLink,
    Category,
    EventKind,
    Kind,
    LegalBasis,
    LinkKind,
    Message,
    Notification,
    NotificationKind,
    Outcome,
    Priority,
    Reminder,
    Status,
)
from concilia.core import audit
from concilia.core.events import EventType, emit
from concilia.core.models import ReferenceSequence
from concilia.core.references import PREFIX, format_reference
from concilia.core.tasks import enqueue_with_change
from concilia.customers.models import Consent, Customer

if TYPE_CHECKING:
    from concilia.accounts.models import Team


class FieldNotNeeded(ValueError):
    """A personal field the case's category does not ask for (data minimisation)."""

    def __init__(self, field: str, category: Category):
        super().__init__(f"{category.code} does not need {field}")
        self.field = field
        self.category = category


def needed_fields(category: Category, **values: object) -> tuple[dict[str, object], list[str]]:
    """The values a category needs, and the names of those it does not (data minimisation: a
    field its rules mark hidden is never stored, whichever channel sent it)."""
    kept: dict[str, object] = {}
    dropped = []
    for name, value in values.items():
        if category.asks(name):
            kept[name] = value
        else:
            kept[name] = None if name in ("purchase_date", "amount") else ""
            if value not in (None, ""):
                dropped.append(name)
    return kept, dropped


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
    legal_basis: str = LegalBasis.LEGITIMATE_INTEREST,
    files: Sequence[CheckedFile] = (),
    actor_kind: str = ActorKind.CUSTOMER,
    actor_user: User | None = None,
) -> Case:
    """Open a case with a new reference number and deadline, record it, and confirm it by email.

    Fields the category does not ask for are not stored, whoever sent them (their names are
    noted in the opening event). The legal basis is consent when a consent is given, else
    `legal_basis` (an email's sender gave none: answering them is a legitimate interest).
    """
    now = timezone.now()
    year = timezone.localtime(now).year
    fields, not_kept = needed_fields(
        category, order_number=order_number, purchase_date=purchase_date, amount=amount
    )
    case = Case(
        kind=kind,
        category=category,
        channel=channel,
        customer=customer,
        language=language,
        subject=subject.strip()[:200] or _subject_from(description),
        description=description,
        desired_resolution=desired_resolution,
        **fields,
        currency=currency,
        privacy_consent=consent,
        legal_basis=LegalBasis.CONSENT if consent is not None else legal_basis,
        created_at=now,
        last_activity_at=now,
        last_customer_message_at=now if actor_kind == ActorKind.CUSTOMER else None,
    )
    rule = assignment.route(case)
    sla.set_deadlines(case, category, now)
    case.jurisdiction_id = legal.jurisdiction_for(category)
    legal.set_legal_deadline(case, now)
    case.reference = format_reference(year, ReferenceSequence.next_number(PREFIX, year))
    case.save(force_insert=True)
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
            **({"not_kept": not_kept} if not_kept else {}),
        },
        created_at=now,
    )
    if rule is not None:
        _event(
            case,
            EventKind.ASSIGNED,
            actor_kind=ActorKind.SYSTEM,
            data={
                "rule": rule.name,
                "team": case.team.code if case.team else None,
                "assignee": case.assignee_id,
            },
            now=now,
        )
    _publish(
        case,
        EventType.CASE_CREATED,
        now,
        kind=kind,
        category=category.code,
        channel=channel,
        status=case.status,
        language=language,
    )
    if case.assignee_id is not None:
        _notify(case.assignee, case, NotificationKind.ASSIGNED, note=rule.name if rule else "")
    from concilia.cases.tasks import send_case_confirmation

    enqueue_with_change(send_case_confirmation, case_id=case.pk)
    audit.record(audit.CREATE, case=case, actor=actor_user or customer, attachments=attachments)
    return case


class CaseChanged(Exception):
    """Someone else changed the case after the person loaded it; nothing was saved."""

    def __init__(self, case: Case):
        super().__init__(case.reference)
        self.case = case


def _event(
    case: Case,
    kind: str,
    *,
    actor_kind: str,
    actor_user: User | None = None,
    data: dict | None = None,
    now: dt.datetime | None = None,
) -> CaseEvent:
    return CaseEvent.objects.create(
        case=case,
        kind=kind,
        actor_kind=actor_kind,
        actor_user=actor_user,
        data=data or {},
        created_at=now or timezone.now(),
    )


def _publish(case: Case, event_type: str, now: dt.datetime, **data: object) -> None:
    """An outbound event about the case (webhooks), in this transaction; no personal data."""
    emit(
        event_type,
        subject=case.reference,
        payload={"case": case.reference, **data, "at": now.isoformat()},
    )


def _notify(
    recipient: User | None, case: Case, kind: str, *, note: str = "", actor: User | None = None
) -> None:
    """Tell a person in the app and by email, unless they caused it themselves."""
    if recipient is None or (actor is not None and recipient.pk == actor.pk):
        return
    if not recipient.is_active:
        return
    notification = Notification.objects.create(
        recipient=recipient, case=case, kind=kind, note=note[:300]
    )
    from concilia.cases.tasks import send_notification_email

    enqueue_with_change(send_notification_email, notification_id=notification.pk)


def _lock(case: Case, expected_version: int | None) -> Case:
    """The case's current row, locked until commit; refused if it moved on since it was read."""
    # The audit chain's head first, the order every transaction follows: a case row locked
    # first deadlocked on PostgreSQL against a transaction holding the head whose commit checks
    # a foreign key to that case (FOR KEY SHARE), found by bench/soak.py.
    audit.lock_chain()
    current = (
        Case.objects.select_for_update(of=("self",))
        .select_related("team__calendar")
        .get(pk=case.pk)
    )
    if expected_version is not None and current.version != expected_version:
        raise CaseChanged(current)
    return current


def _save(case: Case, fields: Sequence[str], now: dt.datetime) -> None:
    case.version += 1
    case.last_activity_at = now
    case.save(update_fields=[*dict.fromkeys(fields), "version", "last_activity_at", "updated_at"])


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def add_customer_message(*, case: Case, body: str, files: Sequence[CheckedFile] = ()) -> Message:
    """The customer writes in their case's thread; the case then waits for us again.

    On a closed case within its category's reopen window the case reopens; after the window the
    message starts a new case, linked to the old one, and that is where it is stored.
    """
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("category", "team__calendar")
        .get(pk=case.pk)
    )
    now = timezone.now()
    if case.status == Status.CLOSED and case.closed_at is not None:
        window = dt.timedelta(days=case.category.reopen_days)
        if now - case.closed_at > window:
            follow_up = open_case(
                customer=case.customer,
                category=case.category,
                channel=case.channel,
                language=case.language,
                kind=case.kind,
                subject=case.subject,
                description=body,
                order_number=case.order_number,
                purchase_date=case.purchase_date,
                amount=case.amount,
                currency=case.currency,
                consent=case.privacy_consent,
                legal_basis=case.legal_basis,
                files=files,
            )
            _link(case, follow_up, LinkKind.FOLLOW_UP, actor_kind=ActorKind.CUSTOMER, now=now)
            message = Message.objects.create(
                case=follow_up, author_kind=ActorKind.CUSTOMER, body=body, created_at=now
            )
            _publish(
                follow_up, EventType.CASE_MESSAGE_ADDED, now, message=message.pk, author="customer"
            )
            return message
    message = Message.objects.create(
        case=case, author_kind=ActorKind.CUSTOMER, body=body, created_at=now
    )
    attachments = _store_files(
        case=case, files=files, message=message, uploaded_by=ActorKind.CUSTOMER
    )
    _event(
        case,
        EventKind.MESSAGE_ADDED,
        actor_kind=ActorKind.CUSTOMER,
        data={"message": message.pk, "attachments": [a.original_name for a in attachments]},
        now=now,
    )
    _publish(case, EventType.CASE_MESSAGE_ADDED, now, message=message.pk, author="customer")
    case.last_customer_message_at = now
    fields = ["last_customer_message_at"]
    if case.status in (Status.PENDING_CUSTOMER, Status.CLOSED):
        fields += _set_status(case, Status.PENDING_AGENT, "", ActorKind.CUSTOMER, None, now)
    _save(case, fields, now)
    _notify(case.assignee, case, NotificationKind.CUSTOMER_REPLIED, note=body[:300])
    audit.record(audit.CREATE, target=message, case=case, fields=["body"], attachments=files)
    return message


def _set_status(
    case: Case,
    status: str,
    outcome: str,
    actor_kind: str,
    actor_user: User | None,
    now: dt.datetime,
) -> list[str]:
    """Change the status in memory (clocks, closing fields) and record it; returns changed fields."""
    previous = case.status
    case.status = status
    fields = [
        "status",
        "outcome",
        "closed_at",
        "deadline",
        "first_response_due",
        "sla_paused_at",
        "sla_alert_due_at",
    ]
    if status == Status.CLOSED:
        if not outcome:
            raise ValueError("Closing a case needs an outcome")
        case.outcome = outcome
        case.closed_at = now
        case.sla_paused_at = None
        if case.resolved_at is None:
            case.resolved_at = now
            fields.append("resolved_at")
    else:
        case.outcome = ""
        case.closed_at = None
        if previous == Status.CLOSED:
            # A reopened case gets its full response time again, from now.
            sla.set_deadlines(case, case.category, now)
            legal.set_legal_deadline(case, now)
            fields += ["sla_alerted", *legal.LEGAL_FIELDS]
            _event(case, EventKind.REOPENED, actor_kind=actor_kind, actor_user=actor_user, now=now)
        elif status == Status.PENDING_CUSTOMER:
            sla.pause(case, now)
        else:
            sla.resume(case, now)
    _event(
        case,
        EventKind.STATUS_CHANGED,
        actor_kind=actor_kind,
        actor_user=actor_user,
        data={"from": previous, "to": status, "outcome": case.outcome},
        now=now,
    )
    _publish(
        case,
        EventType.CASE_STATUS_CHANGED,
        now,
        previous=previous,
        status=status,
        outcome=case.outcome,
    )
    if status == Status.CLOSED:
        _publish(case, EventType.CASE_CLOSED, now, outcome=case.outcome)
    return fields


@transaction.atomic  # a savepoint when nested: a refused change leaves the caller's transaction usable
def change_status(
    *,
    case: Case,
    status: str,
    outcome: str = "",
    actor_kind: str = ActorKind.STAFF,
    actor_user: User | None = None,
    expected_version: int | None = None,
) -> Case:
    """Move a case to another status; closing needs an outcome, any other status clears it.

    Waiting for the customer pauses the SLA clocks; leaving that status moves the deadlines on by
    the business time paused. Reopening a closed case starts its clocks again.
    """
    if status == Status.CLOSED and not outcome:
        raise ValueError("Closing a case needs an outcome")
    current = _lock(case, expected_version)
    if current.status == status and current.outcome == (outcome if status == Status.CLOSED else ""):
        return current
    now = timezone.now()
    fields = _set_status(current, status, outcome, actor_kind, actor_user, now)
    _save(current, fields, now)
    return current


@transaction.atomic
def close_case(
    *, case: Case, outcome: str, actor_user: User, expected_version: int | None = None
) -> Case:
    if outcome not in Outcome.values:
        raise ValueError(f"Unknown outcome {outcome!r}")
    return change_status(
        case=case,
        status=Status.CLOSED,
        outcome=outcome,
        actor_user=actor_user,
        expected_version=expected_version,
    )


@transaction.atomic
def reply_to_customer(
    *,
    case: Case,
    body: str,
    author: User,
    status: str | None = Status.PENDING_CUSTOMER,
    outcome: str = "",
    template_code: str = "",
    expected_version: int | None = None,
    email: bool = True,
) -> Message:
    """An agent answers the customer: on the tracking page and by email, in the case's thread.

    `email=False` for an answer the customer already reads live (the chat).

    The first reply stops the first-response clock. By default the case then waits for the
    customer (which pauses the resolution clock); `status` may instead close it (with `outcome`)
    or leave it as it is (None).
    """
    current = _lock(case, expected_version)
    now = timezone.now()
    message = Message.objects.create(
        case=current, author_kind=ActorKind.STAFF, author_user=author, body=body, created_at=now
    )
    fields: list[str] = []
    if current.first_response_at is None:
        current.first_response_at = now
        current.first_response_due = None
        fields += ["first_response_at", "first_response_due"]
    _event(
        current,
        EventKind.REPLY_SENT,
        actor_kind=ActorKind.STAFF,
        actor_user=author,
        data={"message": message.pk, "template": template_code},
        now=now,
    )
    if template_code:
        templating.template_used(
            code=template_code, case=current, message=message, author=author, at=now
        )
    _publish(current, EventType.CASE_MESSAGE_ADDED, now, message=message.pk, author="staff")
    if status is not None and status != current.status:
        fields += _set_status(current, status, outcome, ActorKind.STAFF, author, now)
    _save(current, fields, now)
    if email:
        from concilia.cases.tasks import send_agent_reply

        enqueue_with_change(send_agent_reply, message_id=message.pk)
    audit.record(audit.CREATE, target=message, case=current, fields=["body"], actor=author)
    return message


@transaction.atomic
def add_internal_note(
    *, case: Case, body: str, author: User, expected_version: int | None = None
) -> Message:
    """A note for colleagues; never shown to the customer."""
    current = _lock(case, expected_version)
    now = timezone.now()
    message = Message.objects.create(
        case=current,
        author_kind=ActorKind.STAFF,
        author_user=author,
        body=body,
        internal=True,
        created_at=now,
    )
    _event(
        current,
        EventKind.NOTE_ADDED,
        actor_kind=ActorKind.STAFF,
        actor_user=author,
        data={"message": message.pk},
        now=now,
    )
    _save(current, [], now)
    audit.record(audit.CREATE, target=message, case=current, fields=["body"], actor=author)
    return message


@transaction.atomic
def assign_case(
    *,
    case: Case,
    assignee: User | None,
    actor: User,
    team: Team | None = None,
    note: str = "",
    expected_version: int | None = None,
) -> Case:
    """Give the case to a person (and, when given, a team); the new owner is told.

    Moving it to another team is a transfer: the note is kept as an internal note and the
    event says so.
    """
    current = _lock(case, expected_version)
    now = timezone.now()
    previous_team, previous_assignee = current.team_id, current.assignee_id
    new_team_id = team.pk if team is not None else current.team_id
    if new_team_id == previous_team and (assignee.pk if assignee else None) == previous_assignee:
        return current
    transfer = new_team_id != previous_team
    if team is not None:
        current.team = team
    current.assignee = assignee
    if note.strip():
        Message.objects.create(
            case=current,
            author_kind=ActorKind.STAFF,
            author_user=actor,
            body=note.strip(),
            internal=True,
            created_at=now,
        )
    _event(
        current,
        EventKind.TRANSFERRED if transfer else EventKind.ASSIGNED,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={
            "from_team": previous_team,
            "to_team": new_team_id,
            "from": previous_assignee,
            "to": assignee.pk if assignee else None,
            "note": note.strip()[:300],
        },
        now=now,
    )
    _save(current, ["team", "assignee"], now)
    kind = NotificationKind.TRANSFERRED if transfer else NotificationKind.ASSIGNED
    _notify(assignee, current, kind, note=note.strip(), actor=actor)
    return current


def transfer_case(
    *,
    case: Case,
    team: Team,
    actor: User,
    note: str,
    assignee: User | None = None,
    expected_version: int | None = None,
) -> Case:
    return assign_case(
        case=case,
        team=team,
        assignee=assignee,
        actor=actor,
        note=note,
        expected_version=expected_version,
    )


@transaction.atomic
def set_priority(
    *, case: Case, priority: str, actor: User, expected_version: int | None = None
) -> Case:
    if priority not in Priority.values:
        raise ValueError(f"Unknown priority {priority!r}")
    current = _lock(case, expected_version)
    if current.priority == priority:
        return current
    now = timezone.now()
    _event(
        current,
        EventKind.PRIORITY_CHANGED,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={"from": current.priority, "to": priority},
        now=now,
    )
    current.priority = priority
    _save(current, ["priority"], now)
    return current


@transaction.atomic
def update_contact(
    *,
    case: Case,
    name: str,
    phone: str,
    actor: User,
    expected_version: int | None = None,
) -> Case:
    """Correct the customer's name or phone; the old and new values stay in the case history.

    A phone is refused (FieldNotNeeded) on a case whose category does not ask for one; clearing
    it is always allowed."""
    current = _lock(case, expected_version)
    customer = Customer.objects.select_for_update().get(pk=current.customer_id)
    phone = phone.strip()
    if phone and phone != customer.phone and not current.category.asks("phone"):
        raise FieldNotNeeded("phone", current.category)
    changes = {
        field: {"from": getattr(customer, field), "to": value}
        for field, value in (("name", name.strip()), ("phone", phone.strip()))
        if getattr(customer, field) != value
    }
    if not changes:
        return current
    now = timezone.now()
    for field, change in changes.items():
        setattr(customer, field, change["to"])
    customer.save(update_fields=[*changes, "updated_at"])
    _event(
        current,
        EventKind.CONTACT_CHANGED,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data=changes,
        now=now,
    )
    _save(current, [], now)
    audit.record(audit.CHANGE, target=customer, case=current, fields=changes, actor=actor)
    return current


def _refresh_next_alert(case: Case) -> None:
    case.next_alert_at = (
        Reminder.objects.filter(case=case, done_at__isnull=True)
        .order_by("due_at")
        .values_list("due_at", flat=True)
        .first()
    )


@transaction.atomic
def set_reminder(*, case: Case, due_at: dt.datetime, note: str, actor: User) -> Reminder:
    """An alert on a date: on that date the case's owner (or whoever set it) is told."""
    current = _lock(case, None)
    now = timezone.now()
    reminder = Reminder.objects.create(
        case=current, due_at=due_at, note=note.strip()[:300], created_by=actor, created_at=now
    )
    _event(
        current,
        EventKind.REMINDER_SET,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={"due_at": due_at.isoformat(), "note": reminder.note},
        now=now,
    )
    _refresh_next_alert(current)
    _save(current, ["next_alert_at"], now)
    return reminder


@transaction.atomic
def complete_reminder(*, reminder: Reminder, actor: User) -> None:
    current = _lock(reminder.case, None)
    Reminder.objects.filter(pk=reminder.pk, done_at__isnull=True).update(done_at=timezone.now())
    _refresh_next_alert(current)
    _save(current, ["next_alert_at"], timezone.now())


def _link(
    a: Case,
    b: Case,
    kind: str,
    *,
    actor_kind: str,
    actor_user: User | None = None,
    now: dt.datetime,
) -> None:
    for case, other in ((a, b), (b, a)):
        CaseLink.objects.get_or_create(case=case, other=other, defaults={"kind": kind})
        _event(
            case,
            EventKind.MERGED if kind == LinkKind.MERGED else EventKind.LINKED,
            actor_kind=actor_kind,
            actor_user=actor_user,
            data={"other": other.reference, "kind": kind},
            now=now,
        )


@transaction.atomic
def link_cases(*, case: Case, other: Case, actor: User) -> None:
    if case.pk == other.pk:
        raise ValueError("A case cannot be linked to itself")
    now = timezone.now()
    first, second = sorted((case, other), key=lambda c: c.pk)
    _lock(first, None), _lock(second, None)
    _link(case, other, LinkKind.RELATED, actor_kind=ActorKind.STAFF, actor_user=actor, now=now)


class CannotMerge(Exception):
    """Only open duplicate cases of the same customer can be merged."""


@transaction.atomic
def merge_cases(*, duplicate: Case, into: Case, actor: User) -> Case:
    """Close `duplicate` as a duplicate of `into`; its text and thread move there, nothing is lost."""
    if duplicate.pk == into.pk:
        raise CannotMerge("same case")
    first, second = sorted((duplicate, into), key=lambda c: c.pk)
    locked = {c.pk: _lock(c, None) for c in (first, second)}
    duplicate, into = locked[duplicate.pk], locked[into.pk]
    if duplicate.customer_id != into.customer_id:
        raise CannotMerge("different customers")
    if duplicate.status == Status.CLOSED or into.status == Status.CLOSED:
        raise CannotMerge("closed")
    now = timezone.now()
    # The duplicate's own text becomes a message of the case it joins; its thread moves there.
    Message.objects.create(
        case=into,
        author_kind=ActorKind.CUSTOMER,
        body=f"[{duplicate.reference}] {duplicate.subject}\n\n{duplicate.description}",
        created_at=duplicate.created_at,
    )
    duplicate.messages.update(case=into)
    duplicate.attachments.update(case=into)
    search.index_cases([duplicate.pk, into.pk])  # the thread's text moved with it
    duplicate.merged_into = into
    fields = _set_status(duplicate, Status.CLOSED, Outcome.DUPLICATE, ActorKind.STAFF, actor, now)
    _save(duplicate, [*fields, "merged_into"], now)
    _link(duplicate, into, LinkKind.MERGED, actor_kind=ActorKind.STAFF, actor_user=actor, now=now)
    _save(into, [], now)
    audit.record(audit.MERGE, case=duplicate, actor=actor, detail={"into": into.reference})
    return into


@dataclass(frozen=True)
class TranscriptLine:
    """One line of a conversation held before the case existed (the assistant's chat)."""

    author_kind: str  # ActorKind.CUSTOMER for the customer, SYSTEM for the assistant
    body: str
    created_at: dt.datetime


@transaction.atomic(savepoint=False)
def add_transcript(*, case: Case, lines: Sequence[TranscriptLine]) -> list[Message]:
    """Put a conversation's lines into the case's thread, at the times they were written."""
    messages = Message.objects.bulk_create(
        Message(case=case, author_kind=line.author_kind, body=line.body, created_at=line.created_at)
        for line in lines
        if line.body.strip()
    )
    if messages:
        search.index_cases([case.pk])  # bulk_create skips Message.save
        _event(
            case,
            EventKind.MESSAGE_ADDED,
            actor_kind=ActorKind.SYSTEM,
            data={"transcript": len(messages)},
        )
        for message in messages:
            _publish(
                case,
                EventType.CASE_MESSAGE_ADDED,
                message.created_at,
                message=message.pk,
                author="customer" if message.author_kind == ActorKind.CUSTOMER else "system",
            )
        audit.record(audit.CREATE, case=case, fields=["transcript"])
    return messages


@transaction.atomic
def hand_over_to_person(
    *,
    case: Case,
    reason: str,
    note: str,
    priority: str | None = None,
    team: Team | None = None,
) -> Message:
    """The assistant (or a policy) passes a case to a person: a note for the agent with
    everything it knew, the case waiting for us, and its assignee (or, while nobody has it, its
    team) told at once. `team` moves a case nobody has taken yet to that team's queue."""
    current = _lock(case, None)
    now = timezone.now()
    fields: list[str] = []
    if team is not None and current.assignee_id is None and current.team_id != team.pk:
        previous = current.team.code if current.team_id else None
        current.team = team
        fields.append("team")
        _event(
            current,
            EventKind.TRANSFERRED,
            actor_kind=ActorKind.SYSTEM,
            data={"from": previous, "to": team.code, "reason": reason},
            now=now,
        )
    message = Message.objects.create(
        case=current, author_kind=ActorKind.SYSTEM, body=note, internal=True, created_at=now
    )
    _event(
        current,
        EventKind.HANDED_OVER,
        actor_kind=ActorKind.SYSTEM,
        data={"reason": reason, "message": message.pk},
        now=now,
    )
    if priority and Priority.values.index(priority) > Priority.values.index(current.priority):
        current.priority = priority
        fields.append("priority")
    if current.status in (Status.NOT_STARTED, Status.PENDING_CUSTOMER):
        fields += _set_status(current, Status.PENDING_AGENT, "", ActorKind.SYSTEM, None, now)
    _save(current, fields, now)
    if current.assignee_id is not None:
        _notify(current.assignee, current, NotificationKind.HANDOVER, note=reason)
    elif current.team_id is not None:
        for agent in assignment.available_agents(current.team):
            _notify(agent, current, NotificationKind.HANDOVER, note=reason)
    return message


@transaction.atomic(savepoint=False)
def add_system_note(*, case: Case, body: str, files: Sequence[CheckedFile] = ()) -> Message:
    """A note written by Concilia itself (a report, a hand-over summary, a third party's
    statement with its evidence) for the agents; its files are never shown to the customer."""
    now = timezone.now()
    message = Message.objects.create(
        case=case, author_kind=ActorKind.SYSTEM, body=body, internal=True, created_at=now
    )
    _store_files(case=case, files=files, message=message, uploaded_by=ActorKind.INTEGRATION)
    _event(
        case,
        EventKind.NOTE_ADDED,
        actor_kind=ActorKind.SYSTEM,
        data={"message": message.pk},
        now=now,
    )
    audit.record(audit.CREATE, target=message, case=case, fields=["body"], attachments=files)
    return message


@transaction.atomic(savepoint=False)
def record_event(
    *,
    case: Case,
    kind: str,
    actor_kind: str,
    actor_user: User | None = None,
    data: dict | None = None,
) -> CaseEvent:
    """A line in the case's history written by another app (a policy decision, an offer)."""
    return _event(case, kind, actor_kind=actor_kind, actor_user=actor_user, data=data)


@transaction.atomic
def message_customer(
    *,
    case: Case,
    body: str,
    status: str | None = None,
    outcome: str = "",
    actor_kind: str = ActorKind.SYSTEM,
    email: bool = True,
) -> Message:
    """Concilia itself writes to the customer in the case's thread (a decision, an offer, a
    confirmation): on the tracking page and, unless `email=False`, by email. It counts as the
    first response; `status` may move the case on (closing it needs `outcome`)."""
    current = _lock(case, None)
    now = timezone.now()
    message = Message.objects.create(
        case=current, author_kind=actor_kind, body=body, created_at=now
    )
    fields: list[str] = []
    if current.first_response_at is None:
        current.first_response_at = now
        current.first_response_due = None
        fields += ["first_response_at", "first_response_due"]
    _event(
        current, EventKind.REPLY_SENT, actor_kind=actor_kind, data={"message": message.pk}, now=now
    )
    _publish(current, EventType.CASE_MESSAGE_ADDED, now, message=message.pk, author="system")
    if status is not None and (status != current.status or outcome != current.outcome):
        fields += _set_status(current, status, outcome, actor_kind, None, now)
    _save(current, fields, now)
    case.status, case.outcome, case.version = current.status, current.outcome, current.version
    if email:
        from concilia.cases.tasks import send_agent_reply

        enqueue_with_change(send_agent_reply, message_id=message.pk)
    return message


def notify_staff(*, recipient: User, case: Case, kind: str, note: str = "") -> None:
    """Tell a member of staff about a case, in the app and by email (another app's alert, such
    as a collective complaint); nothing for inactive people."""
    _notify(recipient, case, kind, note=note)
