"""SLA clocks of a case: business time of its team's calendar, paused while it waits for the customer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from concilia.cases.models import Case, Category, Status
from concilia.core.calendar import WorkingCalendar, default_calendar

# Share of the time used from which a deadline counts as at risk (amber; alert sent once).
AT_RISK = 0.8


def calendar_for(case: Case) -> WorkingCalendar:
    team = case.team if case.team_id else None
    return team.working_calendar() if team is not None else default_calendar()


def set_deadlines(case: Case, category: Category, now: dt.datetime) -> None:
    """Both clocks of a case that starts (or starts again) now, in its team's calendar."""
    calendar = calendar_for(case)
    case.deadline = calendar.deadline(now, category.response_days)
    case.first_response_due = (
        calendar.deadline(now, category.first_response_days)
        if case.first_response_at is None
        else None
    )
    case.sla_alerted = ""
    case.sla_alert_due_at = _at_risk(calendar, now, case.deadline)


def pause(case: Case, now: dt.datetime) -> None:
    if case.sla_paused_at is None:
        case.sla_paused_at = now


def resume(case: Case, now: dt.datetime) -> None:
    """Move the deadlines on by the business time the case waited for the customer."""
    if case.sla_paused_at is None:
        return
    calendar = calendar_for(case)
    paused = calendar.seconds_between(case.sla_paused_at, now)
    if paused > 0:
        case.deadline = calendar.add_seconds(case.deadline, paused)
        if case.first_response_due is not None:
            case.first_response_due = calendar.add_seconds(case.first_response_due, paused)
        if case.sla_alert_due_at is not None:
            case.sla_alert_due_at = calendar.add_seconds(case.sla_alert_due_at, paused)
    case.sla_paused_at = None


@dataclass(frozen=True)
class Clock:
    """Where a case stands against its deadline."""

    used: float  # share of the business time used: 0.5 half, 1.0 late
    colour: str  # "green", "amber", "red", or "grey" (closed)
    paused: bool

    @property
    def percent(self) -> int:
        return round(self.used * 100)


def clock(case: Case, now: dt.datetime | None = None) -> Clock:
    now = now or timezone.now()
    if case.status == Status.CLOSED:
        return Clock(used=0.0, colour="grey", paused=False)
    paused = case.sla_paused_at is not None
    until = case.sla_paused_at or now
    if until >= case.deadline:
        # Late: no need to count the business time of a case that may be months overdue.
        return Clock(used=1.0, colour="red", paused=paused)
    calendar = calendar_for(case)
    total = calendar.seconds_between(case.created_at, case.deadline)
    share = calendar.seconds_between(case.created_at, until) / total if total else 0.0
    colour = "red" if share >= 1.0 else "amber" if share >= AT_RISK else "green"
    return Clock(used=share, colour=colour, paused=paused)


def _at_risk(calendar: WorkingCalendar, start: dt.datetime, deadline: dt.datetime) -> dt.datetime:
    return calendar.add_seconds(start, calendar.seconds_between(start, deadline) * AT_RISK)


def at_risk_instant(case: Case) -> dt.datetime:
    """When AT_RISK of the time from opening to the deadline will have been used."""
    return _at_risk(calendar_for(case), case.created_at, case.deadline)
