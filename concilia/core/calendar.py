"""Business time for deadlines and SLA clocks: working days and hours of a calendar, without its
holidays (the Holiday table: holidays of every calendar plus the calendar's own)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from concilia.core.memo import remember_for

# A clock never walks further than this (a case open for ten years is simply "very late").
_MAX_DAYS = 3700
_END_OF_DAY = dt.time(23, 59, 59)


def add_business_days(
    start: dt.date, days: int, holidays: Iterable[dt.date] = (), workdays: Iterable[int] = range(5)
) -> dt.date:
    """The date `days` business days after `start` (a day received counts from the next business day)."""
    closed = set(holidays)
    open_days = set(workdays)
    current = start
    remaining = days
    while remaining > 0:
        current += dt.timedelta(days=1)
        if current.weekday() in open_days and current not in closed:
            remaining -= 1
    return current


@remember_for(seconds=10)
def _holidays_of(calendar_id: int | None) -> frozenset[dt.date]:
    """Every holiday of one calendar (and of all calendars): a small table, read once a while."""
    from django.db.models import Q

    from concilia.core.models import Holiday

    which = Q(calendar__isnull=True)
    if calendar_id is not None:
        which |= Q(calendar_id=calendar_id)
    return frozenset(Holiday.objects.filter(which).values_list("date", flat=True))


def holidays_between(
    start: dt.date, end: dt.date, calendar_id: int | None = None
) -> frozenset[dt.date]:
    """Holidays after `start` up to `end`: those of every calendar, plus `calendar_id`'s own."""
    return frozenset(day for day in _holidays_of(calendar_id) if start < day <= end)


@dataclass(frozen=True)
class WorkingCalendar:
    """When a team works: weekdays (0 = Monday), opening hours (None: the whole day), time zone."""

    time_zone: str
    workdays: frozenset[int] = frozenset(range(5))
    opens: dt.time | None = None
    closes: dt.time | None = None
    calendar_id: int | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def _holidays(self, start: dt.date, end: dt.date) -> frozenset[dt.date]:
        return holidays_between(start, end, self.calendar_id)

    def _hours(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        opens = dt.datetime.combine(day, self.opens or dt.time(0), tzinfo=self.tz)
        if self.closes is None:
            closes = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.tz)
        else:
            closes = dt.datetime.combine(day, self.closes, tzinfo=self.tz)
        return opens.astimezone(dt.UTC), closes.astimezone(dt.UTC)

    def _working_days(self, first: dt.date, last: dt.date) -> Iterable[dt.date]:
        closed = self._holidays(first - dt.timedelta(days=1), last)
        day = first
        while day <= last:
            if day.weekday() in self.workdays and day not in closed:
                yield day
            day += dt.timedelta(days=1)

    def working_days_between(self, first: dt.date, last: dt.date) -> int:
        """Working days from `first` to `last`, both included (0 when `last` is before `first`)."""
        if last < first:
            return 0
        return sum(1 for _day in self._working_days(first, last))

    def deadline(self, received: dt.datetime, days: int) -> dt.datetime:
        """The close of the business day that falls `days` business days after `received`."""
        start = timezone.localtime(received, self.tz).date()
        margin = dt.timedelta(days=days * 2 + 30)
        horizon = start + margin
        # Holidays are read up to a horizon; a calendar with few working days per week (or many
        # holidays) can land beyond it, so read further until the due day is inside.
        while True:
            due = add_business_days(start, days, self._holidays(start, horizon), self.workdays)
            if due <= horizon:
                break
            horizon = due + margin
        end = dt.datetime.combine(due, self.closes or _END_OF_DAY, tzinfo=self.tz)
        return end.astimezone(dt.UTC)

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Business seconds between two instants (0 when `end` is not after `start`)."""
        if end <= start:
            return 0.0
        first = timezone.localtime(start, self.tz).date()
        last = min(timezone.localtime(end, self.tz).date(), first + dt.timedelta(days=_MAX_DAYS))
        total = 0.0
        for day in self._working_days(first, last):
            opens, closes = self._hours(day)
            overlap = (min(closes, end) - max(opens, start)).total_seconds()
            if overlap > 0:
                total += overlap
        return total

    def add_seconds(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant `seconds` of business time after `start`."""
        remaining = seconds
        day = timezone.localtime(start, self.tz).date()
        last = day + dt.timedelta(days=_MAX_DAYS)
        while day <= last:
            chunk_end = min(day + dt.timedelta(days=60), last)
            for working in self._working_days(day, chunk_end):
                opens, closes = self._hours(working)
                begin = max(opens, start)
                available = (closes - begin).total_seconds()
                if available <= 0:
                    continue
                if remaining <= available:
                    return begin + dt.timedelta(seconds=remaining)
                remaining -= available
            day = chunk_end + dt.timedelta(days=1)
        return start + dt.timedelta(seconds=seconds)


def default_calendar() -> WorkingCalendar:
    """Monday to Friday, all day, in the site's time zone, with the holidays of every calendar."""
    return WorkingCalendar(time_zone=settings.TIME_ZONE)


def business_deadline(
    received: dt.datetime,
    days: int,
    tz_name: str | None = None,
    calendar: WorkingCalendar | None = None,
) -> dt.datetime:
    """The end of the business day that falls `days` business days after `received`, in UTC."""
    calendar = calendar or WorkingCalendar(time_zone=tz_name or settings.TIME_ZONE)
    return calendar.deadline(received, days)
