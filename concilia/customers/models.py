"""Customers, the privacy notices shown to them, their consents and their one-time sign-in links."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Collection, Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

from concilia.core.crypto import blind_index
from concilia.core.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedEmailField,
    WordIndexField,
    with_blind_indexes,
    words_match,
)
from concilia.core.i18n import in_language


def email_index(email: str) -> str:
    """The keyed hash an email is found by (the address itself is stored encrypted)."""
    return blind_index(email, purpose="email")


class CustomerQuerySet(models.QuerySet["Customer"]):
    def with_email(self, email: str) -> CustomerQuerySet:
        return self.filter(email_index=email_index(email))

    def named(self, text: str) -> CustomerQuerySet:
        """Customers whose name has every word of `text`, whole, accents and case aside."""
        return self.filter(names_contain(text))


class Customer(models.Model):
    """A person who contacts the company; one record per email address.

    Name, email and phone are encrypted (concilia.core.fields): the email is found through
    `email_index` and the name by its words through `name_words` (names_contain), never by the
    columns themselves.
    """

    # Personal data held here (exported, anonymised and purged by the privacy app).
    PERSONAL_FIELDS = ("name", "email", "phone")

    name = EncryptedCharField(_("name"), max_length=200)
    email = EncryptedEmailField(_("email"))
    email_index = BlindIndexField(source="email", purpose="email", unique=True)
    name_words = WordIndexField(source="name", purpose="name-word")
    phone = EncryptedCharField(_("phone"), max_length=40, blank=True)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="es"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def save(self, *args: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
        super().save(*args, update_fields=with_blind_indexes(Customer, update_fields), **kwargs)

    def validate_unique(self, exclude: Collection[str] | None = None) -> None:
        # The unique column is the hash, which no form holds: check the address it stands for.
        super().validate_unique(exclude=exclude)
        if self.email and not (exclude and "email" in exclude):
            clash = Customer.objects.with_email(self.email).exclude(pk=self.pk)
            if clash.exists():
                raise ValidationError(
                    {"email": _("Another customer already has this email address.")},
                    code="unique",
                )


class PrivacyNoticeQuerySet(models.QuerySet["PrivacyNotice"]):
    def current(self) -> PrivacyNotice:
        notice = self.filter(published_at__lte=timezone.now()).order_by("-published_at").first()
        if notice is None:
            raise PrivacyNotice.DoesNotExist("No privacy notice has been published")
        return notice


class PublishedNoticeChanged(ValidationError):
    """A published privacy notice is history: customers accepted its words (publish a new
    version instead)."""


class PrivacyNotice(models.Model):
    """A published version of the privacy notice shown before a complaint is submitted.

    Once published (its date reached) its version and texts never change and it is never deleted
    (consents point to it): a change is a new version, a new row. One scheduled for later may
    still be corrected."""

    FIXED_ONCE_PUBLISHED = ("version", "body_es", "body_en", "published_at")

    version = models.CharField(_("version"), max_length=40, unique=True)
    body_es = models.TextField(_("text (Spanish)"))
    body_en = models.TextField(_("text (English)"))
    published_at = models.DateTimeField(_("published"), default=timezone.now)

    objects = PrivacyNoticeQuerySet.as_manager()

    class Meta:
        verbose_name = _("privacy notice")
        verbose_name_plural = _("privacy notices")
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.version

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_rewriting()
        super().save(*args, **kwargs)

    @property
    def body(self) -> str:
        return in_language(self.body_es, self.body_en)

    def is_published(self) -> bool:
        return self.published_at is not None and self.published_at <= timezone.now()

    def clean(self) -> None:
        self._refuse_rewriting()

    def _refuse_rewriting(self) -> None:
        if self.pk is None:
            return
        stored = PrivacyNotice.objects.filter(pk=self.pk).first()
        if stored is None or not stored.is_published():
            return
        if any(getattr(stored, f) != getattr(self, f) for f in self.FIXED_ONCE_PUBLISHED):
            raise PublishedNoticeChanged(
                _(
                    "Version %(version)s was published on %(date)s and customers accepted it as "
                    "it is: add a new version instead of changing it."
                )
                % {"version": stored.version, "date": f"{stored.published_at:%Y-%m-%d}"},
                code="published",
            )


class Consent(models.Model):
    """A customer's acceptance of one version of the privacy notice, with when and how."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="consents", verbose_name=_("customer")
    )
    notice = models.ForeignKey(
        PrivacyNotice, on_delete=models.PROTECT, related_name="consents", verbose_name=_("notice")
    )
    accepted_at = models.DateTimeField(_("accepted at"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=20)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")

    def __str__(self) -> str:
        return f"{self.customer_id} accepted {self.notice_id} at {self.accepted_at:%Y-%m-%d %H:%M}"


class SignInLink(models.Model):
    """A one-time link that signs a customer in to follow their cases.

    The token is an HMAC of a random nonce with the SECRET_KEY: neither the database nor the queued
    email job holds a usable token on its own.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    nonce = models.CharField(max_length=64, default=secrets.token_hex, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sign_in_links")
    # The case the customer asked about, to land on it after signing in.
    next_reference = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sign-in link for {self.customer_id}"

    def _signature(self) -> str:
        return salted_hmac("concilia.sign-in-link", self.nonce, algorithm="sha256").hexdigest()

    @property
    def token(self) -> str:
        return f"{self.public_id.hex}.{self._signature()}"

    def matches(self, token: str) -> bool:
        _, _, signature = token.partition(".")
        return constant_time_compare(signature, self._signature())


def names_contain(text: str, *, path: str = "name_words") -> models.Q:
    """Customers whose name has every word of `text` (a Q on `path`: "customer__name_words" from
    a case); a text without words matches nobody."""
    field = Customer._meta.get_field("name_words")
    assert isinstance(field, WordIndexField)  # noqa: S101 - for the type checker
    return words_match(field, text, path=path)
