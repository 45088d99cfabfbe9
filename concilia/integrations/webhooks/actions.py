"""Every write to webhook endpoints by people: registering one, rotating its secret, switching it
on or off, and sending a delivery again."""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.core.events import EventType
from concilia.core.tasks import enqueue_with_change
from concilia.integrations.webhooks.models import Delivery, DeliveryStatus, Endpoint, new_secret


def _check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(EventType.values))
    if unknown:
        raise ValidationError(_("Unknown events: %(events)s") % {"events": ", ".join(unknown)})
    if not events:
        raise ValidationError(_("Choose at least one event."))
    return [kind for kind in EventType.values if kind in events]


@transaction.atomic
def create_endpoint(
    *, url: str, events: Sequence[str], actor: User | None, description: str = ""
) -> Endpoint:
    """Register a receiver for some events; its new secret is on the returned endpoint (shown
    to the administrator once)."""
    endpoint = Endpoint(
        url=url, events=_check_events(events), description=description, created_by=actor
    )
    endpoint.full_clean()
    endpoint.save(force_insert=True)
    return endpoint


@transaction.atomic
def update_endpoint(
    *,
    endpoint: Endpoint,
    url: str,
    events: Sequence[str],
    description: str,
    active: bool,
) -> Endpoint:
    """Change where and what an endpoint receives; deactivated, it gets nothing new."""
    endpoint.url, endpoint.events = url, _check_events(events)
    endpoint.description, endpoint.active = description, active
    endpoint.full_clean(exclude=["secret", "created_by"])
    endpoint.save(update_fields=["url", "events", "description", "active"])
    return endpoint


@transaction.atomic
def rotate_secret(*, endpoint: Endpoint) -> str:
    """A new signing secret from now on (the old one stops at once); returns it."""
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    return endpoint.secret


@transaction.atomic
def redeliver(*, deliveries: Sequence[Delivery]) -> int:
    """Send these deliveries again now (given up, failed or even delivered ones), with a fresh
    count of attempts. Returns how many were queued."""
    from concilia.integrations.webhooks.tasks import deliver_to_endpoint

    pks = [d.pk for d in deliveries]
    queued = Delivery.objects.filter(pk__in=pks).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
    endpoint_ids = Delivery.objects.filter(pk__in=pks).values_list("endpoint_id", flat=True)
    for endpoint_id in sorted(set(endpoint_ids)):
        enqueue_with_change(deliver_to_endpoint, endpoint_id=endpoint_id)
    return queued
