"""The periodic sweep of deadlines and alerts: agents' alerts that fell due and SLA warnings, each
sent exactly once however many sweepers run at the same time.

Who is told:
- an alert that falls due: the case's owner, or whoever set the alert when the case has no
  (active) owner, as `actions.set_reminder` promises; alerts on closed cases are sent too;
- a deadline at risk (AT_RISK of its business time used): the owner, or the team's supervisors
  when nobody owns the case;
- a missed deadline: the owner and the team's supervisors (a breach is theirs to know of).
- a legal deadline (`legal.py`) near (`warn_days` working days left) or missed: the same people,
  once each, whatever the case's status until it is closed (the legal clock never pauses).

Paused clocks (waiting for the customer) and closed cases get no SLA warning. Each warning is
recorded in `Case.sla_alerted` and the next one's instant in `Case.sla_alert_due_at`, which the
SLA clocks keep (see `sla.set_deadlines` and `sla.resume`); a case first seen past its deadline
gets the breach only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from concilia.accounts.models import User
from concilia.cases.actions import _event, _notify, _refresh_next_alert
from concilia.cases.models import (
    ActorKind,
    Case,
    EventKind,
    NotificationKind,
    Reminder,
    Status,
)
from concilia.core.models import PeriodicRun

logger = logging.getLogger(__name__)

JOB = "cases-sweep"
BATCH = 200

AT_RISK = "at_risk"
BREACHED = "breached"

M = TypeVar("M", bound=models.Model)


@dataclass
class SweepResult:
    """What one sweep did."""

    alerts: int = 0
    at_risk: int = 0
    breached: int = 0
    legal_near: int = 0
    legal_breached: int = 0
    failed: int = 0
    # What the jobs of other apps did (settings.SWEEP_JOBS): {"expired offers": 2}
    others: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"{self.alerts} alerts due, {self.at_risk} deadlines at risk, {self.breached} missed"
        if self.legal_near or self.legal_breached:
            text += f", {self.legal_near} legal deadlines near, {self.legal_breached} legal missed"
        text += "".join(f", {count} {what}" for what, count in self.others.items())
        return text + (f", {self.failed} failed (see the log)" if self.failed else "")


def _in_batches(queryset: models.QuerySet[M], field: str, size: int) -> Iterator[M]:
    """Rows in (field, pk) order, read `size` at a time from where the last page ended."""
    after: tuple[object, int] | None = None
    while True:
        page = queryset
        if after is not None:
            page = page.filter(**{f"{field}__gte": after[0]}).exclude(
                **{field: after[0], "pk__lte": after[1]}
            )
        rows = list(page.order_by(field, "pk")[:size])
        yield from rows
        if len(rows) < size:
            return
        after = (getattr(rows[-1], field), rows[-1].pk)


def due_reminders(now: dt.datetime) -> models.QuerySet[Reminder]:
    """Alerts whose date has come, not yet sent nor done (the `reminder_pending` index)."""
    return Reminder.objects.filter(
        due_at__lte=now, notified_at__isnull=True, done_at__isnull=True
    ).select_related("created_by")


def due_sla_warnings(now: dt.datetime) -> models.QuerySet[Case]:
    """Running clocks whose next warning is due (the `case_sla_alert_due` index)."""
    return (
        Case.objects.exclude(status=Status.CLOSED)
        .filter(sla_paused_at__isnull=True, sla_alert_due_at__lte=now)
        .select_related("assignee")
        .only(
            "reference",
            "status",
            "team",
            "assignee",
            "deadline",
            "sla_paused_at",
            "sla_alerted",
            "sla_alert_due_at",
        )
    )


def _active(user: User | None) -> User | None:
    return user if user is not None and user.is_active else None


class Supervisors:
    """The active supervisors of each team, read once per sweep."""

    def __init__(self) -> None:
        self._by_team: dict[int, list[User]] = {}

    def of(self, team_id: int | None) -> list[User]:
        if team_id is None:
            return []
        if team_id not in self._by_team:
            may_supervise = User.objects.filter(
                Q(is_superuser=True)
                | Q(
                    groups__permissions__codename="supervise_teams",
                    groups__permissions__content_type__app_label="accounts",
                )
                | Q(
                    user_permissions__codename="supervise_teams",
                    user_permissions__content_type__app_label="accounts",
                )
            )
            self._by_team[team_id] = list(
                User.objects.filter(is_active=True, groups__team=team_id)
                .filter(pk__in=may_supervise.values("pk"))
                .order_by("pk")
            )
        return self._by_team[team_id]


@transaction.atomic
def send_due_reminder(*, reminder: Reminder, now: dt.datetime) -> bool:
    """Tell the case's owner (or whoever set it) that an alert is due; false if already sent."""
    case = (
        Case.objects.select_for_update(of=("self",))
        .select_related("assignee")
        .get(pk=reminder.case_id)
    )
    claimed = Reminder.objects.filter(
        pk=reminder.pk, notified_at__isnull=True, done_at__isnull=True
    ).update(notified_at=now)
    if not claimed:
        return False
    _event(
        case,
        EventKind.REMINDER_DUE,
        actor_kind=ActorKind.SYSTEM,
        data={
            "reminder": reminder.pk,
            "due_at": reminder.due_at.isoformat(),
            "note": reminder.note,
        },
        now=now,
    )
    recipient = _active(case.assignee) or reminder.created_by
    _notify(recipient, case, NotificationKind.ALERT_DUE, note=reminder.note)
    _refresh_next_alert(case)
    Case.objects.filter(pk=case.pk).update(next_alert_at=case.next_alert_at)
    return True


