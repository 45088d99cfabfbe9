"""The decision is a pure function of the facts and the policy: amounts in Decimal, a trace of
every rule, reasons in both languages, and the same result every time."""

from __future__ import annotations

from decimal import Decimal

import pytest

from concilia.resolution import engine
from concilia.resolution import facts as fact_schema
from concilia.resolution.policy import Amount, parse

from .conftest import SHOP_POLICY


@pytest.fixture
def shop():
    return parse(SHOP_POLICY.read_text())


def facts(**changes) -> fact_schema.Facts:
    """Typical facts of a late parcel, changed by `namespace__name=value`."""
    result = fact_schema.sample()
    for key, value in changes.items():
        namespace, name = key.split("__")
        result[namespace][name] = value
    return result


@pytest.mark.parametrize(
    ("spec", "base", "expected"),
    [
        (Amount(of="order.total"), "79.80", "79.80"),
        (
            Amount(
                of="order.total",
                percent=Decimal("15"),
                minimum=Decimal("5"),
                maximum=Decimal("30"),
                step=Decimal("1"),
            ),
            "79.80",
            "12.00",
        ),
        (
            Amount(
                of="order.total", percent=Decimal("15"), minimum=Decimal("5"), step=Decimal("1")
            ),
            "10.00",
            "5.00",
        ),
        (
            Amount(
                of="order.total", percent=Decimal("15"), maximum=Decimal("30"), step=Decimal("1")
            ),
            "299.00",
            "30.00",
        ),
        # 33.33... rounded to the step of 0.50, half up
        (
            Amount(of="order.total", percent=Decimal("33.3333"), step=Decimal("0.5")),
            "100.00",
            "33.50",
        ),
        # never rounded above the cap
        (
            Amount(
                of="order.total",
                percent=Decimal("10"),
                maximum=Decimal("7.30"),
                step=Decimal("0.5"),
            ),
            "100.00",
            "7.00",
        ),
        (Amount(fixed=Decimal("10")), "0", "10.00"),
        # 0.1 + 0.2 style sums stay exact
        (Amount(of="order.total", percent=Decimal("10")), "0.30", "0.03"),
    ],
)
def test_amounts_are_computed_in_decimal_with_bounds_and_rounding(spec, base, expected):
    assert engine.amount_of(spec, facts(order__total=Decimal(base))) == Decimal(expected)


def test_a_late_parcel_gets_the_offer_with_amounts_from_the_facts(shop):
    decision = engine.evaluate(facts(order__total=Decimal("79.80"), order__days_late=3), shop)
    assert decision.outcome == "offer"
    assert decision.rule == "late-parcel"
    assert decision.options == (
        engine.Settlement("credit", Decimal("12.00"), "EUR"),
        engine.Settlement("discount_code", None, "", Decimal("10")),
    )
    assert decision.valid_days == 7
    assert decision.counter is not None and decision.counter.cap == Decimal("36")


def test_the_reason_is_plain_language_in_both_languages(shop):
    decision = engine.evaluate(facts(order__number="4471", order__days_late=3), shop)
    assert decision.reason["es"] == (
        "Tu pedido 4471 lleva 3 días de retraso sobre la fecha prometida. Te ofrecemos "
        "un saldo a favor de 12,00 € o una disculpa y un código de descuento del 10%."
    )
    assert decision.reason["en"] == (
        "Your order 4471 is 3 days past the promised date. We offer you "
        "store credit of €12.00 or an apology and a 10% discount code."
    )


def test_the_trace_says_why_each_earlier_rule_did_not_fire(shop):
    decision = engine.evaluate(facts(case__amount=Decimal("40.00"), order__days_late=3), shop)
    steps = {s.rule: s for s in decision.trace}
    assert steps["conduct-to-person"].result == engine.NOT_MET
    assert steps["conduct-to-person"].values == {"case.category": "shipping_delay"}
    assert steps["large-claim"].detail == "case.amount > 300"
    assert steps["large-claim"].values == {"case.amount": "40.00"}
    # the first false part of a longer condition is the one reported
    assert steps["lost-parcel"].detail == 'order.shipment_status == "lost"'
    assert steps["lost-parcel"].values == {"order.shipment_status": "in_transit"}
    assert steps["late-parcel"].result == engine.FIRED
    assert steps["refund-dispute"].result == engine.NOT_REACHED
    assert [s.rule for s in decision.trace] == [r.id for r in shop.rules]


