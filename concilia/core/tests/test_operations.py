"""Operations (docs/operations.md): /metrics counts real requests and job failures and reads the
queues, the outbox, webhook deliveries and open cases from the database; only a scraper with the
token (or, without one, loopback) reads it; logs are one JSON object per line carrying the request
id the response returns, and jobs queued by a request carry it too."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from concilia.core.logging import JsonFormatter, request_context
from concilia.core.models import DeadJob, OutboxEvent
from concilia.core.tasks import REQUEST_ID_KWARG, enqueue_with_change
from concilia.core.tests.jobs_for_tests import fail_until_fixed

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **headers: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics, keyed by (name, labels)."""
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_by_view_method_and_status():
    # Given what was counted so far (other tests in this process count too)
    before = scrape()
    client = Client()
    # When the form is shown three times, posted once empty, and an unknown page asked for
    for _ in range(3):
        assert client.get("/complaints/new").status_code == 200
    assert client.post("/complaints/new", {}).status_code == 400
    assert client.get("/no-such-page").status_code == 404
    after = scrape()
    # Then each is counted under its view, method and status, and timed
    requests = "concilia_http_requests_total"
    form = {"view": "intake:complaint-new"}
    assert (
        value(after, requests, **form, method="GET", status="200")
        - value(before, requests, **form, method="GET", status="200")
        == 3
    )
    assert (
        value(after, requests, **form, method="POST", status="400")
        - value(before, requests, **form, method="POST", status="400")
        == 1
    )
    unmatched = {"view": "<unmatched>", "method": "GET", "status": "404"}
    assert value(after, requests, **unmatched) - value(before, requests, **unmatched) == 1
    latency = "concilia_http_request_duration_seconds_count"
    assert (
        value(after, latency, **form, method="GET") - value(before, latency, **form, method="GET")
        == 3
    )
    slowest = "concilia_http_request_duration_seconds_bucket"
    assert value(after, slowest, **form, method="GET", le="+Inf") == value(
        after, latency, **form, method="GET"
    )


def test_metrics_after_a_failed_job_show_the_failure_the_dead_job_and_the_queue(
    run_tasks, settings
):
    # Given a job that fails on its only attempt, and another waiting in the mail queue
    settings.JOB_ATTEMPTS = 1
    task = "concilia.core.tests.jobs_for_tests.fail_until_fixed"
    before = scrape()
    fail_until_fixed.enqueue(name="crm")
    run_tasks()
    fail_until_fixed.using(queue_name="mail").enqueue(name="later")
    # When Prometheus scrapes
    after = scrape()
    # Then the failure is counted, the dead job shown, and the waiting job is in its queue
    failures = "concilia_job_failures_total"
    assert value(after, failures, task=task) - value(before, failures, task=task) == 1
    assert value(after, "concilia_dead_jobs", task=task) == 1
    assert DeadJob.objects.get().task_path == task
    queued = "concilia_job_queue_length"
    assert value(after, queued, backend="database", queue="mail", state="ready") == 1
    assert value(after, queued, backend="database", queue="default", state="ready") == 0
    assert (
        value(after, "concilia_job_oldest_ready_age_seconds", backend="database", queue="mail") >= 0
    )


def test_metrics_show_open_cases_the_outbox_and_webhook_lag(open_case, agent):
    from concilia.cases.actions import close_case
    from concilia.integrations.webhooks.models import Delivery, DeliveryStatus, Endpoint

    # Given two open cases (each wrote an event to the outbox) and one closed
    first = open_case()
    open_case(email="mark@example.com")
    third = open_case(email="ivan@example.com")
    close_case(case=third, outcome="answered", actor_user=agent)
    events = OutboxEvent.objects.filter(dispatched_at__isnull=True).count()
    assert events >= 3
    # and a webhook endpoint with one delivery still to be made and one made
    endpoint = Endpoint.objects.create(
        url="https://crm.example.com/hook", events=["case.opened"], created_by=agent
    )
    event = OutboxEvent.objects.filter(subject=first.reference).first()
    Delivery.objects.create(endpoint=endpoint, event=event, subject=first.reference)
    Delivery.objects.create(
        endpoint=endpoint,
        event=OutboxEvent.objects.exclude(pk=event.pk).first(),
        subject="other",
        status=DeliveryStatus.DELIVERED,
    )
    # When Prometheus scrapes
    samples = scrape()
    # Then
    assert value(samples, "concilia_open_cases", status="not_started") == 2
    assert value(samples, "concilia_open_cases", status="closed") == 0
    assert value(samples, "concilia_outbox_backlog") == events
    assert value(samples, "concilia_outbox_oldest_age_seconds") > 0
    assert value(samples, "concilia_webhook_deliveries", status="pending") == 1
    assert value(samples, "concilia_webhook_deliveries", status="dead") == 0
    # the delivered rows are not counted at each scrape (nearly the whole table, over the years)
    assert ("concilia_webhook_deliveries", frozenset({("status", "delivered")})) not in samples
    assert value(samples, "concilia_webhook_oldest_pending_delivery_age_seconds") > 0


