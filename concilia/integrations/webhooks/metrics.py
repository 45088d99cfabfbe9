"""Webhook figures for /metrics: the deliveries not made by status and how late the oldest one
still to be made is (gauges read when Prometheus scrapes, settings.METRICS_SOURCES), and the
deliveries made (a counter of the processes that make them: counting the delivered rows, nearly
the whole table, at every scrape would grow with the years)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from prometheus_client import Counter
from prometheus_client.core import Metric

from concilia.core.metrics import PROCESS_REGISTRY, age_seconds, gauge
from concilia.integrations.webhooks.models import DUE_STATUSES, Delivery, DeliveryStatus

NOT_MADE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.DEAD)

MADE = Counter(
    "concilia_webhook_deliveries_made",
    "Webhook deliveries the receiver accepted (2xx).",
    registry=PROCESS_REGISTRY,
)


def collect() -> Iterator[Metric]:
    by_status = gauge(
        "concilia_webhook_deliveries",
        "Webhook deliveries not made, by status: pending, failed (will retry), dead (gave up).",
        ["status"],
    )
    rows = dict(
        Delivery.objects.filter(status__in=NOT_MADE)
        .values_list("status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    for status in NOT_MADE:
        by_status.add_metric([status], rows.get(status, 0))
    yield by_status
    # The lag: the event of the oldest delivery not yet made was written this long ago.
    first = Delivery.objects.filter(status__in=DUE_STATUSES).aggregate(first=Min("created_at"))
    lag = gauge(
        "concilia_webhook_oldest_pending_delivery_age_seconds",
        "Age of the oldest webhook delivery still to be made (pending or retrying).",
    )
    lag.add_metric([], age_seconds(first["first"]))
    yield lag
