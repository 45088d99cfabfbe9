"""Every write of data-subject requests and legal holds: receiving a request (from the customer
on the tracking pages, or entered by staff for one that came by another channel), verifying who
asks, the export of their data, rectification, erasure, extending the deadline, closing, and
placing or releasing a legal hold.

Each action runs in a transaction, records an audit entry, and leaves its side effects (the
export's zip, emails, the outbound event) to jobs or to the outbox.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core import signing
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.cases import actions as case_actions
from concilia.cases.models import ActorKind, Case, Kind, Outcome, Status
from concilia.core import audit
from concilia.core.events import EventType, emit
from concilia.core.personal_data import forget_files_after_commit
from concilia.core.tasks import enqueue_with_change
from concilia.customers.actions import identify_customer, normalize_email
from concilia.customers.models import Customer
from concilia.privacy import deadlines, hooks
from concilia.privacy.holds import Hold, holds_on
from concilia.privacy.models import (
    PENDING_STATUSES,
    DataSubjectRequest,
    LegalHold,
    Regime,
    RequestKind,
    RequestStatus,
    Verification,
)

# A confirmation link emailed for a request entered by staff works this long.
CONFIRM_LINK_DAYS = 14
_CONFIRM_SALT = "concilia.privacy.confirm-request"


class RequestNotAllowed(Exception):
    """The action does not apply to this request now; the message says why, translated."""


class ConfirmLinkInvalid(Exception):
    """A request's confirmation link that was altered, expired or is no longer needed."""


@dataclass
class ErasureResult:
    """What an erasure did: the holds that refused it, or the counts of what was erased."""

    request: DataSubjectRequest
    holds: list[Hold] = field(default_factory=list)
    erased: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.holds


# Receiving --------------------------------------------------------------------------------


def _publish(request: DataSubjectRequest, kind: str, **data: object) -> None:
    """An outbound event about the request (webhooks): ids, kinds and times only."""
    emit(
        kind,
        subject=f"dsr:{request.public_id}",
        payload={
            "request": str(request.public_id),
            "kind": request.kind,
            **data,
            "at": timezone.now().isoformat(),
        },
    )


def _later(task_path: str, **kwargs: object) -> None:
    from concilia.privacy import tasks

    enqueue_with_change(getattr(tasks, task_path), **kwargs)


@transaction.atomic
def receive_request(
    *,
    kind: str,
    channel: str,
    customer: Customer | None = None,
    email: str = "",
    details: str = "",
    regime: str = Regime.GDPR,
    language: str = "",
    verification: str = "",
    verification_note: str = "",
    actor: User | None = None,
) -> DataSubjectRequest:
    """Record a request with its legal deadline and tell the data-protection officer.

    The customer signed in on the tracking pages (`verification` SIGNED_IN) or staff entering a
    request received by email, phone or letter (`actor`; the customer found by `email` when
    not given). Without a verification the request waits for the person to confirm it from the
    link emailed to the address on file. A customer asking again for what they already asked,
    still pending, gets that request back.
    """
    if kind not in RequestKind.values:
        raise ValueError(f"Unknown request kind {kind!r}")
    if customer is None and email:
        customer = Customer.objects.with_email(normalize_email(email)).first()
    if customer is not None:
        pending = (
            DataSubjectRequest.objects.for_customer(customer)
            .pending()
            .filter(kind=kind)
            .order_by("pk")
            .first()
        )
        if pending is not None and actor is None:
            return pending
    now = timezone.now()
    request = DataSubjectRequest.objects.create(
        kind=kind,
        channel=channel,
        regime=regime,
        customer=customer,
        contact_email=customer.email if customer is not None else normalize_email(email),
        language=language or (customer.language if customer else "es"),
        details=details.strip(),
        received_at=now,
        due_at=deadlines.due_at(regime, now),
        status=RequestStatus.OPEN if verification else RequestStatus.UNVERIFIED,
        verification=verification,
        verification_note=verification_note.strip()[:300],
        verified_at=now if verification else None,
        requested_by=actor,
    )
    _publish(request, EventType.DSR_CREATED, channel=channel, due_at=request.due_at.isoformat())
    _later("tell_handlers", request_id=request.pk, what="received")
    if request.status == RequestStatus.OPEN:
        _started(request)
    elif customer is not None:
        _later("email_person", request_id=request.pk, what="confirm")
    audit.record(
        audit.CREATE,
        target=request,
        customer=customer,
        actor=actor or customer,
        fields=["details"] if request.details else [],
        detail={"kind": kind, "channel": channel, "verified": bool(verification)},
    )
    return request


