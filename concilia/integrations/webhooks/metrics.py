"""Webhook gauges read when Prometheus scrapes /metrics (settings.METRICS_SOURCES): deliveries by
status and how late the oldest one still to be delivered is."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from prometheus_client.core import Metric

from concilia.core.metrics import age_seconds, gauge
from concilia.integrations.webhooks.models import DUE_STATUSES, Delivery


def collect() -> Iterator[Metric]:
    by_status = gauge(
        "concilia_webhook_deliveries",
        "Webhook deliveries by status: pending, failed (will retry), delivered, dead (gave up).",
        ["status"],
    )
    rows = Delivery.objects.values("status").annotate(count=Count("pk")).order_by("status")
    for row in rows:
        by_status.add_metric([row["status"]], row["count"])
    yield by_status
    # The lag: the event of the oldest delivery not yet made was written this long ago.
    first = Delivery.objects.filter(status__in=DUE_STATUSES).aggregate(first=Min("created_at"))
    lag = gauge(
        "concilia_webhook_oldest_pending_delivery_age_seconds",
        "Age of the oldest webhook delivery still to be made (pending or retrying).",
    )
    lag.add_metric([], age_seconds(first["first"]))
    yield lag
