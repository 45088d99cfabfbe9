"""Business-day arithmetic for deadlines: weekends and the holidays in the Holiday table do not count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


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


def business_deadline(received: dt.datetime, days: int, tz_name: str | None = None) -> dt.datetime:
    """The end of the business day that falls `days` business days after `received`, in UTC."""
    from concilia.core.models import Holiday

    tz = ZoneInfo(tz_name or settings.TIME_ZONE)
    local = timezone.localtime(received, tz)
    horizon = local.date() + dt.timedelta(days=days * 2 + 30)
    holidays = Holiday.objects.filter(date__gt=local.date(), date__lte=horizon).values_list(
        "date", flat=True
    )
    due_date = add_business_days(local.date(), days, holidays)
    end_of_day = dt.datetime.combine(due_date, dt.time(23, 59, 59), tzinfo=tz)
    return end_of_day.astimezone(dt.UTC)
