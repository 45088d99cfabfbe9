"""Staff two-factor sign-in pages: the code step after the password, set-up, and managing it."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login

from concilia.accounts import actions, lockout, two_factor
from concilia.accounts.forms import CodeForm
from concilia.accounts.models import RecoveryCodes, User
from concilia.accounts.two_factor import Step, pending_step, sign_in_step
from concilia.core import audit

SETUP_KEY = "concilia_two_factor_key"


def _next_url(request: HttpRequest) -> str:
    """Where to go once signed in: the page asked for, if it is ours, else the helpdesk."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _sign_in_url(next_url: str) -> str:
    """The sign-in page of the area the person was going to."""
    if next_url.startswith("/admin/"):
        return resolve_url(settings.LOGIN_URL)
    return reverse("helpdesk:login")


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"  # the page shows secrets (a key, recovery codes)
    return response


def _signed_out_for_lock(request: HttpRequest, lock: lockout.Lock) -> HttpResponse:
    target = _sign_in_url(_next_url(request))
    logout(request)
    messages.error(request, lock.message)
    return redirect(target)


def _counted_failure(request: HttpRequest) -> HttpResponse | None:
    """Count a wrong code towards the lock-out; once locked, the person is signed out."""
    audit.record(audit.SIGN_IN_FAILED, target=request.user, detail={"step": "two_factor"})
    lock = lockout.record_failure(request, request.user.get_username())
    return _signed_out_for_lock(request, lock) if lock is not None else None


def _wrong_code(request: HttpRequest, form: CodeForm, message: str) -> HttpResponse | None:
    """Tell the person under the code field, or sign them out once they are locked out."""
    signed_out = _counted_failure(request)
    if signed_out is None:
        form.add_error("code", message)
    return signed_out


def _sign_in_page(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A page of the steps after the password: for someone signed in, never cached."""

    @sign_in_step
    @never_cache
    @require_http_methods(["GET", "POST"])
    @functools.wraps(view)
    def page(request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(settings.LOGIN_URL)
        return view(request)

    return page


def _context(request: HttpRequest, **extra: object) -> dict[str, object]:
    next_url = _next_url(request)
    return {"next": next_url, "sign_in_url": _sign_in_url(next_url), "signing_in": True, **extra}


@_sign_in_page
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code from the app, or one of the recovery codes."""
    user = request.user
    step = pending_step(user)  # type: ignore[arg-type]
    if step is None:
        return redirect(_next_url(request))
    if step == Step.SET_UP:
        return redirect(f"{reverse('accounts:two-factor-setup')}?{request.GET.urlencode()}")
    lock = lockout.current_lock(request, user.get_username())
    if lock is not None:
        return _signed_out_for_lock(request, lock)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = actions.verify_code(user=user, code=form.cleaned_data["code"])  # type: ignore[arg-type]
        if device is not None:
            otp_login(request, device)
            lockout.clear_failures(user.get_username())
            recovery = isinstance(device, RecoveryCodes)
            left = actions.recovery_codes_left(user) if recovery else 0  # type: ignore[arg-type]
            audit.record(
                audit.SIGN_IN,
                target=user,
                detail={"step": "two_factor", "recovery_code": recovery}
                | ({"recovery_codes_left": left} if recovery else {}),
            )
            if recovery:
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a recovery code; %(count)d is left.",
                        "You signed in with a recovery code; %(count)d are left.",
                        left,
                    )
                    % {"count": left},
                )
            return redirect(_next_url(request))
        signed_out = _wrong_code(
            request,
            form,
            _(
                "That code is not valid. Type the code your app shows now, or one of your "
                "recovery codes."
            ),
        )
        if signed_out is not None:
            return signed_out
    return render(request, "accounts/two_factor_verify.html", _context(request, form=form))


@_sign_in_page
def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: scan the QR code (or type the key), then prove it with a code."""
    user = request.user
    if user.two_factor_enabled:  # type: ignore[union-attr]
        if pending_step(user) == Step.VERIFY:  # type: ignore[arg-type]
            return redirect(f"{reverse('accounts:two-factor-verify')}?{request.GET.urlencode()}")
        return redirect("accounts:two-factor")
    key = request.session.get(SETUP_KEY) or two_factor.new_key()
    request.session[SETUP_KEY] = key
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = two_factor.normalised_code(form.cleaned_data["code"])
        try:
            device, codes = actions.enable_two_factor(user=user, key=key, code=code)  # type: ignore[arg-type]
        except actions.CodeDoesNotMatch:
            signed_out = _wrong_code(
                request,
                form,
                _(
                    "That code does not match. Check that the app shows Concilia's new entry "
                    "and type its current code."
                ),
            )
            if signed_out is not None:
                return signed_out
        else:
            del request.session[SETUP_KEY]
            otp_login(request, device)
            lockout.clear_failures(user.get_username())
            return _no_store(
                render(
                    request,
                    "accounts/two_factor_codes.html",
                    _context(request, codes=codes, first_time=True),
                )
            )
    uri = two_factor.provisioning_uri(key, user)  # type: ignore[arg-type]
    return _no_store(
        render(
            request,
            "accounts/two_factor_setup.html",
            _context(
                request,
                form=form,
                qr_code=two_factor.qr_code(uri),
                readable_key=two_factor.readable_key(key),
                uri=uri,
                required=two_factor.required_for(user),  # type: ignore[arg-type]
            ),
        )
    )


@never_cache
def overview(request: HttpRequest) -> HttpResponse:
    """The person's two-factor sign-in: on or off, recovery codes left, what they can change."""
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{resolve_url(settings.LOGIN_URL)}?next={request.path}")
    return render(
        request,
        "accounts/two_factor.html",
        {
            "enabled": user.two_factor_enabled,  # type: ignore[union-attr]
            "required": two_factor.required_for(user),  # type: ignore[arg-type]
            "codes_left": actions.recovery_codes_left(user),  # type: ignore[arg-type]
            "form": CodeForm(),
        },
    )


@never_cache
@require_POST
def new_recovery_codes(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated or not user.two_factor_enabled:  # type: ignore[union-attr]
        return redirect("accounts:two-factor")
    codes = actions.replace_recovery_codes(user=user)  # type: ignore[arg-type]
    return _no_store(
        render(request, "accounts/two_factor_codes.html", {"codes": codes, "first_time": False})
    )


@never_cache
@require_POST
def turn_off(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in off, for someone not required to have it, with a current code."""
    user: User = request.user  # type: ignore[assignment]
    if not user.is_authenticated or not user.two_factor_enabled:
        return redirect("accounts:two-factor")
    if two_factor.required_for(user):
        messages.error(
            request, _("Your account must use two-factor sign-in: it cannot be turned off.")
        )
        return redirect("accounts:two-factor")
    form = CodeForm(request.POST)
    if form.is_valid() and actions.verify_code(user=user, code=form.cleaned_data["code"]):
        actions.disable_two_factor(user=user, actor=user)
        messages.success(request, _("Two-factor sign-in is off."))
        return redirect("accounts:two-factor")
    if (signed_out := _counted_failure(request)) is not None:
        return signed_out
    messages.error(request, _("That code is not valid: two-factor sign-in is still on."))
    return redirect("accounts:two-factor")


# Signing out is open at every step; the form says which sign-in page to go back to.
sign_out = sign_in_step(LogoutView.as_view(next_page="helpdesk:login"))
