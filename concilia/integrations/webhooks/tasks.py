"""Background jobs of the webhooks: the dispatcher (queued by `core.events.emit`), the sender
per endpoint, and the sweep's part (retries whose time came, events a lost nudge left behind)."""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from django_tasks import task, task_backends

from concilia.integrations.webhooks import delivery

logger = logging.getLogger(__name__)


@task(queue_name="webhooks")
def dispatch_events() -> int:
    """Fan the outbox's new events out to the subscribed endpoints, then send them."""
    dispatched, endpoints = delivery.dispatch()
    for endpoint_id in sorted(endpoints):
        deliver_to_endpoint.enqueue(endpoint_id=endpoint_id)
    return dispatched


@task(queue_name="webhooks")
def deliver_to_endpoint(*, endpoint_id: int) -> int:
    """Send one endpoint's due deliveries; the earliest retry is queued for its time (and the
    sweep finds it anyway, should this job be lost)."""
    result = delivery.deliver_due(endpoint_id=endpoint_id)
    if (
        result.next_retry_at is not None
        and task_backends[deliver_to_endpoint.backend].supports_defer
    ):
        deliver_to_endpoint.using(run_after=result.next_retry_at).enqueue(endpoint_id=endpoint_id)
    return result.delivered


def sweep(*, now: dt.datetime | None = None) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): dispatch what is left in the outbox and
    queue a sender for every endpoint with due deliveries. Returns how many endpoints."""
    now = now or timezone.now()
    delivery.dispatch(now=now)
    endpoints = delivery.due_endpoints(now)
    for endpoint_id in endpoints:
        deliver_to_endpoint.enqueue(endpoint_id=endpoint_id)
    return len(endpoints)
