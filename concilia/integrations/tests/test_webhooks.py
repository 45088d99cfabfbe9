"""Outbound webhooks: events are written with the change that caused them, delivered signed to a
real receiver on loopback, in order per case, retried with backoff, given up after the last
attempt and sent again on request."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import random
import time

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from concilia.cases import actions as case_actions
from concilia.cases.models import Outcome, Status
from concilia.core.events import EventType, emit
from concilia.core.models import OutboxEvent
from concilia.integrations.tests.receiver import Receiver
from concilia.integrations.webhooks import actions, delivery, tasks
from concilia.integrations.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
)
from concilia.integrations.webhooks.signing import signature, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # the receiver is on loopback
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def endpoint(receiver, django_user_model):
    """The shop's CRM subscribes to every event at the loopback receiver."""
    admin = django_user_model.objects.create_superuser("root", "root@company.test", "pw")
    created = actions.create_endpoint(
        url=receiver.url, events=EventType.values, actor=admin, description="CRM"
    )
    receiver.secret = created.secret
    return created


def past_due() -> None:
    """Time passes: every retry's moment has come."""
    Delivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def send() -> None:
    delivery.dispatch()
    for endpoint_id in delivery.due_endpoints(timezone.now()):
        delivery.deliver_due(endpoint_id=endpoint_id)


# --- the outbox ---------------------------------------------------------------------------


def test_an_event_exists_only_if_its_change_commits(open_case):
    with pytest.raises(RuntimeError), transaction.atomic():
        open_case(email="rolled@example.com")
        assert OutboxEvent.objects.filter(kind=EventType.CASE_CREATED).count() == 1
        raise RuntimeError("the change fails after the event was written")
    assert not OutboxEvent.objects.exists()

    case = open_case()
    event = OutboxEvent.objects.get(kind=EventType.CASE_CREATED)
    assert event.subject == case.reference
    assert event.version == 1
    assert event.payload["case"] == case.reference
    assert event.payload["category"] == "other"
    # No personal data: receivers fetch the case through the API with their own token.
    text = json.dumps(event.payload)
    assert "lucia@example.com" not in text and "Lucía" not in text
    assert "Algo salió mal" not in text


def test_case_actions_emit_their_events_in_order(open_case, agent):
    case = open_case()
    case_actions.reply_to_customer(case=case, body="¿Nos envía el número de pedido?", author=agent)
    case_actions.add_customer_message(case=case, body="Es el 1234.")
    case_actions.close_case(case=case, outcome=Outcome.RESOLVED, actor_user=agent)
    kinds = list(OutboxEvent.objects.filter(subject=case.reference).values_list("kind", "payload"))
    assert [kind for kind, _ in kinds] == [
        "case.created",
        "case.message_added",
        "case.status_changed",
        "case.message_added",
        "case.status_changed",
        "case.status_changed",
        "case.closed",
    ]
    assert kinds[2][1]["status"] == Status.PENDING_CUSTOMER
    assert kinds[-1][1]["outcome"] == Outcome.RESOLVED
    assert all("body" not in payload for _, payload in kinds)


def test_unknown_event_kinds_are_refused(db):
    with pytest.raises(ValueError, match="Unknown event kind"):
        emit("case.exploded", subject="RC-1", payload={})


# --- delivery -----------------------------------------------------------------------------


def test_an_event_is_delivered_signed_with_its_payload(endpoint, receiver, open_case, run_tasks):
    case = open_case()
    run_tasks()
    created = [r for r in receiver.received if r.kind == "case.created"]
    assert len(created) == 1
    request = created[0]
    event = OutboxEvent.objects.get(kind="case.created")
    assert request.signed
    assert request.event_id == str(event.event_id)
    assert abs(request.timestamp - time.time()) < 60
    assert request.body == {
        "id": str(event.event_id),
        "type": "case.created",
        "version": 1,
        "created_at": event.created_at.isoformat(),
        "subject": case.reference,
        "data": event.payload,
    }
    sent = Delivery.objects.get(endpoint=endpoint, event=event)
    assert (sent.status, sent.attempts, sent.last_status_code) == (DeliveryStatus.DELIVERED, 0, 200)
    attempt = DeliveryAttempt.objects.get(delivery=sent)
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    assert attempt.response_ms >= 0


def test_the_signature_scheme_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"id":"x"}'
    expected = "v1=" + hmac.new(b"s3cret", b"1700000000." + body, "sha256").hexdigest()
    assert signature("s3cret", 1700000000, body) == expected
    assert verify("s3cret", 1700000000, body, expected)
    assert not verify("s3cret", 1700000000, b'{"id":"y"}', expected)
    assert not verify("other", 1700000000, body, expected)
    assert not verify("s3cret", 1700000001, body, expected)


