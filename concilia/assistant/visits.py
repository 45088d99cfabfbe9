"""Technician visits: the free two-hour windows of the next business days, and booking one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import formats, timezone

from concilia.assistant.models import TechnicianVisit
from concilia.core.calendar import holidays_between

# Local start times of the windows offered each working day (two hours each).
WINDOWS = (dt.time(9), dt.time(11), dt.time(16))
WINDOW_HOURS = 2


@dataclass(frozen=True)
class VisitSlot:
    starts_at: dt.datetime
    ends_at: dt.datetime

    @property
    def key(self) -> str:
        return "visit:" + self.starts_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M")

    def as_state(self) -> dict[str, str]:
        return {"starts": self.starts_at.isoformat(), "ends": self.ends_at.isoformat()}


def _candidates(days: int = 10) -> list[VisitSlot]:
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    closed = holidays_between(today, today + dt.timedelta(days=days * 2))
    found: list[VisitSlot] = []
    day = today + dt.timedelta(days=1)
    while len({slot.starts_at.date() for slot in found}) < days:
        if day.weekday() < 5 and day not in closed:
            for start in WINDOWS:
                begins = dt.datetime.combine(day, start, tzinfo=tz)
                found.append(VisitSlot(begins, begins + dt.timedelta(hours=WINDOW_HOURS)))
        day += dt.timedelta(days=1)
    return found


def _booked(slots: list[VisitSlot]) -> dict[dt.datetime, int]:
    if not slots:
        return {}
    rows = (
        TechnicianVisit.objects.filter(
            starts_at__gte=slots[0].starts_at, starts_at__lte=slots[-1].starts_at
        )
        .values("starts_at")
        .annotate(n=Count("id"))
    )
    return {row["starts_at"]: row["n"] for row in rows}


def free_slots(limit: int = 4) -> list[VisitSlot]:
    """The next windows with room for one more visit, earliest first."""
    slots = _candidates()
    booked = _booked(slots)
    capacity = settings.TECHNICIAN_CAPACITY
    return [s for s in slots if booked.get(s.starts_at, 0) < capacity][:limit]


def slot_from_key(key: str) -> VisitSlot | None:
    try:
        starts = dt.datetime.strptime(key.removeprefix("visit:"), "%Y%m%dT%H%M").replace(
            tzinfo=dt.UTC
        )
    except ValueError:
        return None
    return VisitSlot(starts, starts + dt.timedelta(hours=WINDOW_HOURS))


def is_free(slot: VisitSlot) -> bool:
    taken = TechnicianVisit.objects.filter(starts_at=slot.starts_at).count()
    return taken < settings.TECHNICIAN_CAPACITY


def describe(state: dict[str, Any]) -> str:
    starts = timezone.localtime(dt.datetime.fromisoformat(state["starts"]))
    ends = timezone.localtime(dt.datetime.fromisoformat(state["ends"]))
    return f"{formats.date_format(starts, 'l j F')} {starts:%H:%M}-{ends:%H:%M}"
