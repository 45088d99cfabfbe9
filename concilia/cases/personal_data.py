"""The cases app's personal data (house rule 8): what its models hold, the customer's copy of their
cases, and anonymising a case (for erasure and for the retention job).

`anonymise_case(case)` is this app's part only; `concilia.privacy.hooks.anonymise_case` runs every
app's (conversations, mediation, emails…) and records the audit entry.

A case stays a row after anonymisation, with what statistics count (kind, category, channel,
status, outcome, priority, amount and currency, team, deadlines and dates); its texts are
emptied, its files deleted, its history keeps kinds and dates without notes or values. The
search index follows: the case's text grams are computed again from the emptied texts
(search.index_cases), so none of the old pieces is left.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from concilia.cases import search
from concilia.cases.models import (
    ActorKind,
    Attachment,
    Case,
    CaseEvent,
    EventKind,
    Message,
    Notification,
    Reminder,
)
from concilia.core.personal_data import (
    DELETED,
    ERASED_TEXT,
    Export,
    PersonalFields,
    counted,
    exported_files,
    forget_files_after_commit,
    iso,
)

DECLARED = [
    PersonalFields(
        "cases.Case",
        fields=("subject", "description", "desired_resolution", "order_number", "purchase_date"),
        exported=("subject", "description", "desired_resolution", "order_number", "purchase_date"),
    ),
    PersonalFields(
        "cases.Message",
        fields=("body",),
        exported=("body",),
        note="Internal notes are not exported (colleagues' notes may hold others' data, art. 15(4)).",
    ),
    PersonalFields(
        "cases.Attachment",
        fields=("file", "original_name"),
        exported=("file", "original_name"),
        erasure=DELETED,
    ),
    PersonalFields(
        "cases.CaseEvent",
        fields=("data",),
        note="Notes, contact changes and file names in a case's history; kinds and dates stay.",
    ),
    PersonalFields("cases.Reminder", fields=("note",)),
    PersonalFields("cases.Notification", fields=("note",)),
]

# Keys of a history event's data that may hold what a person wrote or who someone is.
_FREE_TEXT_KEYS = frozenset({"note", "reason", "name", "email", "attachments"})

_CASE_TEXTS = {
    "subject": ERASED_TEXT,
    "description": "",
    "desired_resolution": "",
    "order_number": "",
    "purchase_date": None,
}


# Export -------------------------------------------------------------------------------------


def export_customer(customer: Any) -> Export:
    """The customer's cases with what they can see of them: texts, the thread without internal
    notes, the files, and the history's kinds and dates."""
    export = Export(data={"cases": []})
    cases = (
        Case.objects.for_customer(customer)
        .select_related("category")
        .prefetch_related("messages", "attachments__message", "events")
        .order_by("created_at", "pk")
    )
    for case in cases:
        files = [
            a for a in case.attachments.all() if a.message_id is None or not a.message.internal
        ]
        export.files += exported_files(f"attachments/{case.reference}", files)
        export.data["cases"].append(
            {
                "reference": case.reference,
                "kind": case.kind,
                "category": case.category.code,
                "channel": case.channel,
                "language": case.language,
                "status": case.status,
                "outcome": case.outcome,
                "subject": case.subject,
                "description": case.description,
                "desired_resolution": case.desired_resolution,
                "order_number": case.order_number,
                "purchase_date": iso(case.purchase_date),
                "amount": str(case.amount) if case.amount is not None else None,
                "currency": case.currency,
                "created_at": iso(case.created_at),
                "deadline": iso(case.deadline),
                "legal_deadline": iso(case.legal_deadline),
                "closed_at": iso(case.closed_at),
                "messages": [
                    {
                        "at": iso(message.created_at),
                        "from": _author(message.author_kind),
                        "body": message.body,
                    }
                    for message in case.messages.all()
                    if not message.internal
                ],
                "files": [
                    {"name": attachment.original_name, "type": attachment.content_type}
                    for attachment in files
                ],
                "history": [
                    {"at": iso(event.created_at), "what": event.kind} for event in case.events.all()
                ],
            }
        )
    return export


def _author(kind: str) -> str:
    return {ActorKind.CUSTOMER: "you", ActorKind.STAFF: "staff"}.get(kind, "system")


# Anonymising --------------------------------------------------------------------------------


@transaction.atomic(savepoint=False)
def anonymise_case(case: Case) -> dict[str, int]:
    """Empty the case's texts, its thread and its history's notes, delete its files (after
    commit) and stamp `anonymised_at` the first time. Running it again changes nothing."""
    rows = Case.objects.filter(pk=case.pk)
    # The texts are encrypted: the database cannot compare them, Python does.
    current = rows.values(*_CASE_TEXTS).first() or {}
    changed = 0
    if any(current.get(name) != value for name, value in _CASE_TEXTS.items()):
        changed = rows.update(**_CASE_TEXTS)
    rows.filter(anonymised_at__isnull=True).update(anonymised_at=timezone.now())
    for name, value in _CASE_TEXTS.items():
        setattr(case, name, value)
    case.anonymised_at = rows.values_list("anonymised_at", flat=True).first()
    written = [
        pk for pk, body in Message.objects.filter(case_id=case.pk).values_list("pk", "body") if body
    ]
    messages = Message.objects.filter(pk__in=written).update(body="")
    search.index_cases([case.pk])
    attachments = Attachment.objects.filter(case_id=case.pk)
    names = list(attachments.values_list("file", flat=True))
    deleted, _by_model = attachments.delete()
    events = _scrub_history(case)
    reminders = Reminder.objects.filter(case_id=case.pk).exclude(note="").update(note="")
    notes = Notification.objects.filter(case_id=case.pk).exclude(note="").update(note="")
    forget_files_after_commit(names)
    return counted(
        cases=changed,
        messages=messages,
        attachments=deleted,
        events=events,
        reminders=reminders,
        notifications=notes,
    )


def _scrub_history(case: Case) -> int:
    changed = []
    for event in (
        CaseEvent.objects.filter(case_id=case.pk).exclude(data={}).only("pk", "data", "kind")
    ):
        scrubbed = scrubbed_event_data(event.kind, event.data)
        if scrubbed != event.data:
            event.data = scrubbed
            changed.append(event)
    CaseEvent.objects.bulk_update(changed, ["data"], batch_size=500)
    return len(changed)


def scrubbed_event_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A history event's data without what a person wrote: a contact change keeps the names of
    the fields changed, file lists become counts, notes and reasons become empty."""
    if kind == EventKind.CONTACT_CHANGED:
        fields = data.get("fields") if set(data) == {"fields"} else sorted(data)
        return {"fields": fields}
    scrubbed: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FREE_TEXT_KEYS:
            scrubbed[key] = value
        elif isinstance(value, list):
            scrubbed[key] = len(value)
        elif isinstance(value, str):
            scrubbed[key] = ""
        else:
            scrubbed[key] = value
    return scrubbed


def purge_search_index(using: str | None = None) -> bool:
    """Kept for the privacy app's job: the text index (keyed hashes of text pieces, never text)
    deletes an anonymised case's pieces as it happens (anonymise_case), so nothing is left to
    merge away. Returns whether it had anything to do: never."""
    return False
