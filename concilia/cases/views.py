"""The agents' helpdesk: the queue, a case with its whole thread, and the actions on it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from concilia.cases import actions, legal, queue, sla
from concilia.cases.access import (
    assignable_users,
    can_supervise,
    can_work,
    may_change,
    visible_cases,
)
from concilia.cases.forms import (
    AssignForm,
    BulkForm,
    ContactForm,
    DossierForm,
    JurisdictionForm,
    LinkForm,
    NoteForm,
    PriorityForm,
    ReminderForm,
    ReplyForm,
    StatusForm,
)
from concilia.cases.load import team_load
from concilia.cases.models import Case, Kind, Notification, ReplyTemplate, Status
from concilia.cases.similar import similar_cases
from concilia.cases.templating import render as render_template
from concilia.cases.templating import variables_for
from concilia.core import audit


def helpdesk_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in staff who work cases only; everyone else goes to the helpdesk sign-in."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), "helpdesk:login")
        if not can_work(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


@require_GET
@helpdesk_view
def queue_view(request: HttpRequest) -> HttpResponse:
    form = queue.QueueForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {"view": "mine"}
    result = queue.page(request.user, data)
    audit.record(audit.LIST, target=Case, listed=result.cases)
    now = timezone.now()
    rows = [
        {
            "case": case,
            "clock": sla.clock(case, now),
            "legal": legal.legal_clock(case, now),
            "days": (now - case.created_at).days,
        }
        for case in result.cases
    ]
    params = request.GET.copy()
    params.pop("after", None)
    next_params = params.copy()
    next_params["after"] = result.next_after
    view = data.get("view") or "mine"
    return render(
        request,
        "cases/helpdesk/queue.html",
        {
            "form": form,
            "rows": rows,
            "views": queue.VIEWS,
            "current_view": view,
            "bulk_form": BulkForm(assignable=assignable_users(request.user)),
            "here": request.get_full_path(),
            "next_url": "?" + next_params.urlencode() if result.next_after else "",
            "first_url": "?" + params.urlencode() if data.get("after") else "",
        },
    )


def _visible_case(request: HttpRequest, reference: str) -> Case:
    case = (
        visible_cases(request.user)
        .select_related(
            "customer",
            "category",
            "team__calendar",
            "assignee",
            "merged_into",
            "jurisdiction",
            "privacy_consent__notice",
        )
        .filter(reference=reference.strip().upper())
        .first()
    )
    if case is None:
        raise Http404
    return case


def _relation(case: Case, user: Any) -> str:
    """Seed 004's distinction: one of the agent's own customers, a new complainant, a question."""
    if case.kind == Kind.QUESTION:
        return "information_request"
    earlier = Case.objects.filter(customer=case.customer_id, created_at__lt=case.created_at)
    if earlier.filter(assignee=user).exists():
        return "yours"
    if not earlier.exists():
        return "new"
    return "returning"


def _case_page(
    request: HttpRequest, case: Case, forms: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    version = {"version": case.version}
    templates = list(ReplyTemplate.objects.filter(active=True))
    chosen = request.GET.get("template", "")
    values = variables_for(case, agent_name=str(request.user))
    initial_body = ""
    for template in templates:
        if template.code == chosen:
            initial_body = render_template(template.body(case.language), values)
    forms = forms or {}
    thread = sorted(
        [*case.messages.select_related("author_user").prefetch_related("attachments")],
        key=lambda m: (m.created_at, m.pk),
    )
    events = list(case.events.select_related("actor_user"))
    # Panels of higher apps (the policy decisions), named in settings: cases imports none.
    panels = [import_string(path)(request, case) for path in settings.HELPDESK_CASE_PANELS]
    return render(
        request,
        "cases/helpdesk/case.html",
        {
            "case": case,
            "clock": sla.clock(case),
            "legal": legal.legal_clock(case),
            "legal_rule": legal.response_rule(case),
            "thread": thread,
            "events": events,
            "case_attachments": case.attachments.filter(message__isnull=True),
            "reminders": case.reminders.filter(done_at__isnull=True),
            "links": case.links.select_related("other"),
            "relation": _relation(case, request.user),
            "templates": templates,
            "may_change": may_change(request.user, case),
            "reply_form": forms.get("reply")
            or ReplyForm(initial={**version, "body": initial_body, "template": chosen or None}),
            "note_form": forms.get("note") or NoteForm(initial=version),
            "status_form": forms.get("status")
            or StatusForm(initial={**version, "status": case.status}),
            "priority_form": forms.get("priority")
            or PriorityForm(initial={**version, "priority": case.priority}),
            "assign_form": forms.get("assign")
            or AssignForm(
                initial={**version, "assignee": case.assignee_id},
                assignable=assignable_users(request.user),
            ),
            "contact_form": forms.get("contact")
            or ContactForm(
                initial={**version, "name": case.customer.name, "phone": case.customer.phone}
            ),
            "jurisdiction_form": forms.get("jurisdiction")
            or JurisdictionForm(
                initial={
                    **version,
                    "jurisdiction": case.jurisdiction.code if case.jurisdiction_id else None,
                }
            ),
            "dossier_form": DossierForm(initial={"language": case.language}),
            "reminder_form": forms.get("reminder") or ReminderForm(),
            "link_form": forms.get("link") or LinkForm(),
            "similar": similar_cases(case, request.user),
            "same_customer": visible_cases(request.user)
            .filter(customer=case.customer_id)
            .exclude(pk=case.pk)
            .order_by("-created_at")[:10],
            "Status": Status,
            "panels": panels,
        },
        status=status,
    )


def render_case_page(request: HttpRequest, case: Case, *, status: int = 200) -> HttpResponse:
    """The case page, for another app's view that must show it again (with its panel's errors)."""
    current = _visible_case(request, case.reference)
    return _case_page(request, current, status=status)


@require_GET
@helpdesk_view
def case_detail(request: HttpRequest, reference: str) -> HttpResponse:
    case = _visible_case(request, reference)
    audit.record(audit.VIEW, case=case)
    return _case_page(request, case)


FORMS = {
    "reply": ReplyForm,
    "note": NoteForm,
    "status": StatusForm,
    "priority": PriorityForm,
    "assign": AssignForm,
    "contact": ContactForm,
    "reminder": ReminderForm,
    "link": LinkForm,
    "jurisdiction": JurisdictionForm,
}


def _form_kwargs(action: str, request: HttpRequest, case: Case) -> dict[str, Any]:
    if action == "assign":
        return {"assignable": assignable_users(request.user)}
    if action == "link":
        return {"case": case, "visible": visible_cases(request.user)}
    if action == "contact":
        return {"case": case}
    return {}


def _run(action: str, case: Case, data: dict[str, Any], user: Any) -> str:
    version = data.get("version")
    if action == "reply":
        then = data["then"]
        actions.reply_to_customer(
            case=case,
            body=data["body"],
            author=user,
            status=then,
            outcome=data.get("outcome") or "",
            template_code=data["template"].code if data.get("template") else "",
            expected_version=version,
        )
        return _("Your reply was sent to the customer.")
    if action == "note":
        actions.add_internal_note(
            case=case, body=data["body"], author=user, expected_version=version
        )
        return _("Note added.")
    if action == "status":
        actions.change_status(
            case=case,
            status=data["status"],
            outcome=data.get("outcome") or "",
            actor_user=user,
            expected_version=version,
        )
        return _("Status changed.")
    if action == "priority":
        actions.set_priority(
            case=case, priority=data["priority"], actor=user, expected_version=version
        )
        return _("Priority changed.")
    if action == "assign":
        actions.assign_case(
            case=case,
            assignee=data.get("assignee"),
            team=data.get("team"),
            note=data.get("note") or "",
            actor=user,
            expected_version=version,
        )
        return _("Owner changed.") if data.get("team") is None else _("Case transferred.")
    if action == "contact":
        actions.update_contact(
            case=case,
            name=data["name"],
            phone=data.get("phone") or "",
            actor=user,
            expected_version=version,
        )
        return _("Contact data saved.")
    if action == "jurisdiction":
        legal.set_jurisdiction(
            case=case, jurisdiction=data.get("jurisdiction"), actor=user, expected_version=version
        )
        return _("Jurisdiction changed; the legal deadline was counted again.")
    if action == "link":
        if data["how"] == "merge":
            into = actions.merge_cases(duplicate=case, into=data["other"], actor=user)
            return _("Merged into %(reference)s.") % {"reference": into.reference}
        actions.link_cases(case=case, other=data["other"], actor=user)
        return _("Cases linked.")
    actions.set_reminder(case=case, due_at=data["due_at"], note=data["note"], actor=user)
    return _("Alert set.")


@require_POST
@helpdesk_view
def case_action(request: HttpRequest, reference: str, action: str) -> HttpResponse:
    if action not in FORMS:
        raise Http404
    case = _visible_case(request, reference)
    if not may_change(request.user, case):
        raise PermissionDenied
    kwargs = _form_kwargs(action, request, case)
    form = FORMS[action](request.POST, **kwargs)
    if not form.is_valid():
        messages.error(request, _("Please correct the errors below."))
        return _case_page(request, case, {action: form}, status=400)
    try:
        done = _run(action, case, form.cleaned_data, request.user)
    except actions.CannotMerge:
        # Checked by the form already; only a change in between (e.g. the other case was closed)
        form.add_error(None, _("These cases can no longer be merged; reload the page."))
        return _case_page(request, case, {action: form}, status=409)
    except actions.CaseChanged as changed:
        messages.error(
            request,
            _(
                "Someone else changed this case while you were working on it. Nothing was "
                "saved: review their changes below, then send yours again."
            ),
        )
        fresh = _visible_case(request, changed.case.reference)
        data = request.POST.copy()
        data["version"] = str(fresh.version)
        kwargs = _form_kwargs(action, request, fresh)
        return _case_page(request, fresh, {action: FORMS[action](data, **kwargs)}, status=409)
    messages.success(request, done)
    if action == "link" and form.cleaned_data["how"] == "merge":
        return redirect("helpdesk:case", reference=form.cleaned_data["other"].reference)
    return redirect("helpdesk:case", reference=case.reference)


BULK_LIMIT = 200


def _ticked(values: list[str]) -> dict[str, int]:
    """`REFERENCE@version` values of the ticked rows → {reference: version seen}."""
    ticked = {}
    for value in values[:BULK_LIMIT]:
        reference, _sep, version = value.partition("@")
        if reference and version.isdigit():
            ticked[reference.strip().upper()] = int(version)
    return ticked


def _bulk_one(case: Case, data: dict[str, Any], user: Any, version: int) -> None:
    action = data["action"]
    if action == "assign":
        actions.assign_case(
            case=case, assignee=data["assignee"], actor=user, expected_version=version
        )
    elif action == "status":
        actions.change_status(
            case=case, status=data["status"], actor_user=user, expected_version=version
        )
    elif action == "priority":
        actions.set_priority(
            case=case, priority=data["priority"], actor=user, expected_version=version
        )
    else:
        actions.close_case(
            case=case, outcome=data["outcome"], actor_user=user, expected_version=version
        )


@require_POST
@helpdesk_view
def bulk_action(request: HttpRequest) -> HttpResponse:
    """Apply one change to the ticked cases; each case is saved on its own and reported."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = ""
    back = back or redirect("helpdesk:queue").url
    ticked = _ticked(request.POST.getlist("cases"))
    form = BulkForm(request.POST, assignable=assignable_users(request.user))
    if not ticked:
        messages.error(request, _("Tick at least one case first."))
        return redirect(back)
    if not form.is_valid():
        problems = [str(e) for errors in form.errors.values() for e in errors]
        messages.error(request, _("Nothing was changed: %s") % " ".join(problems))
        return redirect(back)
    found = {
        case.reference: case
        for case in visible_cases(request.user)
        .select_related("category", "team__calendar")
        .filter(reference__in=list(ticked))
    }
    done, changed, refused = 0, [], []
    for reference, version in ticked.items():
        case = found.get(reference)
        if case is None or not may_change(request.user, case):
            refused.append(reference)
            continue
        try:
            _bulk_one(case, form.cleaned_data, request.user, version)
        except actions.CaseChanged:
            changed.append(reference)
        else:
            done += 1
    if done:
        messages.success(request, ngettext("%d case changed.", "%d cases changed.", done) % done)
    if changed:
        messages.error(
            request,
            _(
                "Someone else changed these cases after you loaded the list, so they were left "
                "as they are: %s"
            )
            % ", ".join(changed),
        )
    if refused:
        messages.error(request, _("You may not change these cases: %s") % ", ".join(refused))
    return redirect(back)


@require_GET
@helpdesk_view
def load_view(request: HttpRequest) -> HttpResponse:
    """Supervisors: each agent's open work and each team's unassigned cases, linked to the queue."""
    if not can_supervise(request.user):
        raise PermissionDenied
    return render(request, "cases/helpdesk/load.html", {"teams": team_load(request.user)})


@helpdesk_view
def notifications(request: HttpRequest) -> HttpResponse:
    mine = Notification.objects.filter(recipient=request.user).select_related("case")
    if request.method == "POST":
        mine.filter(read_at__isnull=True).update(read_at=timezone.now())
        return redirect("helpdesk:notifications")
    return render(request, "cases/helpdesk/notifications.html", {"notifications": mine[:100]})