def test_only_subscribed_active_endpoints_get_deliveries(endpoint, receiver, django_user_model):
    closed_only = actions.create_endpoint(url=receiver.url, events=["case.closed"], actor=None)
    asleep = actions.create_endpoint(url=receiver.url, events=EventType.values, actor=None)
    actions.update_endpoint(
        endpoint=asleep, url=asleep.url, events=asleep.events, description="", active=False
    )
    emit(EventType.CASE_CREATED, subject="RC-1", payload={"case": "RC-1"})
    emit(EventType.CASE_CLOSED, subject="RC-1", payload={"case": "RC-1"})
    delivery.dispatch()
    assert sorted(Delivery.objects.values_list("endpoint_id", "event__kind")) == sorted(
        [
            (endpoint.pk, "case.created"),
            (endpoint.pk, "case.closed"),
            (closed_only.pk, "case.closed"),
        ]
    )
    # Dispatching again creates nothing twice.
    OutboxEvent.objects.update(dispatched_at=None)
    delivery.dispatch()
    assert Delivery.objects.count() == 3


def test_a_failing_event_holds_back_its_case_but_not_other_cases(endpoint, receiver):
    a1 = emit(EventType.CASE_CREATED, subject="RC-A", payload={"case": "RC-A"})
    a2 = emit(EventType.CASE_STATUS_CHANGED, subject="RC-A", payload={"case": "RC-A"})
    b1 = emit(EventType.CASE_CREATED, subject="RC-B", payload={"case": "RC-B"})
    receiver.answer = lambda doc: 500 if doc["id"] == str(a1.event_id) else 200

    send()

    assert [r.event_id for r in receiver.accepted()] == [str(b1.event_id)]
    first = Delivery.objects.get(event=a1)
    assert (first.status, first.attempts, first.last_status_code) == (DeliveryStatus.FAILED, 1, 500)
    assert first.next_attempt_at > timezone.now()
    assert Delivery.objects.get(event=a2).status == DeliveryStatus.PENDING

    # Still failing when due again; the second event of case A still waits.
    past_due()
    send()
    assert Delivery.objects.get(event=a2).status == DeliveryStatus.PENDING
    assert Delivery.objects.get(event=a1).attempts == 2

    receiver.answer = 200
    past_due()
    send()
    assert [r.event_id for r in receiver.accepted() if r.body["subject"] == "RC-A"] == [
        str(a1.event_id),
        str(a2.event_id),
    ]
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert list(
        DeliveryAttempt.objects.filter(delivery__event=a1)
        .order_by("number")
        .values_list("number", "status_code")
    ) == [(1, 500), (2, 500), (3, 200)]


