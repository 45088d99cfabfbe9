"""KPIs computed from the daily aggregates agree with figures worked out by hand: business and
calendar time across a weekend, a case paused while it waits for the customer, a reopened case,
day buckets in Madrid's time zone, and conversations with the assistant."""

from __future__ import annotations

import datetime as dt

import pytest

from concilia.analytics import buckets, kpis
from concilia.analytics.models import CaseDay, Grain
from concilia.analytics.refresh import refresh
from concilia.analytics.tests.conftest import madrid
from concilia.assistant.models import ChatMessage, Conversation, ConversationStatus, Handover
from concilia.cases import actions
from concilia.cases.models import Outcome, Status

pytestmark = pytest.mark.django_db

HOUR = 3600


def week(**dims) -> kpis.Filters:
    return kpis.Filters(start=dt.date(2026, 11, 23), end=dt.date(2026, 12, 6), **dims)


def test_a_case_opened_friday_at_five_and_answered_monday_at_ten_took_two_business_hours(
    clock, open_case, ana, sara
):
    # Given a complaint received on Friday 27 November at 17:00 in Madrid (the office closes
    # at 18:00 and opens on Monday at 9:00)
    clock.at(2026, 11, 27, 17, 0)
    case = open_case()
    # When Ana answers it on Monday at 10:00
    clock.at(2026, 11, 30, 10, 0)
    actions.reply_to_customer(case=case, body="Lo miramos.", author=ana)
    refresh(now=clock.now)

    summary = kpis.summary(week())
    # Then its first response took 65 hours of calendar time but 2 business hours
    assert summary.cases["frt_n"] == 1
    assert summary.means["frt_cal"] == 65 * HOUR
    assert summary.means["frt_bus"] == 2 * HOUR
    # and the medians, read from the buckets, are within one bucket (15%) of the same figures
    assert summary.medians["frt_bus"] == pytest.approx(2 * HOUR, rel=0.15)
    assert summary.medians["frt_cal"] == pytest.approx(65 * HOUR, rel=0.15)
    # The case counts as opened on Friday and answered on Monday (Madrid's days)
    rows = {r.day: r for r in CaseDay.objects.filter(grain=Grain.ALL)}
    assert rows[dt.date(2026, 11, 27)].opened == 1
    assert rows[dt.date(2026, 11, 30)].frt_n == 1
    # and it is still open, waiting for the customer
    assert summary.open["totals"]["open"] == 1
    assert summary.open["totals"]["waiting_customer"] == 1


def test_time_waiting_for_the_customer_is_not_business_time_to_resolution(clock, open_case, ana):
    # Given a case opened on Monday 30 November at 10:00
    clock.at(2026, 11, 30, 10, 0)
    case = open_case()
    # Ana answers at 11:00 and it waits for the customer (clocks paused) until Tuesday 10:00
    clock.at(2026, 11, 30, 11, 0)
    actions.reply_to_customer(case=case, body="¿Nos envía la factura?", author=ana)
    clock.at(2026, 12, 1, 10, 0)
    actions.add_customer_message(case=case, body="Aquí está.")
    # and she closes it on Tuesday at 12:00
    clock.at(2026, 12, 1, 12, 0)
    case.refresh_from_db()
    actions.close_case(case=case, outcome=Outcome.RESOLVED, actor_user=ana)
    refresh(now=clock.now)

    summary = kpis.summary(week())
    # Calendar time: 26 hours. Business: Monday 10-18 and Tuesday 9-12 (11 h) less the wait
    # (Monday 11-18 and Tuesday 9-10: 8 h) = 3 hours.
    assert summary.cases["res_n"] == 1
    assert summary.means["res_cal"] == 26 * HOUR
    assert summary.means["res_bus"] == 3 * HOUR
    assert summary.means["frt_bus"] == 1 * HOUR
    # The customer had to write again: not a first-contact resolution; in time, not reopened
    assert summary.cases["resolved"] == 1
    assert summary.rates["fcr"] == 0
    assert summary.rates["reopen"] == 0
    assert summary.rates["sla"] == 1
    assert summary.rates["automation"] == 0  # a person worked it
    assert summary.open["totals"]["open"] == 0


def test_a_reopened_case_counts_once_as_resolved_and_once_as_reopened(clock, open_case, ana):
    # Given a case answered and closed on Monday 30 November (one reply: a first-contact
    # resolution until the customer comes back)
    clock.at(2026, 11, 30, 9, 30)
    case = open_case()
    clock.at(2026, 11, 30, 10, 0)
    actions.reply_to_customer(
        case=case, body="Hecho.", author=ana, status=Status.CLOSED, outcome=Outcome.RESOLVED
    )
    refresh(now=clock.now)
    assert kpis.summary(week()).rates["fcr"] == 1

    # When the customer writes again on Wednesday (inside the reopen window), and Ana closes
    # it again on Thursday
    clock.at(2026, 12, 2, 12, 0)
    actions.add_customer_message(case=case, body="Sigue sin funcionar.")
    clock.at(2026, 12, 3, 16, 0)
    case.refresh_from_db()
    actions.close_case(case=case, outcome=Outcome.RESOLVED, actor_user=ana)
    refresh(now=clock.now)

    summary = kpis.summary(week())
    # Then it is one resolved case, reopened, no longer a first-contact resolution
    assert summary.cases["opened"] == 1
    assert summary.cases["resolved"] == 1
    assert summary.rates["reopen"] == 1
    assert summary.rates["fcr"] == 0
    # time to resolution is to its first closing (30 minutes)
    assert summary.means["res_cal"] == 30 * 60
    # and the flows behind the backlog: closed on Monday and Thursday, reopened on Wednesday
    flows = dict(kpis.case_series(week(), ("closed", "reopened")))
    assert flows[dt.date(2026, 11, 30)] == {"closed": 1, "reopened": 0}
    assert flows[dt.date(2026, 12, 2)] == {"closed": 0, "reopened": 1}
    assert flows[dt.date(2026, 12, 3)] == {"closed": 1, "reopened": 0}
    backlog = dict(kpis.backlog_series(week(), dt.date(2026, 12, 3), 0))
    assert backlog[dt.date(2026, 11, 29)] == 0
    assert backlog[dt.date(2026, 11, 30)] == 0
    assert backlog[dt.date(2026, 12, 2)] == 1
    assert backlog[dt.date(2026, 12, 3)] == 0