def _started(request: DataSubjectRequest) -> None:
    """A verified request: an access request's export starts at once; the person is told."""
    if request.kind == RequestKind.ACCESS and request.customer_id is not None:
        _later("build_export", request_id=request.pk)
    if request.contact_email:
        _later("email_person", request_id=request.pk, what="received")


def _record(action: str, request: DataSubjectRequest, actor: object, **detail: object) -> None:
    """The audit entry of a step of the request (no personal field: ids and states)."""
    audit.record(
        action, target=request, customer=request.customer, actor=actor, fields=[], detail=detail
    )


def _lock(request: DataSubjectRequest) -> DataSubjectRequest:
    return (
        DataSubjectRequest.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=request.pk)
    )


def _pending(request: DataSubjectRequest) -> DataSubjectRequest:
    current = _lock(request)
    if not current.is_pending:
        raise RequestNotAllowed(_("This request is already closed."))
    return current


def _verified(request: DataSubjectRequest, kind: str | None = None) -> DataSubjectRequest:
    current = _pending(request)
    if kind is not None and current.kind != kind:
        raise RequestNotAllowed(_("This action does not apply to this kind of request."))
    if current.status == RequestStatus.UNVERIFIED:
        raise RequestNotAllowed(
            _("The identity of the person who asked is not verified yet: verify it first.")
        )
    if current.customer_id is None:
        raise RequestNotAllowed(
            _("No customer has this address: close the request saying that we hold no data.")
        )
    return current


@transaction.atomic
def verify_request(
    *,
    request: DataSubjectRequest,
    method: str,
    note: str = "",
    actor: User | Customer | None = None,
) -> DataSubjectRequest:
    """The person asking proved who they are (a link emailed to the address on file, or a check
    made by staff): the request is worked on, an access request's export starts."""
    if method not in Verification.values:
        raise ValueError(f"Unknown verification {method!r}")
    current = _pending(request)
    if current.status != RequestStatus.UNVERIFIED:
        return current
    if method == Verification.STAFF and not note.strip():
        raise RequestNotAllowed(_("Say how the identity was checked."))
    current.status = RequestStatus.OPEN
    current.verification = method
    current.verification_note = note.strip()[:300]
    current.verified_at = timezone.now()
    if current.handled_by is None and isinstance(actor, User):
        current.handled_by = actor
    current.save(
        update_fields=[
            "status",
            "verification",
            "verification_note",
            "verified_at",
            "handled_by",
            "updated_at",
        ]
    )
    _started(current)
    _record(audit.CHANGE, current, actor, verified=method)
    return current


def confirm_token(request: DataSubjectRequest) -> str:
    """The secret of the link that lets the person confirm a request staff entered for them."""
    return signing.TimestampSigner(salt=_CONFIRM_SALT).sign(str(request.public_id))


def request_from_confirm_token(token: str) -> DataSubjectRequest:
    """The unverified request a confirmation link stands for; ConfirmLinkInvalid otherwise."""
    signer = signing.TimestampSigner(salt=_CONFIRM_SALT)
    try:
        public_id = signer.unsign(token, max_age=CONFIRM_LINK_DAYS * 86400)
        found = DataSubjectRequest.objects.filter(public_id=public_id).first()
    except (signing.BadSignature, ValueError):  # SignatureExpired is a BadSignature
        raise ConfirmLinkInvalid from None
    if found is None or found.status != RequestStatus.UNVERIFIED or found.customer_id is None:
        raise ConfirmLinkInvalid
    return found


