"""Reads of the audit log for the data-protection officer: entries matching the filters, newest
first, a page at a time (keyset on the entry number: no OFFSET, no total)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from concilia.core.models import AuditEntry
from concilia.customers.models import Customer

PAGE_SIZE = 50


def customers_with_email(email: str) -> list[int]:
    return list(Customer.objects.with_email(email).values_list("pk", flat=True))


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight of the day in the site's time zone, as the person reading the page counts days."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def matching_entries(filters: dict[str, Any]) -> QuerySet[AuditEntry]:
    """The entries the filters (AuditFilterForm's cleaned data) select, newest first."""
    entries = AuditEntry.objects.order_by("-seq")
    if filters.get("reference"):
        entries = entries.filter(case_reference=filters["reference"])
    if filters.get("email"):
        entries = entries.filter(customer_pk__in=customers_with_email(filters["email"]))
    if filters.get("actor"):
        actor = filters["actor"].strip()
        entries = entries.filter(Q(actor_label__icontains=actor) | Q(actor_id=actor))
    if filters.get("action"):
        entries = entries.filter(action=filters["action"])
    if filters.get("since"):
        entries = entries.filter(at__gte=_start_of(filters["since"]))
    if filters.get("until"):
        entries = entries.filter(at__lt=_start_of(filters["until"] + dt.timedelta(days=1)))
    return entries


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    next_before: int | None  # the cursor of the following (older) page, if there is one


def page(filters: dict[str, Any], size: int | None = None) -> Page:
    size = size or PAGE_SIZE
    entries = matching_entries(filters)
    if filters.get("before"):
        entries = entries.filter(seq__lt=filters["before"])
    rows = list(entries[: size + 1])
    more = len(rows) > size
    return Page(rows[:size], rows[size - 1].seq if more else None)
