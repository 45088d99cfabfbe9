"""The dashboards' filter: a date range (the last 30 days by default) and the five dimensions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.accounts.models import Team, User
from concilia.analytics.kpis import Filters
from concilia.cases.models import Category, Channel

DEFAULT_DAYS = 30
MAX_DAYS = 731


def today() -> dt.date:
    return timezone.localdate()  # the company's zone (settings.TIME_ZONE)


class FilterForm(forms.Form):
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    category = forms.ModelChoiceField(
        Category.objects.all(), label=_("Category"), required=False, empty_label=_("All")
    )
    channel = forms.ChoiceField(
        label=_("Channel"), required=False, choices=[("", _("All")), *Channel.choices]
    )
    team = forms.ModelChoiceField(
        Team.objects.filter(active=True), label=_("Team"), required=False, empty_label=_("All")
    )
    assignee = forms.ModelChoiceField(
        User.objects.filter(is_active=True, groups__permissions__codename="work_cases")
        .distinct()
        .order_by("first_name", "username"),
        label=_("Agent"),
        required=False,
        empty_label=_("All"),
    )
    language = forms.ChoiceField(
        label=_("Language"), required=False, choices=[("", _("All")), *settings.LANGUAGES]
    )

    def __init__(self, *args: Any, fixed_assignee: User | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fixed_assignee = fixed_assignee
        if fixed_assignee is not None:
            del self.fields["assignee"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        end = data.get("end") or today()
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("The start of the range is after its end."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(
                _("Choose a range of at most %(days)d days.") % {"days": MAX_DAYS}
            )
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> Filters:
        """The filters chosen (the defaults when the form is invalid: errors are shown)."""
        data = self.cleaned_data if self.is_valid() else {}
        end = data.get("end") or today()
        start = data.get("start") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        assignee = self.fixed_assignee or data.get("assignee")
        return Filters(
            start=start,
            end=end,
            category=data["category"].pk if data.get("category") else None,
            channel=data.get("channel") or None,
            team=data["team"].pk if data.get("team") else None,
            assignee=assignee.pk if assignee else None,
            language=data.get("language") or None,
        )
