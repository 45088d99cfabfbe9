"""The audit log's filters, kept in the URL (so a filtered page and its export are one link)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from concilia.core.models import AuditAction
from concilia.core.references import InvalidReference, normalize_reference

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