@transaction.atomic
def send_sla_warning(
    *, case: Case, now: dt.datetime, supervisors: Supervisors | None = None
) -> str | None:
    """Warn that a deadline is at risk or missed, once: returns the warning sent, or None.

    The case row is only changed if it still is as read, so an agent's concurrent change of its
    clock (pause, resume, close, reopen) or another sweeper that got there first wins; the
    case's version is left alone, so a warning never makes an agent's save fail.
    """
    supervisors = supervisors or Supervisors()
    if case.deadline <= now and case.sla_alerted != BREACHED:
        warning: str | None = BREACHED
    elif case.deadline > now and case.sla_alerted == "":
        warning = AT_RISK
    else:
        warning = None  # nothing to send: just put the next warning at the deadline (or never)
    unchanged = Case.objects.exclude(status=Status.CLOSED).filter(
        pk=case.pk,
        sla_paused_at__isnull=True,
        deadline=case.deadline,
        sla_alerted=case.sla_alerted,
        sla_alert_due_at=case.sla_alert_due_at,
    )
    alerted = warning or case.sla_alerted
    next_due = case.deadline if alerted != BREACHED else None
    if not unchanged.update(sla_alerted=alerted, sla_alert_due_at=next_due) or warning is None:
        return None
    _event(
        case,
        EventKind.SLA_BREACHED if warning == BREACHED else EventKind.SLA_AT_RISK,
        actor_kind=ActorKind.SYSTEM,
        data={"deadline": case.deadline.isoformat()},
        now=now,
    )
    _tell(
        case,
        warning,
        supervisors,
        NotificationKind.SLA_BREACHED if warning == BREACHED else NotificationKind.SLA_AT_RISK,
    )
    return warning


def _tell(case: Case, warning: str, supervisors: Supervisors, kind: str, note: str = "") -> None:
    """A warning at risk goes to the owner (else the team's supervisors); a breach to both."""
    owner = _active(case.assignee)
    if warning == BREACHED:
        recipients = [owner, *supervisors.of(case.team_id)]
    else:
        recipients = [owner] if owner else supervisors.of(case.team_id)
    told: set[int] = set()
    for person in recipients:
        if person is not None and person.pk not in told:
            told.add(person.pk)
            _notify(person, case, kind, note=note)


def due_legal_warnings(now: dt.datetime) -> models.QuerySet[Case]:
    """Open cases whose next legal-deadline warning is due (the `case_legal_alert_due` index)."""
    return (
        Case.objects.exclude(status=Status.CLOSED)
        .filter(legal_alert_due_at__lte=now)
        .select_related("assignee", "jurisdiction")
        .only(
            "reference",
            "status",
            "team",
            "assignee",
            "jurisdiction__code",
            "jurisdiction__time_zone",
            "legal_deadline",
            "legal_alerted",
            "legal_alert_due_at",
        )
    )


