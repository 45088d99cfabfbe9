"""Every write to customers, consents and sign-in links."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from concilia.core import crypto
from concilia.core.tasks import enqueue_with_change
from concilia.customers.models import Consent, Customer, PrivacyNotice, SignInLink


class SignInLinkInvalid(Exception):
    """The link is unknown, forged or malformed."""


class SignInLinkExpired(Exception):
    """The link is older than its validity."""


class SignInLinkUsed(Exception):
    """The link was already used once."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def identify_customer(
    *, email: str, name: str, phone: str = "", language: str = "es", verified: bool = False
) -> Customer:
    """The customer with this email, created if new.

    Only a verified source (the customer signed in, or a trusted integration) may change the
    contact data already on file; an unverified one may only fill what is missing, so that nobody
    can rewrite another person's name or phone by typing their email into a form.
    """
    email = normalize_email(email)
    customer = _insert_or_fetch(email=email, name=name, phone=phone, language=language)
    if customer.name != name or customer.phone != phone or customer.language != language:
        changed = []
        for field, value in (("name", name), ("phone", phone), ("language", language)):
            current = getattr(customer, field)
            if value and current != value and (verified or not current):
                setattr(customer, field, value)
                changed.append(field)
        if changed:
            customer.save(update_fields=[*changed, "updated_at"])
    return customer


def _insert_or_fetch(*, email: str, name: str, phone: str, language: str) -> Customer:
    """One round trip instead of get_or_create's four (select, savepoint, insert, release):
    insert the customer, or on a clash of emails (their keyed hashes: the addresses are
    encrypted) return the row already there, race-free."""
    if len(crypto.index_keys()) > 1:
        # An index key rotation is under way: the row may still hold the old key's hash, which
        # the insert's conflict would miss; the look-up accepts either.
        existing = Customer.objects.with_email(email).first()
        if existing is not None:
            return existing
    table = connection.ops.quote_name(Customer._meta.db_table)
    now = timezone.now()
    new = Customer(name=name, email=email, phone=phone, language=language)
    written = ("name", "email", "email_index", "name_words", "phone", "language")
    values = [
        field.get_db_prep_save(field.pre_save(new, add=True), connection)
        for field in (Customer._meta.get_field(column) for column in written)
    ]
    columns = ("id", *written, "created_at", "updated_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(written)}, created_at, updated_at) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * (len(written) + 2))}) "
            "ON CONFLICT (email_index) DO UPDATE SET email_index = EXCLUDED.email_index "
            f"RETURNING {', '.join(columns)}",
            [*values, now, now],
        )
        row = cursor.fetchone()
    return Customer.from_db(connection.alias, columns, _convert_row(columns, row))


def _convert_row(columns: tuple[str, ...], row: tuple) -> list:
    # Raw cursors return SQLite datetimes as text: let each field convert its own value.
    values = []
    for column, value in zip(columns, row, strict=True):
        field = Customer._meta.get_field(column)
        converters = field.get_db_converters(connection) + connection.ops.get_db_converters(
            field.cached_col
        )
        for converter in converters:
            value = converter(value, field.cached_col, connection)
        values.append(value)
    return values


def record_consent(
    *,
    customer: Customer,
    notice: PrivacyNotice,
    channel: str,
    accepted_at: dt.datetime | None = None,
) -> Consent:
    """Record that the customer accepted this version of the privacy notice (now, or when they
    accepted it before saying who they were, as in the chat)."""
    return Consent.objects.create(
        customer=customer, notice=notice, channel=channel, accepted_at=accepted_at or timezone.now()
    )


@transaction.atomic(savepoint=False)  # part of the caller's transaction when nested
def request_sign_in_link(*, customer: Customer, next_reference: str = "") -> SignInLink:
    """Create a one-time sign-in link and email it to the customer."""
    from concilia.customers.tasks import send_sign_in_link

    link = SignInLink.objects.create(
        customer=customer,
        next_reference=next_reference,
        expires_at=timezone.now() + dt.timedelta(minutes=settings.CONCILIA_SIGN_IN_LINK_MINUTES),
    )
    enqueue_with_change(send_sign_in_link, link_id=link.pk)
    return link


def usable_sign_in_link(token: str) -> SignInLink:
    """The link behind a token if it can still be used; raises SignInLinkInvalid,
    SignInLinkExpired or SignInLinkUsed otherwise. Reads only: the link is not spent."""
    public_id, _, _ = (token or "").partition(".")
    try:
        link = SignInLink.objects.select_related("customer").get(public_id=uuid.UUID(hex=public_id))
    except (ValueError, SignInLink.DoesNotExist) as exc:
        raise SignInLinkInvalid from exc
    if not link.matches(token):
        raise SignInLinkInvalid
    if link.used_at is not None:
        raise SignInLinkUsed
    if link.expires_at <= timezone.now():
        raise SignInLinkExpired
    return link


def redeem_sign_in_link(*, token: str) -> SignInLink:
    """Use a sign-in link once; raises SignInLinkInvalid, SignInLinkExpired or SignInLinkUsed."""
    link = usable_sign_in_link(token)
    now = timezone.now()
    # Claim it with a conditional update so two clicks at once cannot both sign in.
    claimed = SignInLink.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now)
    if not claimed:
        raise SignInLinkUsed
    link.used_at = now
    return link
