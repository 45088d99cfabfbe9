"""Outbound events: what other systems may subscribe to, and `emit`, which writes one to the
outbox inside the caller's transaction (delivery happens after commit, in `integrations`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from concilia.core.models import OutboxEvent
from concilia.core.tasks import enqueue_with_change

# The payload's shape; raised when a field changes meaning or disappears (adding one does not).
PAYLOAD_VERSION = 1


class EventType(models.TextChoices):
    CASE_CREATED = "case.created", _("Case created")
    CASE_STATUS_CHANGED = "case.status_changed", _("Case status changed")
    CASE_MESSAGE_ADDED = "case.message_added", _("Message added to a case")
    CASE_CLOSED = "case.closed", _("Case closed")
    OFFER_MADE = "offer.made", _("Offer made")
    OFFER_ACCEPTED = "offer.accepted", _("Offer accepted")
    RESOLUTION_AGREED = "resolution.agreed", _("Resolution agreed")
    DSR_CREATED = "dsr.created", _("Data-subject request received")
    DSR_COMPLETED = "dsr.completed", _("Data-subject request answered")
    CUSTOMER_ERASED = "customer.erased", _("Customer's personal data erased")


def _nudged() -> None:
    """Marks (in the transaction's on-commit list) that the dispatcher was already queued."""


def emit(kind: str, *, subject: str, payload: dict[str, Any]) -> OutboxEvent:
    """Record an outbound event in the current transaction: it exists if and only if the change
    it describes commits. `subject` orders deliveries (events of one case arrive in order).

    The payload holds identifiers and states, not personal data: receivers fetch the rest
    through the API with their own token.
    """
    if kind not in EventType.values:
        raise ValueError(f"Unknown event kind {kind!r}")
    with transaction.atomic(savepoint=False):
        event = OutboxEvent.objects.create(
            kind=kind, subject=subject, version=PAYLOAD_VERSION, payload=payload
        )
        _nudge_dispatcher()
    return event


def _nudge_dispatcher() -> None:
    """Queue the dispatcher (named in settings: core imports no higher app) once per transaction.

    A savepoint rolled back drops its marker together with the job it queued, so the next event
    queues it again; the sweep dispatches whatever a lost nudge left behind.
    """
    path = getattr(settings, "OUTBOX_DISPATCHER", "")
    if not path:
        return
    connection = transaction.get_connection()
    if any(entry[1] is _nudged for entry in connection.run_on_commit):
        return
    transaction.on_commit(_nudged)
    enqueue_with_change(import_string(path))
