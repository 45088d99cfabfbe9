"""Staff sign-in forms: the password step (helpdesk and admin) with lock-out, and the code step."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from concilia.accounts import lockout

# The errors of a wrong password, an inactive account and (in the admin) someone not staff.
_FAILED_SIGN_IN = {"invalid_login", "inactive"}


class LockOutMixin:
    """Refuse a locked user name or address before checking the password; count failures."""

    request: Any
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        lock = lockout.current_lock(self.request, username)
        if lock is not None:
            raise ValidationError(lock.message, code="locked_out")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError as error:
            if username and error.code in _FAILED_SIGN_IN:
                lock = lockout.record_failure(self.request, username)
                if lock is not None:
                    raise ValidationError(lock.message, code="locked_out") from error
            raise
        user = self.get_user()  # type: ignore[attr-defined]
        if user is not None and not user.two_factor_enabled:
            lockout.clear_failures(username)  # with two factors, the code step clears them
        return cleaned


class StaffAuthenticationForm(LockOutMixin, AuthenticationForm):
    """The helpdesk's sign-in."""


class StaffAdminAuthenticationForm(LockOutMixin, AdminAuthenticationForm):
    """The admin's sign-in."""


class CodeForm(forms.Form):
    """A six-digit code from the authenticator app (or, where allowed, a recovery code)."""

    code = forms.CharField(
        label=_("Code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )
