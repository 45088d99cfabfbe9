"""Supervisors' helpdesk pages of collective complaints: the flags, one flag with its cases, and
one decision applied to all of them (or the flag dismissed)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from concilia.cases.access import can_supervise, may_see
from concilia.cases.models import Case
from concilia.cases.views import helpdesk_view
from concilia.resolution import collective
from concilia.resolution.engine import describe
from concilia.resolution.forms import SettlementForm
from concilia.resolution.models import CollectiveFlag

LIST_SIZE = 200


def supervisor_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in supervisors and administrators only; other staff get 403."""

    @helpdesk_view
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_supervise(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


class ActForm(SettlementForm):
    """One settlement for every open case of the flag, and why."""

    kind_label = gettext_lazy("What every customer gets")

    currency = forms.CharField(label=gettext_lazy("Currency"), max_length=3, initial="EUR")
    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in every case's history)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].help_text = gettext_lazy("For refunds and credits.")
        self.fields["percent"].help_text = gettext_lazy("For discount codes.")

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not currency.isalpha() or len(currency) != 3:
            raise forms.ValidationError(_("A three-letter code, e.g. EUR."))
        return currency

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not (data.get("reason") or "").strip():
            self.add_error("reason", _("Say why."))
        return data


class DismissForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why it is not one problem"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )


@require_GET
@supervisor_view
def flag_list(request: HttpRequest) -> HttpResponse:
    """The flags, open first, with their counts and what the complaints share."""
    flags = list(CollectiveFlag.objects.open_first().select_related("closed_by")[:LIST_SIZE])
    names = collective.category_names()
    rows = [
        {"flag": flag, "what": collective.describe_flag(flag, category_names=names)}
        for flag in flags
    ]
    return render(
        request,
        "resolution/collective/list.html",
        {
            "rows": rows,
            "open_count": sum(1 for f in flags if f.is_open),
        },
    )


def _detail(
    request: HttpRequest,
    flag: CollectiveFlag,
    *,
    act_form: ActForm | None = None,
    dismiss_form: DismissForm | None = None,
    status: int = 200,
) -> HttpResponse:
    members = list(
        flag.members.select_related("case__customer", "case__team", "case__category").order_by(
            "joined_at", "pk"
        )
    )
    rows = [
        {"member": m, "case": m.case, "visible": may_see(request.user, m.case)} for m in members
    ]
    applied = flag.applied()
    not_settled = [
        {"reference": item.get("reference", ""), "why": collective.why_not_settled(item)}
        for item in flag.not_settled
    ]
    return render(
        request,
        "resolution/collective/detail.html",
        {
            "flag": flag,
            "what": collective.describe_flag(flag, category_names=collective.category_names()),
            "rows": rows,
            "open_cases": sum(1 for r in rows if r["case"].is_open),
            "applied": describe(applied, request.LANGUAGE_CODE) if applied else "",
            "not_settled": not_settled,
            "act_form": act_form or ActForm(),
            "dismiss_form": dismiss_form or DismissForm(prefix="dismiss"),
        },
        status=status,
    )


@require_GET
@supervisor_view
def flag_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, get_object_or_404(CollectiveFlag, pk=pk))


@require_POST
@supervisor_view
def flag_act(request: HttpRequest, pk: int) -> HttpResponse:
    """Apply one settlement to every open case of the flag and say how it went."""
    flag = get_object_or_404(CollectiveFlag, pk=pk)
    form = ActForm(request.POST)
    if not form.is_valid():
        return _detail(request, flag, act_form=form, status=400)
    try:
        report = collective.act_on_flag(
            flag=flag,
            actor=request.user,
            settlement=form.settlement(form.cleaned_data["currency"]),
            reason=form.cleaned_data["reason"],
        )
    except collective.FlagNotOpen:
        messages.error(request, _("This collective complaint was already acted on or dismissed."))
        return redirect("collective:detail", pk=flag.pk)
    except collective.InvalidSettlement as error:
        form.add_error(None, str(error))
        return _detail(request, flag, act_form=form, status=400)
    messages.success(
        request,
        ngettext(
            "%(count)s case was settled.", "%(count)s cases were settled.", len(report.settled)
        )
        % {"count": len(report.settled)},
    )
    if report.not_settled:
        messages.warning(
            request,
            ngettext(
                "%(count)s case was not settled: %(list)s",
                "%(count)s cases were not settled: %(list)s",
                len(report.not_settled),
            )
            % {
                "count": len(report.not_settled),
                "list": "; ".join(
                    f"{item['reference']} ({collective.why_not_settled(item)})"
                    for item in report.not_settled
                ),
            },
        )
    return redirect("collective:detail", pk=flag.pk)


@require_POST
@supervisor_view
def flag_dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    flag = get_object_or_404(CollectiveFlag, pk=pk)
    form = DismissForm(request.POST, prefix="dismiss")
    if not form.is_valid() or not form.cleaned_data["reason"].strip():
        if form.is_valid():
            form.add_error("reason", _("Say why."))
        return _detail(request, flag, dismiss_form=form, status=400)
    try:
        collective.dismiss_flag(flag=flag, actor=request.user, reason=form.cleaned_data["reason"])
    except collective.FlagNotOpen:
        messages.error(request, _("This collective complaint was already acted on or dismissed."))
    else:
        messages.success(request, _("The collective complaint was dismissed."))
    return redirect("collective:detail", pk=flag.pk)


def collective_panel(request: HttpRequest, case: Case) -> SafeString:
    """On a case's helpdesk page (settings.HELPDESK_CASE_PANELS): the open collective complaints
    the case belongs to, linked for supervisors (one query; nothing when there are none)."""
    flags = list(CollectiveFlag.objects.open().filter(members__case=case).order_by("pk"))
    if not flags:
        return SafeString("")
    names = collective.category_names() if any(f.kind == "charge" for f in flags) else {}
    return render_to_string(
        "resolution/collective/_case_panel.html",
        {
            "rows": [
                {"flag": f, "what": collective.describe_flag(f, category_names=names)}
                for f in flags
            ],
            "may_supervise": can_supervise(request.user),
        },
        request=request,
    )
