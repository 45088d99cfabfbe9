"""The complaint form (used by the web page and, with the same rules, by the API) and the tracking forms."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import DECLARED_FIELDS, Category, FieldRule, Kind
from concilia.cases.queries import active_categories
from concilia.core.references import InvalidReference, normalize_reference
from concilia.customers.models import PrivacyNotice
from concilia.customers.queries import notice_by_version

_PHONE = re.compile(r"^\+?[\d\s().-]{6,25}$")


def validate_phone(value: str) -> None:
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE.match(value) or not 6 <= digits <= 15:
        raise ValidationError(
            _("Enter a phone number with 6 to 15 digits, for example +34 600 123 456."),
            code="invalid_phone",
        )


def _category_choices() -> list[tuple[str, str]]:
    # Called whenever the choices are shown or checked, so names follow the active language.
    return [("", _("Choose one…"))] + [(c.code, c.name) for c in active_categories().values()]


class CategoryField(forms.ChoiceField):
    """A choice among the active categories; cleans to the Category itself."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=_category_choices, **kwargs)

    def clean(self, value: Any) -> Category | None:
        code = super().clean(value)
        return active_categories().get(code) if code else None


class ComplaintForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What would you like to tell us?"), choices=Kind.choices, initial=Kind.COMPLAINT
    )
    category = CategoryField(label=_("What is it about?"))
    name = forms.CharField(label=_("Full name"), max_length=200)
    email = forms.EmailField(label=_("Email"), max_length=254)
    phone = forms.CharField(
        label=_("Phone"), max_length=25, required=False, validators=[validate_phone]
    )
    order_number = forms.CharField(
        label=_("Order or invoice number"), max_length=60, required=False
    )
    purchase_date = forms.DateField(
        label=_("Date of purchase or charge"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    amount = forms.DecimalField(
        label=_("Amount (€)"),
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=0,
        localize=True,
    )
    description = forms.CharField(
        label=_("What happened?"),
        min_length=10,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    desired_resolution = forms.CharField(
        label=_("What would you like us to do?"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    notice_version = forms.CharField(widget=forms.HiddenInput)
    accept_privacy = forms.BooleanField(
        label=_(
            "I have read the privacy notice and accept that my data is used to handle this case."
        ),
        error_messages={
            "required": _("Please accept the privacy notice so that we can handle your case.")
        },
    )

    def clean_purchase_date(self) -> dt.date | None:
        value = self.cleaned_data.get("purchase_date")
        if value and value > timezone.localdate():
            raise ValidationError(_("The date cannot be in the future."), code="future_date")
        if value and value.year < 1990:
            raise ValidationError(_("Please check the year of this date."), code="old_date")
        return value

    def clean_notice_version(self) -> PrivacyNotice:
        version = self.cleaned_data.get("notice_version", "")
        notice = notice_by_version(version)
        if notice is None:
            raise ValidationError(
                _("The privacy notice has changed; please read it and accept it again."),
                code="unknown_notice",
            )
        return notice

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        category: Category | None = cleaned.get("category")
        kind = cleaned.get("kind")
        if category is not None:
            for field in DECLARED_FIELDS:
                rule = category.rule(field)
                if rule == FieldRule.HIDDEN:
                    # Not needed for this category: whatever was sent is not kept.
                    cleaned[field] = None if field in ("purchase_date", "amount") else ""
                    self.errors.pop(field, None)
                elif (
                    rule == FieldRule.REQUIRED
                    and kind == Kind.COMPLAINT
                    and field not in self.errors
                    and cleaned.get(field) in (None, "")
                ):
                    self.add_error(
                        field,
                        ValidationError(
                            _("%(category)s complaints need this field."),
                            code="required_for_category",
                            params={"category": category.name},
                        ),
                    )
        if (
            kind == Kind.COMPLAINT
            and not cleaned.get("desired_resolution", "").strip()
            and "desired_resolution" not in self.errors
        ):
            self.add_error(
                "desired_resolution",
                ValidationError(_("Tell us what you would like us to do."), code="required"),
            )
        return cleaned


class TrackForm(forms.Form):
    reference = forms.CharField(
        label=_("Reference number"),
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "RC-2026-000123-X", "autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("Email you used"), max_length=254)

    def clean_reference(self) -> str:
        try:
            return normalize_reference(self.cleaned_data["reference"])
        except InvalidReference as exc:
            raise ValidationError(
                _(
                    "This reference number is not valid. Please check it for typos: it looks like "
                    "RC-2026-000123-X."
                ),
                code="invalid_reference",
            ) from exc


class ReplyForm(forms.Form):
    body = forms.CharField(
        label=_("Your message"),
        min_length=2,
        max_length=10000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class OfferAnswerForm(forms.Form):
    """The customer's answer to an offer on the tracking page: accept an option, counter-propose
    an amount, or say no with a reason."""

    ACCEPT, COUNTER, REJECT = "accept", "counter", "reject"

    answer = forms.ChoiceField(
        choices=[(ACCEPT, _("Accept")), (COUNTER, _("Propose")), (REJECT, _("Say no"))]
    )
    option = forms.IntegerField(required=False, min_value=0, max_value=20)
    amount = forms.CharField(label=_("Your amount"), required=False, max_length=30)
    reason = forms.CharField(
        label=_("Why does it not suit you?"), required=False, max_length=2000, widget=forms.Textarea
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        answer = data.get("answer")
        if answer == self.ACCEPT and data.get("option") is None:
            self.add_error("option", _("Choose one of the options."))
        if answer == self.COUNTER and not (data.get("amount") or "").strip():
            self.add_error("amount", _("Write the amount you propose."))
        if answer == self.REJECT and not (data.get("reason") or "").strip():
            self.add_error("reason", _("Tell us why the offer does not suit you."))
        return data
