"""A new case is decided by the live policies, and each outcome does what it says: settled with a
binding resolution and a written confirmation, an offer put to the customer, evidence asked
for, or the case passed to a team with the whole trace."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from concilia.cases.models import EventKind, Message, Outcome, Status
from concilia.resolution.actions import replay, triage_case
from concilia.resolution.models import Decision, FollowUp, Offer, OfferStatus, Resolution

pytestmark = pytest.mark.django_db


@pytest.fixture
def late_parcel(open_case):
    """Lucía's order 1234 is late in transit (the demo shop's numbers ending in 4-6)."""
    return open_case(
        category="shipping_delay",
        order_number="1234",
        purchase_date=timezone.localdate() - dt.timedelta(days=10),
    )


def test_without_a_live_policy_the_case_simply_waits_for_a_person(late_parcel):
    record = triage_case(case=late_parcel)
    assert record.outcome == "none"
    late_parcel.refresh_from_db()
    assert late_parcel.status == Status.NOT_STARTED
    assert not Offer.objects.exists()


def test_a_late_parcel_gets_an_offer_of_credit_that_waits_for_the_customer(
    shop_policy, late_parcel
):
    record = triage_case(case=late_parcel)
    assert (record.outcome, record.rule, record.policy_version) == (
        "offer",
        "late-parcel",
        shop_policy,
    )
    offer = Offer.objects.get(case=late_parcel)
    assert offer.status == OfferStatus.OPEN
    assert [o["kind"] for o in offer.options] == ["credit", "discount_code"]
    assert offer.counter_terms == {"up_to_percent": "20", "cap": "36", "rounds": 2}
    assert (
        dt.timedelta(days=6, hours=23)
        < offer.expires_at - record.created_at
        <= dt.timedelta(days=7)
    )
    late_parcel.refresh_from_db()
    assert late_parcel.status == Status.PENDING_CUSTOMER
    # the customer reads the offer in the thread and by email, in Spanish
    body = Message.objects.filter(case=late_parcel, internal=False).last().body
    assert "Te ofrecemos" in body and "1. un saldo a favor de" in body
    assert late_parcel.events.filter(kind=EventKind.OFFER_MADE).count() == 1


def test_a_lost_parcel_is_refunded_at_once_with_a_binding_record(shop_policy, open_case, run_tasks):
    case = open_case(
        category="shipping_delay", order_number="5558", purchase_date=timezone.localdate()
    )
    record = triage_case(case=case)
    assert (record.outcome, record.rule) == ("resolve", "lost-parcel")
    resolution = Resolution.objects.get(case=case)
    assert resolution.kind == "refund"
    assert resolution.amount == Decimal(record.facts["order"]["total"])
    assert resolution.decision == record and resolution.agreed_by == "automatic"
    case.refresh_from_db()
    assert (case.status, case.outcome) == (Status.CLOSED, Outcome.RESOLVED)
    run_tasks()
    resolution.refresh_from_db()
    assert resolution.follow_up == FollowUp.DONE
    assert resolution.follow_up_detail.startswith("DEMO-REFUND-")
    confirmation = [m for m in mail.outbox if "El transportista" in m.body]
    assert len(confirmation) == 1
    assert "Acordado: un reembolso de" in confirmation[0].body


def test_a_damaged_parcel_without_a_photo_asks_for_one(shop_policy, open_case):
    case = open_case(category="damaged_missing", order_number="1231", language="en")
    record = triage_case(case=case)
    assert record.outcome == "ask_evidence"
    case.refresh_from_db()
    assert case.status == Status.PENDING_CUSTOMER
    assert "we need a photo of the problem" in case.messages.filter(internal=False).last().body


def test_staff_conduct_goes_to_a_person_with_the_trace(shop_policy, open_case, teams):
    case = open_case(category="staff_conduct")
    record = triage_case(case=case)
    assert record.outcome == "escalate"
    case.refresh_from_db()
    assert case.team == teams["customer-care"]
    assert case.status == Status.PENDING_AGENT
    note = case.messages.filter(internal=True).last().body
    assert note.startswith(
        "Decisión según la política: Escalado a un equipo (regla conduct-to-person"
    )
    assert case.events.filter(kind=EventKind.HANDED_OVER).exists()


def test_a_shop_that_is_down_never_auto_resolves_and_loses_nothing(
    shop_policy, open_case, settings
):
    settings.ORDER_LOOKUP = "concilia.resolution.tests.test_triage.BrokenShop"
    from concilia.core.ports import _load

    _load.cache_clear()
    try:
        case = open_case(
            category="shipping_delay", order_number="5558", purchase_date=timezone.localdate()
        )
        record = triage_case(case=case)
    finally:
        _load.cache_clear()
    assert record.outcome == "wait"
    assert record.unavailable == ["order"]
    assert not Resolution.objects.exists() and not Offer.objects.exists()
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    note = case.messages.filter(internal=True).last().body
    assert "No se pudo consultar: order. No se ha resuelto nada automáticamente." in note


class BrokenShop:
    def find_order(self, *, number, email):
        raise ConnectionError("shop down")


def test_a_stored_decision_replays_to_the_same_result(shop_policy, late_parcel):
    record = triage_case(case=late_parcel)
    replayed = replay(Decision.objects.get(pk=record.pk))
    assert replayed.outcome == record.outcome and replayed.rule == record.rule
    assert replayed.detail_json() == record.detail
    assert {"es": replayed.reason["es"], "en": replayed.reason["en"]} == {
        "es": record.reason_es,
        "en": record.reason_en,
    }


def test_a_case_is_decided_once_even_if_the_job_runs_again(shop_policy, late_parcel, run_tasks):
    run_tasks()  # the form's own triage job
    run_tasks()
    assert Decision.objects.filter(case=late_parcel).count() == 1
    assert triage_case(case=late_parcel) == Decision.objects.get(case=late_parcel)
    assert Offer.objects.filter(case=late_parcel).count() == 1
