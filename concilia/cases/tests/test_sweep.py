"""The sweep of alerts and deadlines: each alert and each SLA warning goes out once, to the right
people, on the team's business calendar; and one sweep starts per period however many run.

The people: Ana is an agent of Customer care, Sara supervises Customer care, Bruno is an agent of
Logistics and must never hear about Customer care's cases. The office works 9:00 to 18:00 in
Madrid, Monday to Friday, and 8 December 2026 is a holiday. New cases wait in the team's queue.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from concilia.accounts.models import Role, Team
from concilia.cases import actions, sla
from concilia.cases.models import (
    AssignmentRule,
    Case,
    CaseEvent,
    EventKind,
    Notification,
    NotificationKind,
    Outcome,
    Reminder,
    Status,
    Strategy,
)
from concilia.cases.sweep import JOB, send_due_reminder, send_sla_warning, sweep, sweep_if_due
from concilia.cases.tests.conftest import person
from concilia.core.models import BusinessCalendar, Holiday, PeriodicRun


def at(utc: str) -> dt.datetime:
    return dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_weekly_summary(settings):
    """The analytics' Monday summary goes to supervisors too: these tests count the SLA's mail."""
    settings.SWEEP_JOBS = {
        what: path
        for what, path in settings.SWEEP_JOBS.items()
        if what != "weekly analytics summaries sent"
    }


@pytest.fixture
def care(db):
    office = BusinessCalendar.objects.create(
        name="Madrid", time_zone="Europe/Madrid", opens=dt.time(9), closes=dt.time(18)
    )
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=office)
    team = Team.objects.create(code="care", name_es="Atención", name_en="Care", calendar=office)
    AssignmentRule.objects.create(name="Queue", team=team, strategy=Strategy.TEAM_QUEUE)
    return team


@pytest.fixture
def ana(care):
    return person("ana", Role.AGENT, care)


@pytest.fixture
def sara(care):
    return person("sara", Role.SUPERVISOR, care)


@pytest.fixture
def bruno(db):
    logistics = Team.objects.create(code="logistics", name_es="Logística", name_en="Logistics")
    return person("bruno", Role.AGENT, logistics)


@pytest.fixture
def at_time(monkeypatch):
    """Run an action as if it were `when` (the sweep itself is given its `now`)."""

    def run(when: dt.datetime, action, **kwargs):
        with monkeypatch.context() as frozen:
            frozen.setattr(timezone, "now", lambda: when)
            return action(**kwargs)

    return run


# Opened Tuesday 1 December 2026 at 9:00 Madrid; ten business days (the 8th is off) take it to
# Wednesday 16 December at 18:00: 11 working days of 9 hours, 99 hours in all.
OPENED = at("2026-12-01T08:00:00")
DEADLINE = at("2026-12-16T17:00:00")
# 80% is 79.2 hours: eight full days (1, 2, 3, 4, 7, 9, 10, 11) and 7.2 hours of Monday the 14th.
AT_RISK = at("2026-12-14T15:12:00")
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def case(open_case, care, at_time):
    """Lucía's complaint, waiting in Customer care's queue; without a legal deadline, whose
    warnings test_legal.py tests, so that only the SLA's are counted here."""
    case = at_time(OPENED, open_case)
    Case.objects.filter(pk=case.pk).update(
        jurisdiction=None, legal_deadline=None, legal_alert_due_at=None
    )
    case.refresh_from_db()
    return case


def notified(kind: str, case: Case) -> list[str]:
    return sorted(
        Notification.objects.filter(kind=kind, case=case).values_list(
            "recipient__username", flat=True
        )
    )


def events(case: Case, *kinds: str) -> list[str]:
    return list(case.events.filter(kind__in=kinds).values_list("kind", flat=True))


def nothing_sent(result) -> bool:
    return (result.alerts, result.at_risk, result.breached, result.failed) == (0, 0, 0, 0)


# --- alerts set by agents -------------------------------------------------------------------


