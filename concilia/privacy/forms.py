"""The audit log's filters, kept in the URL (so a filtered page and its export are one link);
the forms of data-subject requests: staff's (entering, verifying, answering them, legal holds)
and the customer's on the tracking pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from concilia.core.models import AuditAction
from concilia.core.references import InvalidReference, normalize_reference
from concilia.privacy.models import Regime, RequestChannel, RequestKind, RequestStatus

# Dates a database can take once a day is added to them.
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(9998, 12, 31)


class AuditFilterForm(forms.Form):
    reference = forms.CharField(label=_("Case reference"), max_length=40, required=False)
    email = forms.EmailField(label=_("Customer email"), max_length=254, required=False)
    actor = forms.CharField(
        label=_("Who"),
        max_length=100,
        required=False,
        help_text=_("A user name, token or “customer 42”; part of it is enough."),
    )
    action = forms.ChoiceField(
        label=_("What"), choices=[("", "—"), *AuditAction.choices], required=False
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    # The keyset cursor: entries numbered below this one (the next page).
    before = forms.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput
    )

    def clean_reference(self) -> str:
        value = self.cleaned_data["reference"].strip()
        if not value:
            return ""
        try:
            return normalize_reference(value)
        except InvalidReference:
            raise forms.ValidationError(
                _("This is not a case reference (e.g. RC-2026-000123-7)."), code="invalid"
            ) from None

    def _day(self, name: str) -> dt.date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not EARLIEST <= value <= LATEST:
            raise forms.ValidationError(_("Enter a valid date."), code="invalid")
        return value

    def clean_since(self) -> dt.date | None:
        return self._day("since")

    def clean_until(self) -> dt.date | None:
        return self._day("until")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", _("The end of the range is before its start."))
        return data


# Data-subject requests --------------------------------------------------------------------


class RequestFilterForm(forms.Form):
    SHOW = (
        ("pending", _("Pending")),
        ("closed", _("Closed")),
        ("all", _("All")),
    )
    show = forms.ChoiceField(label=_("Show"), choices=SHOW, required=False)


class StaffRequestForm(forms.Form):
    """A request that arrived by email, phone, letter or in person, entered by staff."""

    kind = forms.ChoiceField(label=_("Request"), choices=RequestKind.choices)
    email = forms.EmailField(
        label=_("Email of the person"),
        max_length=254,
        help_text=_("The customer is found by this address; answers are sent to it."),
    )
    channel = forms.ChoiceField(
        label=_("Received by"),
        choices=[c for c in RequestChannel.choices if c[0] != RequestChannel.TRACKING],
    )
    regime = forms.ChoiceField(label=_("Law"), choices=Regime.choices, initial=Regime.GDPR)
    language = forms.ChoiceField(label=_("Language of the answers"), choices=settings.LANGUAGES)
    details = forms.CharField(
        label=_("What the person asked"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    verified = forms.BooleanField(
        label=_("I have already checked who this person is"),
        required=False,
        help_text=_(
            "Otherwise they are emailed, at the address on file, a link to confirm the request."
        ),
    )
    verification_note = forms.CharField(
        label=_("How the identity was checked"), max_length=300, required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("verified") and not (data.get("verification_note") or "").strip():
            self.add_error("verification_note", _("Say how the identity was checked."))
        return data


class VerifyForm(forms.Form):
    note = forms.CharField(label=_("How the identity was checked"), max_length=300)


class RectifyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    note = forms.CharField(
        label=_("What else was corrected, for the answer"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ExtendForm(forms.Form):
    until = forms.DateField(label=_("New deadline"), widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(
        label=_("Why more time is needed (the person is told)"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_until(self) -> dt.date:
        value = self.cleaned_data["until"]
        if not EARLIEST <= value <= LATEST:
            raise forms.ValidationError(_("Enter a valid date."), code="invalid")
        return value


class CloseForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Close as"),
        choices=[
            (RequestStatus.COMPLETED, RequestStatus.COMPLETED.label),
            (RequestStatus.REFUSED, RequestStatus.REFUSED.label),
        ],
    )
    outcome = forms.CharField(
        label=_("What the person is told"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class HoldForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for the legal hold"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("The customer reads it if their erasure is refused: name no one else."),
    )


class ReleaseHoldForm(forms.Form):
    note = forms.CharField(label=_("Why it no longer applies"), max_length=1000, required=False)


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that the erasure cannot be undone"),
        error_messages={"required": _("Tick the box to confirm the erasure.")},
    )


# The customer's side ----------------------------------------------------------------------


class RectificationRequestForm(forms.Form):
    details = forms.CharField(
        label=_("What is wrong, and what it should say"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": _("Tell us what is wrong so that we can correct it.")},
    )


class ErasureRequestForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I want my personal data erased; I understand it cannot be undone"),
        error_messages={"required": _("Tick the box to confirm that you want your data erased.")},
    )
    details = forms.CharField(
        label=_("Anything you want to add (optional)"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
