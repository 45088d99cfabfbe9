"""When a data-subject request must be answered, in calendar time (not business days).

- GDPR (article 12(3)): within one month of receipt, extendable by two further months where
  necessary given the requests' complexity and number; the person is told of the extension and
  why within the first month. A month ends on the same date of the next month, or on its last
  day when it has no such date (Regulation 1182/71, article 3(2)(c)); the whole of that day counts.
- CCPA (Cal. Civ. Code 1798.130(a)(2)): within 45 days, extendable once by 45 more with notice.

Days are counted in the site's time zone (settings.TIME_ZONE) and end at 23:59:59 there.
"""

from __future__ import annotations

import calendar
import datetime as dt

from django.utils import timezone

from concilia.privacy.models import Regime

_END_OF_DAY = dt.time(23, 59, 59)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same date `months` later, or the last day of that month when it is shorter."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _end_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, _END_OF_DAY))


def _period(regime: str, start: dt.date, periods: int) -> dt.date:
    if regime == Regime.CCPA:
        return start + dt.timedelta(days=45 * periods)
    return add_months(start, periods)


def due_at(regime: str, received_at: dt.datetime) -> dt.datetime:
    """The legal deadline of a request received at `received_at`."""
    return _end_of(_period(regime, timezone.localdate(received_at), 1))


def latest_extension(regime: str, received_at: dt.datetime) -> dt.datetime:
    """The furthest an extension may move the deadline: three months (GDPR), 90 days (CCPA)."""
    periods = 2 if regime == Regime.CCPA else 3
    return _end_of(_period(regime, timezone.localdate(received_at), periods))


def end_of_day(day: dt.date) -> dt.datetime:
    """A date a person picked (an extension's new deadline) as the end of that day."""
    return _end_of(day)
