"""The data-protection officer's side: requests arriving by other channels entered by hand and
confirmed by the person from an emailed link, corrections applied through the cases' own action,
deadlines extended once with a reason, requests closed by hand, warnings before a deadline, and
nobody but the officer (and administrators) handling them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.utils import timezone

from concilia.cases.models import CaseEvent, EventKind
from concilia.cases.sweep import sweep as case_sweep
from concilia.core.models import AuditAction, AuditEntry
from concilia.customers.models import Customer
from concilia.privacy import actions, tasks
from concilia.privacy.models import (
    DataSubjectRequest,
    RequestKind,
    RequestStatus,
    Verification,
)

pytestmark = pytest.mark.django_db

REQUESTS = "/helpdesk/privacy/requests/"


def enter(dora_client: Client, **fields: str):
    data = {
        "kind": "access",
        "email": "lucia@example.com",
        "channel": "email",
        "regime": "gdpr",
        "language": "en",
        "details": "",
        **fields,
    }
    return dora_client.post(REQUESTS + "new", data)


def confirm_link(message) -> str:
    match = re.search(r"http://testserver(/track/my-data/confirm/[\w:.\-]+)", message.body)
    assert match, message.body
    return match.group(1)


def test_a_request_by_email_is_confirmed_by_the_person_then_answered(
    open_case, dora_client, run_tasks
):
    case = open_case()
    run_tasks()
    mail.outbox.clear()

    response = enter(dora_client, details="Email of 3 March: she wants a copy of her data.")

    request = DataSubjectRequest.objects.get()
    assert response["Location"] == f"{REQUESTS}{request.pk}/"
    assert (request.customer, request.status) == (case.customer, RequestStatus.UNVERIFIED)
    assert request.requested_by.username == "dora"
    run_tasks()
    [to_lucia] = [m for m in mail.outbox if m.to == ["lucia@example.com"]]
    assert to_lucia.subject == "Confirm your request about your personal data"
    link = confirm_link(to_lucia)
    # The officer may send the link again (lost email); both work until the request is confirmed.
    dora_client.post(f"{REQUESTS}{request.pk}/send-link")
    run_tasks()
    assert len([m for m in mail.outbox if m.to == ["lucia@example.com"]]) == 2
    stranger = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert "Confirm the request" in stranger.get(link).text  # a mail scanner confirms nothing
    assert DataSubjectRequest.objects.get().status == RequestStatus.UNVERIFIED

    confirmed = stranger.post(link)

    assert "is confirmed" in confirmed.text
    request.refresh_from_db()
    assert (request.status, request.verification) == (RequestStatus.OPEN, "email_link")
    run_tasks()  # the export is built on confirmation
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED and request.export_available
    assert stranger.post(link).status_code == 410  # once only
    assert Client().post(link[:-3] + "xyz").status_code == 410


def test_staff_verify_by_hand_saying_how(open_case, dora_client):
    open_case()
    refused = enter(dora_client, kind="objection", verified="on")
    assert refused.status_code == 400
    assert "Say how the identity was checked." in refused.text

    enter(dora_client, kind="objection", verified="on", verification_note="Called her back.")

    request = DataSubjectRequest.objects.get()
    assert (request.status, request.verification) == (RequestStatus.OPEN, Verification.STAFF)
    assert request.verification_note == "Called her back."


def test_a_request_from_someone_unknown_is_closed_saying_no_data_is_held(
    db, dora_client, run_tasks
):
    entered = enter(dora_client, email="nobody@example.com")
    request = DataSubjectRequest.objects.get()
    assert request.customer is None and request.contact_email == "nobody@example.com"
    assert "No customer has this address" in dora_client.get(entered["Location"]).text
    run_tasks()
    assert not [m for m in mail.outbox if m.to == ["nobody@example.com"]]  # nothing to confirm

    dora_client.post(
        f"{REQUESTS}{request.pk}/close",
        {"close-status": "completed", "close-outcome": "We hold no data about you."},
    )

    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED and request.completed_at
    run_tasks()
    [told] = [m for m in mail.outbox if m.to == ["nobody@example.com"]]
    assert "We hold no data about you." in told.body


def test_the_officer_corrects_the_contact_data_through_the_case(
    open_case, customer_client, dora, dora_client, run_tasks
):
    case = open_case()
    customer_client(case).post(
        "/track/my-data/", {"request": "rectification", "details": "My phone is +34 699 000 111"}
    )
    request = DataSubjectRequest.objects.get()
    url = f"{REQUESTS}{request.pk}/"
    assert "+34 699 000 111" in dora_client.get(url).text

    nothing = dora_client.post(url + "rectify", {"rectify-name": "Lucía Fernández"})
    assert nothing.status_code == 400
    assert "Nothing was corrected" in nothing.text

    dora_client.post(
        url + "rectify", {"rectify-name": "Lucía Fernández", "rectify-phone": "+34 699 000 111"}
    )

    customer = Customer.objects.get(pk=case.customer_id)
    assert customer.phone == "+34 699 000 111"
    change = CaseEvent.objects.get(case=case, kind=EventKind.CONTACT_CHANGED)
    assert change.data == {"phone": {"from": "", "to": "+34 699 000 111"}}
    assert change.actor_user == dora
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.outcome == "Data corrected: phone."
    assert AuditEntry.objects.filter(
        action=AuditAction.CHANGE,
        object_type="privacy.datasubjectrequest",
        fields=["customer.phone"],
    ).exists()


def test_the_deadline_is_extended_once_within_the_law_with_a_reason(
    open_case, dora_client, run_tasks
):
    open_case()
    enter(dora_client, verified="on", verification_note="Known address.", kind="objection")
    request = DataSubjectRequest.objects.get()
    url = f"{REQUESTS}{request.pk}/"
    received = timezone.localdate(request.received_at)
    too_far = received + dt.timedelta(days=100)
    mail.outbox.clear()

    no_reason = dora_client.post(url + "extend", {"extend-until": too_far.isoformat()})
    beyond = dora_client.post(
        url + "extend", {"extend-until": too_far.isoformat(), "extend-reason": "Many requests."}
    )
    ok_date = timezone.localdate(request.due_at) + dt.timedelta(days=30)
    done = dora_client.post(
        url + "extend", {"extend-until": ok_date.isoformat(), "extend-reason": "Many requests."}
    )
    again = dora_client.post(
        url + "extend", {"extend-until": ok_date.isoformat(), "extend-reason": "More."}
    )

    assert no_reason.status_code == 400 and "This field is required." in no_reason.text
    assert beyond.status_code == 400 and "The law allows extending to" in beyond.text
    assert done.status_code == 302
    assert again.status_code == 400 and "already extended once" in again.text
    request.refresh_from_db()
    assert timezone.localdate(request.deadline) == ok_date
    assert request.extension_reason == "Many requests."
    run_tasks()
    [told] = [m for m in mail.outbox if "Many requests." in m.body]
    assert told.to == ["lucia@example.com"]
    assert told.subject == "We need more time to answer your request"


def test_no_extension_once_the_deadline_passed(open_case, dora):
    case = open_case()
    request = actions.receive_request(
        kind=RequestKind.OBJECTION, channel="email", customer=case.customer, actor=dora
    )
    DataSubjectRequest.objects.filter(pk=request.pk).update(
        due_at=timezone.now() - dt.timedelta(days=1)
    )

    with pytest.raises(actions.RequestNotAllowed, match="The deadline has passed"):
        actions.extend_deadline(
            request=request, until=timezone.localdate(), reason="Too late", actor=dora
        )


def test_the_list_shows_overdue_requests_first(open_case, dora, dora_client):
    case = open_case()
    later = actions.receive_request(
        kind=RequestKind.ACCESS, channel="post", customer=case.customer, actor=dora
    )
    late = actions.receive_request(
        kind=RequestKind.OBJECTION, channel="phone", customer=case.customer, actor=dora
    )
    DataSubjectRequest.objects.filter(pk=late.pk).update(
        due_at=timezone.now() - dt.timedelta(days=2)
    )

    page = dora_client.get(REQUESTS).text

    assert page.index(f'data-request="{late.pk}"') < page.index(f'data-request="{later.pk}"')
    assert 'data-overdue="true"' in page
    assert "Overdue" in page
    assert AuditEntry.objects.filter(
        action=AuditAction.LIST, object_type="privacy.datasubjectrequest"
    ).exists()


def test_only_the_officer_and_administrators_handle_requests(
    open_case, ana_client, dora_client, django_user_model
):
    case = open_case()
    request = actions.receive_request(
        kind=RequestKind.ACCESS, channel="email", customer=case.customer
    )
    admin = django_user_model.objects.create_user("root", "root@company.test", "pw")
    admin.groups.add(Group.objects.get(name="Role: administrator"))
    admin_client = Client()
    admin_client.force_login(admin)

    for path in (REQUESTS, f"{REQUESTS}{request.pk}/", REQUESTS + "new"):
        assert ana_client.get(path).status_code == 403
        assert Client().get(path).status_code == 302  # to the sign-in page
        assert dora_client.get(path).status_code == 200
        assert admin_client.get(path).status_code == 200
    assert ana_client.post(f"{REQUESTS}{request.pk}/close", {}).status_code == 403
    assert dora_client.post(f"{REQUESTS}{request.pk}/nonsense").status_code == 404
    assert 'href="/helpdesk/privacy/requests/"' in dora_client.get(REQUESTS).text
    assert 'href="/helpdesk/privacy/requests/"' not in ana_client.get("/helpdesk/").text


def test_a_customer_sees_only_their_own_requests(open_case, customer_client):
    lucia = customer_client(open_case())
    james = customer_client(open_case(email="james@example.com", name="James Carter"))
    lucia.post("/track/my-data/", {"request": "rectification", "details": "Wrong surname."})

    assert 'data-request-kind="rectification"' in lucia.get("/track/my-data/").text
    assert 'data-request-kind="rectification"' not in james.get("/track/my-data/").text


def test_the_officers_are_warned_before_a_deadline_once(open_case, dora, run_tasks):
    case = open_case()
    request = actions.receive_request(
        kind=RequestKind.ACCESS, channel="email", customer=case.customer, actor=dora
    )
    run_tasks()
    mail.outbox.clear()
    now = timezone.now()
    assert tasks.sweep(now=now) == 0  # a month ahead: nothing yet

    soon = request.due_at - dt.timedelta(days=tasks.WARN_DAYS - 1)
    result = case_sweep(now=soon)
    again = tasks.sweep(now=soon)
    run_tasks()

    assert result.others["data-subject requests near their deadline"] == 1
    assert again == 0
    [warning] = mail.outbox
    assert warning.to == ["dora@company.test"]
    assert f"/helpdesk/privacy/requests/{request.pk}/" in warning.body