@pytest.mark.parametrize(
    ("changes", "outcome", "rule"),
    [
        ({"case__category": "staff_conduct"}, "escalate", "conduct-to-person"),
        ({"order__shipment_status": "lost"}, "resolve", "lost-parcel"),
        (
            {"case__category": "damaged_missing", "case__has_photo": False},
            "ask_evidence",
            "damaged-needs-photo",
        ),
        ({"case__category": "damaged_missing", "case__has_photo": True}, "offer", "damaged-parcel"),
        (
            {"case__category": "billing_error", "case__amount": Decimal("20")},
            "resolve",
            "small-billing-error",
        ),
        (
            {"case__category": "return", "order__days_since_purchase": 12},
            "resolve",
            "return-in-window",
        ),
        (
            {"case__category": "refund", "order__days_since_purchase": 40},
            "mediate",
            "refund-dispute",
        ),
        ({"order__days_late": 0}, "none", ""),
        (
            {"case__category": "technical_problem", "order__days_since_purchase": 5},
            "offer",
            "faulty-on-arrival",
        ),
        (
            {"case__category": "technical_problem", "order__days_since_purchase": 40},
            "escalate",
            "everything-else-to-a-person",
        ),
        ({"case__category": "other"}, "escalate", "everything-else-to-a-person"),
    ],
)
def test_each_outcome_type(shop, changes, outcome, rule):
    decision = engine.evaluate(facts(**changes), shop)
    assert (decision.outcome, decision.rule) == (outcome, rule)


def test_a_full_refund_of_a_lost_parcel_is_the_order_total(shop):
    decision = engine.evaluate(
        facts(order__shipment_status="lost", order__total=Decimal("119.00")), shop
    )
    assert decision.options == (engine.Settlement("refund", Decimal("119.00"), "EUR"),)
    assert "119,00 €" in decision.reason["es"]


def test_a_shop_that_did_not_answer_never_settles(shop):
    decision = engine.evaluate(
        facts(order__shipment_status="lost"), shop, unavailable=frozenset({"order"})
    )
    assert decision.outcome == "wait"
    assert decision.options == ()
    # rules that do not need the shop are still checked before it
    assert [s.result for s in decision.trace[:3]] == [engine.NOT_MET] * 3
    assert decision.trace[3].result == engine.UNDECIDED
    conduct = engine.evaluate(
        facts(case__category="staff_conduct"), shop, unavailable=frozenset({"order"})
    )
    assert conduct.outcome == "escalate"


def test_a_rule_whose_amount_comes_to_zero_does_not_fire():
    document = parse(
        "name: {es: a, en: b}\nrules:\n"
        "  - id: half\n    when: 'case.has_amount'\n    then: {resolve: {kind: refund, amount: {percent: 50, of: case.amount}}}\n"
        "    reason: {es: a, en: b}\n"
        "  - id: person\n    when: 'true'\n    then: {escalate: {}}\n    reason: {es: a, en: b}\n"
    )
    decision = engine.evaluate(facts(case__amount=Decimal("0.00")), document)
    assert decision.outcome == "escalate"
    assert decision.trace[0].result == engine.ZERO


def test_the_same_facts_and_policy_give_the_same_decision_after_storage(shop):
    original = facts(order__days_late=4, order__total=Decimal("89.00"))
    first = engine.evaluate(original, shop)
    stored = fact_schema.to_json(original)
    assert stored["order"]["total"] == "89.00"  # money is stored as text, never a float
    again = engine.evaluate(fact_schema.from_json(stored), parse(SHOP_POLICY.read_text()))
    assert again == first
    assert again.same_as(first)


def test_a_policy_applies_only_to_its_categories():
    document = parse(
        "name: {es: a, en: b}\napplies_to: [refund]\nrules:\n"
        "  - id: all\n    then: {escalate: {}}\n    reason: {es: a, en: b}\n"
    )
    assert engine.evaluate(facts(case__category="refund"), document).outcome == "escalate"
    assert engine.evaluate(facts(case__category="return"), document).outcome == "none"


@pytest.mark.parametrize(
    ("amount", "currency", "language", "text"),
    [
        ("1234.5", "EUR", "es", "1.234,50 €"),
        ("1234.5", "EUR", "en", "€1,234.50"),
        ("9.99", "USD", "en", "$9.99"),
        ("9.99", "CHF", "es", "9,99 CHF"),
    ],
)
def test_money_is_written_as_each_language_does(amount, currency, language, text):
    assert engine.money(Decimal(amount), currency, language) == text
