"""Data minimisation, held in the model: a field its category marks hidden is neither asked nor
stored, whichever channel the complaint comes by. Staff conduct complaints need no order, date
or amount; here the company also decided refunds need no phone and no amount.

The chat and Telegram are in test_minimisation_chat.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from concilia.cases.actions import FieldNotNeeded, open_case, update_contact
from concilia.cases.models import Case, CaseEvent, Category, Channel, LegalBasis
from concilia.customers.actions import identify_customer
from concilia.integrations.mail.models import InboundEmail, Mailbox
from concilia.integrations.tests.test_mail_inbound import email_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def minimal_refunds(db):
    """Refunds: order number and date required; amount and phone not asked."""
    Category.objects.filter(code="refund").update(
        field_rules={
            "order_number": "required",
            "purchase_date": "required",
            "amount": "hidden",
            "phone": "hidden",
        }
    )


def test_open_case_keeps_nothing_the_category_does_not_ask(db):
    """Whatever a channel passes, the model layer drops it (and notes what it dropped)."""
    lucia = identify_customer(email="lucia@example.com", name="Lucía Fernández")
    conduct = Category.objects.get(code="staff_conduct")

    case = open_case(
        customer=lucia,
        category=conduct,
        channel=Channel.API,
        language="es",
        description="El repartidor me insultó.",
        order_number="PED-10482",
        purchase_date=dt.date(2026, 11, 2),
        amount=Decimal("49.90"),
    )

    stored = Case.objects.get(pk=case.pk)
    assert (stored.order_number, stored.purchase_date, stored.amount) == ("", None, None)
    opened = CaseEvent.objects.get(case=case, kind="opened")
    assert opened.data["not_kept"] == ["order_number", "purchase_date", "amount"]


def test_the_web_form_neither_asks_nor_stores_hidden_fields(
    client, complaint_data, minimal_refunds
):
    page = client.get("/complaints/new", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    rules = json.loads(
        re.search(r'<script id="category-rules" type="application/json">(.*?)</script>', page)[1]
    )
    # the page's script hides what the category marks hidden (concilia/static/concilia/intake.js)
    assert rules["refund"] == {
        "order_number": "required",
        "purchase_date": "required",
        "amount": "hidden",
        "phone": "hidden",
    }

    response = client.post(
        "/complaints/new",
        {**complaint_data(amount="49,90", phone="+34 600 123 456"), "submission_id": uuid.uuid4()},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    case = Case.objects.get()
    assert case.amount is None
    assert case.order_number == "PED-10482"
    assert case.customer.phone == ""


def test_a_required_phone_is_asked_for(client, complaint_data):
    Category.objects.filter(code="refund").update(
        field_rules={"order_number": "required", "phone": "required"}
    )

    response = client.post(
        "/complaints/new",
        {**complaint_data(phone=""), "submission_id": uuid.uuid4()},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert response.context["form"].errors["phone"] == ["Refund complaints need this field."]
    assert not Case.objects.exists()


def test_the_api_declares_and_enforces_the_same_rules(client, api_payload, minimal_refunds):
    categories = client.get("/api/v1/categories").json()
    refund = next(c for c in categories if c["code"] == "refund")
    assert refund["fields"]["amount"] == "hidden"
    assert refund["fields"]["phone"] == "hidden"

    response = client.post(
        "/api/v1/complaints",
        api_payload(phone="+44 20 7946 0958", amount="12.50"),
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    case = Case.objects.get(reference=response.json()["reference"])
    assert case.amount is None
    assert case.customer.phone == ""
    assert case.order_number == "ORD-55120"


def test_an_email_stores_no_order_data_and_records_its_legal_basis(run_tasks):
    mailbox = Mailbox.objects.create(name="Web", slug="web", address="help@example.com")
    raw = email_from(text="My order PED-10482 of 49,90 € never arrived. Call me on 600123456.")
    client = Client()
    response = client.post(
        f"/integrations/mail/inbound/{mailbox.slug}/",
        data=raw,
        content_type="message/rfc822",
        HTTP_AUTHORIZATION=_basic(mailbox.inbound_secret),
    )
    assert response.status_code == 202
    run_tasks()

    case = InboundEmail.objects.get().case
    assert case.channel == Channel.EMAIL
    # the text is the customer's; no field is filled from it
    assert (case.order_number, case.purchase_date, case.amount) == ("", None, None)
    assert case.customer.phone == ""
    assert case.privacy_consent is None
    assert case.legal_basis == LegalBasis.LEGITIMATE_INTEREST


def _basic(secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"provider:{secret}".encode()).decode()


def test_staff_cannot_add_a_phone_the_category_does_not_ask(
    open_case, ana, ana_client, minimal_refunds
):
    case = open_case(category="refund", order_number="PED-1", purchase_date=dt.date(2026, 11, 1))

    with pytest.raises(FieldNotNeeded):
        update_contact(case=case, name="Lucía Fernández", phone="+34 600 000 000", actor=ana)

    response = ana_client.post(
        f"/helpdesk/cases/{case.reference}/contact",
        {"version": case.version, "name": "Lucía F.", "phone": "+34 600 000 000"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "Refund cases do not need a phone number, so none is kept." in response.content.decode()
    case.customer.refresh_from_db()
    assert case.customer.phone == ""
