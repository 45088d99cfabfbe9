"""The supervisors' dashboard, the side-by-side page of agents and teams, an agent's own page and
every chart as CSV. Supervisors and administrators see everything; an agent sees only their own
figures. Every page reads the daily aggregates only (analytics.kpis)."""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from concilia.analytics import kpis, tables
from concilia.analytics.forms import FilterForm, today
from concilia.analytics.models import SummaryOptOut
from concilia.cases.access import can_supervise, can_work


def _allowed(request: HttpRequest, *, supervise: bool) -> HttpResponse | None:
    """A sign-in redirect or a refusal, or None when the person may see the page."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path(), "helpdesk:login")
    if not can_work(request.user) or (supervise and not can_supervise(request.user)):
        raise PermissionDenied
    return None


def _context(request: HttpRequest, form: FilterForm, slugs: tuple[str, ...]) -> dict[str, Any]:
    filters = form.filters()
    summary = kpis.summary(filters)
    extra = {"summary": summary, "today": today()}
    query = request.GET.urlencode()
    charts = [tables.BUILDERS[slug](filters, **extra) for slug in slugs]
    return {
        "form": form,
        "filters": filters,
        "summary": summary,
        "figures": tables.figures(summary),
        "charts": charts,
        "query": query,
        "opted_out": SummaryOptOut.objects.filter(user=request.user).exists(),
    }


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    if refused := _allowed(request, supervise=True):
        return refused
    form = FilterForm(request.GET or None)
    context = _context(request, form, tables.DASHBOARD)
    return render(request, "analytics/dashboard.html", context)


@require_GET
def people(request: HttpRequest) -> HttpResponse:
    """Agents and teams side by side, for supervisors."""
    if refused := _allowed(request, supervise=True):
        return refused
    form = FilterForm(request.GET or None)
    filters = form.filters()
    return render(
        request,
        "analytics/people.html",
        {
            "form": form,
            "filters": filters,
            "query": request.GET.urlencode(),
            "tables": [tables.agents(filters), tables.teams(filters)],
        },
    )


@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    """An agent's own figures: their queue now, their response times, their customers' ratings."""
    if refused := _allowed(request, supervise=False):
        return refused
    form = FilterForm(request.GET or None, fixed_assignee=request.user)
    context = _context(request, form, tables.MINE)
    return render(request, "analytics/mine.html", context)


@require_GET
def chart_csv(request: HttpRequest, chart: str) -> HttpResponse:
    """One chart's rows as CSV, for the same filters as the page; an agent gets their own."""
    if refused := _allowed(request, supervise=False):
        return refused
    if chart not in tables.BUILDERS:
        raise Http404
    supervisor = can_supervise(request.user)
    if not supervisor and chart in ("agents", "teams"):
        raise PermissionDenied
    form = FilterForm(request.GET or None, fixed_assignee=None if supervisor else request.user)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            " ".join(str(e) for errors in form.errors.values() for e in errors),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters()
    table = tables.BUILDERS[chart](filters, summary=kpis.summary(filters), today=today())
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{chart}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow([str(column) for column in table.columns])
    for row in table.rows:
        writer.writerow([_cell(value) for value in row])
    return response


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


@require_POST
def summary_preference(request: HttpRequest) -> HttpResponse:
    """A supervisor turns the weekly summary email off or back on."""
    if refused := _allowed(request, supervise=True):
        return refused
    if request.POST.get("weekly") == "off":
        SummaryOptOut.objects.get_or_create(user=request.user)
    else:
        SummaryOptOut.objects.filter(user=request.user).delete()
    messages.success(
        request,
        _("You will not receive the weekly summary.")
        if request.POST.get("weekly") == "off"
        else _("You will receive the weekly summary every Monday."),
    )
    return redirect("analytics:dashboard")