def test_days_are_madrid_days_not_utc_days(clock, open_case, ana):
    # A case at 00:30 on 1 December in Madrid is 23:30 on 30 November in UTC
    clock.at(2026, 12, 1, 0, 30)
    open_case()
    clock.at(2026, 12, 1, 9, 0)
    refresh(now=clock.now)
    series = dict(kpis.case_series(week(), ("opened",)))
    assert series[dt.date(2026, 12, 1)] == {"opened": 1}
    assert series[dt.date(2026, 11, 30)] == {"opened": 0}


def test_filters_pick_the_agent_the_category_and_the_language(clock, open_case, ana, bruno):
    clock.at(2026, 11, 30, 10, 0)
    mine = open_case(language="en")
    actions.assign_case(case=mine, assignee=ana, actor=ana)
    other = open_case(email="other@example.com")
    actions.assign_case(case=other, assignee=bruno, actor=ana)
    refresh(now=clock.now)

    assert kpis.summary(week()).cases["opened"] == 2
    assert kpis.summary(week(assignee=ana.pk)).cases["opened"] == 1
    assert kpis.summary(week(assignee=ana.pk, language="en")).cases["opened"] == 1
    assert kpis.summary(week(assignee=ana.pk, language="es")).cases["opened"] == 0
    assert kpis.summary(week(channel="email")).cases["opened"] == 0
    assert kpis.summary(week(category=mine.category_id)).cases["opened"] == 2
    per_agent = kpis.grouped(week(), "assignee", ("opened",))
    assert per_agent == {ana.pk: {"opened": 1}, bruno.pk: {"opened": 1}}
    assert kpis.summary(week(assignee=bruno.pk)).open["totals"]["open"] == 1


def _conversation(clock, **fields) -> Conversation:
    return Conversation.objects.create(
        token_digest="x", language="es", created_at=clock.now, last_customer_at=clock.now, **fields
    )


def test_conversations_started_abandoned_completed_csat_and_thumbs(clock, open_case, ana):
    clock.at(2026, 11, 30, 10, 0)
    # One solved by the assistant, rated 5, with a thumbs up and a thumbs down
    solved = _conversation(
        clock, resolved_by_assistant=True, status=ConversationStatus.CLOSED, csat_score=5
    )
    ChatMessage.objects.create(conversation=solved, seq=1, author="assistant", body="a", rating=1)
    ChatMessage.objects.create(conversation=solved, seq=2, author="assistant", body="b", rating=-1)
    # one that opened a case and went to a person (rated 2)
    case = open_case()
    handed = _conversation(clock, case=case, status=ConversationStatus.CLOSED, csat_score=2)
    Handover.objects.create(conversation=handed, case=case, reason="frustration")
    # one left without an answer, and one still going (the customer wrote a minute ago)
    _conversation(clock)
    clock.at(2026, 11, 30, 11, 0)
    _conversation(clock)
    clock.at(2026, 11, 30, 11, 1)
    refresh(now=clock.now)

    summary = kpis.summary(week())
    v = summary.conversations
    assert (v["started"], v["completed"], v["abandoned"], v["deflected"]) == (4, 2, 1, 1)
    assert v["handed_over"] == 1
    assert summary.rates["csat"] == 3.5
    assert summary.rates["csat_response"] == 1.0  # both ended conversations answered
    assert summary.rates["thumbs_up"] == 0.5
    # The case is escalated (frustration), so 1 of 1 opened cases
    assert summary.rates["escalation"] == 1
    assert summary.escalation_reasons[1] == ("frustration", 1)
    # CSAT of the handed-over conversation belongs to the case's agent
    per_agent = kpis.grouped_conversations(week(), "assignee", ("csat_n", "csat_sum"))
    assert per_agent[case.assignee_id] == {"csat_n": 1, "csat_sum": 2}


def test_percentiles_from_buckets_stay_within_one_bucket():
    durations = [30, 600, 3600, 7200, 86400, 90000, 400000]
    counts: dict[int, int] = {}
    for seconds in durations:
        counts[buckets.bucket_of(seconds)] = counts.get(buckets.bucket_of(seconds), 0) + 1
    assert buckets.percentile(counts) == pytest.approx(7200, rel=0.15)
    assert buckets.percentile({}) is None
    assert buckets.bucket_of(59) == 0
    low, high = buckets.bounds(buckets.bucket_of(7200))
    assert low <= 7200 < high


def test_nothing_refreshed_gives_empty_figures_not_errors(db):
    summary = kpis.summary(
        kpis.Filters(start=madrid(2026, 11, 1).date(), end=dt.date(2026, 11, 30))
    )
    assert summary.cases["opened"] == 0
    assert summary.rates["fcr"] is None
    assert summary.medians["frt_bus"] is None
