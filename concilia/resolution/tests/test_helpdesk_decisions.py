"""Agents see every decision on a case with its full trace and the facts it saw, and may
override it with a mandatory reason; bad input keeps what was typed and changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from concilia.accounts.models import Role
from concilia.cases.models import EventKind, Status
from concilia.cases.tests.conftest import person
from concilia.resolution.actions import triage_case
from concilia.resolution.models import Decision, Offer, OfferStatus, Resolution

pytestmark = pytest.mark.django_db


@pytest.fixture
def late(shop_policy, open_case):
    case = open_case(
        category="shipping_delay", order_number="1234", purchase_date=timezone.localdate()
    )
    triage_case(case=case)
    return case


@pytest.fixture
def agent_client(teams) -> Client:
    """Ana, an agent of customer care."""
    client = Client()
    client.force_login(person("ana", Role.AGENT, teams["customer-care"], language="en"))
    return client


def test_the_case_page_shows_the_decision_trace_and_the_open_offer(agent_client, late):
    html = agent_client.get(
        f"/helpdesk/cases/{late.reference}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Policy decisions" in html
    assert "<code>late-parcel</code>" in html
    assert 'data-result="not_met"' in html and "case.amount &gt; 300" in html
    assert "order.days_late" in html
    assert "Open offer" in html
    assert "Override the decision" in html


def test_an_override_settles_the_case_and_is_audited(agent_client, late):
    decision = Decision.objects.get(case=late)
    response = agent_client.post(
        f"/helpdesk/decisions/{late.reference}/override",
        {"decision": decision.pk, "kind": "refund", "amount": "15.50", "reason": "Loyal customer."},
    )
    assert response.status_code == 302
    resolution = Resolution.objects.get(case=late)
    assert (resolution.kind, resolution.amount, resolution.agreed_by) == (
        "refund",
        Decimal("15.50"),
        "staff",
    )
    assert Offer.objects.get(case=late).status == OfferStatus.WITHDRAWN
    event = late.events.get(kind=EventKind.DECISION_OVERRIDDEN)
    assert event.actor_user.username == "ana" and event.data["reason"] == "Loyal customer."
    late.refresh_from_db()
    assert late.status == Status.CLOSED
    html = agent_client.get(
        f"/helpdesk/cases/{late.reference}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "override by" in html and "Loyal customer." in html


def test_an_override_without_a_reason_is_refused_keeping_what_was_typed(agent_client, late):
    decision = Decision.objects.get(case=late)
    response = agent_client.post(
        f"/helpdesk/decisions/{late.reference}/override",
        {"decision": decision.pk, "kind": "credit", "amount": "", "reason": ""},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "This field is required." in html  # the reason
    assert "Give the amount." in html
    assert not Resolution.objects.exists()
    assert Offer.objects.get(case=late).status == OfferStatus.OPEN


def test_someone_outside_the_helpdesk_cannot_override(late, django_user_model):
    outsider = Client()
    outsider.force_login(django_user_model.objects.create_user("eve", password="pw"))
    decision = Decision.objects.get(case=late)
    response = outsider.post(
        f"/helpdesk/decisions/{late.reference}/override",
        {"decision": decision.pk, "kind": "", "reason": "I want to"},
    )
    assert response.status_code == 403
    assert Decision.objects.filter(case=late).count() == 1


def test_a_decision_of_another_case_is_refused(agent_client, late, open_case, shop_policy):
    other = open_case(email="pedro@example.com", category="staff_conduct")
    triage_case(case=other)
    response = agent_client.post(
        f"/helpdesk/decisions/{late.reference}/override",
        {"decision": Decision.objects.get(case=other).pk, "kind": "", "reason": "x"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "That decision is not this case" in response.content.decode()
