"""Getting the outbox's events to the endpoints: the fan-out of each event into one delivery per
subscribed endpoint, and the sending of an endpoint's due deliveries, in order per subject,
signed, with retries and backoff.

At least once: a delivery is marked delivered only after the receiver answered 2xx, so a worker
that dies while sending leaves it claimed for `WEBHOOK_CLAIM_SECONDS`, after which it is sent
again. Receivers deduplicate by `Concilia-Event-Id`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from concilia.core.models import OutboxEvent
from concilia.integrations.crm.tasks import push_case_event
from concilia.integrations.webhooks.addresses import refused_at_send
from concilia.integrations.webhooks.metrics import MADE
from concilia.integrations.webhooks.models import (
    DUE_STATUSES,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
)
from concilia.integrations.webhooks.signing import signature

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 500
SEND_BATCH = 100
USER_AGENT = "Concilia-Webhooks/1"


def envelope(event: OutboxEvent) -> bytes:
    """The request body: the same bytes on every attempt of the event."""
    document = {
        "id": str(event.event_id),
        "type": event.kind,
        "version": event.version,
        "created_at": event.created_at.isoformat(),
        "subject": event.subject,
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# Fan-out ----------------------------------------------------------------------------------


def dispatch(*, now: dt.datetime | None = None) -> tuple[int, set[int]]:
    """Give every event not yet dispatched a delivery per active endpoint subscribed to it.

    Idempotent: two dispatchers at once create each delivery once (unique endpoint and event).
    Returns how many events were dispatched and the endpoints that got deliveries.
    """
    now = now or timezone.now()
    endpoints = list(Endpoint.objects.filter(active=True))
    dispatched, touched = 0, set()
    while True:
        with transaction.atomic():
            events = list(
                OutboxEvent.objects.filter(dispatched_at__isnull=True).order_by("pk")[
                    :DISPATCH_BATCH
                ]
            )
            if not events:
                break
            rows = [
                Delivery(
                    endpoint=endpoint,
                    event=event,
                    subject=event.subject,
                    next_attempt_at=now,
                    created_at=now,
                )
                for event in events
                for endpoint in endpoints
                if endpoint.subscribes_to(event.kind)
            ]
            Delivery.objects.bulk_create(rows, ignore_conflicts=True)
            for event in events:  # the CRM hears of openings and closings (when CRM_PUSH is on)
                push_case_event(kind=event.kind, payload=event.payload)
            OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
        dispatched += len(events)
        touched.update(row.endpoint_id for row in rows)
        if len(events) < DISPATCH_BATCH:
            break
    return dispatched, touched


# Sending ----------------------------------------------------------------------------------


def backoff(attempts: int, *, rng: random.Random | None = None) -> dt.timedelta:
    """How long to wait after the `attempts`-th failure: doubling from the base up to the cap,
    with half of it random ("equal jitter") so that retries of many deliveries spread out."""
    base = settings.WEBHOOK_RETRY_BASE_SECONDS
    ceiling = min(settings.WEBHOOK_RETRY_CAP_SECONDS, base * 2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=ceiling / 2 + (rng or random).uniform(0, ceiling / 2))


@dataclass(frozen=True)
class Answer:
    """What one request got: a status code, or an error before any answer."""

    status_code: int | None
    elapsed_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Pass:
    """What one run over an endpoint's due deliveries did."""

    delivered: int = 0
    failed: int = 0
    blocked: int = 0
    next_retry_at: dt.datetime | None = None


def _client() -> httpx.Client:
    return httpx.Client(
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        follow_redirects=False,  # a redirect could lead the signed body somewhere else
        headers={"User-Agent": USER_AGENT},
    )


def post(client: httpx.Client, endpoint: Endpoint, event: OutboxEvent) -> Answer:
    """Send the event to the endpoint once, signed with the endpoint's current secret."""
    body = envelope(event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Concilia-Event-Id": str(event.event_id),
        "Concilia-Event": event.kind,
        "Concilia-Timestamp": str(timestamp),
        "Concilia-Signature": signature(endpoint.secret, timestamp, body),
    }
    refused = refused_at_send(endpoint.url)
    if refused:
        return Answer(None, 0, refused)
    started = time.monotonic()
    try:
        # Streamed and never read: a receiver's large answer is not downloaded.
        with client.stream("POST", endpoint.url, content=body, headers=headers) as response:
            code = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        elapsed = int((time.monotonic() - started) * 1000)
        return Answer(None, elapsed, f"{type(error).__name__}: {error}"[:500])
    elapsed = int((time.monotonic() - started) * 1000)
    error = "redirects are not followed" if 300 <= code < 400 else ""
    return Answer(code, elapsed, error)


