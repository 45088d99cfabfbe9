"""Every write to webhook endpoints by people (the admin and the API): registering one, changing
or deleting it, rotating its secret, sending a delivery again and sending a test ping.

Each change made by a person is recorded in Django's admin log (the endpoint's "History"), in
the form the admin itself writes, so a change through the API shows next to the admin's own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator, URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from concilia.accounts.models import User
from concilia.core.events import PAYLOAD_VERSION, EventType
from concilia.core.models import OutboxEvent
from concilia.core.tasks import enqueue_with_change
from concilia.integrations.webhooks.addresses import is_internal
from concilia.integrations.webhooks.models import Delivery, DeliveryStatus, Endpoint, new_secret

# The test event: sent to one endpoint on request, never subscribed to.
PING = "ping"


class EndpointInactive(Exception):
    """The endpoint is switched off, so nothing (not even a ping) is sent to it."""


def _check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(EventType.values))
    if unknown:
        raise ValidationError(
            {
                "events": ValidationError(
                    _("Unknown events: %(events)s. Known events: %(known)s.")
                    % {"events": ", ".join(unknown), "known": ", ".join(EventType.values)},
                    code="unknown_event",
                )
            }
        )
    if not events:
        raise ValidationError(
            {"events": ValidationError(_("Choose at least one event."), code="required")}
        )
    return [kind for kind in EventType.values if kind in events]


def check_url(url: str) -> None:
    """ValidationError unless `url` is an http(s) URL a receiver may have: not on a private,
    loopback or link-local address, unless settings.WEBHOOK_ALLOW_PRIVATE_URLS."""
    if urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        raise ValidationError(_("Enter a URL that starts with http:// or https://."), code="scheme")
    URLValidator(schemes=["http", "https"])(url)
    host = urlsplit(url).hostname or ""
    if not settings.WEBHOOK_ALLOW_PRIVATE_URLS and is_internal(host):
        raise ValidationError(
            _(
                "%(host)s is a private, loopback or other non-public address: webhooks are only "
                "sent to addresses on the internet."
            )
            % {"host": host},
            code="private_address",
        )


def _checked(endpoint: Endpoint, *, url_changed: bool) -> None:
    """Raise one ValidationError with every field's problems, as the admin and the API show."""
    errors: dict[str, list[ValidationError]] = {}
    if url_changed:
        try:
            check_url(endpoint.url)
        except ValidationError as error:
            errors["url"] = error.error_list
    try:
        ProhibitNullCharactersValidator()(endpoint.description)
    except ValidationError as error:
        errors["description"] = error.error_list
    try:
        endpoint.full_clean(exclude=["secret", "created_by", *errors])
    except ValidationError as error:
        for field, messages in error.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _log(actor: User | None, endpoint: Endpoint, flag: int, message: list[dict[str, Any]]) -> None:
    """The admin log's entry for a person's change (stored untranslated, shown translated)."""
    if actor is None:
        return
    LogEntry.objects.log_actions(
        user_id=actor.pk, queryset=[endpoint], action_flag=flag, change_message=message
    )


def _labels(*names: str) -> list[str]:
    with override(None):
        return [str(Endpoint._meta.get_field(name).verbose_name) for name in names]


@transaction.atomic
def create_endpoint(
    *,
    url: str,
    events: Sequence[str],
    actor: User | None,
    description: str = "",
    active: bool = True,
) -> Endpoint:
    """Register a receiver for some events; its new secret is on the returned endpoint (shown
    to the administrator once)."""
    endpoint = Endpoint(
        url=url.strip(),
        events=_check_events(events),
        description=description,
        active=active,
        created_by=actor,
    )
    _checked(endpoint, url_changed=True)
    endpoint.save(force_insert=True)
    _log(actor, endpoint, ADDITION, [{"added": {}}])
    return endpoint


@transaction.atomic
def update_endpoint(
    *,
    endpoint: Endpoint,
    url: str,
    events: Sequence[str],
    description: str,
    active: bool,
    actor: User | None = None,
) -> Endpoint:
    """Change where and what an endpoint receives; deactivated, it gets nothing new. A new URL is
    checked as on creation (an unchanged one is kept, so an old endpoint can still be switched
    off)."""
    # Read from the database: the admin's form has already set the new values on `endpoint`.
    before = Endpoint.objects.values("url", "events", "description", "active").get(pk=endpoint.pk)
    endpoint.url, endpoint.events = url.strip(), _check_events(events)
    endpoint.description, endpoint.active = description, active
    _checked(endpoint, url_changed=endpoint.url != before["url"])
    changed = [f for f, value in before.items() if getattr(endpoint, f) != value]
    if changed:
        endpoint.save(update_fields=changed)
        _log(actor, endpoint, CHANGE, [{"changed": {"fields": _labels(*changed)}}])
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: Endpoint, actor: User | None) -> None:
    """Remove an endpoint with its deliveries and their log; nothing more is sent to it."""
    _log(actor, endpoint, DELETION, [{"deleted": {}}])
    endpoint.delete()


@transaction.atomic
def rotate_secret(*, endpoint: Endpoint, actor: User | None = None) -> str:
    """A new signing secret from now on (the old one stops at once); returns it."""
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret", "secret_rotated_at"])
    _log(actor, endpoint, CHANGE, [{"changed": {"fields": _labels("secret")}}])
    return endpoint.secret


def _delivery_message(verb: str, delivery: Delivery) -> dict[str, Any]:
    with override(None):
        return {verb: {"name": str(Delivery._meta.verbose_name), "object": str(delivery.pk)}}


@transaction.atomic
def redeliver(*, deliveries: Sequence[Delivery], actor: User | None = None) -> int:
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
    for delivery in deliveries:
        _log(actor, delivery.endpoint, CHANGE, [_delivery_message("changed", delivery)])
    return queued


@transaction.atomic
def send_ping(*, endpoint: Endpoint, actor: User | None) -> Delivery:
    """Queue a signed `ping` event to this endpoint alone (its delivery is logged and retried
    like any other), so that a receiver can be tried out; EndpointInactive if it is off."""
    from concilia.integrations.webhooks.tasks import deliver_to_endpoint

    if not endpoint.active:
        raise EndpointInactive(endpoint.pk)
    now = timezone.now()
    # Written as already dispatched: the outbox's fan-out must not send it to anyone else.
    event = OutboxEvent.objects.create(
        kind=PING,
        subject=f"ping-{uuid.uuid4().hex}",
        version=PAYLOAD_VERSION,
        payload={"endpoint": endpoint.pk, "events": endpoint.events},
        created_at=now,
        dispatched_at=now,
    )
    delivery = Delivery.objects.create(
        endpoint=endpoint, event=event, subject=event.subject, next_attempt_at=now, created_at=now
    )
    enqueue_with_change(deliver_to_endpoint, endpoint_id=endpoint.pk)
    _log(actor, endpoint, CHANGE, [_delivery_message("added", delivery)])
    return delivery
