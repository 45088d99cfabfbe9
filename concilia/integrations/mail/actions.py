"""What happens to an email that arrives: kept raw first (so that nothing is ever lost), then
read: a new case, a reply in its case's thread, a note from someone else about a case, or mail
that must open nothing (automatic replies, delivery reports, our own mail, a loop)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.cases import actions as case_actions
from concilia.cases.attachments import CheckedFile, check_file
from concilia.cases.models import Case, Category, Channel, Kind, LegalBasis, Message
from concilia.core.mail import references_in
from concilia.core.references import InvalidReference, normalize_reference
from concilia.core.tasks import enqueue_with_change
from concilia.customers.actions import identify_customer, normalize_email
from concilia.integrations.mail import parsing
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome

logger = logging.getLogger(__name__)

_SUBJECT_REFERENCE = re.compile(r"\b[A-Z]{2,8}-\d{4}-\d{6,}-[0-9A-Z]\b", re.IGNORECASE)
# Outcomes after which a message with the same Message-ID is a duplicate.
_SETTLED = (Outcome.NEW_CASE, Outcome.REPLY, Outcome.NOTE)


@dataclass(frozen=True)
class Stored:
    email: InboundEmail
    created: bool


def store_email(
    *,
    raw: bytes,
    mailbox: Mailbox | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
) -> Stored:
    """Keep an arriving email before anything else happens to it. Idempotent: the same IMAP
    message (mailbox, UIDVALIDITY, UID), or the same message posted again by a webhook, is kept
    once."""
    parsed = parsing.parse_email(raw)
    key = parsing.dedupe_key(raw, parsed.message_id)
    if uid is not None:
        existing = InboundEmail.objects.filter(
            mailbox=mailbox, uidvalidity=uidvalidity, uid=uid
        ).first()
    else:
        existing = InboundEmail.objects.filter(
            mailbox=mailbox, uid__isnull=True, dedupe_key=key
        ).first()
    if existing is not None:
        return Stored(email=existing, created=False)
    email = InboundEmail(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        dedupe_key=key,
        header_id=parsed.message_id,
        from_address=parsed.from_address[:254],
        subject=parsed.subject,
        size=len(raw),
    )
    email.raw.save("message.eml", ContentFile(raw), save=False)
    try:
        with transaction.atomic():
            email.save()
    except IntegrityError:  # another reader of the same mailbox kept it first
        email.raw.delete(save=False)
        existing = InboundEmail.objects.get(mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)
        return Stored(email=existing, created=False)
    return Stored(email=email, created=True)


def record_too_large(
    *, mailbox: Mailbox, uidvalidity: int, uid: int, size: int, headers: bytes
) -> InboundEmail:
    """A message over the size limit: its headers are kept and it stays in the mailbox."""
    parsed = parsing.parse_email(headers)
    email, _created = InboundEmail.objects.get_or_create(
        mailbox=mailbox,
        uidvalidity=uidvalidity,
        uid=uid,
        defaults={
            "dedupe_key": parsing.dedupe_key(headers, parsed.message_id),
            "header_id": parsed.message_id,
            "from_address": parsed.from_address[:254],
            "subject": parsed.subject,
            "size": size,
            "outcome": Outcome.TOO_LARGE,
            "detail": _("%(size)d bytes; the limit is %(limit)d. It is still in the mailbox.")
            % {"size": size, "limit": settings.CONCILIA_MAIL_MAX_BYTES},
            "processed_at": timezone.now(),
        },
    )
    return email


def _own_addresses() -> set[str]:
    addresses = {
        normalize_email(parseaddr(settings.DEFAULT_FROM_EMAIL)[1]),
        normalize_email(getattr(settings, "CONCILIA_REPLY_TO_EMAIL", "")),
    }
    addresses |= {normalize_email(a) for a in Mailbox.objects.values_list("address", flat=True)}
    return addresses - {""}


def _case_for(parsed: parsing.ParsedEmail) -> Case | None:
    """The case an email answers: by our Message-IDs in its headers, else by a reference in its
    subject (only a well-formed one, check character included)."""
    candidates = references_in(parsed.thread_ids)
    for found in _SUBJECT_REFERENCE.findall(parsed.subject):
        try:
            candidates.append(normalize_reference(found))
        except InvalidReference:
            continue
    for reference in candidates:
        case = Case.objects.select_related("customer").filter(reference=reference).first()
        if case is not None:
            return case
    return None


def _check_files(parts: list[parsing.Part]) -> tuple[list[CheckedFile], list[str]]:
    kept: list[CheckedFile] = []
    refused: list[str] = []
    for part in parts:
        try:
            kept.append(check_file(part.name, part.content))
        except ValidationError as error:
            refused.extend(error.messages)
    return kept, refused


def _category(code: str, mailbox: Mailbox | None) -> Category:
    active = Category.objects.active()
    return (
        active.filter(code=code).first()
        or (mailbox.default_category if mailbox and mailbox.default_category_id else None)
        or active.filter(code="other").first()
        or active.first()
    )


def _refused_note(case: Case, refused: list[str], email: InboundEmail) -> None:
    if refused:
        case_actions.add_system_note(
            case=case,
            body=_(
                "Files in the email from %(sender)s that were not added (the original email is "
                "kept under inbound emails, number %(number)d):\n%(files)s"
            )
            % {"sender": email.from_address, "number": email.pk, "files": "\n".join(refused)},
        )


def _is_loop(parsed: parsing.ParsedEmail, now: dt.datetime) -> bool:
    """Too many emails from one address within the hour: an autoresponder answering ours."""
    recent = (
        InboundEmail.objects.with_sender(parsed.from_address)
        .filter(
            received_at__gte=now - dt.timedelta(hours=1),
            outcome__in=_SETTLED,
        )
        .count()
    )
    return recent >= settings.CONCILIA_MAIL_LOOP_LIMIT


def _new_case(email: InboundEmail, parsed: parsing.ParsedEmail) -> Case:
    from concilia.nlu import understand

    text = parsed.text or parsed.subject or _("(The email had no text.)")
    understanding = understand(f"{parsed.subject}\n{text}"[:4000])
    language = understanding.language if understanding.language in ("es", "en") else "es"
    customer = identify_customer(
        email=parsed.from_address,
        name=parsed.from_name or parsed.from_address.partition("@")[0],
        language=language,
    )
    files, refused = _check_files(parsed.attachments)
    kind = understanding.kind.label if understanding.kind.label in Kind.values else Kind.COMPLAINT
    case = case_actions.open_case(
        customer=customer,
        category=_category(understanding.category.label, email.mailbox),
        kind=kind,
        channel=Channel.EMAIL,
        language=language,
        subject=parsed.subject,
        description=text,
        # No notice is accepted by email: answering the sender is a legitimate interest.
        legal_basis=LegalBasis.LEGITIMATE_INTEREST,
        files=files,
    )
    with translation.override(language):
        _refused_note(case, refused, email)
    from concilia.integrations.mail.tasks import triage_email_case

    enqueue_with_change(triage_email_case, case_id=case.pk)
    return case


def _reply(email: InboundEmail, parsed: parsing.ParsedEmail, case: Case) -> tuple[Message, str]:
    files, refused = _check_files(parsed.attachments)
    text = parsing.new_text(parsed.text) or parsed.subject
    if normalize_email(parsed.from_address) == normalize_email(case.customer.email):
        message = case_actions.add_customer_message(case=case, body=text, files=files)
        outcome = Outcome.REPLY
    else:
        with translation.override(case.language):
            body = _("Email from %(sender)s (not the customer's address): %(subject)s") % {
                "sender": parsed.from_address,
                "subject": parsed.subject,
            }
        message = case_actions.add_system_note(case=case, body=f"{body}\n\n{text}", files=files)
        outcome = Outcome.NOTE
    with translation.override(case.language):
        _refused_note(message.case, refused, email)
    return message, outcome


def _bounce(email: InboundEmail, parsed: parsing.ParsedEmail) -> str:
    case = _case_for(
        parsing.ParsedEmail(
            subject=parsed.subject, in_reply_to=parsed.bounced_ids + parsed.thread_ids
        )
    )
    if case is None:
        return _("No case of ours is named in it.")
    with translation.override(case.language):
        case_actions.add_system_note(
            case=case,
            body=_(
                "An email to the customer could not be delivered (delivery report from "
                "%(sender)s). Check the customer's address."
            )
            % {"sender": parsed.from_address or "?"},
        )
    email.case = case
    return case.reference


def process_email(*, email: InboundEmail) -> InboundEmail:
    """Read a kept email and do what it asks, once. A failure leaves it FAILED with the reason,
    to be processed again; the raw message stays either way."""
    email = InboundEmail.objects.select_related("mailbox").get(pk=email.pk)
    if email.outcome not in (Outcome.RECEIVED, Outcome.FAILED):
        return email
    try:
        with transaction.atomic():
            locked = InboundEmail.objects.select_for_update().get(pk=email.pk)
            if locked.outcome not in (Outcome.RECEIVED, Outcome.FAILED):
                return locked
            _process(email)
            email.processed_at = timezone.now()
            email.attempts += 1
            email.save()
    except Exception as error:
        logger.exception("Inbound email %s could not be processed", email.pk)
        InboundEmail.objects.filter(pk=email.pk).update(
            outcome=Outcome.FAILED,
            detail=f"{type(error).__name__}: {error}"[:2000],
            attempts=email.attempts + 1,
        )
        email.refresh_from_db()
    return email


def _process(email: InboundEmail) -> None:
    with email.raw.open("rb") as handle:
        raw = handle.read()
    parsed = parsing.parse_email(raw, own_addresses=_own_addresses())
    email.detail = "; ".join(parsed.problems)[:2000]
    duplicate = (
        InboundEmail.objects.filter(dedupe_key=email.dedupe_key, outcome__in=_SETTLED)
        .exclude(pk=email.pk)
        .first()
    )
    if duplicate is not None:
        email.outcome, email.case_id = Outcome.DUPLICATE, duplicate.case_id
        return
    if parsed.automatic == parsing.OWN:
        email.outcome = Outcome.LOOP
        email.detail = _("Our own email came back.")
        return
    if parsed.automatic == parsing.AUTO_REPLY:
        email.outcome = Outcome.AUTO_REPLY
        return
    if parsed.automatic == parsing.BOUNCE:
        email.outcome = Outcome.BOUNCE
        email.detail = _bounce(email, parsed)
        return
    if not parsed.from_address:
        email.outcome = Outcome.UNREADABLE
        email.detail = _("It has no sender address to answer.")
        return
    if _is_loop(parsed, timezone.now()):
        email.outcome = Outcome.LOOP
        email.detail = _("More than %(limit)d emails from this address within an hour.") % {
            "limit": settings.CONCILIA_MAIL_LOOP_LIMIT
        }
        return
    case = _case_for(parsed)
    if case is None:
        email.case, email.outcome = _new_case(email, parsed), Outcome.NEW_CASE
        return
    email.message, email.outcome = _reply(email, parsed, case)
    email.case_id = email.message.case_id  # a follow-up case when the old one was long closed


def receive_email(
    *,
    raw: bytes,
    mailbox: Mailbox | None = None,
    uidvalidity: int | None = None,
    uid: int | None = None,
) -> InboundEmail:
    """Keep an email and process it now (the IMAP reader, the command line)."""
    stored = store_email(raw=raw, mailbox=mailbox, uidvalidity=uidvalidity, uid=uid)
    return process_email(email=stored.email)
