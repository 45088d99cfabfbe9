"""The Prometheus endpoint (/metrics, docs/operations.md): what the processes count (requests,
their latency, job failures) and what the database says at scrape time (job queues, dead jobs,
the outbox's backlog, and each app's own figures listed in settings.METRICS_SOURCES).

Several processes serve one site (`concilia serve` starts web workers, a job worker and the
sweep), so counters use prometheus_client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set
(serve sets it to HOME/metrics): each process writes its own file and a scrape adds them up,
whichever process answers it. Figures read from the database are gauges computed by the process
that answers the scrape, so they are right however many processes there are.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from concilia.core.throttling import client_address

# What this process counts. In multiprocess mode the values live in files, not in this registry.
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "concilia_http_requests",
    "HTTP requests answered, by view, method and status code.",
    ["view", "method", "status"],
    registry=PROCESS_REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "concilia_http_request_duration_seconds",
    "Time from the request's arrival in Django to its response, by view and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=PROCESS_REGISTRY,
)
JOB_FAILURES = Counter(
    "concilia_job_failures",
    "Attempts of background jobs that raised (each retry that fails counts again), by job.",
    ["task"],
    registry=PROCESS_REGISTRY,
)

# Requests Django resolved to no view (404s for unknown paths): one label, not one per path.
UNMATCHED_VIEW = "<unmatched>"


def observe_request(*, view: str, method: str, status: int, seconds: float) -> None:
    # Only the methods HTTP defines: a client inventing methods must not invent labels.
    method = method if method in _KNOWN_METHODS else "OTHER"
    REQUESTS.labels(view=view, method=method, status=str(status)).inc()
    REQUEST_SECONDS.labels(view=view, method=method).observe(seconds)


_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def count_job_failure(task_path: str) -> None:
    JOB_FAILURES.labels(task=task_path).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """A gauge read at scrape time (for METRICS_SOURCES)."""
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def age_seconds(oldest: Any) -> float:
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0


def job_metrics() -> Iterator[Metric]:
    """Job queues (the database backend's table, or RQ's queues), and dead jobs not yet retried."""
    from concilia.core.models import DeadJob

    queued = gauge(
        "concilia_job_queue_length",
        "Background jobs waiting: ready (due now), scheduled (a retry waiting for its time), "
        "running, and failed (RQ's failed registry).",
        ["backend", "queue", "state"],
    )
    oldest = gauge(
        "concilia_job_oldest_ready_age_seconds",
        "Age of the oldest job that is due and not yet taken by a worker.",
        ["backend", "queue"],
    )
    if settings.TASKS_BACKEND == "rq":
        _rq_queues(queued, oldest)
    else:
        _database_queues(queued, oldest)
    yield queued
    yield oldest
    dead = gauge(
        "concilia_dead_jobs",
        "Jobs that failed on every attempt and wait for an administrator (not retried yet).",
        ["task"],
    )
    rows = (
        DeadJob.objects.filter(retried_at__isnull=True)
        .values("task_path")
        .annotate(count=Count("pk"))
        .order_by("task_path")
    )
    for row in rows:
        dead.add_metric([row["task_path"]], row["count"])
    yield dead


def _database_queues(queued: GaugeMetricFamily, oldest: GaugeMetricFamily) -> None:
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    ready = DBTaskResult.objects.ready()
    for row in ready.values("queue_name").annotate(count=Count("pk"), first=Min("enqueued_at")):
        queued.add_metric(["database", row["queue_name"], "ready"], row["count"])
        oldest.add_metric(["database", row["queue_name"]], age_seconds(row["first"]))
    later = DBTaskResult.objects.filter(
        status=TaskResultStatus.READY, run_after__gt=timezone.now()
    ).exclude(run_after=get_date_max())
    for row in later.values("queue_name").annotate(count=Count("pk")):
        queued.add_metric(["database", row["queue_name"], "scheduled"], row["count"])
    running = DBTaskResult.objects.running()
    for row in running.values("queue_name").annotate(count=Count("pk")):
        queued.add_metric(["database", row["queue_name"], "running"], row["count"])


def _rq_queues(queued: GaugeMetricFamily, oldest: GaugeMetricFamily) -> None:
    import django_rq

    for name in settings.TASKS["default"].get("QUEUES", ["default"]):
        queue = django_rq.get_queue(name)
        queued.add_metric(["rq", name, "ready"], queue.count)
        queued.add_metric(["rq", name, "scheduled"], queue.scheduled_job_registry.count)
        queued.add_metric(["rq", name, "running"], queue.started_job_registry.count)
        queued.add_metric(["rq", name, "failed"], queue.failed_job_registry.count)
        first = queue.get_jobs(0, 1)
        oldest.add_metric(["rq", name], age_seconds(first[0].enqueued_at if first else None))


def outbox_metrics() -> Iterator[Metric]:
    """Events written with their change but not yet handed to the webhooks' deliveries."""
    from concilia.core.models import OutboxEvent

    pending = OutboxEvent.objects.filter(dispatched_at__isnull=True).aggregate(
        count=Count("pk"), first=Min("created_at")
    )
    backlog = gauge("concilia_outbox_backlog", "Outbound events not yet dispatched.")
    backlog.add_metric([], pending["count"])
    yield backlog
    age = gauge(
        "concilia_outbox_oldest_age_seconds", "Age of the oldest outbound event not dispatched."
    )
    age.add_metric([], age_seconds(pending["first"]))
    yield age


class DatabaseCollector(Collector):
    """Gauges read from the database when Prometheus scrapes: core's own and every
    METRICS_SOURCES function's (a callable returning Prometheus metric families)."""

    def collect(self) -> Iterator[Metric]:
        sources: list[Callable[[], Iterable[Metric]]] = [job_metrics, outbox_metrics]
        sources += [import_string(path) for path in settings.METRICS_SOURCES]
        started = time.perf_counter()
        for source in sources:
            yield from source()
        took = gauge(
            "concilia_metrics_scrape_seconds", "Time spent reading the database for this scrape."
        )
        took.add_metric([], time.perf_counter() - started)
        yield took


def exposition(accept: str = "") -> tuple[bytes, str]:
    """The text Prometheus reads (in the format its Accept header prefers) and its content type:
    this process's (or all processes') counters, then the database's gauges."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(PROCESS_REGISTRY))
    registry.register(DatabaseCollector())
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry):
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return self.registry.collect()


def _from_loopback(request: HttpRequest) -> bool:
    # Behind a proxy on the same machine REMOTE_ADDR is loopback for everyone: the client address
    # (X-Forwarded-For as far as NUM_PROXIES trusts it) must be loopback too.
    addresses = {request.META.get("REMOTE_ADDR", ""), client_address(request)}
    try:
        return all(ipaddress.ip_address(address).is_loopback for address in addresses)
    except ValueError:
        return False


def allowed(request: HttpRequest) -> tuple[bool, int]:
    """Whether this request may read the metrics, and the status to refuse it with: with
    CONCILIA_METRICS_TOKEN set, a matching bearer token (401 otherwise); unset, loopback only
    (403 otherwise)."""
    token = settings.METRICS_TOKEN
    if not token:
        return _from_loopback(request), 403
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    valid = scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)
    return valid, 401


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    ok, refusal = allowed(request)
    if not ok:
        response = HttpResponse(status=refusal)
        if refusal == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
