"""The customer's "My data" page on the tracking pages (signed in through an emailed link, which
is how their identity is verified by email): a copy of their data, a correction, an erasure;
the download of their export; and the confirmation of a request staff entered for them."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from concilia.customers import auth as customer_auth
from concilia.privacy import actions
from concilia.privacy.forms import ErasureRequestForm, RectificationRequestForm
from concilia.privacy.holds import holds_on
from concilia.privacy.models import (
    Controller,
    DataSubjectRequest,
    RequestChannel,
    RequestKind,
    Verification,
)
from concilia.privacy.request_views import export_response

# What the customer reads once a correction or an erasure is asked for.
RECEIVED = {
    RequestKind.RECTIFICATION: gettext_lazy(
        "We have received your request and will correct your data."
    ),
    RequestKind.ERASURE: gettext_lazy(
        "We have received your request to erase your data; we will email you."
    ),
}


@require_http_methods(["GET", "POST"])
def my_data(request: HttpRequest) -> HttpResponse:
    customer = customer_auth.current_customer(request)
    if customer is None:
        messages.info(
            request,
            _("Sign in with one of your case references and your email to manage your data."),
        )
        return redirect("intake:track")
    requests = list(DataSubjectRequest.objects.for_customer(customer).order_by("-received_at"))
    forms = {
        RequestKind.RECTIFICATION: RectificationRequestForm(),
        RequestKind.ERASURE: ErasureRequestForm(),
    }
    status = 200
    if request.method == "POST":
        what = request.POST.get("request", "")
        if what == RequestKind.ACCESS:
            if any(r.export_available for r in requests):
                messages.info(request, _("Your copy is ready: download it below."))
            else:
                _receive(customer, RequestKind.ACCESS, "")
                messages.success(
                    request,
                    _(
                        "We are preparing a copy of your data. We will email you when it is "
                        "ready, usually within minutes; it will be on this page."
                    ),
                )
            return redirect("intake:my-data")
        if what in forms:
            form = forms[what] = type(forms[what])(request.POST)
            if form.is_valid():
                _receive(customer, what, form.cleaned_data["details"])
                messages.success(request, RECEIVED[what])
                return redirect("intake:my-data")
        else:
            messages.error(request, _("Choose what you want to ask for."))
        status = 400
    return render(
        request,
        "privacy/tracking/my_data.html",
        {
            "customer": customer,
            "requests": requests,
            "export": next((r for r in requests if r.export_available), None),
            "holds": holds_on(customer),
            "rectification_form": forms[RequestKind.RECTIFICATION],
            "erasure_form": forms[RequestKind.ERASURE],
            "privacy_contact": Controller.current().email,
        },
        status=status,
    )


def _receive(customer: object, kind: str, details: str) -> DataSubjectRequest:
    return actions.receive_request(
        kind=kind,
        channel=RequestChannel.TRACKING,
        customer=customer,  # type: ignore[arg-type]
        details=details,
        verification=Verification.SIGNED_IN,
    )


@require_GET
def export_download(request: HttpRequest, public_id: str) -> HttpResponse:
    """The signed-in customer's own export, while it may be downloaded."""
    customer = customer_auth.current_customer(request)
    if customer is None:
        raise Http404
    dsr = get_object_or_404(
        DataSubjectRequest.objects.select_related("customer"),
        public_id=public_id,
        customer=customer,
    )
    if not dsr.export_available:
        raise Http404
    return export_response(dsr)


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and POST confirms, so mail scanners that follow links confirm nothing."""
    try:
        dsr = actions.request_from_confirm_token(token)
    except actions.ConfirmLinkInvalid:
        return render(
            request,
            "privacy/tracking/confirm.html",
            {"problem": _("This link is not valid, has expired or was already used.")},
            status=410,
        )
    if request.method == "POST":
        try:
            actions.verify_request(request=dsr, method=Verification.EMAIL_LINK, actor=dsr.customer)
        except actions.RequestNotAllowed as closed:
            return render(
                request, "privacy/tracking/confirm.html", {"problem": str(closed)}, status=410
            )
        return render(request, "privacy/tracking/confirm.html", {"confirmed": dsr})
    return render(request, "privacy/tracking/confirm.html", {"dsr": dsr, "token": token})
