"""The supervisors' dashboard, the agent's own page and the charts' CSV downloads."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def dashboard(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError


mine = people = summary_preference = dashboard


def chart_csv(request: HttpRequest, chart: str) -> HttpResponse:
    raise NotImplementedError
