"""Gauges of the case aggregate read when Prometheus scrapes /metrics (settings.METRICS_SOURCES)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import Metric

from concilia.cases.models import Case
from concilia.core.metrics import gauge


def collect() -> Iterator[Metric]:
    opened = gauge("concilia_open_cases", "Cases not closed, by status.", ["status"])
    rows = Case.objects.open().values("status").annotate(count=Count("pk")).order_by("status")
    for row in rows:
        opened.add_metric([row["status"]], row["count"])
    yield opened
    overdue = gauge("concilia_overdue_cases", "Open cases past their response deadline.")
    overdue.add_metric([], Case.objects.overdue().count())
    yield overdue
