"""A draft policy replayed over past cases: how many it would settle, escalate or leave, what it
would pay against what was paid, and the cases where it would not do what was done (with
links). The fast walk decides exactly as `engine.evaluate` does."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone, translation

from concilia.resolution import actions, engine, gathering, simulation
from concilia.resolution import facts as fact_schema
from concilia.resolution.engine import Settlement
from concilia.resolution.models import Decision, Offer
from concilia.resolution.policy import parse

from .conftest import SHOP_POLICY

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[3]


def draft_source() -> str:
    """The demo shop's policy, with small billing errors refunded up to 20 instead of 50."""
    source = SHOP_POLICY.read_text()
    assert "case.amount <= 50" in source
    return source.replace("case.amount <= 50", "case.amount <= 20")


@pytest.fixture(autouse=True)
def in_english():
    with translation.override("en"):
        yield


@pytest.fixture
def history(shop_policy, open_case, agent):
    """Seven cases of seven customers, opened today; the first four decided by the live shop
    policy and settled (automatically, by the customer on an offer, by an agent), three never
    decided."""
    today = timezone.localdate()
    cases = {}
    # A: the carrier lost the parcel: refunded automatically (lost-parcel)
    cases["lost"] = open_case(
        email="a@example.com", category="shipping_delay", order_number="5558", purchase_date=today
    )
    # B: a billing error of 30: refunded automatically (small-billing-error, up to 50)
    cases["billing30"] = open_case(
        email="b@example.com", category="billing_error", amount=Decimal("30.00")
    )
    # C: a late parcel: store credit offered, and accepted by the customer
    cases["late"] = open_case(
        email="c@example.com", category="shipping_delay", order_number="1234", purchase_date=today
    )
    # D: a complaint about staff: escalated, then settled by an agent with a refund of 20
    cases["conduct"] = open_case(email="d@example.com", category="staff_conduct")
    for key in ("lost", "billing30", "late", "conduct"):
        actions.triage_case(case=cases[key])
    actions.accept_offer(offer=Offer.objects.get(case=cases["late"]))
    actions.override_decision(
        decision=Decision.objects.get(case=cases["conduct"]),
        actor=agent,
        reason="Goodwill gesture",
        settlement=Settlement("refund", Decimal("20.00"), "EUR"),
    )
    # E: a return naming an order, never decided: the shop is not asked
    cases["return"] = open_case(email="e@example.com", category="return", order_number="1231")
    # F: something else, never decided
    cases["other"] = open_case(email="f@example.com", category="other")
    # G: a billing error of 15, never decided
    cases["billing15"] = open_case(
        email="g@example.com", category="billing_error", amount=Decimal("15.00")
    )
    return cases


def test_the_draft_is_judged_against_what_was_done(history):
    # Given the recorded decisions
    lost_total = Decimal(Decision.objects.get(case=history["lost"]).facts["order"]["total"])
    credit = Decimal(Offer.objects.get(case=history["late"]).options[0]["amount"])

    # When the draft (billing errors refunded only up to 20) is simulated over today's cases
    report = simulation.simulate(parse(draft_source()), since=timezone.localdate())

    # Then every case is counted, four on the facts of their decision, three read from the case
    assert report.considered == 7
    assert (report.from_decisions, report.read_from_case, report.without_shop_data) == (4, 3, 1)
    assert dict(report.outcomes) == {
        "resolve": 2,  # the lost parcel, and the billing error of 15 never decided
        "offer": 1,  # the late parcel
        "ask_evidence": 1,  # the billing error of 30 now needs the invoice
        "escalate": 2,  # the staff complaint, and something else (to customer care)
        "wait": 1,  # the return: its order facts were not read
    }
    assert (report.resolved_automatically, report.escalated) == (2, 2)

    # and what it would pay against what was paid, in Decimal
    assert set(report.currencies) == {"EUR"}
    assert report.would_pay["EUR"].cases == 2
    assert report.would_pay["EUR"].amount == lost_total + Decimal("15.00")
    assert report.would_pay["EUR"].average == ((lost_total + Decimal("15.00")) / 2).quantize(
        Decimal("0.01")
    )
    assert report.would_offer["EUR"].cases == 1 and report.would_offer["EUR"].amount == credit
    assert report.paid["EUR"].cases == 4
    assert report.paid["EUR"].amount == lost_total + Decimal("30.00") + credit + Decimal("20.00")

    # and the two cases where it would not do what was done are listed with their links
    assert report.differing == 2
    by_reference = {d.reference: d for d in report.differences}
    assert set(by_reference) == {history["billing30"].reference, history["billing15"].reference}
    billing30 = by_reference[history["billing30"].reference]
    assert billing30.url == f"/helpdesk/cases/{history['billing30'].reference}"
    assert billing30.was == "a refund of €30.00 (Automatically, by policy)"
    assert billing30.would == "Evidence asked for"
    assert billing30.rule == "billing-needs-invoice"
    billing15 = by_reference[history["billing15"].reference]
    assert billing15.was == "still open: Not started"
    assert billing15.would == "resolve: a refund of €15.00"
    assert billing15.rule == "small-billing-error"


