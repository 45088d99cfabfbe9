"""Webhook endpoints over the REST API (/api/v1/webhooks/): register, change, delete, rotate the
secret, read the delivery log with every attempt, send a delivery again and send a test ping.

Every call needs a token with the webhooks:manage scope, and the token's user needs the same
model permissions as in the admin (view, add, change, delete webhook endpoints; view and change
deliveries). Writes go through concilia.integrations.webhooks.actions, like the admin's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from concilia.accounts.auth import TokenAuth
from concilia.accounts.models import ApiToken, Scope, User
from concilia.cases.api import PROBLEMS, ProblemOut
from concilia.core.events import EventType
from concilia.core.problems import ApiProblem
from concilia.integrations.webhooks import actions
from concilia.integrations.webhooks.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
)

router = Router(tags=["webhooks"], auth=TokenAuth(scope=Scope.WEBHOOKS_MANAGE))

MAX_PAGE_SIZE = 200
PAGE_SIZE = 50
# Ids are 64-bit: a larger number cannot name anything (and must not reach the database).
MAX_ID = 2**63 - 1


# --- schemas ------------------------------------------------------------------------------


class EventTypeOut(Schema):
    type: str
    label: str


class EndpointIn(Schema):
    url: str = Field(description="Where events are POSTed: http:// or https://")
    events: list[str] = Field(description="Event types it receives (see /event-types)")
    description: str = ""
    active: bool = True


class EndpointPatch(Schema):
    url: str | None = None
    events: list[str] | None = None
    description: str | None = None
    active: bool | None = None


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    events: list[str]
    active: bool
    created_at: dt.datetime
    created_by: str | None = Field(description="The username of who registered it")
    secret_rotated_at: dt.datetime | None


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="The signing secret, shown this once: keep it")


class SecretOut(Schema):
    secret: str = Field(description="The new signing secret, shown this once")
    secret_rotated_at: dt.datetime


class AttemptOut(Schema):
    number: int
    started_at: dt.datetime
    status_code: int | None = Field(description="The receiver's answer; null if none came")
    response_ms: int
    error: str
    ok: bool


class DeliveryOut(Schema):
    id: int
    event_id: str
    type: str = Field(description="The event's type (ping for a test)")
    subject: str
    status: str = Field(description="pending, failed (will retry), delivered or dead (gave up)")
    attempts: int = Field(description="Failed attempts since it was last queued")
    next_attempt_at: dt.datetime
    last_status_code: int | None
    last_response_ms: int | None
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    attempt_log: list[AttemptOut] = Field(description="Every request, the latest first")


class DeliveryPageOut(Schema):
    items: list[DeliveryOut]
    next: int | None = Field(description="Pass it as `after` for the next page; null on the last")


class DeliveryQuery(Schema):
    status: str | None = None
    limit: int | None = None
    after: int | None = None


class DeliveryQueryForm(forms.Form):
    status = forms.ChoiceField(choices=DeliveryStatus.choices, required=False)
    limit = forms.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)
    after = forms.IntegerField(min_value=1, max_value=MAX_ID, required=False)


WRITE_PROBLEMS: dict[int, Any] = {**PROBLEMS, 409: ProblemOut}


# --- helpers ------------------------------------------------------------------------------


def _invalid(error: ValidationError) -> ApiProblem:
    """422 with one entry per message, named by field, from a form's or an action's errors."""
    by_field = error.error_dict if hasattr(error, "error_dict") else {"": error.error_list}
    return ApiProblem(
        422,
        _("The request has errors."),
        [
            {
                "field": "" if field == "__all__" else field,
                "code": problem.code or "invalid",
                "message": message,
            }
            for field, problems in by_field.items()
            for problem in problems
            for message in problem.messages
        ],
    )


def _user(request: HttpRequest, permission: str) -> User:
    """The token's user, if they hold the admin's permission for this (403 otherwise)."""
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if not token.user.has_perm(f"integrations.{permission}"):
        raise ApiProblem(
            403,
            _("This token's user may not do this: the permission %(permission)s is missing.")
            % {"permission": f"integrations.{permission}"},
        )
    return token.user


def _endpoint(endpoint_id: int) -> Endpoint:
    endpoint = None
    if 1 <= endpoint_id <= MAX_ID:
        endpoint = Endpoint.objects.select_related("created_by").filter(pk=endpoint_id).first()
    if endpoint is None:
        raise ApiProblem(404, _("There is no webhook endpoint with this id."))
    return endpoint


def _deliveries(endpoint: Endpoint) -> Any:
    return (
        Delivery.objects.filter(endpoint=endpoint)
        .select_related("event")
        .prefetch_related(
            Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("-number"))
        )
    )


def _endpoint_out(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "active": endpoint.active,
        "created_at": endpoint.created_at,
        "created_by": endpoint.created_by.username if endpoint.created_by else None,
        "secret_rotated_at": endpoint.secret_rotated_at,
    }


def _delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "event_id": str(delivery.event.event_id),
        "type": delivery.event.kind,
        "subject": delivery.subject,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_response_ms": delivery.last_response_ms,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "attempt_log": [
            {
                "number": attempt.number,
                "started_at": attempt.started_at,
                "status_code": attempt.status_code,
                "response_ms": attempt.response_ms,
                "error": attempt.error,
                "ok": attempt.ok,
            }
            for attempt in delivery.attempt_log.all()
        ],
    }


def _inactive() -> ApiProblem:
    return ApiProblem(409, _("This endpoint is inactive: activate it before sending it anything."))


# --- endpoints ----------------------------------------------------------------------------


@router.get(
    "/event-types",
    response={200: list[EventTypeOut], **PROBLEMS},
    summary="The events an endpoint may receive",
)
def list_event_types(request: HttpRequest) -> Any:
    _user(request, "view_endpoint")
    return [{"type": value, "label": str(label)} for value, label in EventType.choices]


@router.get(
    "/endpoints",
    response={200: list[EndpointOut], **PROBLEMS},
    summary="Every webhook endpoint",
    description="Secrets are never listed: they are shown once, on creation and on rotation.",
)
def list_endpoints(request: HttpRequest) -> Any:
    _user(request, "view_endpoint")
    return [_endpoint_out(e) for e in Endpoint.objects.select_related("created_by")]


@router.post(
    "/endpoints",
    response={201: EndpointCreatedOut, **PROBLEMS},
    summary="Register an endpoint",
    description=(
        "Answers with the endpoint's signing secret, the only time it is shown. URLs on "
        "private, loopback or link-local addresses are refused unless the deployment allows them."
    ),
)
def create_endpoint(request: HttpRequest, payload: EndpointIn) -> Any:
    user = _user(request, "add_endpoint")
    try:
        endpoint = actions.create_endpoint(
            url=payload.url,
            events=payload.events,
            description=payload.description,
            active=payload.active,
            actor=user,
        )
    except ValidationError as error:
        raise _invalid(error) from None
    return Status(201, {**_endpoint_out(endpoint), "secret": endpoint.secret})


@router.get(
    "/endpoints/{endpoint_id}",
    response={200: EndpointOut, **PROBLEMS},
    summary="One endpoint",
)
def get_endpoint(request: HttpRequest, endpoint_id: int) -> Any:
    _user(request, "view_endpoint")
    return _endpoint_out(_endpoint(endpoint_id))


@router.patch(
    "/endpoints/{endpoint_id}",
    response={200: EndpointOut, **PROBLEMS},
    summary="Change an endpoint",
    description="Send only what changes. An inactive endpoint receives nothing new.",
)
def update_endpoint(request: HttpRequest, endpoint_id: int, payload: EndpointPatch) -> Any:
    user = _user(request, "change_endpoint")
    endpoint = _endpoint(endpoint_id)
    try:
        actions.update_endpoint(
            endpoint=endpoint,
            url=endpoint.url if payload.url is None else payload.url,
            events=endpoint.events if payload.events is None else payload.events,
            description=(
                endpoint.description if payload.description is None else payload.description
            ),
            active=endpoint.active if payload.active is None else payload.active,
            actor=user,
        )
    except ValidationError as error:
        raise _invalid(error) from None
    return _endpoint_out(endpoint)


@router.delete(
    "/endpoints/{endpoint_id}",
    response={204: None, **PROBLEMS},
    summary="Delete an endpoint",
    description="Its deliveries and their log go with it.",
)
def delete_endpoint(request: HttpRequest, endpoint_id: int) -> Any:
    user = _user(request, "delete_endpoint")
    actions.delete_endpoint(endpoint=_endpoint(endpoint_id), actor=user)
    return Status(204, None)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response={200: SecretOut, **PROBLEMS},
    summary="Rotate the signing secret",
    description="The new secret signs every request from now on; the old one stops at once.",
)
def rotate_secret(request: HttpRequest, endpoint_id: int) -> Any:
    user = _user(request, "change_endpoint")
    endpoint = _endpoint(endpoint_id)
    secret = actions.rotate_secret(endpoint=endpoint, actor=user)
    return {"secret": secret, "secret_rotated_at": endpoint.secret_rotated_at}


@router.post(
    "/endpoints/{endpoint_id}/ping",
    response={202: DeliveryOut, **WRITE_PROBLEMS},
    summary="Send a test event",
    description=(
        "Queues a signed `ping` event to this endpoint alone; read its delivery (and the "
        "receiver's answer) in the delivery log."
    ),
)
def ping(request: HttpRequest, endpoint_id: int) -> Any:
    user = _user(request, "change_endpoint")
    try:
        delivery = actions.send_ping(endpoint=_endpoint(endpoint_id), actor=user)
    except actions.EndpointInactive:
        raise _inactive() from None
    return Status(202, _delivery_out(_deliveries(delivery.endpoint).get(pk=delivery.pk)))


@router.get(
    "/endpoints/{endpoint_id}/deliveries",
    response={200: DeliveryPageOut, **PROBLEMS},
    summary="The endpoint's delivery log",
    description=(
        "Deliveries, the newest first, each with every attempt (status code, response time, "
        "error). Filter by `status`; pass `next` as `after` to read on."
    ),
)
def list_deliveries(request: HttpRequest, endpoint_id: int, filters: Query[DeliveryQuery]) -> Any:
    _user(request, "view_delivery")
    endpoint = _endpoint(endpoint_id)
    form = DeliveryQueryForm(request.GET)
    if not form.is_valid():
        raise _invalid(ValidationError(form.errors.as_data()))
    data = form.cleaned_data
    deliveries = _deliveries(endpoint).order_by("-pk")
    if data["status"]:
        deliveries = deliveries.filter(status=data["status"])
    if data["after"]:
        deliveries = deliveries.filter(pk__lt=data["after"])
    limit = data["limit"] or PAGE_SIZE
    page = list(deliveries[: limit + 1])
    return {
        "items": [_delivery_out(d) for d in page[:limit]],
        "next": page[limit - 1].pk if len(page) > limit else None,
    }


@router.post(
    "/endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    response={202: DeliveryOut, **PROBLEMS},
    summary="Send a delivery again",
    description=(
        "Any delivery (given up, failed or delivered) is queued again with a fresh count of "
        "attempts. An inactive endpoint gets it once it is activated."
    ),
)
def redeliver(request: HttpRequest, endpoint_id: int, delivery_id: int) -> Any:
    user = _user(request, "change_delivery")
    endpoint = _endpoint(endpoint_id)
    delivery = None
    if 1 <= delivery_id <= MAX_ID:
        delivery = _deliveries(endpoint).filter(pk=delivery_id).first()
    if delivery is None:
        raise ApiProblem(404, _("This endpoint has no delivery with this id."))
    delivery.endpoint = endpoint
    actions.redeliver(deliveries=[delivery], actor=user)
    return Status(202, _delivery_out(_deliveries(endpoint).get(pk=delivery.pk)))
