"""The helpdesk over the REST API: the queue, a case with its thread, and the agents' actions on it.

It mirrors the HTML helpdesk (concilia.cases.views): the same access rules (cases.access), the same
forms and the same actions, so a CRM or another helpdesk may see and do exactly what the person
behind its token may. A case the person may not see answers 404, never 403, so its existence is
not revealed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from concilia.accounts.auth import TokenAuth
from concilia.accounts.models import ApiToken, Scope, Team, User
from concilia.cases import actions, legal, queue, sla
from concilia.cases.access import (
    assignable_users,
    can_read,
    may_change,
    transfer_teams,
    visible_cases,
)
from concilia.cases.forms import AssignForm, NoteForm, ReplyForm, StatusForm
from concilia.cases.models import Case, ReplyTemplate, Status
from concilia.cases.templating import render as render_template
from concilia.cases.templating import variables_for
from concilia.core import audit
from concilia.core.problems import ApiProblem
from concilia.core.references import InvalidReference, normalize_reference

# Reading needs the cases:read scope; each change declares cases:write.
router = Router(tags=["helpdesk"], auth=TokenAuth(scope=Scope.CASES_READ))
WRITE = TokenAuth(scope=Scope.CASES_WRITE)

MAX_PAGE_SIZE = 200

_SUMMARY_RELATIONS = ("customer", "category", "team__calendar", "assignee", "jurisdiction")


# --- schemas ------------------------------------------------------------------------------


class ErrorOut(Schema):
    field: str
    code: str
    message: str


class ProblemOut(Schema):
    detail: str
    errors: list[ErrorOut]


class CustomerRefOut(Schema):
    name: str
    email: str


class CaseSummaryOut(Schema):
    reference: str
    subject: str
    customer: CustomerRefOut
    category: str = Field(description="The category code")
    kind: str
    channel: str
    status: str
    outcome: str
    priority: str
    language: str
    team: str | None = Field(description="The owning team's code")
    assignee: str | None = Field(description="The assignee's username")
    deadline: dt.datetime
    first_response_due: dt.datetime | None
    next_alert_at: dt.datetime | None
    created_at: dt.datetime
    last_activity_at: dt.datetime
    version: int = Field(description="Send it back with a change to refuse it if the case moved on")
    clock: str = Field(description="green, amber, red, or grey (closed)")
    clock_paused: bool = Field(description="The clocks stop while the case waits for the customer")
    jurisdiction: str | None = Field(description="Whose law sets the legal deadline (ES, CL…)")
    legal_deadline: dt.datetime | None = Field(
        description="The end of the last day to answer under that law, counted from reception in "
        "its working days; it never pauses. Null: no legal deadline applies"
    )
    legal_clock: str = Field(
        description="green, amber (the warning days have begun), red (missed), or grey (closed "
        "or none)"
    )


class CasePageOut(Schema):
    items: list[CaseSummaryOut]
    next: str | None = Field(description="Pass it as `after` for the next page; null on the last")


class CustomerOut(Schema):
    name: str
    email: str
    phone: str
    language: str


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    uploaded_by: str
    created_at: dt.datetime
    message: int | None = Field(description="The message it came with; null: with the case itself")


class ThreadEntryOut(Schema):
    type: str = Field(description="message (to or from the customer), note (internal) or event")
    id: int
    created_at: dt.datetime
    actor_kind: str = Field(description="customer, staff, integration or system")
    actor: str | None = Field(description="The staff user's username, if a person did it")
    internal: bool = Field(description="Never shown to the customer")
    body: str
    event: str | None = Field(description="The event's kind (events only)")
    data: dict[str, Any]
    attachments: list[AttachmentOut]


class LinkOut(Schema):
    reference: str
    kind: str


class LegalRuleOut(Schema):
    title: str
    days: int | None
    day_count: str = Field(description="working or calendar")
    counted_from: str = Field(description="receipt, complete_file or answer")
    law: str
    article: str
    url: str
    note: str


class CaseOut(CaseSummaryOut):
    customer: CustomerOut  # type: ignore[assignment]
    description: str
    desired_resolution: str
    order_number: str
    purchase_date: dt.date | None
    amount: Decimal | None
    currency: str
    sla_paused_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    merged_into: str | None
    may_change: bool = Field(description="The token's user may act on this case")
    thread: list[ThreadEntryOut]
    attachments: list[AttachmentOut]
    links: list[LinkOut]
    legal_rule: LegalRuleOut | None = Field(description="The rule behind the legal deadline")


class QueueQuery(Schema):
    """The queue's filters: the names and rules of the HTML queue's form (concilia.cases.queue)."""

    view: str | None = Field(None, description=f"One of {', '.join(queue.VIEWS)}; default mine")
    q: str | None = Field(
        None,
        description="Text in the subject, description or messages (3 characters or more search "
        "every case; 1 or 2 only the 2,000 with the latest activity)",
    )
    reference: str | None = Field(None, description="The start of a reference")
    email: str | None = Field(None, description="A whole address (stored encrypted: no parts)")
    name: str | None = Field(None, description="Whole words of the customer's name, any order")
    status: list[str] = Field(default_factory=list, description="Repeat for several statuses")
    category: str | None = Field(None, description="A category code")
    kind: str | None = None
    priority: str | None = None
    assignee: str | None = Field(None, description="A user id, me or none")
    team: str | None = Field(None, description="A team code")
    waiting_days: str | None = Field(None, description="The customer has waited at least N days")
    alert: str | None = Field(None, description=f"One of {', '.join(queue.ALERTS)}")
    created_from: str | None = Field(None, description="YYYY-MM-DD")
    created_to: str | None = Field(None, description="YYYY-MM-DD")
    sort: str | None = Field(None, description=f"One of {', '.join(queue.SORTS)}; default deadline")
    after: str | None = Field(None, description="The `next` of the previous page")
    limit: str | None = Field(None, description=f"Cases per page, 1 to {MAX_PAGE_SIZE}; default 50")


class ReplyIn(Schema):
    body: str = Field("", description="May be left out when a template is given: it is filled in")
    template: str | None = Field(None, description="A reply template code")
    status: str | None = Field(
        None, description="Then: pending_customer (default), pending_agent or closed"
    )
    outcome: str | None = Field(None, description="Needed when the reply closes the case")
    version: int | None = None


class NoteIn(Schema):
    body: str = ""
    version: int | None = None


class StatusIn(Schema):
    status: str = ""
    outcome: str | None = Field(None, description="Needed to close the case")
    version: int | None = None


class AssignIn(Schema):
    assignee: str | None = Field(description="A username, or null to leave the case unassigned")
    note: str = ""
    version: int | None = None


class TransferIn(Schema):
    team: str = Field(description="The code of the team that takes the case over")
    assignee: str | None = Field(None, description="A username in that team")
    note: str = Field("", description="Required: what the new team needs to know")
    version: int | None = None


PROBLEMS: dict[int, Any] = {401: ProblemOut, 403: ProblemOut, 404: ProblemOut, 422: ProblemOut}
CHANGE_PROBLEMS: dict[int, Any] = {**PROBLEMS, 409: ProblemOut}


# --- forms: the helpdesk's own, with the API's differences ----------------------------------


class ApiQueueForm(queue.QueueForm):
    """The queue's filters plus a page size."""

    limit = forms.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


class _OptionalVersion(forms.Form):
    # The helpdesk pages always send the version they showed; API callers may leave it out.
    version = forms.IntegerField(min_value=1, required=False)


class ApiReplyForm(_OptionalVersion, ReplyForm):
    pass


class ApiNoteForm(_OptionalVersion, NoteForm):
    pass


class ApiStatusForm(_OptionalVersion, StatusForm):
    pass


class ApiAssignForm(_OptionalVersion, AssignForm):
    """People are named by username; teams are those the person may transfer to."""

    def __init__(self, *args: Any, user: User, **kwargs: Any):
        super().__init__(*args, assignable=assignable_users(user), **kwargs)
        self.fields["assignee"].to_field_name = "username"  # type: ignore[attr-defined]
        self.fields["team"].queryset = Team.objects.filter(  # type: ignore[attr-defined]
            pk__in=[team.pk for team in transfer_teams(user)]
        )


def _form_errors(form: forms.Form, names: dict[str, str] | None = None) -> list[dict[str, str]]:
    names = names or {}
    return [
        {
            "field": "" if field == "__all__" else names.get(field, field),
            "code": error["code"] or "invalid",
            "message": error["message"],
        }
        for field, errors in form.errors.get_json_data().items()
        for error in errors
    ]


def _cleaned(form: forms.Form, names: dict[str, str] | None = None) -> dict[str, Any]:
    if not form.is_valid():
        raise ApiProblem(422, _("The request has errors."), _form_errors(form, names))
    return form.cleaned_data