@transaction.atomic
def send_confirmation_link(*, request: DataSubjectRequest, actor: User) -> DataSubjectRequest:
    """Email the person (at the address on file) a link to confirm the request is theirs."""
    current = _pending(request)
    if current.status != RequestStatus.UNVERIFIED or current.customer_id is None:
        raise RequestNotAllowed(
            _("Only a request of a known customer still to be verified needs this link.")
        )
    _later("email_person", request_id=current.pk, what="confirm")
    _record(audit.CHANGE, current, actor, confirmation_link="sent")
    return current


# Answering --------------------------------------------------------------------------------


def _close(
    request: DataSubjectRequest,
    *,
    status: str,
    outcome: str,
    actor: User | None,
    fields: list[str] | None = None,
) -> None:
    now = timezone.now()
    request.status = status
    request.outcome = outcome
    request.completed_at = now
    if actor is not None:
        request.handled_by = actor
    request.save(
        update_fields=[
            "status",
            "outcome",
            "completed_at",
            "handled_by",
            *(fields or []),
            "updated_at",
        ]
    )
    _publish(request, EventType.DSR_COMPLETED, status=status)


@transaction.atomic
def prepare_export(*, request: DataSubjectRequest, actor: User) -> DataSubjectRequest:
    """Build the export of an access request again (it is built on verification; this is for
    one whose download expired)."""
    current = _lock(request)
    if current.kind != RequestKind.ACCESS or current.customer_id is None:
        raise RequestNotAllowed(_("This action does not apply to this kind of request."))
    if current.status == RequestStatus.UNVERIFIED:
        raise RequestNotAllowed(
            _("The identity of the person who asked is not verified yet: verify it first.")
        )
    if current.export_available:
        return current
    _later("build_export", request_id=current.pk, again=True)
    _record(audit.CHANGE, current, actor, export="again")
    return current


@transaction.atomic
def record_export(
    *,
    request: DataSubjectRequest,
    name: str,
    size: int,
    sha256: str,
    files: int,
    days: int,
) -> DataSubjectRequest:
    """The export's zip is stored (by the export job): the request is answered, the person
    told where to download it until `days` from now."""
    current = _lock(request)
    now = timezone.now()
    if current.export_file and current.export_file.name != name:
        forget_files_after_commit([current.export_file.name])  # an earlier build's
    current.export_file.name = name
    current.export_size, current.export_sha256 = size, sha256
    current.export_ready_at = now
    current.export_expires_at = now + dt.timedelta(days=days)
    fields = ["export_file", "export_size", "export_sha256", "export_ready_at", "export_expires_at"]
    if current.is_pending:
        _close(
            current,
            status=RequestStatus.COMPLETED,
            outcome=_("Export of the data sent."),
            actor=None,
            fields=fields,
        )
    else:
        current.save(update_fields=[*fields, "updated_at"])
    _later("email_person", request_id=current.pk, what="export_ready")
    audit.record(
        audit.EXPORT,
        target=current,
        customer=current.customer,
        fields=[f"{item.model}.{name}" for item in hooks.declared() for name in item.exported],
        detail={"files": files, "bytes": size, "sha256": sha256},
    )
    return current


