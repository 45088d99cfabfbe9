"""The customer answers an offer: accept, choose an option, reject with a reason, or counter.
A counter within the policy's limit is accepted at once; beyond it a better offer comes while
rounds remain, then a person. Offers expire, and none can be answered twice or too late. Agents
can override any decision, always with a reason, and the override is audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from concilia.cases.models import EventKind, Outcome, Status
from concilia.resolution import actions
from concilia.resolution.engine import Settlement
from concilia.resolution.models import Decision, Offer, OfferStatus, Resolution

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer(shop_policy, open_case):
    """Lucía's order 1234 is late: she is offered store credit (15% of the order, between 5 and
    30 euros, rounded to the euro) or a 10% discount code; counters up to 20% more, capped at 36
    euros, for two rounds."""
    case = open_case(
        category="shipping_delay", order_number="1234", purchase_date=timezone.localdate()
    )
    actions.triage_case(case=case)
    return Offer.objects.get(case=case)


def credit(offer: Offer) -> Decimal:
    return Decimal(offer.options[0]["amount"])


def test_accepting_makes_a_binding_resolution_and_closes_the_case(offer):
    resolution = actions.accept_offer(offer=offer)
    assert (resolution.kind, resolution.amount, resolution.currency) == (
        "credit",
        credit(offer),
        "EUR",
    )
    assert resolution.agreed_by == "customer"
    assert resolution.decision.policy_version.number == 1
    assert resolution.decision.facts["order"]["number"] == "1234"
    offer.refresh_from_db()
    assert (offer.status, offer.chosen_option) == (OfferStatus.ACCEPTED, 0)
    case = offer.case
    case.refresh_from_db()
    assert (case.status, case.outcome) == (Status.CLOSED, Outcome.RESOLVED)
    assert "Acordado: un saldo a favor de" in case.messages.filter(internal=False).last().body
    assert case.events.filter(kind=EventKind.RESOLUTION_AGREED).count() == 1


def test_choosing_the_second_option_gives_a_discount_code(offer):
    resolution = actions.accept_offer(offer=offer, option=1)
    assert resolution.kind == "discount_code"
    assert resolution.percent == Decimal("10")
    assert resolution.discount_code.startswith("SORRY-")
    assert resolution.follow_up == "none"
    assert resolution.discount_code in offer.case.messages.filter(internal=False).last().body


def test_an_option_the_offer_does_not_have_is_refused_and_the_offer_stays_open(offer):
    with pytest.raises(actions.InvalidAnswer):
        actions.accept_offer(offer=offer, option=2)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OPEN


def test_an_offer_cannot_be_accepted_twice(offer):
    actions.accept_offer(offer=offer)
    with pytest.raises(actions.OfferNotOpen):
        actions.accept_offer(offer=offer)
    with pytest.raises(actions.OfferNotOpen):
        actions.counter_offer(offer=offer, amount="7")
    assert Resolution.objects.count() == 1


def test_rejecting_with_a_reason_passes_the_case_to_a_person(offer):
    with pytest.raises(actions.InvalidAnswer):
        actions.reject_offer(offer=offer, reason="  ")
    actions.reject_offer(offer=offer, reason="Quiero que me devuelvan el dinero, no saldo.")
    offer.refresh_from_db()
    assert offer.status == OfferStatus.REJECTED
    case = offer.case
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    assert not Resolution.objects.exists()
    note = case.messages.filter(internal=True).last().body
    assert "no saldo" in note and "late-parcel" in note


def test_a_counter_within_the_limit_is_accepted_at_once(offer):
    asked = credit(offer) * Decimal("1.2")  # exactly 20% more: the limit
    result = actions.counter_offer(offer=offer, amount=f"{asked:.2f}".replace(".", ","))
    assert result.resolution is not None
    assert result.resolution.amount == asked.quantize(Decimal("0.01"))
    offer.refresh_from_db()
    assert (offer.status, offer.counter_amount) == (OfferStatus.ACCEPTED, asked)


def test_a_counter_beyond_the_limit_gets_a_better_offer_then_a_person(offer):
    limit = (credit(offer) * Decimal("1.2")).quantize(Decimal("0.01"))
    first = actions.counter_offer(offer=offer, amount="100")
    assert first.resolution is None and first.offer is not None
    better = first.offer
    assert (better.round, better.status, better.previous) == (2, OfferStatus.OPEN, offer)
    assert better.options == [
        {"kind": "credit", "amount": str(limit), "currency": "EUR", "percent": None}
    ]
    offer.refresh_from_db()
    assert (offer.status, offer.counter_amount) == (OfferStatus.COUNTERED, Decimal("100"))
    case = offer.case
    assert (
        "podemos mejorar nuestra oferta hasta" in case.messages.filter(internal=False).last().body
    )
    # the last round: still beyond, so a person decides
    second = actions.counter_offer(offer=better, amount="90")
    assert second.handed_over and second.resolution is None
    better.refresh_from_db()
    assert better.status == OfferStatus.ESCALATED
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    assert not Resolution.objects.exists()


def test_a_counter_that_is_not_an_amount_is_refused_and_loses_nothing(offer):
    for bad in ("mucho", "-5", "0", "0,00", "12.3456", "1e400", "NaN", "Infinity"):
        with pytest.raises(actions.InvalidAnswer):
            actions.counter_offer(offer=offer, amount=bad)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.OPEN


def test_an_offer_expires_and_cannot_be_accepted_after(offer):
    later = offer.expires_at + dt.timedelta(seconds=1)
    assert actions.expire_offers(now=offer.expires_at - dt.timedelta(seconds=1)) == 0
    assert actions.expire_offers(now=later) == 1
    assert actions.expire_offers(now=later) == 0
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    with pytest.raises(actions.OfferNotOpen):
        actions.accept_offer(offer=offer)
    case = offer.case
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    assert case.events.filter(kind=EventKind.OFFER_EXPIRED).count() == 1


def test_an_offer_past_its_time_is_refused_even_before_the_sweep(offer):
    Offer.objects.filter(pk=offer.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(actions.OfferExpired):
        actions.accept_offer(offer=offer)
    assert not Resolution.objects.exists()


def test_the_sweep_expires_offers(offer):
    from concilia.cases.sweep import sweep

    result = sweep(now=offer.expires_at + dt.timedelta(minutes=1))
    assert "1 offers expired" in str(result)
    others = dict(result.others)
    assert others.pop("offers expired") == 1
    others.pop("analytics refreshed")  # re-reads the case the offer changed: not other work
    assert set(others.values()) == {0}  # the other apps' periodic work found nothing


def test_an_override_needs_a_reason_and_is_audited(offer, agent):
    decision = offer.decision
    with pytest.raises(actions.InvalidAnswer):
        actions.override_decision(decision=decision, actor=agent, reason=" ")
    override = actions.override_decision(
        decision=decision,
        actor=agent,
        reason="Cliente habitual: le devolvemos el envío.",
        settlement=Settlement("refund", Decimal("4.95"), "EUR"),
    )
    assert (override.source, override.overrides, override.actor_user) == (
        "override",
        decision,
        agent,
    )
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    resolution = Resolution.objects.get()
    assert (resolution.kind, resolution.amount, resolution.agreed_by_user) == (
        "refund",
        Decimal("4.95"),
        agent,
    )
    event = offer.case.events.get(kind=EventKind.DECISION_OVERRIDDEN)
    assert event.actor_user == agent
    assert event.data["reason"] == "Cliente habitual: le devolvemos el envío."
    assert event.data["was"] == "offer"
    assert Decision.objects.filter(case=offer.case).count() == 2


def test_a_failed_refund_in_the_shop_keeps_the_resolution_and_tells_a_person(
    shop_policy, open_case, settings, run_tasks
):
    settings.FULFILMENT = "concilia.resolution.tests.test_negotiation.ClosedShop"
    from concilia.core.ports import _load

    _load.cache_clear()
    try:
        case = open_case(
            category="shipping_delay", order_number="5558", purchase_date=timezone.localdate()
        )
        actions.triage_case(case=case)
        run_tasks()
    finally:
        _load.cache_clear()
    resolution = Resolution.objects.get(case=case)
    assert resolution.follow_up == "failed"
    assert "refunds are closed" in resolution.follow_up_detail
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    assert "hazlo a mano" in case.messages.filter(internal=True).last().body


class ClosedShop:
    def carry_out(self, request):
        raise RuntimeError("refunds are closed")
