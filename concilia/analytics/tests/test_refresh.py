"""The incremental refresh gives exactly the rows a full recompute gives, whatever happened to
the cases in between (a property test over random histories), and it only rereads what changed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from concilia.analytics.models import (
    CaseDay,
    CaseFacts,
    ConversationDay,
    DurationDay,
    Grain,
    OpenNow,
    RefreshState,
)
from concilia.analytics.refresh import refresh
from concilia.assistant.models import ChatMessage, Conversation, ConversationStatus
from concilia.cases import actions
from concilia.cases.models import Case, Outcome, Status

pytestmark = pytest.mark.django_db


def snapshot() -> dict[str, set[tuple]]:
    """Every aggregate row, without its id."""
    tables = {}
    for model in (CaseDay, ConversationDay, DurationDay, OpenNow):
        names = [f.name for f in model._meta.fields if f.name != "id"]
        tables[model.__name__] = set(model.objects.values_list(*names))
    return tables


STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "open",
                "reply",
                "reply_close",
                "customer",
                "close",
                "pending",
                "reassign",
                "chat",
                "rate",
                "refresh",
            ]
        ),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=1, max_value=40),  # hours later
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a database history is slow
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
def test_incremental_refresh_equals_a_full_recompute(steps, clock, open_case, ana, bruno):
    # Given whatever cases and conversations earlier examples left (the clock only moves on),
    # and a random history now
    for what, pick, hours in steps:
        clock.now += dt.timedelta(hours=hours)
        cases = list(Case.objects.order_by("pk"))
        case = cases[pick % len(cases)] if cases else None
        if what == "open" or case is None:
            open_case(email=f"c{pick}@example.com")
        elif what == "reply" and case.status != Status.CLOSED:
            actions.reply_to_customer(case=case, body="Respuesta", author=ana)
        elif what == "reply_close" and case.status != Status.CLOSED:
            actions.reply_to_customer(
                case=case, body="Resuelto", author=ana, status=Status.CLOSED, outcome="resolved"
            )
        elif what == "customer":
            actions.add_customer_message(case=case, body="Otra cosa")
        elif what == "close" and case.status != Status.CLOSED:
            actions.close_case(case=case, outcome=Outcome.REJECTED, actor_user=ana)
        elif what == "pending" and case.status != Status.CLOSED:
            actions.change_status(case=case, status=Status.PENDING_CUSTOMER, actor_user=ana)
        elif what == "reassign":
            actions.assign_case(case=case, assignee=bruno if pick % 2 else ana, actor=ana)
        elif what == "chat":
            Conversation.objects.create(
                token_digest="x",
                language="es",
                case=case if pick % 2 else None,
                created_at=clock.now,
                last_customer_at=clock.now,
                status=ConversationStatus.CLOSED if pick % 3 == 0 else "active",
                csat_score=(pick % 5) + 1 if pick % 3 == 0 else None,
            )
        elif what == "rate":
            conversation = Conversation.objects.order_by("-pk").first()
            if conversation is not None:
                ChatMessage.objects.create(
                    conversation=conversation,
                    seq=ChatMessage.objects.filter(conversation=conversation).count() + 1,
                    author="assistant",
                    body="respuesta",
                    rating=1 if pick % 2 else -1,
                )
        elif what == "refresh":
            refresh(now=clock.now)

    # When the aggregates are refreshed incrementally, then recomputed from scratch
    refresh(now=clock.now)
    incremental = snapshot()
    refresh(full=True, now=clock.now)

    # Then both give the same rows
    full = snapshot()
    for table, rows in full.items():
        assert (table, rows - incremental[table]) == (table, set())
        assert (table, incremental[table] - rows) == (table, set())


def test_an_incremental_refresh_rereads_only_the_cases_that_changed(clock, open_case, ana):
    clock.at(2026, 11, 30, 9, 0)
    first, second = open_case(), open_case(email="two@example.com")
    report = refresh(now=clock.now)
    assert report.full and report.cases == 2  # the first refresh is a full one

    # Nothing happened: nothing is read again
    clock.at(2026, 11, 30, 9, 5)
    assert refresh(now=clock.now).cases == 0

    # Ana answers one: only that one is read again, and its figures move
    actions.reply_to_customer(case=second, body="Hola", author=ana)
    clock.at(2026, 11, 30, 9, 10)
    report = refresh(now=clock.now)
    assert (report.full, report.cases) == (False, 1)
    day = CaseDay.objects.get(grain=Grain.ALL, day=dt.date(2026, 11, 30))
    assert (day.opened, day.frt_n) == (2, 1)
    assert CaseFacts.objects.count() == 2
    assert RefreshState.objects.get().refreshed_at == clock.now
    assert first.pk in set(CaseFacts.objects.values_list("case_id", flat=True))


def test_a_refresh_does_not_grow_with_the_history(clock, open_case, ana):
    """The statements of an incremental refresh of one changed case do not depend on how many
    cases there are."""
    clock.at(2026, 11, 30, 9, 0)
    cases = [open_case(email=f"c{i}@example.com") for i in range(3)]
    refresh(now=clock.now)
    actions.reply_to_customer(case=cases[0], body="Hola", author=ana)
    with CaptureQueriesContext(connection) as few:
        refresh(now=clock.now)
    cases += [open_case(email=f"d{i}@example.com") for i in range(6)]
    refresh(now=clock.now)
    actions.reply_to_customer(case=cases[1], body="Hola", author=ana)
    with CaptureQueriesContext(connection) as more:
        refresh(now=clock.now)
    assert len(more) == len(few)


def test_the_command_refreshes_and_rebuilds(clock, open_case, capsys):
    clock.at(2026, 11, 30, 9, 0)
    open_case()
    call_command("analytics", "refresh", "--full")
    assert CaseDay.objects.filter(grain=Grain.ALL).get().opened == 1
    call_command("analytics", "refresh")
    assert "0" in capsys.readouterr().out


def test_the_sweep_leaves_a_long_first_computation_to_the_command(
    clock, open_case, monkeypatch, caplog
):
    from concilia.analytics import refresh as refreshing

    clock.at(2026, 11, 30, 9, 0)
    open_case()
    open_case(email="two@example.com")
    # Given more cases than the sweep computes from scratch, and no aggregates yet
    monkeypatch.setattr(refreshing, "SWEEP_FULL_LIMIT", 1)
    assert refreshing.sweep(now=clock.now) == 0
    assert not CaseDay.objects.exists()
    assert "concilia analytics refresh --full" in caplog.text
    # Once the command has run, the sweep keeps them up to date
    call_command("analytics", "refresh", "--full")
    open_case(email="three@example.com")
    assert refreshing.sweep(now=clock.now) >= 1
    assert CaseDay.objects.get(grain=Grain.ALL).opened == 3


def test_a_full_refresh_written_in_several_flushes_gives_the_same_rows(
    clock, open_case, ana, monkeypatch
):
    """A full refresh adds batches up in memory and writes them when they grow too big (through
    COPY and a staging table on PostgreSQL): forcing a write after every case, and the COPY path
    for every write, changes no row, and the incremental refresh carries on from there."""
    from concilia.analytics import refresh as refreshing

    clock.at(2026, 11, 27, 16, 0)  # a Friday
    cases = [open_case(email=f"c{i}@example.com") for i in range(5)]
    for case in cases[:3]:
        clock.now += dt.timedelta(hours=3)
        actions.reply_to_customer(case=case, body="Hola", author=ana)
    actions.close_case(case=cases[0], outcome=Outcome.RESOLVED, actor_user=ana)
    clock.at(2026, 11, 30, 10, 0)
    refresh(full=True, now=clock.now)
    at_once = snapshot()
    assert at_once["CaseDay"] and at_once["DurationDay"]

    monkeypatch.setattr(refreshing, "FULL_BATCH", 1)
    monkeypatch.setattr(refreshing, "FLUSH_KEYS", 0)
    monkeypatch.setattr(refreshing, "COPY_FROM", 0)
    refresh(full=True, now=clock.now)
    assert snapshot() == at_once
    all_days = CaseDay.objects.filter(grain=Grain.ALL)
    assert sum(day.opened for day in all_days) == 5

    actions.reply_to_customer(case=cases[4], body="Hola", author=ana)
    refresh(now=clock.now)
    assert sum(day.frt_n for day in CaseDay.objects.filter(grain=Grain.ALL)) == 4
