"""Webhook endpoints, one delivery per (endpoint, event) and the log of every attempt."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.core.events import EventType
from concilia.core.fields import EncryptedCharField
from concilia.core.models import OutboxEvent


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe."""
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(models.Model):
    """A receiver's URL and the events it subscribes to; every request to it is signed with its
    secret."""

    url = models.URLField(
        _("URL"), max_length=500, validators=[URLValidator(schemes=["http", "https"])]
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    # Event kinds (EventType values) it subscribes to.
    events = models.JSONField(_("events"), default=list)
    # Every request is signed with it (shown once to the administrator), so it is encrypted at
    # rest (docs/encryption.md), not hashed.
    secret = EncryptedCharField(_("signing secret"), max_length=100, default=new_secret)
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Inactive endpoints receive nothing new.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    secret_rotated_at = models.DateTimeField(_("secret rotated"), null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.description or self.url

    def subscribes_to(self, kind: str) -> bool:
        return kind in self.events

    def event_labels(self) -> list[str]:
        labels = dict(EventType.choices)
        return [str(labels.get(kind, kind)) for kind in self.events]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    FAILED = "failed", _("Failed, will retry")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Gave up")


# Deliveries a worker may send once their time has come.
DUE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class Delivery(models.Model):
    """One event for one endpoint: sent (and retried) until the receiver answers 2xx."""

    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint")
    )
    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, related_name="+", verbose_name=_("event")
    )
    # The event's subject (a case reference), copied: deliveries of one subject go in event order.
    subject = models.CharField(_("subject"), max_length=64)
    status = models.CharField(
        _("status"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    # Failed attempts since it was (re)queued: a manual redelivery starts again from 0.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # When it may be sent (again); while a worker sends it, when its claim lapses.
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(_("last status code"), null=True)
    last_response_ms = models.PositiveIntegerField(_("last response time (ms)"), null=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        ordering = ["-event_id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="delivery_once_per_event")
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=Q(status__in=["pending", "failed"]),
                name="delivery_due",
            ),
            models.Index(fields=["endpoint", "subject", "event"], name="delivery_subject_order"),
            # /metrics counts the deliveries not made by status at every scrape: the delivered
            # ones (nearly all, over the years) stay out of this index.
            models.Index(
                fields=["status"],
                condition=Q(status__in=["pending", "failed", "dead"]),
                name="delivery_not_made",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class DeliveryAttempt(models.Model):
    """One request to the receiver: when, what it answered, how long it took."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    number = models.PositiveIntegerField(_("attempt"))
    started_at = models.DateTimeField(_("started"))
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True)
    response_ms = models.PositiveIntegerField(_("response time (ms)"))
    error = models.CharField(_("error"), max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error}"

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