def _version(value: int | None) -> int | str:
    return "" if value is None else value


# --- access -------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    return token.user


def _reader(request: HttpRequest) -> User:
    user = _user(request)
    if not can_read(user):
        raise ApiProblem(403, _("This token may not read cases."))
    return user


def _visible_case(request: HttpRequest, reference: str, *relations: str) -> Case:
    """The case, if the token's user may see it; 404 otherwise, as if it did not exist."""
    user = _reader(request)
    try:
        reference = normalize_reference(reference)
    except InvalidReference:
        raise ApiProblem(404, _("There is no case with this reference.")) from None
    case = (
        visible_cases(user)
        .select_related(*_SUMMARY_RELATIONS, *relations)
        .filter(reference=reference)
        .first()
    )
    if case is None:
        raise ApiProblem(404, _("There is no case with this reference."))
    return case


def _changeable_case(request: HttpRequest, reference: str) -> Case:
    case = _visible_case(request, reference)
    if not may_change(_user(request), case):
        raise ApiProblem(403, _("This token may read cases but not change them."))
    return case


def _stale(exc: actions.CaseChanged) -> ApiProblem:
    return ApiProblem(
        409,
        _(
            "Someone else changed this case after you read it, so nothing was saved. Read the "
            "case again and send your change once more."
        ),
        [
            {
                "field": "version",
                "code": "stale",
                "message": _("The case is now at version %(version)d.")
                % {"version": exc.case.version},
            }
        ],
    )


# --- answers ------------------------------------------------------------------------------


def _summary(case: Case, now: dt.datetime) -> dict[str, Any]:
    clock = sla.clock(case, now)
    return {
        "reference": case.reference,
        "subject": case.subject,
        "customer": {"name": case.customer.name, "email": case.customer.email},
        "category": case.category.code,
        "kind": case.kind,
        "channel": case.channel,
        "status": case.status,
        "outcome": case.outcome,
        "priority": case.priority,
        "language": case.language,
        "team": case.team.code if case.team_id else None,
        "assignee": case.assignee.username if case.assignee_id else None,
        "deadline": case.deadline,
        "first_response_due": case.first_response_due,
        "next_alert_at": case.next_alert_at,
        "created_at": case.created_at,
        "last_activity_at": case.last_activity_at,
        "version": case.version,
        "clock": clock.colour,
        "clock_paused": clock.paused,
        "jurisdiction": case.jurisdiction.code if case.jurisdiction_id else None,
        "legal_deadline": case.legal_deadline,
        "legal_clock": legal.legal_clock(case, now).colour,
    }


def _current_summary(case: Case) -> dict[str, Any]:
    """The case as it is after a change (which may have moved it out of the person's sight)."""
    fresh = Case.objects.select_related(*_SUMMARY_RELATIONS).get(pk=case.pk)
    return _summary(fresh, timezone.now())


def _attachment(attachment: Any) -> dict[str, Any]:
    return {
        "id": attachment.pk,
        "filename": attachment.original_name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "uploaded_by": attachment.uploaded_by,
        "created_at": attachment.created_at,
        "message": attachment.message_id,
    }


def _thread(case: Case) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Messages, notes and events in the order they happened; and the case's attachments."""
    attachments = list(case.attachments.order_by("created_at", "pk"))
    by_message: dict[int, list[dict[str, Any]]] = {}
    for attachment in attachments:
        if attachment.message_id is not None:
            by_message.setdefault(attachment.message_id, []).append(_attachment(attachment))
    entries: list[tuple[tuple[dt.datetime, int, int], dict[str, Any]]] = []
    for message in case.messages.select_related("author_user"):
        entry = {
            "type": "note" if message.internal else "message",
            "id": message.pk,
            "created_at": message.created_at,
            "actor_kind": message.author_kind,
            "actor": message.author_user.username if message.author_user else None,
            "internal": message.internal,
            "body": message.body,
            "event": None,
            "data": {},
            "attachments": by_message.get(message.pk, []),
        }
        entries.append(((message.created_at, 0, message.pk), entry))
    for event in case.events.select_related("actor_user"):
        entry = {
            "type": "event",
            "id": event.pk,
            "created_at": event.created_at,
            "actor_kind": event.actor_kind,
            "actor": event.actor_user.username if event.actor_user else None,
            "internal": True,
            "body": "",
            "event": event.kind,
            "data": event.data,
            "attachments": [],
        }
        entries.append(((event.created_at, 1, event.pk), entry))
    entries.sort(key=lambda item: item[0])
    return [entry for _key, entry in entries], [_attachment(a) for a in attachments]


