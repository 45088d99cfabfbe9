"""Periodic jobs of analytics: the weekly summary email to supervisors (Mondays, for the week
that ended on Sunday), sent once per week however many sweepers run."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.analytics import kpis, tables
from concilia.analytics.models import SummaryOptOut
from concilia.cases.access import can_supervise
from concilia.core.jobs import job
from concilia.core.mail import compose
from concilia.core.models import PeriodicRun
from concilia.core.tasks import enqueue_with_change

JOB = "analytics-weekly-summary"
# Sent on Monday from this hour (company time), once: the claim lasts most of the week.
SEND_FROM_HOUR = 7
CLAIM_PERIOD = dt.timedelta(days=6)


def last_week(now: dt.datetime) -> tuple[dt.date, dt.date]:
    """Monday to Sunday of the week before `now`'s (company time zone)."""
    monday = timezone.localtime(now).date() - dt.timedelta(days=timezone.localtime(now).weekday())
    return monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)


def recipients() -> list[User]:
    """Active supervisors and administrators with an email address who have not opted out."""
    opted_out = SummaryOptOut.objects.values("user_id")
    people = (
        User.objects.filter(is_active=True)
        .exclude(email="")
        .exclude(pk__in=opted_out)
        .order_by("pk")
    )
    return [person for person in people if can_supervise(person)]


def weekly_sweep(*, now: dt.datetime) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): on Monday morning, queue one summary per
    supervisor; returns how many were queued (0 on other days or when already done)."""
    local = timezone.localtime(now)
    if local.weekday() != 0 or local.hour < SEND_FROM_HOUR:
        return 0
    if not PeriodicRun.claim(JOB, period=CLAIM_PERIOD, now=now):
        return 0
    start, end = last_week(now)
    people = recipients()
    for person in people:
        enqueue_with_change(
            send_weekly_summary, user_id=person.pk, start=start.isoformat(), end=end.isoformat()
        )
    PeriodicRun.finish(JOB, now=timezone.now(), result=f"{len(people)} summaries queued")
    return len(people)


@job()
def send_weekly_summary(*, user_id: int, start: str, end: str) -> None:
    """Email one supervisor last week's figures, in their language (nothing if they opted out
    since it was queued)."""
    person = User.objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if person is None or SummaryOptOut.objects.filter(user=person).exists():
        return
    filters = kpis.Filters(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end))
    summary = kpis.summary(filters)
    with translation.override(person.language):
        context = {
            "person": person,
            "filters": filters,
            "figures": tables.figures(summary),
            "language": person.language,
            "dashboard_url": settings.BASE_URL
            + reverse("analytics:dashboard")
            + f"?start={start}&end={end}",
        }
        compose(
            subject=_("Weekly summary: %(start)s to %(end)s") % {"start": start, "end": end},
            template="analytics/email/weekly",
            context=context,
            to=[person.email],
        ).send()
