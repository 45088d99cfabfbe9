"""The data-protection officer's pages of data-subject requests, under /helpdesk/privacy/requests/:
the list (pending ones by deadline, overdue first), entering a request that came by another
channel, and one request with everything that can be done to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import F
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from concilia.cases.models import Case
from concilia.core import audit
from concilia.privacy import actions
from concilia.privacy.forms import (
    CloseForm,
    EraseForm,
    ExtendForm,
    HoldForm,
    RectifyForm,
    ReleaseHoldForm,
    RequestFilterForm,
    StaffRequestForm,
    VerifyForm,
)
from concilia.privacy.holds import holds_on
from concilia.privacy.models import (
    PENDING_STATUSES,
    DataSubjectRequest,
    LegalHold,
    RequestKind,
    RequestStatus,
    Verification,
)
from concilia.privacy.views import dpo_view

HANDLE_PERMISSION = "privacy.handle_datasubjectrequest"
LIST_LIMIT = 200


@require_GET
@dpo_view(HANDLE_PERMISSION)
def request_list(request: HttpRequest) -> HttpResponse:
    form = RequestFilterForm(request.GET or None)
    show = (form.cleaned_data.get("show") if form.is_valid() else "") or "pending"
    rows = DataSubjectRequest.objects.select_related("customer", "handled_by").annotate(
        deadline_at=Coalesce(F("extended_until"), F("due_at"))
    )
    if show == "pending":
        rows = rows.filter(status__in=PENDING_STATUSES).order_by("deadline_at", "pk")
    elif show == "closed":
        rows = rows.exclude(status__in=PENDING_STATUSES).order_by("-completed_at", "-pk")
    else:
        rows = rows.order_by("-received_at", "-pk")
    shown = list(rows[: LIST_LIMIT + 1])
    audit.record(
        audit.LIST,
        target=DataSubjectRequest,
        listed=shown[:LIST_LIMIT],
        detail={"show": show},
    )
    return render(
        request,
        "privacy/requests/list.html",
        {
            "form": form,
            "show": show,
            "rows": shown[:LIST_LIMIT],
            "more": len(shown) > LIST_LIMIT,
            "now": timezone.now(),
        },
    )


@require_http_methods(["GET", "POST"])
@dpo_view(HANDLE_PERMISSION)
def request_new(request: HttpRequest) -> HttpResponse:
    form = StaffRequestForm(request.POST or None, initial={"language": request.LANGUAGE_CODE})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        created = actions.receive_request(
            kind=data["kind"],
            channel=data["channel"],
            email=data["email"],
            details=data["details"],
            regime=data["regime"],
            language=data["language"],
            verification=Verification.STAFF if data["verified"] else "",
            verification_note=data["verification_note"],
            actor=request.user,
        )
        if created.customer_id is None:
            messages.warning(
                request,
                _(
                    "No customer has this address: we hold no data of this person. Close the "
                    "request saying so."
                ),
            )
        else:
            messages.success(request, _("The request has been recorded."))
        return redirect("privacy:request", pk=created.pk)
    return render(
        request,
        "privacy/requests/new.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )


def _detail(
    request: HttpRequest, dsr: DataSubjectRequest, *, status: int = 200, **forms_given: Any
) -> HttpResponse:
    customer = dsr.customer
    initial = {"rectify": {"name": customer.name, "phone": customer.phone} if customer else None}
    customer_forms: dict[str, forms.Form] = {
        name: form_class(prefix=action, initial=initial.get(action))
        for action, (form_class, name, _handler) in ACTIONS.items()
        if form_class is not None
    }
    customer_forms.update(forms_given)
    cases = (
        list(Case.objects.for_customer(customer).select_related("category").order_by("-pk")[:20])
        if customer
        else []
    )
    return render(
        request,
        "privacy/requests/detail.html",
        {
            "dsr": dsr,
            "customer": customer,
            "cases": cases,
            "holds": holds_on(customer) if customer and dsr.is_pending else [],
            "Kind": RequestKind,
            "Status": RequestStatus,
            **customer_forms,
        },
        status=status,
    )


def _request(pk: int) -> DataSubjectRequest:
    return get_object_or_404(
        DataSubjectRequest.objects.select_related("customer", "handled_by", "requested_by"), pk=pk
    )


@require_GET
@dpo_view(HANDLE_PERMISSION)
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = _request(pk)
    audit.record(audit.VIEW, target=dsr, customer=dsr.customer)
    return _detail(request, dsr)


Handler = Callable[[HttpRequest, DataSubjectRequest, forms.Form | None], str]


def _verify(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    actions.verify_request(
        request=dsr, method=Verification.STAFF, note=form.cleaned_data["note"], actor=request.user
    )
    return _("The identity is verified; the request is in progress.")


def _send_link(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    actions.send_confirmation_link(request=dsr, actor=request.user)
    return _("A confirmation link has been emailed to the address on file.")


def _export(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    actions.prepare_export(request=dsr, actor=request.user)
    return _("The export is being prepared; the person is emailed when it is ready.")


def _rectify(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    data = form.cleaned_data
    actions.rectify(
        request=dsr,
        actor=request.user,
        name=data["name"],
        phone=data["phone"],
        note=data["note"],
    )
    return _("The data has been corrected and the person told.")


def _erase(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    result = actions.erase(request=dsr, actor=request.user)
    if not result.done:
        messages.error(
            request,
            _("Nothing was erased: legal holds keep this customer's data. %(reasons)s")
            % {"reasons": " ".join(hold.reason for hold in result.holds)},
        )
        return ""
    return _("The customer's personal data has been erased.")


def _extend(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    data = form.cleaned_data
    actions.extend_deadline(
        request=dsr, until=data["until"], reason=data["reason"], actor=request.user
    )
    return _("The deadline has been extended and the person told why.")


def _close(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    data = form.cleaned_data
    actions.close_request(
        request=dsr, status=data["status"], outcome=data["outcome"], actor=request.user
    )
    return _("The request is closed and the person told.")


def _hold(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    if dsr.customer is None:
        raise actions.RequestNotAllowed(_("No customer has this address."))
    actions.place_hold(
        customer=dsr.customer, reason=form.cleaned_data["reason"], actor=request.user
    )
    return _("The legal hold is in force.")


def _release(request: HttpRequest, dsr: DataSubjectRequest, form: Any) -> str:
    hold = get_object_or_404(LegalHold, pk=_posted_pk(request, "hold"), customer_id=dsr.customer_id)
    actions.release_hold(hold=hold, actor=request.user, note=form.cleaned_data["note"])
    return _("The legal hold is released.")


def _posted_pk(request: HttpRequest, name: str) -> int:
    value = request.POST.get(name, "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else 0


# action name: (form class or None, context name of the form, handler)
ACTIONS: dict[str, tuple[type[forms.Form] | None, str, Handler]] = {
    "verify": (VerifyForm, "verify_form", _verify),
    "send-link": (None, "", _send_link),
    "export": (None, "", _export),
    "rectify": (RectifyForm, "rectify_form", _rectify),
    "erase": (EraseForm, "erase_form", _erase),
    "extend": (ExtendForm, "extend_form", _extend),
    "close": (CloseForm, "close_form", _close),
    "hold": (HoldForm, "hold_form", _hold),
    "release": (ReleaseHoldForm, "release_form", _release),
}


@require_POST
@dpo_view(HANDLE_PERMISSION)
def request_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404
    dsr = _request(pk)
    form_class, form_name, handler = ACTIONS[action]
    form = form_class(request.POST, prefix=action) if form_class is not None else None
    if form is not None and not form.is_valid():
        return _detail(request, dsr, status=400, **{form_name: form})
    try:
        done = handler(request, dsr, form)
    except actions.RequestNotAllowed as refusal:
        # Shown at the top of the page: the form may not be shown in the request's state.
        messages.error(request, str(refusal))
        if form is None:
            return redirect("privacy:request", pk=dsr.pk)
        return _detail(request, _request(pk), status=400, **{form_name: form})
    if done:
        messages.success(request, done)
    return redirect("privacy:request", pk=dsr.pk)


@require_GET
@dpo_view(HANDLE_PERMISSION)
def request_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The export's zip, for an officer sending it by another channel (a letter, in person)."""
    dsr = _request(pk)
    if not dsr.export_available:
        raise Http404
    return export_response(dsr)


def export_response(dsr: DataSubjectRequest) -> HttpResponse:
    """The export's zip as a download, recorded in the audit log."""
    audit.record(audit.DOWNLOAD, target=dsr, customer=dsr.customer, fields=["export_file"])
    try:
        handle = dsr.export_file.open("rb")
    except FileNotFoundError as missing:
        raise Http404 from missing
    stamp = timezone.localtime(dsr.export_ready_at or timezone.now()).strftime("%Y%m%d")
    response = FileResponse(
        handle,
        content_type="application/zip",
        as_attachment=True,
        filename=f"my-data-{stamp}.zip",
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