def _blocked(delivery: Delivery) -> bool:
    """An earlier event of the same subject has not reached this endpoint yet (given-up ones
    excepted: one refused event must not hold its case's later events forever)."""
    return (
        Delivery.objects.filter(
            endpoint_id=delivery.endpoint_id,
            subject=delivery.subject,
            event_id__lt=delivery.event_id,
        )
        .exclude(status__in=(DeliveryStatus.DELIVERED, DeliveryStatus.DEAD))
        .exists()
    )


def _claim(delivery: Delivery, now: dt.datetime) -> bool:
    """Take the delivery for this worker; its claim lapses (and it is sent again) if the worker
    dies before recording the answer."""
    lease = dt.timedelta(seconds=settings.WEBHOOK_CLAIM_SECONDS)
    return (
        Delivery.objects.filter(
            pk=delivery.pk, status__in=DUE_STATUSES, next_attempt_at__lte=now
        ).update(next_attempt_at=now + lease)
        == 1
    )


@transaction.atomic
def record(delivery: Delivery, answer: Answer, *, started_at: dt.datetime) -> Delivery:
    """Log the attempt and move the delivery on: delivered, retried later, or given up."""
    now = timezone.now()
    number = DeliveryAttempt.objects.filter(delivery=delivery).count() + 1
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started_at,
        status_code=answer.status_code,
        response_ms=answer.elapsed_ms,
        error=answer.error,
    )
    delivery.last_status_code = answer.status_code
    delivery.last_response_ms = answer.elapsed_ms
    delivery.last_error = answer.error
    fields = ["status", "attempts", "next_attempt_at", "last_status_code", "last_response_ms"]
    if answer.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        fields.append("delivered_at")
    else:
        delivery.attempts += 1
        if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.DEAD
        else:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(update_fields=[*fields, "last_error"])
    if answer.ok:
        transaction.on_commit(MADE.inc)
    return delivery


def deliver_due(*, endpoint_id: int) -> Pass:
    """Send the endpoint's due deliveries, oldest event first; a delivery waits while an earlier
    one of its subject is not delivered (it is retried, or another worker is sending it)."""
    result = Pass()
    endpoint = Endpoint.objects.filter(pk=endpoint_id, active=True).first()
    if endpoint is None:
        return result
    after = 0
    with _client() as client:
        while True:
            now = timezone.now()
            page = list(
                Delivery.objects.filter(
                    endpoint=endpoint,
                    status__in=DUE_STATUSES,
                    next_attempt_at__lte=now,
                    event_id__gt=after,
                )
                .select_related("event")
                .order_by("event_id")[:SEND_BATCH]
            )
            for delivery in page:
                if _blocked(delivery):
                    result.blocked += 1
                    continue
                started_at = timezone.now()
                if not _claim(delivery, started_at):
                    continue
                answer = post(client, endpoint, delivery.event)
                record(delivery, answer, started_at=started_at)
                if answer.ok:
                    result.delivered += 1
                else:
                    result.failed += 1
                    if delivery.status == DeliveryStatus.FAILED and (
                        result.next_retry_at is None
                        or delivery.next_attempt_at < result.next_retry_at
                    ):
                        result.next_retry_at = delivery.next_attempt_at
            if len(page) < SEND_BATCH:
                return result
            after = page[-1].event_id
            endpoint.refresh_from_db(fields=["active", "secret", "url"])
            if not endpoint.active:
                return result


def due_endpoints(now: dt.datetime) -> list[int]:
    """Active endpoints with deliveries whose time has come (retries, lapsed claims)."""
    return list(
        Delivery.objects.filter(
            status__in=DUE_STATUSES, next_attempt_at__lte=now, endpoint__active=True
        )
        .order_by()
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
