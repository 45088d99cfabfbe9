"""Declared personal data (house rule 8): the shapes every app's `personal_data` module uses, the
helpers they share, and core's own hooks.

Each app that stores personal data has a module `concilia/<app>/personal_data.py`, listed in
settings.PERSONAL_DATA_MODULES (lower floors never import the privacy app, which calls them):

    DECLARED = [PersonalFields("cases.Case", fields=("subject", ...), exported=(...))]

    def export_customer(customer) -> Export: ...                 # what the customer gets a copy of
    def anonymise_case(case) -> dict[str, int]: ...  # what it holds of one case; counts
    def erase_customer(customer, *, reason: str) -> dict[str, int]: ...  # the rest of theirs

Erasing a customer runs every app's `anonymise_case` on each of their cases, then every app's
`erase_customer` on what is theirs beyond cases (contact data, conversations without a case).
Erasure anonymises rows that statistics count (a case keeps its category, outcome and dates)
and deletes what is only personal (files, sign-in links); files leave the storage after commit
(`forget_files`). Every hook runs inside the caller's transaction and is idempotent.

Core's own tables: the audit log keeps its entries (they name personal fields and a customer's
id, never values, and cannot change without breaking the hash chain: the proof that an erasure
happened is itself an entry); a dead job's error may quote an email address a mail server
refused, which erasure blanks.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.files.storage import storages
from django.db import models

from concilia.core.jobs import job
from concilia.core.tasks import enqueue_with_change

# How erasure treats a model's personal fields.
ANONYMISED = "anonymised"  # values replaced, the row kept for statistics
DELETED = "deleted"  # rows (and their files) removed
KEPT = "kept"  # kept on purpose; `note` says why

# What an anonymised short text (a subject, a name) reads; long texts become "".
ERASED_TEXT = "—"
# The domain of the addresses that stand in for erased ones (".invalid" never resolves).
ERASED_DOMAIN = "erased.invalid"


@dataclass(frozen=True)
class PersonalFields:
    """One model's personal fields: which the customer's export holds, and what erasure does.
    Which are encrypted is read from the fields themselves (concilia.core.fields)."""

    model: str  # "app_label.ModelName"
    fields: tuple[str, ...]
    exported: tuple[str, ...] = ()
    erasure: str = ANONYMISED
    note: str = ""

    @property
    def model_class(self) -> type[models.Model]:
        return apps.get_model(self.model)

    @property
    def encrypted(self) -> tuple[str, ...]:
        model = self.model_class
        return tuple(
            name for name in self.fields if getattr(model._meta.get_field(name), "encrypted", False)
        )


@dataclass(frozen=True)
class ExportedFile:
    """A stored file that goes into the customer's export, at `path` inside the zip."""

    path: str
    name: str  # its name in the attachments storage
    sha256: str = ""


@dataclass
class Export:
    """One app's part of a customer's export: JSON-ready data and the files that go with it."""

    data: dict[str, Any] = field(default_factory=dict)
    files: list[ExportedFile] = field(default_factory=list)


def exported_files(folder: str, stored: Iterable[Any]) -> list[ExportedFile]:
    """Uploaded files (each with `file`, `original_name` and `sha256`) for the export, numbered
    in `folder` under the names they were sent with."""
    return [
        ExportedFile(
            path=f"{folder}/{number:02d}-" + safe_file_name(item.original_name, f"file-{number}"),
            name=item.file.name,
            sha256=item.sha256,
        )
        for number, item in enumerate(stored, start=1)
    ]


def erased_email(kind: str, pk: int) -> str:
    """An address that stands in for an erased one and stays unique (customer 7: erased-customer-7@…)."""
    return f"erased-{kind}-{pk}@{ERASED_DOMAIN}"


def iso(value: Any) -> Any:
    """A date or time as ISO 8601 text (None stays None) for the export's JSON."""
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def counted(**counts: int) -> dict[str, int]:
    """Counts without the zeros: what a hook changed."""
    return {name: number for name, number in counts.items() if number}


def add_counts(total: Counter[str], part: Mapping[str, int]) -> None:
    for name, number in part.items():
        total[name] += number


def summed(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Several hooks' counts added up."""
    total: Counter[str] = Counter()
    for part in parts:
        add_counts(total, part)
    return dict(total)


def safe_file_name(name: str, fallback: str) -> str:
    """A file name for inside a zip: no folders, no control characters, never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    return base[:120] or fallback


def file_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# Files ----------------------------------------------------------------------------------------


@job()
def forget_files(*, names: list[str]) -> None:
    """Delete files from the attachments storage (their rows are already gone). Idempotent: a
    file already deleted is simply not there."""
    storage = storages["attachments"]
    for name in names:
        if name and storage.exists(name):
            storage.delete(name)


def forget_files_after_commit(names: Iterable[str]) -> int:
    """Queue the deletion of these stored files for when the transaction commits (a rollback
    keeps them, as it keeps their rows); returns how many."""
    found = sorted({name for name in names if name})
    if found:
        enqueue_with_change(forget_files, names=found)
    return len(found)


# Core's own hooks -----------------------------------------------------------------------------

DECLARED = [
    PersonalFields(
        "core.AuditEntry",
        fields=("customer_pk", "ip_address", "user_agent"),
        erasure=KEPT,
        note=(
            "Append-only and hash-chained: entries name personal fields and a customer's id, never "
            "their values; the addresses and browsers requests came from are kept for "
            "accountability (GDPR art. 5(2), 17(3)(e)). The erasure itself is recorded there."
        ),
    ),
    PersonalFields(
        "core.DeadJob",
        fields=("error",),
        note="A failed email's error may quote the address the mail server refused.",
    ),
]


def export_customer(customer: Any) -> Export:
    """Who accessed or changed the customer's data, from the audit log (kinds of actor, not
    staff names: those are the staff's personal data)."""
    from concilia.core.models import AuditEntry

    entries = (
        AuditEntry.objects.filter(customer_pk=customer.pk)
        .order_by("seq")
        .values("at", "action", "actor_kind", "object_type", "case_reference", "fields")
    )
    return Export(
        data={
            "access_log": [
                {
                    "at": iso(entry["at"]),
                    "action": entry["action"],
                    "by": entry["actor_kind"],
                    "object": entry["object_type"],
                    "case": entry["case_reference"],
                    "fields": entry["fields"],
                }
                for entry in entries.iterator(chunk_size=2000)
            ]
        }
    )


def erase_customer(customer: Any, *, reason: str) -> dict[str, int]:
    """Blank the errors of failed jobs that quote the customer's email address."""
    from concilia.core.models import DeadJob

    email = (customer.email or "").strip()
    if not email or email.endswith("@" + ERASED_DOMAIN):
        return {}
    changed = 0
    for dead in DeadJob.objects.filter(error__icontains=email).only("pk", "error"):
        dead.error = _without(dead.error, email)
        dead.save(update_fields=["error"])
        changed += 1
    return counted(dead_job_errors=changed)


def _without(text: str, value: str) -> str:
    lowered, target = text.lower(), value.lower()
    parts, start = [], 0
    while (found := lowered.find(target, start)) >= 0:
        parts.append(text[start:found] + ERASED_TEXT)
        start = found + len(value)
    return "".join(parts) + text[start:]
