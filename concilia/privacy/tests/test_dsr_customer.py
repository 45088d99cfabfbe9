"""A customer's requests about their data from the tracking pages: signed in through the emailed
link, they ask for a copy, a correction or an erasure; each becomes a task with its legal deadline
for the data-protection officer, who is told; a customer sees only their own."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from concilia.core.models import AuditAction, AuditEntry, OutboxEvent
from concilia.privacy import deadlines
from concilia.privacy.models import (
    DataSubjectRequest,
    RequestChannel,
    RequestKind,
    RequestStatus,
    Verification,
)

pytestmark = pytest.mark.django_db

MY_DATA = "/track/my-data/"


def test_not_signed_in_the_page_sends_the_customer_to_sign_in(client):
    response = client.get(MY_DATA, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    assert response["Location"] == "/track"


def test_a_signed_in_customer_asks_for_a_correction_and_the_officer_is_told(
    open_case, customer_client, dora, run_tasks
):
    case = open_case()
    client = customer_client(case)
    page = client.get("/track/cases")
    assert MY_DATA in page.text  # the tracking pages lead there
    page = client.get(MY_DATA)
    assert page.status_code == 200
    assert "Correct my data" in page.text
    mail.outbox.clear()

    response = client.post(
        MY_DATA, {"request": "rectification", "details": "My surname is Fernández-Soto."}
    )

    assert response.status_code == 302
    request = DataSubjectRequest.objects.get()
    assert request.kind == RequestKind.RECTIFICATION
    assert request.customer == case.customer
    assert request.channel == RequestChannel.TRACKING
    assert request.status == RequestStatus.OPEN
    assert request.verification == Verification.SIGNED_IN
    assert request.details == "My surname is Fernández-Soto."
    assert request.due_at == deadlines.due_at("gdpr", request.received_at)
    assert OutboxEvent.objects.filter(kind="dsr.created").count() == 1
    assert AuditEntry.objects.filter(
        action=AuditAction.CREATE, object_type="privacy.datasubjectrequest"
    ).exists()
    run_tasks()
    to_dora = [m for m in mail.outbox if m.to == ["dora@company.test"]]
    assert len(to_dora) == 1  # in her language (Spanish), with the link to the request
    assert f"http://testserver/helpdesk/privacy/requests/{request.pk}/" in to_dora[0].body
    to_lucia = [m for m in mail.outbox if m.to == ["lucia@example.com"]]
    assert len(to_lucia) == 1
    page = client.get(MY_DATA)
    assert 'data-request-kind="rectification"' in page.text


def test_a_correction_needs_to_say_what_is_wrong(open_case, customer_client):
    client = customer_client(open_case())

    response = client.post(MY_DATA, {"request": "rectification", "details": "  "})

    assert response.status_code == 400
    assert "Tell us what is wrong so that we can correct it." in response.text
    assert not DataSubjectRequest.objects.exists()


def test_an_erasure_needs_the_confirmation_and_the_page_explains_the_holds(
    open_case, customer_client
):
    case = open_case()
    client = customer_client(case)

    page = client.get(MY_DATA)
    assert f"Case {case.reference} is an open complaint" in page.text
    refused = client.post(MY_DATA, {"request": "erasure"})
    assert refused.status_code == 400
    assert "Tick the box to confirm that you want your data erased." in refused.text

    client.post(MY_DATA, {"request": "erasure", "confirm": "on"})
    again = client.post(MY_DATA, {"request": "erasure", "confirm": "on"})

    assert again.status_code == 302
    erasure = DataSubjectRequest.objects.get()  # asking twice is one request
    assert erasure.kind == RequestKind.ERASURE and erasure.status == RequestStatus.OPEN


def test_an_unknown_request_is_explained(open_case, customer_client):
    client = customer_client(open_case())

    response = client.post(MY_DATA, {"request": "everything"})

    assert response.status_code == 400
    assert "Choose what you want to ask for." in response.text


def test_the_deadline_is_one_calendar_month_or_45_days():
    received = dt.datetime(2027, 1, 31, 10, 0, tzinfo=timezone.get_current_timezone())

    gdpr = timezone.localtime(deadlines.due_at("gdpr", received))
    ccpa = timezone.localtime(deadlines.due_at("ccpa", received))

    assert (gdpr.date(), gdpr.time()) == (dt.date(2027, 2, 28), dt.time(23, 59, 59))
    assert ccpa.date() == dt.date(2027, 3, 17)
    assert timezone.localdate(deadlines.latest_extension("gdpr", received)) == dt.date(2027, 4, 30)
    assert timezone.localdate(deadlines.latest_extension("ccpa", received)) == dt.date(2027, 5, 1)
    assert deadlines.add_months(dt.date(2028, 12, 15), 2) == dt.date(2029, 2, 15)


def test_the_page_is_in_spanish_by_default(open_case, customer_client):
    client = customer_client(open_case())

    page = client.get(MY_DATA, HTTP_ACCEPT_LANGUAGE="es")

    assert page.status_code == 200
    assert '<html lang="es">' in page.text