def test_metrics_count_the_webhook_deliveries_made(
    open_case, agent, django_capture_on_commit_callbacks
):
    from concilia.integrations.webhooks.delivery import Answer, record
    from concilia.integrations.webhooks.models import Delivery, Endpoint

    before = value(scrape(), "concilia_webhook_deliveries_made_total")
    case = open_case()
    endpoint = Endpoint.objects.create(
        url="https://crm.example.com/hook", events=["case.opened"], created_by=agent
    )
    event = OutboxEvent.objects.filter(subject=case.reference).first()
    other = OutboxEvent.objects.exclude(pk=event.pk).first() or event
    made = Delivery.objects.create(endpoint=endpoint, event=event, subject=case.reference)
    second = Endpoint.objects.create(
        url="https://erp.example.com/hook", events=["case.opened"], created_by=agent
    )
    refused = Delivery.objects.create(endpoint=second, event=other, subject=case.reference)
    started = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        record(made, Answer(status_code=204, elapsed_ms=12), started_at=started)
        record(refused, Answer(status_code=503, elapsed_ms=30), started_at=started)

    samples = scrape()
    assert value(samples, "concilia_webhook_deliveries_made_total") == before + 1
    assert value(samples, "concilia_webhook_deliveries", status="failed") == 1


def test_without_a_token_only_loopback_reads_the_metrics(settings):
    settings.METRICS_TOKEN = ""
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    # Behind a proxy on this machine, the client it names decides
    settings.NUM_PROXIES = 1
    proxied = Client(REMOTE_ADDR="127.0.0.1")
    assert proxied.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert proxied.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_with_a_token_a_scraper_needs_it_from_anywhere(settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    remote = Client(REMOTE_ADDR="203.0.113.9")
    refused = remote.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert Client().get("/metrics").status_code == 401  # loopback needs it too
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert remote.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 401
    scrape(remote, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert (
        remote.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token").status_code == 405
    )


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged, as CONCILIA_LOG_FORMAT=json writes it, access lines included."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, access = logging.getLogger(), logging.getLogger("concilia.requests")
    levels = root.level, access.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    access.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    access.setLevel(levels[1])


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_incoming_request_id_is_kept_and_logged_as_json(json_log, agent):
    client = Client()
    client.force_login(agent)
    response = client.get("/admin/", HTTP_X_REQUEST_ID="edge-7f3a9c01")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "edge-7f3a9c01"
    [line] = [entry for entry in lines(json_log) if entry["logger"] == "concilia.requests"]
    assert line["request_id"] == "edge-7f3a9c01"
    assert line["message"] == "GET /admin/ 200"
    assert line["path"] == "/admin/"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["user_id"] == agent.pk
    assert line["level"] == "INFO"
    assert line["duration_ms"] > 0
    assert line["time"].endswith("+00:00")


@pytest.mark.parametrize("incoming", [None, "", "has spaces", 'quo"te', "x" * 200, "line\nbreak"])
def test_a_missing_or_malformed_request_id_is_replaced(json_log, incoming):
    headers = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    response = Client().get("/complaints/new", **headers)
    request_id = response["X-Request-ID"]
    assert request_id != incoming
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    [line] = [entry for entry in lines(json_log) if entry["logger"] == "concilia.requests"]
    assert line["request_id"] == request_id
    assert "user_id" not in line


def test_a_job_queued_by_a_request_carries_its_id(json_log, api_payload, run_tasks, settings):
    # Given a complaint filed through the API (its confirmation email is a job)
    response = Client().post(
        "/api/v1/complaints",
        data=api_payload(),
        content_type="application/json",
        HTTP_X_REQUEST_ID="shop-req-42",
    )
    assert response.status_code == 201
    assert response["X-Request-ID"] == "shop-req-42"
    confirmation = DBTaskResult.objects.get(task_path__endswith="send_case_confirmation")
    assert confirmation.args_kwargs["kwargs"][REQUEST_ID_KWARG] == "shop-req-42"
    run_tasks()
    assert DBTaskResult.objects.get(pk=confirmation.pk).status == "SUCCESSFUL"


def test_a_failing_jobs_log_lines_and_retries_carry_the_request_id(json_log, run_tasks, settings):
    settings.JOB_ATTEMPTS = 2
    settings.JOB_BACKOFF_SECONDS = 0
    with request_context("req-0042"):
        enqueue_with_change(fail_until_fixed, name="crm")
    run_tasks()  # the first attempt fails, the second too: a dead job
    job_lines = [entry for entry in lines(json_log) if entry["logger"] == "concilia.core.jobs"]
    assert [entry["level"] for entry in job_lines] == ["WARNING", "ERROR"]
    assert {entry["request_id"] for entry in job_lines} == {"req-0042"}
    assert "_request_id" not in DeadJob.objects.get().kwargs


# Run inside the served home: a job that fails on its only attempt (CONCILIA_JOB_ATTEMPTS=1).
FAILING_JOB = """
from concilia.core.tests.jobs_for_tests import fail_until_fixed
fail_until_fixed.enqueue(name="crm")
"""


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
)
def test_served_by_several_processes_the_counts_add_up(tmp_path: Path):
    """`concilia serve` with two web processes and its job workers: whichever process answers
    the scrape, it counts every request and the job worker's failure."""
    from concilia.core.tests.test_serve import free_port, wait_for

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CONCILIA_HOME=str(tmp_path / "home"), CONCILIA_JOB_ATTEMPTS="1")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "concilia", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> int:
        with urllib.request.urlopen(base + path, timeout=30) as response:  # noqa: S310
            return response.status

    try:
        wait_for(f"{base}/track", seconds=180)  # a new home's migrations, on a busy machine
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(get, ["/complaints/new"] * 40)) == {200}
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "concilia", "shell", "-c", FAILING_JOB],
            env=env,
            check=True,
            timeout=60,
        )
        task = "concilia.core.tests.jobs_for_tests.fail_until_fixed"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(base + "/metrics", timeout=30) as response:  # noqa: S310
                samples = {
                    (sample.name, frozenset(sample.labels.items())): sample.value
                    for family in text_string_to_metric_families(response.read().decode())
                    for sample in family.samples
                }
            if value(samples, "concilia_job_failures_total", task=task):
                break
            time.sleep(0.3)
        form = {"view": "intake:complaint-new", "method": "GET"}
        assert value(samples, "concilia_http_requests_total", **form, status="200") == 40
        assert value(samples, "concilia_http_request_duration_seconds_count", **form) == 40
        assert value(samples, "concilia_job_failures_total", task=task) == 1
        assert value(samples, "concilia_dead_jobs", task=task) == 1
        # Each process wrote its own counters: at least a web process and the job worker.
        pids = {
            path.stem.rsplit("_", 1)[1] for path in (tmp_path / "home" / "metrics").glob("*.db")
        }
        assert len(pids) >= 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    # The only traceback is the failing job's, which the worker logs.
    assert output.count("Traceback") == output.count("the service behind crm is away"), output


def test_a_sign_in_links_token_never_reaches_the_log(json_log):
    response = Client().get("/track/sign-in/s3cr3t-link-token")
    [line] = [entry for entry in lines(json_log) if entry["logger"] == "concilia.requests"]
    [refusal] = [entry for entry in lines(json_log) if entry["logger"] == "django.request"]
    assert refusal["message"] == "Gone: /track/sign-in/[redacted]"
    assert "s3cr3t-link-token" not in json_log.getvalue()
    assert line["path"] == "/track/sign-in/[redacted]"
    assert line["status"] == response.status_code