# --- endpoints ----------------------------------------------------------------------------


@router.get(
    "/cases",
    response={200: CasePageOut, **PROBLEMS},
    summary="The helpdesk queue",
    description=(
        "The cases the token's user may see, filtered like the helpdesk queue (same parameter "
        "names; repeat `status` for several). Pages are cut by a cursor: pass `next` as `after` "
        "to read on. Totals are not counted."
    ),
)
def list_cases(request: HttpRequest, filters: Query[QueueQuery]) -> Any:
    user = _reader(request)
    data = _cleaned(ApiQueueForm(request.GET))
    result = queue.page(user, data, data.get("limit") or queue.PAGE_SIZE)
    audit.record(audit.LIST, target=Case, listed=result.cases)
    now = timezone.now()
    return {
        "items": [_summary(case, now) for case in result.cases],
        "next": result.next_after or None,
    }


@router.get(
    "/cases/{reference}",
    response={200: CaseOut, **PROBLEMS},
    summary="A case with its whole thread",
    description=(
        "Header, customer, order data, deadlines and the thread in order: messages to and from "
        "the customer, internal notes and events (both flagged internal), with attachments."
    ),
)
def get_case(request: HttpRequest, reference: str) -> Any:
    case = _visible_case(request, reference, "merged_into")
    audit.record(audit.VIEW, case=case)
    thread, attachments = _thread(case)
    customer = case.customer
    return {
        **_summary(case, timezone.now()),
        "customer": {
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "language": customer.language,
        },
        **{
            field: getattr(case, field)
            for field in (
                "description",
                "desired_resolution",
                "order_number",
                "purchase_date",
                "amount",
                "currency",
                "sla_paused_at",
                "first_response_at",
                "resolved_at",
                "closed_at",
            )
        },
        "merged_into": case.merged_into.reference if case.merged_into_id else None,
        "may_change": may_change(_user(request), case),
        "thread": thread,
        "attachments": attachments,
        "links": [
            {"reference": link.other.reference, "kind": link.kind}
            for link in case.links.select_related("other").order_by("created_at", "pk")
        ],
        "legal_rule": _legal_rule(case),
    }


def _legal_rule(case: Case) -> dict[str, Any] | None:
    rule = legal.response_rule(case)
    if rule is None:
        return None
    return {
        "title": rule.title(case.language),
        "days": rule.days,
        "day_count": rule.day_count,
        "counted_from": rule.counted_from,
        "law": rule.source_law,
        "article": rule.source_article,
        "url": rule.source_url,
        "note": rule.note,
    }


@router.post(
    "/cases/{reference}/replies",
    auth=WRITE,
    response={200: CaseSummaryOut, **CHANGE_PROBLEMS},
    summary="Reply to the customer",
    description=(
        "Sent by email and shown on the tracking page. Then the case waits for the customer "
        "(default), keeps waiting for us, or closes (with an outcome). With a template and no "
        "body, the template is filled in for the case, in the customer's language."
    ),
)
def reply(request: HttpRequest, reference: str, payload: ReplyIn) -> Any:
    case = _changeable_case(request, reference)
    user = _user(request)
    body = payload.body
    if not body.strip() and payload.template:
        template = ReplyTemplate.objects.filter(active=True, code=payload.template).first()
        if template is not None:
            body = render_template(
                template.body(case.language), variables_for(case, agent_name=str(user))
            )
    form = ApiReplyForm(
        {
            "body": body,
            "template": payload.template or "",
            "then": payload.status or Status.PENDING_CUSTOMER,
            "outcome": payload.outcome or "",
            "version": _version(payload.version),
        }
    )
    data = _cleaned(form, {"then": "status"})
    try:
        actions.reply_to_customer(
            case=case,
            body=data["body"],
            author=user,
            status=data["then"],
            outcome=data.get("outcome") or "",
            template_code=data["template"].code if data.get("template") else "",
            expected_version=data.get("version"),
        )
    except actions.CaseChanged as exc:
        raise _stale(exc) from None
    return _current_summary(case)