@transaction.atomic
def rectify(
    *,
    request: DataSubjectRequest,
    actor: User,
    name: str | None = None,
    phone: str | None = None,
    note: str = "",
) -> DataSubjectRequest:
    """Correct the customer's contact data as asked (through the owning apps' actions: the
    case's history keeps the change) and answer the request; corrections made elsewhere (a
    case's text) are told in `note`."""
    current = _verified(request, RequestKind.RECTIFICATION)
    customer = current.customer
    assert customer is not None  # noqa: S101 - _verified checked it
    name = customer.name if name is None else name.strip()
    phone = customer.phone if phone is None else phone.strip()
    if not name:
        raise RequestNotAllowed(_("The name cannot be empty."))
    changed = [f for f, v in (("name", name), ("phone", phone)) if getattr(customer, f) != v]
    if not changed and not note.strip():
        raise RequestNotAllowed(_("Nothing was corrected: change the data or say what was done."))
    if changed:
        latest = Case.objects.for_customer(customer).order_by("-created_at", "-pk").first()
        if latest is not None:
            case_actions.update_contact(case=latest, name=name, phone=phone, actor=actor)
        else:
            identify_customer(
                email=customer.email,
                name=name,
                phone=phone,
                language=customer.language,
                verified=True,
            )
            audit.record(audit.CHANGE, target=customer, actor=actor, fields=changed)
    outcome = note.strip() or _("Data corrected: %(fields)s.") % {"fields": ", ".join(changed)}
    _close(current, status=RequestStatus.COMPLETED, outcome=outcome, actor=actor)
    _later("email_person", request_id=current.pk, what="closed")
    audit.record(
        audit.CHANGE,
        target=current,
        customer=customer,
        actor=actor,
        fields=[f"customer.{name}" for name in changed],
        detail={"rectified": changed},
    )
    return current


@transaction.atomic
def erase(*, request: DataSubjectRequest, actor: User) -> ErasureResult:
    """Erase the customer everywhere, unless a legal hold keeps their data: then the request
    waits (on hold) with the holds' reasons recorded, and nothing is erased.

    Erasing closes the customer's other open cases (questions, suggestions) as withdrawn,
    anonymises every case, conversation, email, file and log line of theirs (each app's hooks),
    tells connected systems (the `customer.erased` event) and answers the request; the search
    index is compacted and the person told after commit.
    """
    current = _verified(request, RequestKind.ERASURE)
    customer = current.customer
    assert customer is not None  # noqa: S101 - _verified checked it
    holds = holds_on(customer)
    if holds:
        if current.status != RequestStatus.ON_HOLD and current.contact_email:
            _later("email_person", request_id=current.pk, what="held")
        current.status = RequestStatus.ON_HOLD
        with translation.override(current.language):  # as the person is told it
            current.hold_reason = "\n".join(hold.reason for hold in holds_on(customer))
        current.handled_by = actor
        current.save(update_fields=["status", "hold_reason", "handled_by", "updated_at"])
        _record(audit.DECIDE, current, actor, erasure="held", holds=[h.kind for h in holds])
        return ErasureResult(current, holds=holds)
    for case in Case.objects.for_customer(customer).open().exclude(kind=Kind.COMPLAINT):
        case_actions.change_status(
            case=case,
            status=Status.CLOSED,
            outcome=Outcome.WITHDRAWN,
            actor_kind=ActorKind.SYSTEM,
        )
    references = list(
        Case.objects.for_customer(customer).order_by("pk").values_list("reference", flat=True)
    )
    reason = f"erasure request {current.public_id}"
    erased = hooks.erase_customer(customer, reason=reason, actor=actor)
    current.erased = erased
    current.hold_reason = ""
    _close(
        current,
        status=RequestStatus.COMPLETED,
        outcome=_("Personal data erased."),
        actor=actor,
        fields=["erased", "hold_reason"],
    )
    emit(
        EventType.CUSTOMER_ERASED,
        subject=f"customer:{customer.pk}",
        payload={
            "customer": customer.pk,
            "cases": references,
            "request": str(current.public_id),
            "at": timezone.now().isoformat(),
        },
    )
    _later("purge_search_index")
    _later("email_person", request_id=current.pk, what="erased")
    audit.record(
        audit.ERASE,
        target=customer,
        customer=customer,
        actor=actor,
        fields=["name", "email", "phone"],
        detail={"request": str(current.public_id), "erased": erased, "cases": len(references)},
    )
    return ErasureResult(current, erased=erased)