def test_a_due_alert_tells_the_owner_once_in_the_app_and_by_email(
    case, ana, sara, at_time, run_tasks
):
    at_time(OPENED, actions.assign_case, case=case, assignee=ana, actor=sara)
    due = at("2026-12-02T09:00:00")
    reminder = actions.set_reminder(case=case, due_at=due, note="Llamar a Lucía", actor=sara)
    run_tasks()  # the confirmation to Lucía and Ana's "assigned to you"
    mail.outbox.clear()

    assert nothing_sent(sweep(now=due - SECOND))
    assert sweep(now=due).alerts == 1
    run_tasks()

    assert notified(NotificationKind.ALERT_DUE, case) == ["ana"]
    assert Notification.objects.get(kind=NotificationKind.ALERT_DUE).note == "Llamar a Lucía"
    [email] = mail.outbox
    assert email.to == ["ana@company.test"] and case.reference in email.subject
    assert "Llamar a Lucía" in email.body
    reminder.refresh_from_db()
    assert reminder.notified_at == due and reminder.done_at is None
    assert events(case, EventKind.REMINDER_DUE) == [EventKind.REMINDER_DUE]

    # Later sweeps send nothing more.
    mail.outbox.clear()
    assert nothing_sent(sweep(now=due + dt.timedelta(hours=1)))
    run_tasks()
    assert mail.outbox == []
    assert Notification.objects.filter(kind=NotificationKind.ALERT_DUE).count() == 1


def test_an_alert_on_a_case_nobody_owns_tells_whoever_set_it(case, ana, sara):
    due = at("2026-12-02T09:00:00")
    actions.set_reminder(case=case, due_at=due, note="Revisar", actor=sara)
    sweep(now=due)
    assert notified(NotificationKind.ALERT_DUE, case) == ["sara"]


def test_the_next_alert_moves_on_and_a_completed_alert_is_never_sent(case, ana):
    first, second = at("2026-12-02T09:00:00"), at("2026-12-03T09:00:00")
    done = actions.set_reminder(case=case, due_at=first, note="Ya hecho", actor=ana)
    actions.set_reminder(case=case, due_at=second, note="Pendiente", actor=ana)
    actions.complete_reminder(reminder=done, actor=ana)
    case.refresh_from_db()
    assert case.next_alert_at == second

    assert sweep(now=first).alerts == 0
    assert sweep(now=second).alerts == 1
    assert list(
        Notification.objects.filter(kind=NotificationKind.ALERT_DUE).values_list("note", flat=True)
    ) == ["Pendiente"]


def test_many_due_alerts_are_read_a_batch_at_a_time_and_all_sent(case, ana):
    due = at("2026-12-02T09:00:00")
    for minute in (3, 1, 1, 2, 0):  # two on the same instant: the page ends between them
        actions.set_reminder(
            case=case, due_at=due + dt.timedelta(minutes=minute), note=f"{minute}", actor=ana
        )
    assert sweep(now=due + dt.timedelta(hours=1), batch_size=2).alerts == 5
    assert not Reminder.objects.filter(notified_at__isnull=True).exists()
    assert Notification.objects.filter(kind=NotificationKind.ALERT_DUE).count() == 5


# --- SLA warnings ---------------------------------------------------------------------------


def test_at_risk_at_80_percent_of_business_time_then_breached_each_once(
    case, ana, sara, bruno, at_time, run_tasks
):
    at_time(OPENED, actions.assign_case, case=case, assignee=ana, actor=sara)
    run_tasks()
    mail.outbox.clear()
    case.refresh_from_db()
    assert case.deadline == DEADLINE
    assert case.sla_alert_due_at == AT_RISK == sla.at_risk_instant(case)

    assert nothing_sent(sweep(now=AT_RISK - SECOND))
    assert sweep(now=AT_RISK).at_risk == 1
    assert nothing_sent(sweep(now=AT_RISK + dt.timedelta(hours=2)))
    assert notified(NotificationKind.SLA_AT_RISK, case) == ["ana"]  # the owner acts on it

    assert nothing_sent(sweep(now=DEADLINE - SECOND))
    assert sweep(now=DEADLINE).breached == 1
    assert nothing_sent(sweep(now=DEADLINE + dt.timedelta(days=3)))
    # A missed deadline is also the supervisor's business; never another team's.
    assert notified(NotificationKind.SLA_BREACHED, case) == ["ana", "sara"]

    assert events(case, EventKind.SLA_AT_RISK, EventKind.SLA_BREACHED) == [
        EventKind.SLA_AT_RISK,
        EventKind.SLA_BREACHED,
    ]
    case.refresh_from_db()
    assert case.sla_alerted == "breached" and case.sla_alert_due_at is None
    run_tasks()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ana@company.test",
        "ana@company.test",
        "sara@company.test",
    ]


