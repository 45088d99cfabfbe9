"""The complaints API: file a complaint (anonymous or with a token), read one (staff tokens)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from concilia.accounts.auth import ANONYMOUS, OptionalTokenAuth, TokenAuth
from concilia.accounts.models import ApiToken, Scope
from concilia.cases.attachments import CheckedFile, check_file
from concilia.cases.models import DECLARED_FIELDS, ActorKind, Case, Channel
from concilia.cases.queries import active_categories
from concilia.core import audit
from concilia.core.problems import ApiProblem
from concilia.core.references import InvalidReference, normalize_reference
from concilia.core.throttling import anonymous_submissions, client_address
from concilia.customers.queries import current_notice
from concilia.intake.actions import IdempotencyConflict, submit_complaint
from concilia.intake.forms import ComplaintForm

router = Router(tags=["complaints"])


class AttachmentIn(Schema):
    filename: str = Field(max_length=255)
    content_base64: str = Field(description="The file's bytes, base64-encoded")


class ComplaintIn(Schema):
    kind: str = Field("complaint", description="complaint, question, suggestion or thanks")
    category: str = Field(description="A category code from GET /api/v1/categories")
    name: str
    email: str
    phone: str | None = None
    order_number: str | None = None
    purchase_date: dt.date | None = None
    amount: Decimal | None = None
    description: str
    desired_resolution: str | None = None
    language: str | None = Field(None, description="es or en; defaults to Accept-Language")
    privacy_notice_version: str | None = Field(
        None, description="The notice version shown to the customer; defaults to the current one"
    )
    accept_privacy: bool = Field(description="The customer accepted the privacy notice")
    attachments: list[AttachmentIn] = Field(default_factory=list)


class ComplaintCreated(Schema):
    reference: str
    status: str
    deadline: dt.datetime
    created_at: dt.datetime
    tracking_url: str


# Named apart from the helpdesk's and the chat's schemas: OpenAPI components share one namespace.
class ComplaintMessageOut(Schema):
    author: str
    body: str
    created_at: dt.datetime


class ComplaintAttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    url: str


class ComplainantOut(Schema):
    name: str
    email: str
    phone: str


class ComplaintOut(Schema):
    reference: str
    kind: str
    category: str
    channel: str
    status: str
    outcome: str
    priority: str
    language: str
    subject: str
    description: str
    desired_resolution: str
    order_number: str
    purchase_date: dt.date | None
    amount: Decimal | None
    currency: str
    customer: ComplainantOut
    deadline: dt.datetime
    created_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    messages: list[ComplaintMessageOut]
    attachments: list[ComplaintAttachmentOut]


class CategoryOut(Schema):
    code: str
    name: str
    response_days: int
    fields: dict[str, str]


class PrivacyNoticeOut(Schema):
    version: str
    text: str


def _language(payload_language: str | None, request: HttpRequest) -> str:
    codes = {code for code, _name in settings.LANGUAGES}
    if payload_language and payload_language[:2] in codes:
        return payload_language[:2]
    return (getattr(request, "LANGUAGE_CODE", None) or settings.LANGUAGE_CODE)[:2]


def _decode_attachments(
    items: list[AttachmentIn],
) -> tuple[list[CheckedFile], list[dict[str, str]]]:
    files, errors = [], []
    if len(items) > settings.CONCILIA_MAX_ATTACHMENTS:
        errors.append(
            {
                "field": "attachments",
                "code": "too_many",
                "message": _("You can attach at most %(limit)d files.")
                % {"limit": settings.CONCILIA_MAX_ATTACHMENTS},
            }
        )
        return files, errors
    for index, item in enumerate(items):
        field = f"attachments[{index}]"
        try:
            content = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError):
            errors.append(
                {
                    "field": field,
                    "code": "invalid_base64",
                    "message": _("The file content is not valid base64."),
                }
            )
            continue
        try:
            files.append(check_file(item.filename, content))
        except ValidationError as error:
            errors.append(
                {"field": field, "code": error.code or "invalid", "message": error.messages[0]}
            )
    return files, errors


def _form_errors(form: ComplaintForm) -> list[dict[str, str]]:
    api_names = {"notice_version": "privacy_notice_version"}
    return [
        {
            "field": api_names.get(field, field) if field != "__all__" else "",
            "code": error["code"] or "invalid",
            "message": error["message"],
        }
        for field, errors in form.errors.get_json_data().items()
        for error in errors
    ]


@router.post(
    "/complaints",
    auth=OptionalTokenAuth(scope=Scope.COMPLAINTS_WRITE),
    response={201: ComplaintCreated, 200: ComplaintCreated},
    summary="File a complaint",
    description=(
        "Anonymous calls are rate-limited like the web form; token-authenticated ones come from "
        "integrations. Send an `Idempotency-Key` header to make retries safe: a repeated key "
        "returns the first case (status 200) instead of opening another."
    ),
)
def create_complaint(request: HttpRequest, payload: ComplaintIn, response: HttpResponse) -> Any:
    token: ApiToken | None = None if request.auth is ANONYMOUS else request.auth
    if token is None:
        limiter = anonymous_submissions()
        if not limiter.hit(client_address(request)):
            raise ApiProblem(
                429,
                _("Too many submissions from this address; try again later."),
                headers={"Retry-After": str(limiter.retry_after())},
            )
    language = _language(payload.language, request)
    translation.activate(language)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise ApiProblem(
            422,
            _("The request has errors."),
            [
                {
                    "field": "Idempotency-Key",
                    "code": "too_long",
                    "message": _("The Idempotency-Key header may be at most 200 characters."),
                }
            ],
        )
    notice_version = payload.privacy_notice_version or current_notice().version
    data = payload.dict(exclude={"attachments", "language", "privacy_notice_version"})
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["notice_version"] = notice_version
    form = ComplaintForm(data=data)
    files, file_errors = _decode_attachments(payload.attachments)
    if not form.is_valid() or file_errors:
        errors = _form_errors(form) if form.errors else []
        raise ApiProblem(422, _("The request has errors."), errors + file_errors)
    try:
        submission = submit_complaint(
            data=form.cleaned_data,
            channel=Channel.API,
            language=language,
            files=files,
            idempotency_scope=f"api:token:{token.pk}" if token else "api:anonymous",
            idempotency_key=key,
            fingerprint=hashlib.sha256(request.body).hexdigest(),
            actor_kind=ActorKind.INTEGRATION if token else ActorKind.CUSTOMER,
            actor_user=token.user if token else None,
        )
    except IdempotencyConflict as exc:
        raise ApiProblem(
            409,
            _("This Idempotency-Key was already used for a different request."),
            [
                {
                    "field": "Idempotency-Key",
                    "code": "conflict",
                    "message": _("Use a new key for a new complaint."),
                }
            ],
        ) from exc
    case = submission.case
    if not submission.created:
        response["Idempotent-Replayed"] = "true"
    body = {
        "reference": case.reference,
        "status": case.status,
        "deadline": case.deadline,
        "created_at": case.created_at,
        "tracking_url": f"{settings.BASE_URL}{reverse('intake:track')}?reference={case.reference}",
    }
    return Status(201 if submission.created else 200, body)


@router.get(
    "/complaints/{reference}",
    auth=TokenAuth(scope=Scope.CASES_READ),
    response=ComplaintOut,
    summary="Read a complaint (staff tokens)",
)
def get_complaint(request: HttpRequest, reference: str) -> Any:
    token: ApiToken = request.auth  # type: ignore[assignment]
    if not token.user.has_perm("cases.view_case"):
        raise HttpError(403, _("This token may not read cases."))
    try:
        reference = normalize_reference(reference)
    except InvalidReference:
        raise ApiProblem(404, _("There is no case with this reference.")) from None
    case = (
        Case.objects.select_related("category", "customer")
        .prefetch_related("messages", "attachments")
        .filter(reference=reference)
        .first()
    )
    if case is None:
        raise ApiProblem(404, _("There is no case with this reference."))
    audit.record(audit.VIEW, case=case)
    return {
        **{
            f: getattr(case, f)
            for f in (
                "reference",
                "kind",
                "channel",
                "status",
                "outcome",
                "priority",
                "language",
                "subject",
                "description",
                "desired_resolution",
                "order_number",
                "purchase_date",
                "amount",
                "currency",
                "deadline",
                "created_at",
                "first_response_at",
                "resolved_at",
                "closed_at",
            )
        },
        "category": case.category.code,
        "customer": {
            "name": case.customer.name,
            "email": case.customer.email,
            "phone": case.customer.phone,
        },
        "messages": [
            {"author": m.author_kind, "body": m.body, "created_at": m.created_at}
            for m in case.messages.all()
        ],
        "attachments": [
            {
                "id": a.pk,
                "filename": a.original_name,
                "content_type": a.content_type,
                "size": a.size,
                "url": settings.BASE_URL
                + reverse("intake:attachment", args=[case.reference, a.pk]),
            }
            for a in case.attachments.all()
        ],
    }


@router.get(
    "/categories",
    response=list[CategoryOut],
    auth=None,
    tags=["reference data"],
    summary="Categories and the fields each one needs",
)
def list_categories(request: HttpRequest) -> Any:
    return [
        {
            "code": c.code,
            "name": c.name,
            "response_days": c.response_days,
            "fields": {f: c.rule(f) for f in DECLARED_FIELDS},
        }
        for c in active_categories().values()
    ]


@router.get(
    "/privacy-notice",
    response=PrivacyNoticeOut,
    auth=None,
    tags=["reference data"],
    summary="The privacy notice customers must accept",
)
def privacy_notice(request: HttpRequest) -> Any:
    notice = current_notice()
    return {"version": notice.version, "text": notice.body}
