"""Business-day arithmetic for deadlines: weekends and the holidays in the Holiday table do not count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from concilia.core.memo import remember_for


def add_business_days(start: dt.date, days: int, holidays: Iterable[dt.date] = ()) -> dt.date:
    """The date `days` business days after `start` (a day received counts from the next business day)."""
    closed = set(holidays)
    current = start
    remaining = days
    while remaining > 0:
        current += dt.timedelta(days=1)
        if current.weekday() < 5 and current not in closed:
            remaining -= 1
    return current


@remember_for(seconds=10)
def holidays_between(start: dt.date, end: dt.date) -> frozenset[dt.date]:
    from concilia.core.models import Holiday

    return frozenset(
        Holiday.objects.filter(date__gt=start, date__lte=end).values_list("date", flat=True)
    )


def business_deadline(received: dt.datetime, days: int, tz_name: str | None = None) -> dt.datetime:
    """The end of the business day that falls `days` business days after `received`, in UTC."""
    tz = ZoneInfo(tz_name or settings.TIME_ZONE)
    local = timezone.localtime(received, tz)
    horizon = local.date() + dt.timedelta(days=days * 2 + 30)
    due_date = add_business_days(local.date(), days, holidays_between(local.date(), horizon))
    end_of_day = dt.datetime.combine(due_date, dt.time(23, 59, 59), tzinfo=tz)
    return end_of_day.astimezone(dt.UTC)