@transaction.atomic
def send_legal_warning(
    *, case: Case, now: dt.datetime, supervisors: Supervisors | None = None
) -> str | None:
    """Warn that a legal deadline is near (`warn_days` working days left) or missed, once each:
    returns the warning sent, or None. Like the SLA warning, the row is only changed if it is
    still as read, so a concurrent change of jurisdiction or another sweeper wins."""
    supervisors = supervisors or Supervisors()
    deadline = case.legal_deadline
    unchanged = Case.objects.exclude(status=Status.CLOSED).filter(
        pk=case.pk,
        legal_deadline=deadline,
        legal_alerted=case.legal_alerted,
        legal_alert_due_at=case.legal_alert_due_at,
    )
    if deadline is None:  # no deadline any more (changed jurisdiction): nothing to warn of
        unchanged.update(legal_alert_due_at=None)
        return None
    if deadline <= now and case.legal_alerted != BREACHED:
        warning: str | None = BREACHED
    elif deadline > now and case.legal_alerted == "":
        warning = AT_RISK
    else:
        warning = None
    alerted = warning or case.legal_alerted
    next_due = deadline if alerted != BREACHED else None
    if not unchanged.update(legal_alerted=alerted, legal_alert_due_at=next_due) or warning is None:
        return None
    code = case.jurisdiction.code if case.jurisdiction_id else ""
    _event(
        case,
        EventKind.LEGAL_BREACHED if warning == BREACHED else EventKind.LEGAL_AT_RISK,
        actor_kind=ActorKind.SYSTEM,
        data={"legal_deadline": deadline.isoformat(), "jurisdiction": code},
        now=now,
    )
    kind = (
        NotificationKind.LEGAL_BREACHED if warning == BREACHED else NotificationKind.LEGAL_AT_RISK
    )
    # The legal day in the jurisdiction's time zone: "ES 2026-03-05".
    zone = ZoneInfo(case.jurisdiction.time_zone) if case.jurisdiction_id else dt.UTC
    _tell(case, warning, supervisors, kind, note=f"{code} {deadline.astimezone(zone):%Y-%m-%d}")
    return warning


def _each(
    rows: Iterator[M], send: Callable[[M], object], what: str, result: SweepResult
) -> Iterator[object]:
    """Send for every row in its own transaction; one failing row is logged, not fatal."""
    for row in rows:
        try:
            yield send(row)
        except Exception:
            logger.exception("Sweep: %s %s failed", what, row.pk)
            result.failed += 1


def sweep(*, now: dt.datetime | None = None, batch_size: int = BATCH) -> SweepResult:
    """Send every alert and SLA warning due at `now`, reading them `batch_size` at a time."""
    now = now or timezone.now()
    result = SweepResult()
    reminders = _in_batches(due_reminders(now), "due_at", batch_size)
    for sent in _each(reminders, lambda r: send_due_reminder(reminder=r, now=now), "alert", result):
        result.alerts += bool(sent)
    supervisors = Supervisors()
    cases = _in_batches(due_sla_warnings(now), "sla_alert_due_at", batch_size)
    for warning in _each(
        cases,
        lambda c: send_sla_warning(case=c, now=now, supervisors=supervisors),
        "case",
        result,
    ):
        result.at_risk += warning == AT_RISK
        result.breached += warning == BREACHED
    legal_cases = _in_batches(due_legal_warnings(now), "legal_alert_due_at", batch_size)
    for warning in _each(
        legal_cases,
        lambda c: send_legal_warning(case=c, now=now, supervisors=supervisors),
        "case (legal deadline)",
        result,
    ):
        result.legal_near += warning == AT_RISK
        result.legal_breached += warning == BREACHED
    # Periodic work of higher apps (offers that expire), named in settings: cases imports none.
    for what, path in settings.SWEEP_JOBS.items():
        try:
            result.others[what] = import_string(path)(now=now)
        except Exception:
            logger.exception("Sweep: %s failed", what)
            result.failed += 1
    return result


def sweep_if_due(*, period: dt.timedelta, now: dt.datetime | None = None) -> SweepResult | None:
    """Sweep unless another process already started this period's sweep (then None)."""
    now = now or timezone.now()
    if not PeriodicRun.claim(JOB, period=period, now=now):
        return None
    try:
        result = sweep(now=now)
    except Exception as error:
        PeriodicRun.finish(JOB, now=timezone.now(), result=repr(error), failed=True)
        raise
    PeriodicRun.finish(JOB, now=timezone.now(), result=str(result), failed=bool(result.failed))
    return result