def test_backoff_doubles_up_to_the_cap_with_jitter(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_CAP_SECONDS = 300
    rng = random.Random(7)
    for attempts, ceiling in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 300), (12, 300)]:
        waits = [delivery.backoff(attempts, rng=rng).total_seconds() for _ in range(50)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (attempts, waits)
        assert len(set(waits)) > 1  # jittered: retries of many deliveries spread out


def test_given_up_after_the_last_attempt_then_redelivered_by_hand(
    endpoint, receiver, settings, run_tasks, admin_client
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answer = 503
    event = emit(EventType.CASE_CREATED, subject="RC-A", payload={"case": "RC-A"})
    later = emit(EventType.CASE_CLOSED, subject="RC-A", payload={"case": "RC-A"})
    for _ in range(3):
        past_due()
        send()
    dead = Delivery.objects.get(event=event)
    assert (dead.status, dead.attempts) == (DeliveryStatus.DEAD, 3)
    assert DeliveryAttempt.objects.filter(delivery=dead).count() == 3
    # A given-up event does not hold its case's later events forever: the next one is tried.
    assert Delivery.objects.get(event=later).attempts >= 1

    # The administrator sees it in the endpoint's delivery log and sends it again.
    log = admin_client.get(
        reverse("admin:integrations_delivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
    )
    assert log.status_code == 200
    assert "RC-A" in log.content.decode()
    receiver.answer = 200
    response = admin_client.post(
        reverse("admin:integrations_delivery_changelist"),
        {"action": "redeliver", "_selected_action": [dead.pk]},
    )
    assert response.status_code == 302
    run_tasks()
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (DeliveryStatus.DELIVERED, 0)
    assert DeliveryAttempt.objects.filter(delivery=dead).count() == 4
    assert str(event.event_id) in receiver.accepted_ids()


def test_redirects_are_not_followed(endpoint, receiver):
    receiver.answer = 302
    emit(EventType.CASE_CREATED, subject="RC-A", payload={"case": "RC-A"})
    send()
    failed = Delivery.objects.get()
    assert (failed.status, failed.last_status_code) == (DeliveryStatus.FAILED, 302)
    assert failed.last_error == "redirects are not followed"
    assert len(receiver.received) == 1


def test_a_receiver_down_for_a_while_gets_everything_once_back(endpoint, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.2
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.stop()
    events = [
        emit(kind, subject=subject, payload={"case": subject})
        for subject in ("RC-A", "RC-B")
        for kind in (EventType.CASE_CREATED, EventType.CASE_STATUS_CHANGED, EventType.CASE_CLOSED)
    ]
    send()
    first_retry = {d.subject: d.next_attempt_at for d in Delivery.objects.filter(attempts=1)}
    assert set(first_retry) == {"RC-A", "RC-B"}  # one failure per case; the rest wait in line
    assert all(d.last_status_code is None for d in Delivery.objects.filter(attempts=1))
    time.sleep(0.25)
    send()
    assert Delivery.objects.filter(attempts=2).count() == 2  # backed off, tried again, still down

    receiver.start()  # the same port
    deadline = time.monotonic() + 30  # generous: a loaded CI machine sends slowly
    while Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists():
        assert time.monotonic() < deadline, "not everything arrived"
        time.sleep(0.1)
        send()
    # Everything arrived once, and in order within each case (cases are independent of each other).
    received = [r.event_id for r in receiver.received]
    assert sorted(received) == sorted(str(e.event_id) for e in events)
    for subject in ("RC-A", "RC-B"):
        expected = [str(e.event_id) for e in events if e.subject == subject]
        assert [event_id for event_id in received if event_id in expected] == expected


def test_the_sweep_queues_senders_for_due_retries(endpoint, receiver, run_tasks):
    receiver.answer = 500
    emit(EventType.CASE_CREATED, subject="RC-A", payload={"case": "RC-A"})
    run_tasks()
    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    receiver.answer = 200
    past_due()
    assert tasks.sweep() == 1
    run_tasks()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


# --- the administrators' pages ------------------------------------------------------------


def test_an_endpoint_is_registered_in_the_admin_and_its_secret_shown_once(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:integrations_endpoint_add"),
        {
            "url": receiver.url,
            "description": "CRM",
            "events": ["case.created", "case.closed"],
            "active": "on",
        },
    )
    assert response.status_code == 200
    created = Endpoint.objects.get()
    assert created.events == ["case.created", "case.closed"]
    assert created.secret.startswith("whsec_")
    assert created.secret in response.content.decode()
    page = admin_client.get(reverse("admin:integrations_endpoint_change", args=[created.pk]))
    assert created.secret not in page.content.decode()

    rotated = admin_client.post(
        reverse("admin:integrations_endpoint_changelist"),
        {"action": "rotate", "_selected_action": [created.pk]},
    )
    old = created.secret
    created.refresh_from_db()
    assert created.secret != old and created.secret_rotated_at is not None
    assert created.secret in rotated.content.decode()


def test_only_http_urls_are_accepted(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        actions.create_endpoint(url="file:///etc/passwd", events=["case.created"], actor=None)
    with pytest.raises(ValidationError):
        actions.create_endpoint(url="https://crm.example.com/hooks", events=[], actor=None)


def test_a_name_that_resolves_to_a_private_address_is_not_sent_to(receiver, open_case, settings):
    """An endpoint whose host name now resolves to this machine: the delivery is refused when
    it is sent, and the receiver hears nothing."""
    import socket
    from urllib.parse import urlsplit

    name = socket.gethostname()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip("this machine's name does not resolve")
    if not all(address.startswith("127.") or address == "::1" for address in resolved):
        pytest.skip("this machine's name does not resolve to loopback")
    port = urlsplit(receiver.url).port
    # As if its name had pointed to a public address when it was registered.
    endpoint = Endpoint.objects.create(
        url=f"http://{name}:{port}/hook", events=[EventType.CASE_CREATED]
    )
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    open_case()
    send()

    assert receiver.received == []
    attempt = DeliveryAttempt.objects.get(delivery__endpoint=endpoint)
    assert "not a public address" in attempt.error
    assert Delivery.objects.get(endpoint=endpoint).status != DeliveryStatus.DELIVERED