def test_the_live_policy_replayed_differs_only_where_people_settled_what_it_left_open(
    history, shop_policy
):
    report = simulation.simulate(shop_policy, since=timezone.localdate())
    assert report.policy == "shop v1"
    # the billing error of 15 was never decided: the live policy would refund it
    assert [d.reference for d in report.differences] == [history["billing15"].reference]
    assert report.outcomes["resolve"] == 3


def test_differences_are_counted_in_full_and_shown_up_to_the_cap(history):
    report = simulation.simulate(parse(draft_source()), since=timezone.localdate(), shown=1)
    assert report.differing == 2
    assert len(report.differences) == 1
    assert "… and 1 more" in simulation.format_report(report)


def test_the_window_leaves_out_cases_opened_before_since_or_after_until(history):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert simulation.simulate(parse(draft_source()), since=tomorrow).considered == 0
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    assert (
        simulation.simulate(parse(draft_source()), since=yesterday, until=yesterday).considered == 0
    )
    assert (
        simulation.simulate(
            parse(draft_source()), since=yesterday, until=timezone.localdate()
        ).considered
        == 7
    )


def test_progress_is_reported_after_each_chunk(history):
    seen = []
    simulation.simulate(
        parse(draft_source()),
        since=timezone.localdate(),
        chunk=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_a_case_never_decided_is_read_as_gathering_reads_it_the_day_it_was_opened(
    history, open_case
):
    # Given a customer whose earlier case was refunded automatically
    actions.triage_case(case=history["billing15"])
    later = open_case(email="g@example.com", category="billing_error", amount=Decimal("12.00"))
    # When the later case's facts are read in bulk and by gathering (no order: no shop)
    row = (
        simulation._window(timezone.localdate(), None)
        .filter(pk=later.pk)
        .values(*simulation.CASE_FIELDS)
        .get()
    )
    histories = simulation._Histories([row["customer_id"]])
    facts, unavailable = simulation.read_facts(row, [], histories)
    expected, expected_unavailable = gathering.gather(later, now=later.created_at)
    # Then they are the same facts
    assert facts == expected and unavailable == expected_unavailable == frozenset()
    assert facts["customer"]["complaints_90d"] == 1
    assert facts["customer"]["open_cases"] == 0
    assert (facts["customer"]["resolutions_365d"], facts["customer"]["paid_365d"]) == (
        1,
        Decimal("15.00"),
    )


def test_the_fast_walk_decides_as_the_engine_on_every_stored_case_and_on_varied_facts(history):
    document = parse(SHOP_POLICY.read_text())
    walker = simulation.Walker(document)
    facts_seen = [
        (fact_schema.from_json(d.facts), frozenset(d.unavailable)) for d in Decision.objects.all()
    ]
    base = fact_schema.sample()
    for category in (
        "shipping_delay",
        "damaged_missing",
        "billing_error",
        "refund",
        "return",
        "other",
    ):
        for amount in ("0", "20", "45", "400"):
            for status in ("lost", "in_transit", "delivered"):
                facts = json.loads(json.dumps(fact_schema.to_json(base)))
                facts["case"].update(category=category, amount=amount, has_photo=amount == "20")
                facts["order"].update(shipment_status=status, total=amount)
                facts_seen.append((fact_schema.from_json(facts), frozenset()))
                facts_seen.append((fact_schema.from_json(facts), frozenset({"order"})))
    assert len(facts_seen) > 100
    for facts, unavailable in facts_seen:
        full = engine.evaluate(facts, document, unavailable=unavailable)
        # (the walk reads facts as gathered and as stored, money as text)
        for given in (facts, fact_schema.to_json(facts)):
            fast = walker.decide(given, unavailable)
            assert (fast.outcome, fast.rule, fast.detail_json()) == (
                full.outcome,
                full.rule,
                full.detail_json(),
            ), facts


def test_facts_stored_before_a_fact_existed_read_as_their_empty_value():
    stored = fact_schema.to_json(fact_schema.sample())
    del stored["order"]["days_late"], stored["customer"]["complaints_90d"]
    values = simulation.Walker(parse(SHOP_POLICY.read_text())).values(stored)
    assert values["order"]["days_late"] == 0 and values["customer"]["complaints_90d"] == 0
    assert values["order"]["total"] == 79.80  # money stored as text, compared as a number


@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
)
def test_the_policies_benchmark_runs_on_a_few_hundred_cases(tmp_path: Path):
    # Given an empty home, when the benchmark runs at 300 cases
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "policies.py"),
            "--cases=300",
            "--evaluate-seconds=1",
            "--quiet-wait=0",
            f"--home={tmp_path / 'home'}",
            f"--json={report}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Then it succeeds, leaves nothing behind and reports its figures
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (tmp_path / "home").exists()
    result = json.loads(report.read_text())
    assert result["rules"] == 50
    assert result["cases"] >= 300
    assert result["evaluate"]["decisions"] > 0 and result["evaluate"]["per_second"] > 0
    assert result["simulate"]["considered"] == result["cases"]
    assert result["simulate"]["seconds"] > 0
    assert set(result["simulate"]["outcomes"]) >= {"resolve", "offer", "escalate"}