def test_a_case_first_seen_late_gets_only_the_breach_and_its_supervisor_is_told(
    case, ana, sara, bruno
):
    result = sweep(now=DEADLINE + dt.timedelta(hours=1))
    assert (result.at_risk, result.breached) == (0, 1)
    assert events(case, EventKind.SLA_AT_RISK, EventKind.SLA_BREACHED) == [EventKind.SLA_BREACHED]
    assert notified(NotificationKind.SLA_BREACHED, case) == ["sara"]


def test_nobody_owns_it_so_the_supervisor_hears_it_is_at_risk(case, ana, sara):
    sweep(now=AT_RISK)
    assert notified(NotificationKind.SLA_AT_RISK, case) == ["sara"]


def test_a_case_waiting_for_the_customer_gets_nothing_and_resumes_with_its_time(case, ana, at_time):
    # Thursday 3 at 9:00 Madrid Ana asks the customer; the customer answers Monday 7 at 9:00:
    # two working days, 18 business hours, did not count.
    at_time(
        at("2026-12-03T08:00:00"), actions.reply_to_customer, case=case, body="¿Foto?", author=ana
    )
    assert nothing_sent(sweep(now=DEADLINE + dt.timedelta(days=30)))

    at_time(at("2026-12-07T08:00:00"), actions.add_customer_message, case=case, body="Aquí está.")
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    # 18 hours after Monday 14 at 16:12: Wednesday 16 at 16:12; the deadline Friday 18 at 18:00.
    assert case.deadline == at("2026-12-18T17:00:00")
    assert nothing_sent(sweep(now=at("2026-12-16T15:11:59")))
    assert sweep(now=at("2026-12-16T15:12:00")).at_risk == 1


def test_a_closed_case_gets_nothing(case, ana, at_time):
    at_time(
        at("2026-12-02T08:00:00"),
        actions.close_case,
        case=case,
        outcome=Outcome.ANSWERED,
        actor_user=ana,
    )
    assert nothing_sent(sweep(now=DEADLINE + dt.timedelta(days=1)))
    assert not Notification.objects.filter(
        kind__in=[NotificationKind.SLA_AT_RISK, NotificationKind.SLA_BREACHED]
    ).exists()


def test_a_reopened_case_is_warned_again_on_its_new_clock(case, ana, sara, at_time):
    sweep(now=DEADLINE)
    at_time(
        at("2026-12-17T08:00:00"), actions.close_case, case=case, outcome="answered", actor_user=ana
    )
    at_time(at("2026-12-18T08:00:00"), actions.add_customer_message, case=case, body="Sigue mal.")
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT and case.sla_alerted == ""
    assert case.sla_alert_due_at > at("2026-12-18T08:00:00")
    assert sweep(now=case.sla_alert_due_at).at_risk == 1


# --- two sweepers, and agents working at the same time --------------------------------------


def test_a_sweeper_that_read_the_case_before_another_sent_the_warning_sends_nothing(
    case, ana, sara
):
    stale_case = Case.objects.get(pk=case.pk)
    reminder = actions.set_reminder(case=case, due_at=AT_RISK, note="Mirar", actor=sara)
    stale_reminder = Reminder.objects.get(pk=reminder.pk)

    sweep(now=AT_RISK)  # the other sweeper got there first
    assert send_due_reminder(reminder=stale_reminder, now=AT_RISK) is False
    assert send_sla_warning(case=stale_case, now=AT_RISK) is None
    assert Notification.objects.filter(case=case).count() == 2  # one alert, one at-risk