@transaction.atomic
def extend_deadline(
    *, request: DataSubjectRequest, until: dt.date, reason: str, actor: User
) -> DataSubjectRequest:
    """Move the deadline once, within the law's limit, with a reason the person is told; it is
    decided before the first deadline passes."""
    current = _pending(request)
    if current.extended_until is not None:
        raise RequestNotAllowed(_("The deadline was already extended once."))
    if not reason.strip():
        raise RequestNotAllowed(_("Give the reason for the extension: the person is told."))
    now = timezone.now()
    if current.due_at < now:
        raise RequestNotAllowed(
            _("The deadline has passed: an extension had to be decided before it.")
        )
    new_deadline = deadlines.end_of_day(until)
    limit = deadlines.latest_extension(current.regime, current.received_at)
    if new_deadline <= current.due_at:
        raise RequestNotAllowed(_("The new deadline must be after the current one."))
    if new_deadline > limit:
        raise RequestNotAllowed(
            _("The law allows extending to %(date)s at the latest.")
            % {"date": timezone.localdate(limit).isoformat()}
        )
    current.extended_until = new_deadline
    current.extension_reason = reason.strip()
    current.deadline_warned_at = None
    current.save(
        update_fields=["extended_until", "extension_reason", "deadline_warned_at", "updated_at"]
    )
    if current.contact_email:
        _later("email_person", request_id=current.pk, what="extended")
    _record(audit.CHANGE, current, actor, extended_until=new_deadline.isoformat())
    return current


@transaction.atomic
def close_request(
    *, request: DataSubjectRequest, status: str, outcome: str, actor: User
) -> DataSubjectRequest:
    """Answer a request by hand: completed (an objection honoured, no data held) or refused
    (identity not proved, manifestly unfounded), with what the person is told."""
    if status not in (RequestStatus.COMPLETED, RequestStatus.REFUSED):
        raise ValueError(f"A request closes as completed or refused, not {status!r}")
    current = _pending(request)
    if not outcome.strip():
        raise RequestNotAllowed(_("Say what was done, or why the request is refused."))
    _close(current, status=status, outcome=outcome.strip(), actor=actor)
    if current.contact_email:
        _later("email_person", request_id=current.pk, what="closed")
    _record(audit.DECIDE, current, actor, status=status)
    return current


@transaction.atomic
def forget_contact(*, request: DataSubjectRequest) -> None:
    """The answer to an erasure request was sent: the address it went to is not kept either."""
    DataSubjectRequest.objects.filter(pk=request.pk).exclude(status__in=PENDING_STATUSES).update(
        contact_email=""
    )


# Legal holds ------------------------------------------------------------------------------


@transaction.atomic
def place_hold(*, customer: Customer, reason: str, actor: User) -> LegalHold:
    """Keep the customer's data against erasure, for the reason given (shown to them when
    their erasure request is refused, so it names no one else)."""
    if not reason.strip():
        raise RequestNotAllowed(_("Give the reason for the hold."))
    hold = LegalHold.objects.create(customer=customer, reason=reason.strip(), placed_by=actor)
    audit.record(audit.DECIDE, target=hold, customer=customer, actor=actor, fields=[])
    return hold


@transaction.atomic
def release_hold(*, hold: LegalHold, actor: User, note: str = "") -> LegalHold:
    claimed = LegalHold.objects.filter(pk=hold.pk, released_at__isnull=True).update(
        released_at=timezone.now(), released_by=actor, release_note=note.strip()
    )
    hold.refresh_from_db()
    if claimed:
        audit.record(audit.DECIDE, target=hold, customer=hold.customer_id, actor=actor, fields=[])
    return hold