@router.post(
    "/cases/{reference}/notes",
    auth=WRITE,
    response={200: CaseSummaryOut, **CHANGE_PROBLEMS},
    summary="Add an internal note",
    description="For colleagues only; never shown or sent to the customer.",
)
def add_note(request: HttpRequest, reference: str, payload: NoteIn) -> Any:
    case = _changeable_case(request, reference)
    data = _cleaned(ApiNoteForm({"body": payload.body, "version": _version(payload.version)}))
    try:
        actions.add_internal_note(
            case=case, body=data["body"], author=_user(request), expected_version=data["version"]
        )
    except actions.CaseChanged as exc:
        raise _stale(exc) from None
    return _current_summary(case)


@router.post(
    "/cases/{reference}/status",
    auth=WRITE,
    response={200: CaseSummaryOut, **CHANGE_PROBLEMS},
    summary="Change the status",
    description="Closing needs an outcome; any other status clears it.",
)
def set_status(request: HttpRequest, reference: str, payload: StatusIn) -> Any:
    case = _changeable_case(request, reference)
    form = ApiStatusForm(
        {
            "status": payload.status,
            "outcome": payload.outcome or "",
            "version": _version(payload.version),
        }
    )
    data = _cleaned(form)
    user = _user(request)
    try:
        if data["status"] == Status.CLOSED:
            actions.close_case(
                case=case,
                outcome=data["outcome"],
                actor_user=user,
                expected_version=data["version"],
            )
        else:
            actions.change_status(
                case=case, status=data["status"], actor_user=user, expected_version=data["version"]
            )
    except actions.CaseChanged as exc:
        raise _stale(exc) from None
    return _current_summary(case)


@router.post(
    "/cases/{reference}/assign",
    auth=WRITE,
    response={200: CaseSummaryOut, **CHANGE_PROBLEMS},
    summary="Give the case to a person of your teams, or to nobody",
    description="The new assignee is told in the helpdesk and by email.",
)
def assign(request: HttpRequest, reference: str, payload: AssignIn) -> Any:
    case = _changeable_case(request, reference)
    user = _user(request)
    form = ApiAssignForm(
        {
            "assignee": payload.assignee or "",
            "note": payload.note,
            "version": _version(payload.version),
        },
        user=user,
    )
    data = _cleaned(form)
    try:
        actions.assign_case(
            case=case,
            assignee=data.get("assignee"),
            actor=user,
            note=data.get("note") or "",
            expected_version=data["version"],
        )
    except actions.CaseChanged as exc:
        raise _stale(exc) from None
    return _current_summary(case)


@router.post(
    "/cases/{reference}/transfer",
    auth=WRITE,
    response={200: CaseSummaryOut, **CHANGE_PROBLEMS},
    summary="Hand the case over to another team",
    description=(
        "The team then owns the case; the note is kept as an internal note and the new assignee "
        "(if one is named) is told."
    ),
)
def transfer(request: HttpRequest, reference: str, payload: TransferIn) -> Any:
    case = _changeable_case(request, reference)
    user = _user(request)
    form = ApiAssignForm(
        {
            "team": payload.team,
            "assignee": payload.assignee or "",
            "note": payload.note,
            "version": _version(payload.version),
        },
        user=user,
    )
    data = _cleaned(form)
    if data.get("team") is None:
        # An empty code would make this an assignment; a transfer names its team.
        raise ApiProblem(
            422,
            _("The request has errors."),
            [{"field": "team", "code": "required", "message": _("This field is required.")}],
        )
    try:
        actions.transfer_case(
            case=case,
            team=data["team"],
            assignee=data.get("assignee"),
            actor=user,
            note=data["note"],
            expected_version=data["version"],
        )
    except actions.CaseChanged as exc:
        raise _stale(exc) from None
    return _current_summary(case)