def test_a_warning_read_before_an_agent_paused_the_clock_is_not_sent(case, ana, at_time):
    read_by_sweeper = Case.objects.get(pk=case.pk)
    at_time(AT_RISK, actions.reply_to_customer, case=case, body="¿Foto?", author=ana)
    assert send_sla_warning(case=read_by_sweeper, now=AT_RISK) is None
    assert not CaseEvent.objects.filter(kind=EventKind.SLA_AT_RISK).exists()


def in_threads(count: int, work):
    """Run `work` in `count` threads that start together, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_sweepers_running_at_once_send_each_warning_and_alert_once(
    seeded, open_case, care, ana, sara, at_time
):
    cases = [at_time(OPENED, open_case, email=f"c{i}@example.com") for i in range(6)]
    for each in cases:
        actions.assign_case(case=each, assignee=ana, actor=sara)
        actions.set_reminder(case=each, due_at=AT_RISK, note="Mirar", actor=sara)
    Notification.objects.all().delete()

    in_threads(4, lambda: sweep(now=AT_RISK, batch_size=2))

    assert Notification.objects.filter(kind=NotificationKind.ALERT_DUE).count() == 6
    assert Notification.objects.filter(kind=NotificationKind.SLA_AT_RISK).count() == 6
    assert CaseEvent.objects.filter(kind=EventKind.SLA_AT_RISK).count() == 6
    assert CaseEvent.objects.filter(kind=EventKind.REMINDER_DUE).count() == 6


# --- one sweep per period -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_of_two_processes_claiming_the_same_period_only_one_wins():
    now = at("2026-12-01T08:00:00")
    minute = dt.timedelta(seconds=60)
    claims = in_threads(4, lambda: PeriodicRun.claim(JOB, period=minute, now=now))
    assert sorted(claims) == [False, False, False, True]

    assert PeriodicRun.claim(JOB, period=minute, now=now + minute - SECOND) is False
    assert PeriodicRun.claim(JOB, period=minute, now=now + minute) is True


def test_a_period_is_swept_once_and_its_outcome_kept(case, ana):
    due = at("2026-12-02T09:00:00")
    actions.set_reminder(case=case, due_at=due, note="Llamar", actor=ana)
    minute = dt.timedelta(seconds=60)

    assert sweep_if_due(period=minute, now=due).alerts == 1
    assert sweep_if_due(period=minute, now=due + dt.timedelta(seconds=30)) is None
    assert sweep_if_due(period=minute, now=due + minute).alerts == 0
    run = PeriodicRun.objects.get(name=JOB)
    assert run.last_started_at == due + minute and run.last_finished_at is not None
    assert run.last_result == ", ".join(
        ["0 alerts due, 0 deadlines at risk, 0 missed"]
        + [f"0 {what}" for what in settings.SWEEP_JOBS]
    )
    assert not run.last_failed


def test_the_command_sweeps_once_for_cron(case, ana, capsys):
    actions.set_reminder(
        case=case, due_at=timezone.now() - dt.timedelta(minutes=1), note="Ya", actor=ana
    )
    call_command("sweep", "--once")
    assert "1 alerts due" in capsys.readouterr().out
    call_command("sweep", "--once")
    assert "already started" in capsys.readouterr().out
    assert Notification.objects.filter(kind=NotificationKind.ALERT_DUE).count() == 1


def test_the_upgrade_gives_open_cases_their_next_warning(open_case, care, ana, at_time):
    import importlib

    from django.apps import apps

    upgrade = importlib.import_module("concilia.cases.migrations.0004_sla_alert_due")
    fresh, warned, late, closed = (
        at_time(OPENED, open_case, email=f"{name}@example.com")
        for name in ("fresh", "warned", "late", "closed")
    )
    Case.objects.update(sla_alert_due_at=None)  # as before the upgrade
    Case.objects.filter(pk=warned.pk).update(sla_alerted="at_risk")
    Case.objects.filter(pk=late.pk).update(sla_alerted="breached")
    actions.close_case(case=closed, outcome=Outcome.ANSWERED, actor_user=ana)

    upgrade.next_alerts_of_open_cases(apps, None)

    due = dict(Case.objects.values_list("pk", "sla_alert_due_at"))
    assert due == {fresh.pk: AT_RISK, warned.pk: DEADLINE, late.pk: None, closed.pk: None}
