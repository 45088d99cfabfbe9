"""Mailboxes Concilia reads, and every email that arrived (kept raw, whatever became of it)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import Case, Category, Message, get_attachment_storage
from concilia.core.crypto import blind_index
from concilia.core.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedTextField,
    with_blind_indexes,
)


def sender_index(address: str) -> str:
    """The keyed hash an email's sender is found by (the same as a customer's email index)."""
    return blind_index(address, purpose="email")


def new_inbound_secret() -> str:
    return "mbx_" + secrets.token_urlsafe(24)


class Security(models.TextChoices):
    SSL = "ssl", _("TLS from the start (IMAPS, port 993)")
    STARTTLS = "starttls", _("STARTTLS (port 143)")
    NONE = "none", _("None (only for a server on this machine)")


class Mailbox(models.Model):
    """A support address: read over IMAP, or fed by a mail provider's inbound webhook."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(
        _("slug"), unique=True, help_text=_("Used in the inbound webhook's URL.")
    )
    address = models.EmailField(
        _("address"), help_text=_("The support address customers write to (mail from it is ours).")
    )
    host = models.CharField(
        _("IMAP server"), max_length=200, blank=True, help_text=_("Empty for webhook-only.")
    )
    port = models.PositiveIntegerField(_("IMAP port"), default=993)
    security = models.CharField(
        _("security"), max_length=10, choices=Security.choices, default=Security.SSL
    )
    username = models.CharField(_("user name"), max_length=200, blank=True)
    # Encrypted at rest (docs/encryption.md): sent to the IMAP server, so it must be readable.
    password = EncryptedCharField(_("password"), max_length=200, blank=True)
    folder = models.CharField(_("folder"), max_length=200, default="INBOX")
    # Shared with the mail provider: HTTP Basic password (or Bearer token) of the webhook;
    # encrypted at rest, shown to the administrator to give to the provider.
    inbound_secret = EncryptedCharField(
        _("inbound webhook secret"), max_length=100, default=new_inbound_secret
    )
    default_category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default category"),
        help_text=_("For new cases whose category the assistant cannot tell."),
    )
    active = models.BooleanField(_("active"), default=True)
    # Where reading stopped: UIDs are only comparable within one UIDVALIDITY.
    uidvalidity = models.BigIntegerField(null=True, blank=True, editable=False)
    last_uid = models.BigIntegerField(default=0, editable=False)
    polling_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_polled_at = models.DateTimeField(_("last read"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    @property
    def reads_imap(self) -> bool:
        return bool(self.host)


class Outcome(models.TextChoices):
    RECEIVED = "received", _("Received, not yet processed")
    NEW_CASE = "new_case", _("Opened a case")
    REPLY = "reply", _("Added to its case")
    NOTE = "note", _("Added to a case as a note (another sender)")
    AUTO_REPLY = "auto_reply", _("Automatic reply: ignored")
    BOUNCE = "bounce", _("Delivery failure report")
    LOOP = "loop", _("Mail loop: stopped")
    DUPLICATE = "duplicate", _("Already received")
    UNREADABLE = "unreadable", _("No sender to answer: kept for an administrator")
    TOO_LARGE = "too_large", _("Too large: left in the mailbox")
    FAILED = "failed", _("Failed: can be processed again")


def raw_path(instance: InboundEmail, filename: str) -> str:
    return f"mail/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.eml"


class InboundEmailQuerySet(models.QuerySet["InboundEmail"]):
    def with_sender(self, address: str) -> InboundEmailQuerySet:
        """Emails from `address` (case and outer spaces aside)."""
        return self.filter(from_index=sender_index(address))


class InboundEmail(models.Model):
    """One email as it arrived; the raw message is kept, so nothing in it is ever lost.

    Sender, subject and detail are encrypted (concilia.core.fields); the sender is found through
    `from_index` (with_sender), never by its column.
    """

    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.PROTECT, null=True, blank=True, related_name="emails"
    )
    # (mailbox, uidvalidity, uid) for mail read over IMAP: one row per message however often read.
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=64, db_index=True)
    header_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    from_address = EncryptedCharField(_("from"), max_length=254, blank=True)
    from_index = BlindIndexField(source="from_address", purpose="email", blank=True, default="")
    subject = EncryptedCharField(_("subject"), max_length=500, blank=True)
    size = models.PositiveIntegerField(_("size"), default=0)
    raw = models.FileField(
        storage=get_attachment_storage, upload_to=raw_path, max_length=300, blank=True
    )
    outcome = models.CharField(
        _("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.RECEIVED
    )
    detail = EncryptedTextField(_("detail"), blank=True)
    case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    objects = InboundEmailQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-pk"]
        verbose_name = _("inbound email")
        verbose_name_plural = _("inbound emails")
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "uidvalidity", "uid"],
                condition=models.Q(uid__isnull=False),
                name="inbound_email_once_per_uid",
            )
        ]
        indexes = [models.Index(fields=["from_index", "received_at"], name="inbound_email_sender")]

    def __str__(self) -> str:
        return f"{self.from_address}: {self.subject}"

    def save(self, *args: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
        fields = with_blind_indexes(InboundEmail, update_fields)
        super().save(*args, update_fields=fields, **kwargs)
