#!/usr/bin/env python3
"""Benchmark: webhook deliveries and inbound emails on the scaled deployment (PostgreSQL, Redis,
RQ workers).

Starts Concilia as the README's "Scaled deployment" does, on one machine: a fresh CONCILIA_HOME,
a throw-away PostgreSQL database, CONCILIA_TASKS_BACKEND=rq on a Redis database of its own,
`concilia demo`, `concilia serve --no-worker` (web processes and the sweep) and --workers
`concilia worker` processes (RQ workers). Then:

1. Webhooks. A receiver on 127.0.0.1 (its own process, asyncio) verifies every request's HMAC
   signature as docs/webhooks.md says, records its arrival and answers 204. An endpoint for it is
   registered with the webhook action, subscribed to every event. --changes complaints are filed
   through the API at full speed (each emits case.created, and the policies' triage more), then
   --paced-changes at --paced-rate per second. For each batch: deliveries per second at the
   receiver (first to last arrival, and the steady middle 80%), the lag from each event's
   `created_at` to its arrival (p50/p95/p99), duplicates (by event id) and missing events
   (the outbox's events of the batch that never arrived).
2. Inbound email. A mailbox is created and --emails raw messages (new complaints in Spanish and
   English, customers' replies with In-Reply-To to their case, notes from other senders,
   automatic replies) are posted to its inbound webhook; the clock runs from the first post until
   no email is left "received". Emails per second, post latency, outcomes against those expected,
   and the webhook events of the cases and messages they made (all delivered, lag).
3. IMAP, when Dovecot is installed: --imap-emails of the same mix are appended to a mailbox on a
   Dovecot of its own (the test suite's), then `concilia mail read` runs until all are read and
   processed. Emails per second and outcomes.

CPU seconds per role (web, sweep, RQ workers, PostgreSQL, Redis, receiver, this client) are
printed for each part. Exits 1 if anything was missing, failed or unexpected, 2 if the benchmark
could not run.

    python bench/integrations.py                           # 2000 changes, 1000 emails, 2 workers
    python bench/integrations.py --changes 500 --emails 200 --workers 3

Everything stays on 127.0.0.1: PostgreSQL (--pg-url; the database --pg-db is created and dropped)
and Redis (--redis-url; the database number --redis-db is claimed, flushed before and after, and
no other is touched).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from common import exit_code, proc_stat

# The shared machinery of the HTTP benchmarks: the instance (home, demo, serve, stop) and helpers.
from complaints import (
    BODY,
    CLK_TCK,
    HOST,
    PATH,
    PROTECTED_DATABASES,
    BenchError,
    Instance,
    children_cpu,
    code_version,
    environment,
    free_port,
    load_builtin,
    machine_busy,
    percentile,
    python_speed,
    wait_for_quiet,
)
from complaints import _role as serve_role

SECRET_ENV = "BENCH_WEBHOOK_SECRET"  # noqa: S105 - the variable's name, not a secret
HOOK_PATH = "/hooks/concilia"
MAILBOX_SLUG = "bench"
MAILBOX_ADDRESS = "support@bench.example"
REDIS_CLAIM = "concilia-tests:redis-db:{number}"  # the test suite's claims (test_rq_backend.py)
REDIS_CLAIM_SECONDS = 4 * 3600
DISTURBED_PCT = 5.0

SETUP_SNIPPET = """
import json
from concilia.core.events import EventType
from concilia.core.models import OutboxEvent
from concilia.integrations.mail.models import InboundEmail, Mailbox
from concilia.integrations.webhooks import delivery
from concilia.integrations.webhooks.actions import create_endpoint
from concilia.integrations.webhooks.models import Delivery
delivery.dispatch()  # the demo's events: handed out before the receiver exists, so not sent to it
endpoint = create_endpoint(url={url!r}, events=list(EventType.values), actor=None,
                           description="bench receiver")
mailbox = Mailbox.objects.create(name="Bench", slug={slug!r}, address={address!r})
print("SETUP " + json.dumps({{
    "endpoint": endpoint.pk, "secret": endpoint.secret, "events": endpoint.events,
    "mailbox_secret": mailbox.inbound_secret,
    "outbox_table": OutboxEvent._meta.db_table, "delivery_table": Delivery._meta.db_table,
    "email_table": InboundEmail._meta.db_table,
}}))
"""
CASES_SNIPPET = """
import json
from concilia.cases.models import Case
from concilia.core.mail import case_thread_id
cases = Case.objects.select_related("customer").order_by("-pk")[:{limit}]
print("CASES " + json.dumps([
    [c.reference, c.customer.email, c.subject or c.description[:60], case_thread_id(c.reference)]
    for c in cases
]))
"""


_STARTED = time.monotonic()


def step(what: str) -> None:
    """Progress on stderr: what the benchmark is doing, seconds since it started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {what}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The receiver: its own process, so that its CPU is its own


class Receiver:
    """An HTTP/1.1 server (keep-alive) that verifies Concilia's signature on each POST and
    records (arrival, event id, type, created_at); GET /_stats and /_records report."""

    def __init__(self, secret: str, tolerance: int = 300):
        self.secret = secret.encode()
        self.tolerance = tolerance
        self.records: list[list] = []  # [arrival, event id, type, created_at, subject]
        self.ids: set[str] = set()
        self.refused: Counter = Counter()

    def verify(self, headers: dict[str, str], body: bytes) -> str:
        """Why the request is not Concilia's ("" when it is): docs/webhooks.md, "Verifying"."""
        timestamp = headers.get("concilia-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance:
            return "timestamp"
        expected = hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256)
        signatures = [s.strip() for s in headers.get("concilia-signature", "").split(",")]
        if not any(hmac.compare_digest(f"v1={expected.hexdigest()}", s) for s in signatures):
            return "signature"
        return ""

    def hook(self, headers: dict[str, str], body: bytes, arrived: float) -> int:
        problem = self.verify(headers, body)
        if problem:
            self.refused[problem] += 1
            return 401
        try:
            event = json.loads(body)
        except ValueError:
            self.refused["json"] += 1
            return 400
        if event.get("id") != headers.get("concilia-event-id"):
            self.refused["event id header"] += 1
            return 400
        self.records.append(
            [arrived, event["id"], event.get("type"), event.get("created_at"), event.get("subject")]
        )
        self.ids.add(event["id"])
        return 204

    def stats(self) -> dict:
        return {
            "received": len(self.records),
            "unique": len(self.ids),
            "refused": dict(self.refused),
        }

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _version = [*lines[0].split(" "), "", ""][:3]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _sep, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                arrived = time.time()
                payload = b""
                if method == "POST" and path == HOOK_PATH:
                    status = self.hook(headers, body, arrived)
                elif method == "GET" and path == "/_stats":
                    status, payload = 200, json.dumps(self.stats()).encode()
                elif method == "GET" and path == "/_records":
                    status = 200
                    payload = json.dumps({**self.stats(), "records": self.records}).encode()
                else:
                    status = 404
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status < 300 else 'Refused'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def serve(self, port: int) -> None:
        server = await asyncio.start_server(self.connection, HOST, port, backlog=256)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with server:
            print("ready", flush=True)
            await stop.wait()


def receive_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="the benchmark's webhook receiver")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(Receiver(os.environ[SECRET_ENV]).serve(args.port))
    return 0


def http_get_json(port: int, path: str, timeout: float = 30) -> dict:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return json.loads(response.read())
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Redis: one database of our own, claimed as the test suite claims its own


class RedisDb:
    def __init__(self, url: str, wanted: str):
        import redis

        self.url = url.rstrip("/")
        self.claims = redis.Redis.from_url(f"{self.url}/0")
        try:
            self.claims.ping()
        except redis.RedisError as exc:
            raise BenchError(f"Redis at {self.url} does not answer: {exc}") from exc
        numbers = range(4, 16) if wanted == "auto" else [int(wanted)]
        self.number = -1
        for number in numbers:
            key = REDIS_CLAIM.format(number=number)
            if self.claims.set(key, f"bench {os.getpid()}", nx=True, ex=REDIS_CLAIM_SECONDS):
                self.number, self.claim = number, key
                break
        if self.number < 0:
            raise BenchError(
                f"Redis database {wanted} is claimed by another run ({REDIS_CLAIM}): "
                "pass another --redis-db, or auto"
            )
        self.db = redis.Redis.from_url(self.database_url)
        self.db.flushdb()

    @property
    def database_url(self) -> str:
        return f"{self.url}/{self.number}"

    def queued(self) -> int:
        """Jobs waiting in RQ's queues (not those being run)."""
        return sum(int(self.db.llen(key)) for key in self.db.scan_iter("rq:queue:*"))

    def jobs(self) -> tuple[int, int, float]:
        """(jobs done, jobs failed, seconds they ran) by the registered RQ workers so far."""
        done = failed = 0
        seconds = 0.0
        for key in self.db.smembers("rq:workers"):
            data = self.db.hgetall(key)
            done += int(data.get(b"successful_job_count") or 0)
            failed += int(data.get(b"failed_job_count") or 0)
            seconds += float(data.get(b"total_working_time") or 0)
        return done, failed, seconds

    def release(self) -> None:
        try:
            self.db.flushdb()
        finally:
            self.claims.delete(self.claim)


# --------------------------------------------------------------------------------------------
# The deployment: web, RQ workers, receiver, and the measurements' CPU accounting


class Deployment:
    """An Instance (complaints.py) on the RQ backend, with its workers and the receiver."""

    def __init__(self, args: argparse.Namespace, redis_db: RedisDb):
        self.args = args
        self.instance = Instance("postgres", args.web_workers, args)
        self.instance.env.update(
            {
                "CONCILIA_TASKS_BACKEND": "rq",
                "CONCILIA_REDIS_URL": redis_db.database_url,
                "REDIS_URL": redis_db.database_url,  # the shared cache, as the README sets it
                "CONCILIA_WEBHOOK_ALLOW_PRIVATE_URLS": "true",  # the receiver is on loopback
                # Every change comes with the demo's one token: its rate limit (600/minute) off.
                "CONCILIA_TOKEN_RATE": "0",
            }
        )
        self.redis = redis_db
        self.workers: list[subprocess.Popen] = []
        self.receiver: subprocess.Popen | None = None
        self.receiver_port = free_port()
        self.setup: dict = {}
        self.sql = None

    # -- starting and stopping ----------------------------------------------------------------

    def start(self) -> None:
        instance = self.instance
        step(f"creating the database {self.args.pg_db} and loading the demo")
        instance.create_database()
        instance.get_token()  # `concilia demo` (migrates the new database first)
        step("registering the webhook endpoint and the mailbox")
        url = f"http://{HOST}:{self.receiver_port}{HOOK_PATH}"
        snippet = SETUP_SNIPPET.format(url=url, slug=MAILBOX_SLUG, address=MAILBOX_ADDRESS)
        self.setup = self.shell_json(snippet, "SETUP")
        self.start_receiver()
        step("starting `concilia serve --no-worker`")
        instance.start()  # `concilia serve --no-worker`: web processes and the sweep
        step(f"starting {self.args.workers} RQ workers")
        command = [sys.executable, "-m", "concilia", "worker"]
        if self.args.rq_worker_class:  # what `concilia worker` runs, with another worker class
            queues = ["customer", "default", "mail", "webhooks"]  # settings.JOB_QUEUES
            command[3:] = ["rqworker", *queues, "--job-class", "django_tasks_rq.Job"]
            command += ["--with-scheduler", "--worker-class", self.args.rq_worker_class]
        for number in range(self.args.workers):
            with open(instance.home / f"worker-{number + 1}.log", "wb") as log:
                self.workers.append(
                    subprocess.Popen(
                        command,
                        env=instance.env,
                        cwd=instance.home,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        import psycopg

        self.sql = psycopg.connect(instance.env["DATABASE_URL"], autocommit=True)
        self.wait_for_workers()

    def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            [sys.executable, __file__, "receive", "--port", str(self.receiver_port)],
            env={**os.environ, SECRET_ENV: self.setup["secret"]},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.receiver.stdout is not None
        if self.receiver.stdout.readline().strip() != "ready":
            raise BenchError("The webhook receiver did not start")

    def wait_for_workers(self) -> None:
        """Until every RQ worker has registered in Redis (and so is taking jobs)."""
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            dead = [w for w in self.workers if w.poll() is not None]
            if dead:
                raise BenchError(f"`concilia worker` exited:\n{self.worker_log()}")
            if self.redis.db.scard("rq:workers") >= len(self.workers):
                return
            time.sleep(0.25)
        raise BenchError(f"The RQ workers did not start:\n{self.worker_log()}")

    def worker_log(self, limit: int = 3000) -> str:
        path = self.instance.home / "worker-1.log"
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""

    def stop(self) -> None:
        step("stopping")
        try:
            if self.sql is not None:
                self.sql.close()
            for worker in self.workers:  # RQ's warm shutdown: the job at hand is finished
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGTERM)
            for worker in self.workers:
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait(timeout=10)
            if self.receiver is not None and self.receiver.poll() is None:
                self.receiver.terminate()
                self.receiver.wait(timeout=10)
        finally:
            self.instance.cleanup()  # the server, the database and the home folder

    # -- reading the state --------------------------------------------------------------------

    def shell_json(self, snippet: str, prefix: str) -> Any:
        """Run a snippet in `concilia shell` and read the JSON it prints after `prefix`."""
        output = self.instance.manage("shell", "-c", snippet)
        line = next((ln for ln in output.splitlines() if ln.startswith(prefix + " ")), None)
        if line is None:
            raise BenchError(f"`concilia shell` printed no {prefix} line:\n{output}")
        return json.loads(line[len(prefix) + 1 :])

    def query(self, statement: str, *params) -> list[tuple]:
        assert self.sql is not None
        return self.sql.execute(statement, params).fetchall()

    def receiver_stats(self) -> dict:
        return http_get_json(self.receiver_port, "/_stats")

    def cpu(self) -> dict[str, tuple[str, float]]:
        """pid -> (role, CPU seconds) for everything the benchmark runs or talks to. An RQ worker
        forks a process per job (in a process group of its own): counted while it runs, and in
        its worker's children's time once it has ended."""
        serve = self.instance.pgid
        workers = {w.pid for w in self.workers}
        receiver = self.receiver.pid if self.receiver else -1
        found: dict[str, tuple[str, float]] = {}
        for pid in os.listdir("/proc"):
            stat = pid.isdigit() and proc_stat(pid)
            if not stat:
                continue
            if stat.group == serve:
                found[pid] = (serve_role(pid, serve), stat.cpu_s)
            elif stat.group in workers or stat.parent in workers:
                found[pid] = ("rq workers", stat.cpu_s + stat.children_s)
            elif int(pid) == receiver:
                found[pid] = ("receiver", stat.cpu_s)
            elif stat.comm == "postgres":
                found[pid] = ("postgresql", stat.cpu_s)
            elif stat.comm == "redis-server":
                found[pid] = ("redis", stat.cpu_s)
        return found


@dataclass
class Usage:
    """CPU seconds per role over a stretch of time, and how busy the machine was."""

    cpu: dict[str, float] = field(default_factory=dict)
    busy_pct: float = 0.0
    seconds: float = 0.0
    jobs: int = 0  # RQ jobs run meanwhile
    jobs_failed: int = 0
    job_seconds: float = 0.0  # their time from start to end, in total

    @property
    def other_pct(self) -> float:
        capacity = (os.cpu_count() or 1) * self.seconds
        return 100 * self.cpu.get("other", 0.0) / capacity if capacity else 0.0


class Meter:
    """Measures Usage from its creation to `.stop()`."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment
        self.before = deployment.cpu()
        self.client = time.process_time()
        self.commands = children_cpu()
        self.busy = machine_busy()
        self.started = time.monotonic()
        self.jobs = deployment.redis.jobs()

    def stop(self) -> Usage:
        busy = machine_busy()
        after = self.deployment.cpu()
        cpu: dict[str, float] = {}
        for pid, (role, seconds) in after.items():
            cpu[role] = cpu.get(role, 0.0) + seconds - self.before.get(pid, (role, 0.0))[1]
        cpu["client"] = time.process_time() - self.client
        # Children that ended meanwhile: the `concilia …` commands run (e.g. `concilia mail read`)
        cpu["commands"] = children_cpu() - self.commands
        used = (busy[0] - self.busy[0]) / CLK_TCK
        cpu["other"] = max(0.0, used - sum(cpu.values()))
        total = busy[1] - self.busy[1]
        jobs = self.deployment.redis.jobs()
        return Usage(
            cpu=cpu,
            busy_pct=100 * (busy[0] - self.busy[0]) / total if total else 0.0,
            seconds=time.monotonic() - self.started,
            jobs=jobs[0] - self.jobs[0],
            jobs_failed=jobs[1] - self.jobs[1],
            job_seconds=jobs[2] - self.jobs[2],
        )


# --------------------------------------------------------------------------------------------
# Sending requests at a pace (the paced changes, the emails)


@dataclass
class Sent:
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)  # in request order
    started: float = 0.0  # time.time() of the first request
    duration_s: float = 0.0

    def summary(self, status: int, count: int, latency_ms: dict[str, float]) -> dict:
        """How `count` requests went, `status` being the answer that means success."""
        succeeded = self.statuses.get(status, 0)
        return {
            "succeeded": succeeded,
            "failed": count - succeeded,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "transport_errors": dict(self.errors),
            "latency_ms": latency_ms,
            "per_s": round(succeeded / self.duration_s, 1) if self.duration_s else 0.0,
        }


def send_all(
    port: int,
    requests: list[tuple[str, dict[str, str], bytes]],
    *,
    concurrency: int,
    rate: float = 0.0,
    time_limit: float,
) -> Sent:
    """POST every (path, headers, body) from `concurrency` keep-alive connections, as fast as
    they answer or, with `rate`, the i-th no earlier than i/rate seconds after the first."""
    sent = Sent(answers=[(0, b"")] * len(requests))
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    started = time.monotonic()
    deadline = started + time_limit

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                if rate:
                    time.sleep(max(0.0, started + index / rate - time.monotonic()))
                path, headers, body = requests[index]
                began = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    content = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=30)
                    with lock:
                        sent.errors[type(exc).__name__] += 1
                    continue
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    sent.statuses[response.status] += 1
                    sent.latencies_ms.append(elapsed)
                    sent.answers[index] = (response.status, content)
        finally:
            conn.close()

    sent.started = time.time()
    with ThreadPoolExecutor(concurrency) as pool:  # each client stops by the deadline
        for connection in [pool.submit(client) for _ in range(concurrency)]:
            connection.result()
    sent.duration_s = time.monotonic() - started
    sent.latencies_ms.sort()
    return sent


def latencies(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {f"p{p}": round(percentile(ordered, p), 1) for p in (50, 95, 99)} | {
        "max": round(ordered[-1], 1) if ordered else 0.0
    }


# --------------------------------------------------------------------------------------------
# Part 1: webhooks


@dataclass
class WebhookRun:
    label: str
    changes: int
    api: dict  # what the API answered
    got: Arrivals
    deliveries: dict[str, int]  # the batch's delivery rows by status
    produce_s: float  # from the first API request to the last answer
    drain_s: float  # from the first API request to the last arrival
    backlog_at_end_of_changes: int  # events not yet delivered when the last API answer came
    usage: Usage
    speed_us: float
    timed_out: bool

    @property
    def duplicates(self) -> int:
        return self.got.received - self.got.unique

    @property
    def rate_whole(self) -> float:
        """Deliveries per second from the first arrival to the last."""
        arrivals = self.got.arrivals
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        return (len(arrivals) - 1) / span if span > 0 else 0.0

    @property
    def rate_steady(self) -> float:
        return steady_rate(self.got.arrivals)

    @property
    def errors(self) -> int:
        failed = sum(v for k, v in self.deliveries.items() if k != "delivered")
        return self.api["failed"] + sum(self.got.refused.values()) + failed + int(self.timed_out)

    def row(self) -> dict:
        return {
            "batch": self.label,
            "changes": self.changes,
            "api": self.api,
            "events_expected": len(self.got.events),
            "events_by_kind": dict(Counter(kind for _id, kind in self.got.events)),
            "received": self.got.received,
            "unique": self.got.unique,
            "duplicates": self.duplicates,
            "missing": len(self.got.missing),
            "missing_examples": self.got.missing[:5],
            "refused_by_receiver": self.got.refused,
            "deliveries_by_status": self.deliveries,
            "errors": self.errors,
            "timed_out": self.timed_out,
            "produce_s": round(self.produce_s, 2),
            "drain_s": round(self.drain_s, 2),
            "deliveries_per_s": round(self.rate_whole, 1),
            "deliveries_per_s_steady": round(self.rate_steady, 1),
            "backlog_at_end_of_changes": self.backlog_at_end_of_changes,
            "lag_ms": latencies(self.got.lags_ms),
            "lag_ms_by_kind": self.got.lag_by_kind(),
            **usage_row(self.usage, self.speed_us),
        }


def usage_row(usage: Usage, speed_us: float) -> dict:
    return {
        "rq_jobs": usage.jobs,
        "rq_jobs_failed": usage.jobs_failed,
        "rq_job_ms_avg": round(usage.job_seconds / max(usage.jobs, 1) * 1000, 1),
        "rq_worker_cpu_ms_per_job": round(
            usage.cpu.get("rq workers", 0.0) / max(usage.jobs, 1) * 1000, 1
        ),
        "cpu_s": {k: round(v, 1) for k, v in usage.cpu.items()},
        "machine_busy_pct": round(usage.busy_pct, 1),
        "other_processes_pct": round(usage.other_pct, 1),
        "python_speed_us": round(speed_us, 2),
    }


def outbox_mark(deployment: Deployment) -> int:
    table = deployment.setup["outbox_table"]
    return deployment.query(f"SELECT coalesce(max(id), 0) FROM {table}")[0][0]  # noqa: S608


def batch_events(deployment: Deployment, after: int) -> list[tuple[str, str]]:
    """(event id, kind) of the outbox's events since `after` that the endpoint subscribes to."""
    table = deployment.setup["outbox_table"]
    return [
        (str(event_id), kind)
        for event_id, kind in deployment.query(
            f"SELECT event_id, kind FROM {table} WHERE id > %s AND kind = ANY(%s)",  # noqa: S608
            after,
            deployment.setup["events"],
        )
    ]


def delivery_statuses(deployment: Deployment, after: int) -> dict[str, int]:
    table = deployment.setup["delivery_table"]
    rows = deployment.query(
        f"SELECT status, count(*) FROM {table} WHERE endpoint_id = %s AND event_id > %s "  # noqa: S608
        "GROUP BY status",
        deployment.setup["endpoint"],
        after,
    )
    return dict(rows)


def wait_for_deliveries(deployment: Deployment, after: int, base_unique: int) -> tuple[bool, float]:
    """Until every event of the batch reached the receiver and nothing new happened for
    --settle seconds (the policies' jobs may emit more events after the change). Returns
    (timed out, seconds waited)."""
    args = deployment.args
    started = time.monotonic()
    deadline = started + args.drain_timeout
    last: tuple[int, int] | None = None
    steady_since = time.monotonic()
    while time.monotonic() < deadline:
        expected = len(batch_events(deployment, after))
        unique = deployment.receiver_stats()["unique"] - base_unique
        state = (expected, unique)
        if state != last:
            last, steady_since = state, time.monotonic()
        elif (
            unique >= expected
            and deployment.redis.queued() == 0
            and time.monotonic() - steady_since >= args.settle
        ):
            return False, time.monotonic() - started
        time.sleep(0.25)
    return True, time.monotonic() - started


@dataclass
class Arrivals:
    """What reached the receiver of the outbox's events since a mark."""

    events: list[tuple[str, str]]  # (event id, kind) in the outbox, for the subscribed kinds
    arrivals: list[float]  # first arrival of each, sorted (epoch seconds)
    lags_ms: list[float]  # created_at -> first arrival, each
    kinds: list[str]  # the kind of each, in the same order
    received: int  # requests for them (duplicates included)
    missing: list[str]
    refused: dict[str, int]  # requests the receiver refused meanwhile, by reason

    @property
    def unique(self) -> int:
        return len(self.arrivals)

    def lag_by_kind(self) -> dict[str, dict[str, float]]:
        by_kind: dict[str, list[float]] = {}
        for kind, lag in zip(self.kinds, self.lags_ms, strict=True):
            by_kind.setdefault(kind, []).append(lag)
        return {kind: latencies(lags) for kind, lags in sorted(by_kind.items())}


def arrivals_since(deployment: Deployment, after: int, base: dict) -> Arrivals:
    """The receiver's records against the outbox's events since `after` (base: the receiver's
    stats at the mark)."""
    events = batch_events(deployment, after)
    wanted = {event_id for event_id, _kind in events}
    report = http_get_json(deployment.receiver_port, "/_records", timeout=120)
    first: dict[str, list] = {}
    received = 0
    for record in sorted(report["records"], key=lambda r: r[0]):
        if record[1] in wanted:
            received += 1
            first.setdefault(record[1], record)
    refused = Counter(report["refused"])
    refused.subtract(base["refused"])
    return Arrivals(
        events=events,
        arrivals=sorted(r[0] for r in first.values()),
        lags_ms=[
            (r[0] - dt.datetime.fromisoformat(r[3]).timestamp()) * 1000 for r in first.values()
        ],
        kinds=[r[2] for r in first.values()],
        received=received,
        missing=sorted(wanted - set(first)),
        refused={k: v for k, v in refused.items() if v},
    )


def steady_rate(arrivals: list[float]) -> float:
    """Deliveries per second between the 10th and the 90th percentile of arrivals."""
    n = len(arrivals)
    low, high = int(n * 0.1), int(n * 0.9) - 1
    if high <= low or arrivals[high] <= arrivals[low]:
        return 0.0
    return (high - low) / (arrivals[high] - arrivals[low])


def complaint_request(token: str, index: str) -> tuple[str, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return PATH, headers, BODY.format(id=index).encode()


def warm_up(deployment: Deployment) -> None:
    """Uncounted complaints (web processes and workers warm), then wait until the demo's and
    their jobs are done, so that a batch's figures are its own."""
    args = deployment.args
    step(f"warming up ({args.warmup} complaints) and waiting for the queue to empty")
    after = outbox_mark(deployment)
    base = deployment.receiver_stats()["unique"]
    if args.warmup:
        load_builtin(deployment.instance, args.warmup, args.concurrency, "warmup", args.time_limit)
    timed_out, _waited = wait_for_deliveries(deployment, after, base)
    if timed_out:
        raise BenchError("The warm-up's events were not delivered in time")


def run_webhooks(deployment: Deployment, label: str, changes: int, rate: float) -> WebhookRun:
    """File `changes` complaints (at full speed, or `rate` per second) and wait for their events
    to reach the receiver."""
    args = deployment.args
    instance = deployment.instance
    step(f"webhooks: {changes} complaints" + (f" at {rate}/s" if rate else " at full speed"))
    after = outbox_mark(deployment)
    base = deployment.receiver_stats()
    speed = python_speed()
    meter = Meter(deployment)
    first_request = time.time()
    if rate:
        requests = [complaint_request(instance.token, f"{label}-{i}") for i in range(changes)]
        sent = send_all(
            instance.port, requests, concurrency=args.concurrency, rate=rate,
            time_limit=args.time_limit,
        )  # fmt: skip
        latency = latencies(sent.latencies_ms)
    else:  # complaints.py's own load generator: the least CPU per request
        load = load_builtin(instance, changes, args.concurrency, label, args.time_limit)
        sent = Sent(statuses=load.statuses, errors=load.errors, duration_s=load.duration_s)
        latency = {k: round(v, 1) for k, v in load.latencies_ms.items()}
    produced = time.time()
    api = sent.summary(201, changes, latency)
    delivered_then = deployment.receiver_stats()["unique"] - base["unique"]
    expected_then = len(batch_events(deployment, after))
    timed_out, _waited = wait_for_deliveries(deployment, after, base["unique"])
    usage = meter.stop()
    step("webhooks: all delivered" if not timed_out else "webhooks: timed out")
    got = arrivals_since(deployment, after, base)
    last_arrival = got.arrivals[-1] if got.arrivals else produced
    return WebhookRun(
        label=label,
        changes=changes,
        api=api,
        got=got,
        deliveries=delivery_statuses(deployment, after),
        produce_s=produced - first_request,
        drain_s=last_arrival - first_request,
        backlog_at_end_of_changes=max(0, expected_then - delivered_then),
        usage=usage,
        speed_us=speed,
        timed_out=timed_out,
    )


# --------------------------------------------------------------------------------------------
# Part 2: inbound email


NEW_ES = (
    ("Pedido {order} sin llegar", "Hola, hice el pedido {order} hace dos semanas y todavía no ha "
     "llegado. El seguimiento no se mueve desde hace días. ¿Qué pasa con mi paquete?"),
    ("Cobro duplicado", "Buenos días, me habéis cobrado dos veces {amount} € en la tarjeta por el "
     "pedido {order}. Quiero que me devolváis el cargo duplicado cuanto antes."),
    ("Producto roto", "El paquete del pedido {order} llegó con la caja aplastada y el producto "
     "roto. Adjunto la descripción; quiero un reemplazo o el reembolso."),
    ("Reembolso pendiente", "Devolví el pedido {order} hace tres semanas y todavía no he recibido "
     "el reembolso de {amount} €. ¿Cuándo me lo vais a devolver?"),
)  # fmt: skip
NEW_EN = (
    ("Order {order} not delivered", "Hello, I ordered {order} two weeks ago and it still has not "
     "arrived. Tracking has not moved for days. Where is my parcel?"),
    ("Charged twice", "Hi, you charged my card twice, {amount} EUR each time, for order {order}. "
     "Please refund the duplicate charge."),
    ("Damaged item", "My order {order} arrived with the box crushed and the item broken. I want a "
     "replacement or my money back."),
)  # fmt: skip
REPLY_ES = "Gracias por la respuesta. Sigo sin noticias, ¿podéis decirme cuándo se resolverá?"
REPLY_EN = "Thanks for getting back to me. Any news? I still have not heard anything."
# One round of 20 emails: 8 new in Spanish, 5 new in English, 4 replies from the customer, 1 note
# from someone else about a case, 2 automatic replies ("out of office").
MIX = ["new_es"] * 8 + ["new_en"] * 5 + ["reply"] * 4 + ["note"] + ["auto"] * 2
EXPECTED_OUTCOME = {
    "new_es": "new_case",
    "new_en": "new_case",
    "reply": "reply",
    "note": "note",
    "auto": "auto_reply",
}
NAMES = ("Marta Gil", "John Smith", "Lucía Pérez", "Ahmed Ali", "Sara Costa", "Pedro Ruiz")


def compose_emails(count: int, cases: list[list[str]], run: str) -> list[tuple[str, bytes]]:
    """(kind, raw message) for `count` emails in the MIX, in a shuffled but repeatable order;
    replies and notes go to `cases` ([reference, customer email, subject, thread id]), in turn."""
    rng = random.Random(count)  # repeatable test data
    kinds = [MIX[i % len(MIX)] for i in range(count)]
    rng.shuffle(kinds)
    now = dt.datetime.now(dt.UTC)
    emails: list[tuple[str, bytes]] = []
    next_case = 0
    for index, kind in enumerate(kinds):
        message = EmailMessage()
        message["To"] = MAILBOX_ADDRESS
        message["Date"] = format_datetime(now)
        message["Message-ID"] = f"<bench-{run}-{index}@mail.bench.example>"
        order, amount = f"{40000 + index}", f"{rng.randint(10, 300)}.{rng.randint(0, 99):02d}"
        name = NAMES[index % len(NAMES)]
        if kind in ("new_es", "new_en"):
            subject, text = rng.choice(NEW_ES if kind == "new_es" else NEW_EN)
            message["From"] = f"{name} <mail-{run}-{index}@customer.example>"
            message["Subject"] = subject.format(order=order)
            message.set_content(text.format(order=order, amount=amount))
        else:
            if not cases:
                raise BenchError("no cases to reply to")
            reference, customer, topic, thread = cases[next_case % len(cases)]
            next_case += 1
            message["In-Reply-To"] = thread
            message["References"] = thread
            if kind == "reply":
                message["From"] = f"{name} <{customer}>"
                message["Subject"] = f"Re: {topic} [{reference}]"
                message.set_content(
                    f"{REPLY_ES if index % 2 else REPLY_EN}\n\n> {topic}\n> {reference}\n"
                )
            elif kind == "note":
                message["From"] = f"Colleague <colleague-{run}-{index}@partner.example>"
                message["Subject"] = f"Re: {topic} [{reference}]"
                message.set_content("I am writing on behalf of the customer about this case.")
            else:
                message["From"] = f"{name} <{customer}>"
                message["Subject"] = f"Fuera de la oficina: {topic}"
                message["Auto-Submitted"] = "auto-replied"
                message.set_content("Estoy fuera de la oficina hasta el lunes. / Out of office.")
        emails.append((kind, message.as_bytes()))
    return emails


@dataclass
class EmailRun:
    emails: int
    by_kind: dict[str, int]
    posts: dict
    processed: Processed
    processed_s: float  # first post -> last email processed
    post_s: float
    usage: Usage
    webhooks: Arrivals  # the events the emails' changes emitted, and whether they arrived
    webhooks_timed_out: bool
    speed_us: float

    @property
    def rate(self) -> float:
        return self.emails / self.processed_s if self.processed_s else 0.0

    @property
    def errors(self) -> int:
        return (
            self.posts["failed"]
            + self.processed.errors
            + len(self.webhooks.missing)
            + sum(self.webhooks.refused.values())
            + int(self.webhooks_timed_out)
        )

    def row(self) -> dict:
        return {
            "emails": self.emails,
            "by_kind": self.by_kind,
            "posts": self.posts,
            **self.processed.row(),
            "errors": self.errors,
            "post_s": round(self.post_s, 2),
            "processed_s": round(self.processed_s, 2),
            "emails_per_s": round(self.rate, 1),
            "webhook_events": len(self.webhooks.events),
            "webhook_events_missing": len(self.webhooks.missing),
            "webhook_duplicates": self.webhooks.received - self.webhooks.unique,
            "webhook_lag_ms": latencies(self.webhooks.lags_ms),
            "webhooks_timed_out": self.webhooks_timed_out,
            **usage_row(self.usage, self.speed_us),
        }


def cases_to_answer(deployment: Deployment, limit: int) -> list[list[str]]:
    return deployment.shell_json(CASES_SNIPPET.format(limit=limit), "CASES")


@dataclass
class Processed:
    """What became of a set of inbound emails."""

    outcomes: dict[str, int]
    unexpected: dict[str, int]  # "kind -> outcome": count, where the outcome is not the expected
    left_received: int  # not processed when the time was up
    last: float  # when the last one was processed (epoch), or when the wait ended

    @property
    def errors(self) -> int:
        return self.left_received + self.outcomes.get("failed", 0) + sum(self.unexpected.values())

    def row(self) -> dict:
        return {
            "outcomes": self.outcomes,
            "unexpected_outcomes": self.unexpected,
            "left_received": self.left_received,
        }


def wait_for_emails(
    deployment: Deployment, where: str, param: object, key: str, kind_of: dict[str, str]
) -> Processed:
    """Until none of the emails `where` selects is left "received" (at most --drain-timeout);
    `kind_of` maps their `key` column (without <>) to the kind each was written as."""
    table = deployment.setup["email_table"]
    deadline = time.monotonic() + deployment.args.drain_timeout
    left = len(kind_of)
    while time.monotonic() < deadline:
        left = (
            len(kind_of)
            - deployment.query(
                f"SELECT count(*) FROM {table} WHERE {where} AND outcome != 'received'",  # noqa: S608
                param,
            )[0][0]
        )
        if left <= 0:
            break
        time.sleep(0.2)
    finished = time.time()
    rows = [
        (str(pk).strip("<>"), outcome, at)
        for pk, outcome, at in deployment.query(
            f"SELECT {key}, outcome, processed_at FROM {table} WHERE {where}",  # noqa: S608
            param,
        )
    ]
    times = [at.timestamp() for _pk, _outcome, at in rows if at is not None]
    return Processed(
        outcomes=dict(Counter(outcome for _pk, outcome, _at in rows)),
        unexpected=dict(
            Counter(
                f"{kind_of.get(pk, '?')} -> {outcome}"
                for pk, outcome, _at in rows
                if outcome != EXPECTED_OUTCOME.get(kind_of.get(pk, ""))
            )
        ),
        left_received=max(left, 0),
        last=max(times) if times and left <= 0 else finished,
    )


def run_emails(deployment: Deployment, count: int) -> EmailRun:
    args = deployment.args
    step(f"inbound email: composing {count} emails")
    emails = compose_emails(count, cases_to_answer(deployment, max(count, 20)), f"{os.getpid()}")
    secret = deployment.setup["mailbox_secret"]
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"provider:{secret}".encode()).decode(),
        "Content-Type": "message/rfc822",
    }
    path = f"/integrations/mail/inbound/{MAILBOX_SLUG}/"
    after = outbox_mark(deployment)
    base = deployment.receiver_stats()
    speed = python_speed()
    meter = Meter(deployment)
    step("inbound email: posting")
    sent = send_all(
        deployment.instance.port,
        [(path, headers, raw) for _kind, raw in emails],
        concurrency=args.email_concurrency,
        time_limit=args.time_limit,
    )
    kind_of: dict[str, str] = {}
    for (kind, _raw), (status, content) in zip(emails, sent.answers, strict=True):
        if status == 202:  # kept, to be processed
            kind_of[str(json.loads(content)["id"])] = kind
    ids = [int(pk) for pk in kind_of]
    processed = wait_for_emails(deployment, "id = ANY(%s)", ids, "id", kind_of)
    usage = meter.stop()
    # The cases and messages the emails made are events too: every one must reach the receiver.
    step("inbound email: processed; waiting for their webhook events")
    webhooks_timed_out, _waited = wait_for_deliveries(deployment, after, base["unique"])
    return EmailRun(
        emails=count,
        by_kind=dict(Counter(kind for kind, _raw in emails)),
        posts=sent.summary(202, count, latencies(sent.latencies_ms)),
        processed=processed,
        processed_s=processed.last - sent.started,
        post_s=sent.duration_s,
        usage=usage,
        webhooks=arrivals_since(deployment, after, base),
        webhooks_timed_out=webhooks_timed_out,
        speed_us=speed,
    )


# --------------------------------------------------------------------------------------------
# Part 3 (when Dovecot is installed): the same mix read from an IMAP mailbox


IMAP_SNIPPET = """
import json
from concilia.integrations.mail.models import Mailbox, Security
mailbox = Mailbox.objects.create(
    name="Bench IMAP", slug="bench-imap", address={address!r}, host="127.0.0.1", port={port},
    security=Security.NONE, username={address!r}, password={password!r},
)
print("MAILBOX " + json.dumps({{"id": mailbox.pk}}))
"""


@dataclass
class ImapRun:
    emails: int
    by_kind: dict[str, int]
    append_s: float  # APPEND of every message, one connection
    reads: int  # `concilia mail read` runs until every message was read
    read_s: float  # from the first read to the last email processed
    processed: Processed
    usage: Usage
    speed_us: float

    @property
    def rate(self) -> float:
        return self.emails / self.read_s if self.read_s else 0.0

    def row(self) -> dict:
        return {
            "emails": self.emails,
            "by_kind": self.by_kind,
            "append_s": round(self.append_s, 2),
            "reads": self.reads,
            "read_s": round(self.read_s, 2),
            "emails_per_s": round(self.rate, 1),
            **self.processed.row(),
            "errors": self.processed.errors,
            **usage_row(self.usage, self.speed_us),
        }


def run_imap(deployment: Deployment, count: int) -> ImapRun | None:
    """APPEND `count` emails to a real Dovecot (the test suite's), then run `concilia mail read`
    until all are read and processed; None when Dovecot is not installed."""
    from concilia.integrations.tests.mailserver import DOVECOT, start_dovecot

    if not os.path.exists(DOVECOT):
        step("IMAP: Dovecot is not installed, skipped (apt-get install dovecot-imapd)")
        return None
    step(f"IMAP: starting Dovecot and appending {count} emails")
    previous, tempfile.tempdir = tempfile.tempdir, "/tmp"  # noqa: S108 - its sockets want a short path
    try:
        dovecot = start_dovecot()
    except RuntimeError as exc:
        raise BenchError(str(exc)) from exc
    finally:
        tempfile.tempdir = previous
    try:
        address = "imap@bench.example"
        cases = cases_to_answer(deployment, max(count, 20))
        emails = compose_emails(count, cases, f"imap-{os.getpid()}")
        started = time.monotonic()
        dovecot.deliver(address, *(raw for _kind, raw in emails))
        append_s = time.monotonic() - started
        mailbox = deployment.shell_json(
            IMAP_SNIPPET.format(address=address, port=dovecot.port, password=dovecot.password),
            "MAILBOX",
        )["id"]
        kind_of = {
            f"bench-imap-{os.getpid()}-{i}@mail.bench.example": kind
            for i, (kind, _raw) in enumerate(emails)
        }
        speed = python_speed()
        meter = Meter(deployment)
        step("IMAP: reading with `concilia mail read`")
        first = time.time()
        reads = 0
        deadline = time.monotonic() + deployment.args.drain_timeout
        while time.monotonic() < deadline and imap_read(deployment, mailbox) < count:
            deployment.instance.manage("mail", "read", "--mailbox", "bench-imap", timeout=600)
            reads += 1
        processed = wait_for_emails(deployment, "mailbox_id = %s", mailbox, "header_id", kind_of)
        usage = meter.stop()
    finally:
        dovecot.stop()
    return ImapRun(
        emails=count,
        by_kind=dict(Counter(kind for kind, _raw in emails)),
        append_s=append_s,
        reads=reads,
        read_s=processed.last - first,
        processed=processed,
        usage=usage,
        speed_us=speed,
    )


def imap_read(deployment: Deployment, mailbox: int) -> int:
    """How many of the mailbox's emails have been read and processed."""
    table = deployment.setup["email_table"]
    return deployment.query(
        f"SELECT count(*) FROM {table} WHERE mailbox_id = %s AND outcome != 'received'",  # noqa: S608
        mailbox,
    )[0][0]


# --------------------------------------------------------------------------------------------
# Printing


def cpu_lines(usage: Usage) -> list[str]:
    shown = ", ".join(f"{k} {v:.1f}" for k, v in usage.cpu.items() if v >= 0.05)
    jobs = max(usage.jobs, 1)
    return [
        f"CPU seconds          {shown} "
        f"(machine {usage.busy_pct:.0f}% busy over {usage.seconds:.1f}s)",
        f"RQ jobs              {usage.jobs} run ({usage.jobs_failed} failed), "
        f"{usage.job_seconds / jobs * 1000:.1f} ms each from start to end, "
        f"{usage.cpu.get('rq workers', 0.0) / jobs * 1000:.1f} ms of worker CPU each",
    ]


def warning(usage: Usage) -> list[str]:
    if usage.other_pct <= DISTURBED_PCT:
        return []
    return [
        f"WARNING              other processes used {usage.other_pct:.0f}% of the machine "
        "meanwhile: these figures are disturbed"
    ]


def describe_webhooks(run: WebhookRun) -> str:
    api, got, lag = run.api, run.got, latencies(run.got.lags_ms)
    pace = "at full speed" if run.label == "burst" else "paced"
    lines = [
        f"webhooks, {run.label:<10} {run.changes} complaints {pace} through the API",
        f"API                  {api['succeeded']} created, {api['per_s']} complaints/s "
        f"over {run.produce_s:.1f}s, p50/p95 {api['latency_ms'].get('p50', 0)} / "
        f"{api['latency_ms'].get('p95', 0)} ms"
        + (f", {api['failed']} failed {api['statuses']} {api['transport_errors']}"
           if api["failed"] else ""),
        f"events               {len(got.events)} in the outbox: "
        + ", ".join(f"{k} {v}" for k, v in sorted(Counter(k for _i, k in got.events).items())),
        f"deliveries/s         {run.rate_whole:.1f} first to last arrival, "
        f"{run.rate_steady:.1f} over the middle 80%",
        f"all delivered after  {run.drain_s:.1f}s from the first change; "
        f"{run.backlog_at_end_of_changes} events undelivered when the last change was answered",
        f"lag created→arrival  p50 {lag['p50']:.0f} ms, p95 {lag['p95']:.0f} ms, "
        f"p99 {lag['p99']:.0f} ms, max {lag['max']:.0f} ms",
        *(
            f"  {kind:<19} p50 {k['p50']:.0f} ms, p95 {k['p95']:.0f} ms, max {k['max']:.0f} ms"
            for kind, k in got.lag_by_kind().items()
        ),
        f"received             {got.received} requests, {got.unique} distinct events, "
        f"{run.duplicates} duplicates, {len(got.missing)} missing"
        + (f" (e.g. {got.missing[0]})" if got.missing else ""),
        f"deliveries (DB)      {run.deliveries}"
        + (f"; refused by the receiver {got.refused}" if got.refused else "")
        + ("; TIMED OUT waiting for them" if run.timed_out else ""),
        *cpu_lines(run.usage),
        f"CPU per delivery     rq workers {cpu_per(run.usage, 'rq workers', got.unique)}, "
        f"postgresql {cpu_per(run.usage, 'postgresql', got.unique)}",
        f"machine speed        {run.speed_us:.2f} µs to sum 1000 integers before the batch",
    ]  # fmt: skip
    return "\n".join(lines + warning(run.usage))


def cpu_per(usage: Usage, role: str, count: int) -> str:
    return f"{usage.cpu.get(role, 0.0) / max(count, 1) * 1000:.2f} ms"


def outcome_lines(processed: Processed) -> list[str]:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(processed.outcomes.items()))
    left = processed.left_received
    return [
        f"outcomes             {outcomes}",
        f"not as expected      {processed.unexpected or 'none'}"
        + (f"; {left} still 'received' at the time limit" if left else ""),
    ]


def describe_emails(run: EmailRun) -> str:
    posts, webhooks = run.posts, run.webhooks
    lag = latencies(webhooks.lags_ms)
    lines = [
        f"inbound email        {run.emails} posted to the webhook: "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.by_kind.items())),
        f"posts                {posts['succeeded']} accepted (202) in {run.post_s:.1f}s, "
        f"{posts['per_s']}/s, latency p50/p95/p99 {posts['latency_ms']['p50']} / "
        f"{posts['latency_ms']['p95']} / {posts['latency_ms']['p99']} ms"
        + (
            f", {posts['failed']} failed {posts['statuses']} {posts['transport_errors']}"
            if posts["failed"]
            else ""
        ),
        f"emails/s processed   {run.rate:.1f} ({run.emails} in {run.processed_s:.1f}s from the "
        "first post to the last processed)",
        *outcome_lines(run.processed),
        f"webhooks             {webhooks.received} requests for the {len(webhooks.events)} events "
        f"the emails' changes emitted ({webhooks.unique} distinct, "
        f"{len(webhooks.missing)} missing), lag p50 {lag['p50']:.0f} ms, p95 {lag['p95']:.0f} ms"
        + ("; TIMED OUT waiting for them" if run.webhooks_timed_out else ""),
        *cpu_lines(run.usage),
        f"CPU per email        rq workers {cpu_per(run.usage, 'rq workers', run.emails)}, "
        f"web {cpu_per(run.usage, 'web', run.emails)}, "
        f"postgresql {cpu_per(run.usage, 'postgresql', run.emails)}",
        f"machine speed        {run.speed_us:.2f} µs to sum 1000 integers before the posts",
    ]
    return "\n".join(lines + warning(run.usage))


def describe_imap(run: ImapRun) -> str:
    lines = [
        f"IMAP                 {run.emails} appended to Dovecot in {run.append_s:.1f}s: "
        + ", ".join(f"{k} {v}" for k, v in sorted(run.by_kind.items())),
        f"emails/s read        {run.rate:.1f} ({run.emails} in {run.read_s:.1f}s, "
        f"{run.reads} runs of `concilia mail read`)",
        *outcome_lines(run.processed),
        *cpu_lines(run.usage),
        f"machine speed        {run.speed_us:.2f} µs to sum 1000 integers before the reads",
    ]
    return "\n".join(lines + warning(run.usage))


def redis_version(url: str) -> str:
    import redis

    try:
        return str(redis.Redis.from_url(f"{url.rstrip('/')}/0").info("server")["redis_version"])
    except redis.RedisError:
        return "?"


# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def deployed(args: argparse.Namespace) -> Iterator[Deployment]:
    redis_db = RedisDb(args.redis_url, args.redis_db)
    try:
        deployment = Deployment(args, redis_db)
        try:
            deployment.start()
            yield deployment
        finally:
            deployment.stop()
    finally:
        redis_db.release()


# (option, type, default, help) of the command line; every one is also a key of the report.
OPTIONS: list[tuple[str, type | None, object, str]] = [
    ("--changes", int, 2000, "complaints filed at full speed"),
    ("--concurrency", int, 8, "API clients at once"),
    ("--paced-changes", int, 300, "then this many complaints at a steady pace"),
    ("--paced-rate", float, 5.0, "paced complaints per second"),
    ("--warmup", int, 50, "uncounted complaints first"),
    ("--emails", int, 1000, "raw emails posted to the inbound webhook"),
    ("--email-concurrency", int, 4, "email posts at once"),
    ("--imap-emails", int, 1000, "then this many read over IMAP (when Dovecot is installed)"),
    ("--workers", int, 2, "`concilia worker` processes (RQ workers)"),
    ("--rq-worker-class", str, None, "diagnosis: run `concilia rqworker` with this RQ worker "
     "class (e.g. rq.SimpleWorker, which does not fork per job) instead of `concilia worker`"),
    ("--web-workers", int, None, "`concilia serve --workers` (default: its own)"),
    ("--pg-url", str, "postgres://postgres@127.0.0.1:5432",
     "PostgreSQL server (trust auth), without a database name"),
    ("--pg-db", str, "concilia_bench_integrations", "database created and dropped for the run"),
    ("--redis-url", str, "redis://127.0.0.1:6379", "Redis server, without a database number"),
    ("--redis-db", str, "5", "Redis database for the queue and the cache (flushed before and "
     "after), or auto: the first of 4-15 no test run has claimed"),
    ("--settle", float, 3.0, "seconds without new events that end a batch"),
    ("--drain-timeout", float, 1800, "seconds a batch's deliveries may take after its changes"),
    ("--time-limit", float, 600, "seconds of requests per batch at most"),
    ("--start-timeout", float, 90, "seconds the server and the workers may take to start"),
    ("--quiet-wait", float, 60, "wait up to this many seconds for the machine to be quiet first"),
    ("--json", Path, None, "also write the results here"),
]  # fmt: skip


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, kind, default, text in OPTIONS:
        parser.add_argument(name, type=kind, default=default, help=text)
    parser.add_argument("--keep", action="store_true", help="keep the CONCILIA_HOME (logs)")
    args = parser.parse_args(argv)
    counts = (args.changes, args.paced_changes, args.emails, args.imap_emails, args.warmup)
    if min(counts) < 0 or args.workers < 1:
        parser.error("counts must not be negative and --workers at least 1")
    if args.paced_changes and args.paced_rate <= 0:
        parser.error("--paced-rate must be positive")
    if args.redis_db != "auto" and not args.redis_db.isdigit():
        parser.error("--redis-db is a number or auto")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the throw-away benchmark database")
    args.no_worker = True  # complaints.Instance: serve without a worker, the RQ workers run apart
    args.new_connections = False  # complaints.load_builtin: keep-alive
    return args


def measure(args: argparse.Namespace) -> int:
    """Every part, printed; 1 when anything was missing, failed or unexpected."""
    print(environment(_environment_args(args), ["postgres"]), flush=True)
    print(f"redis                {redis_version(args.redis_url)}")
    print(f"rq workers           {args.workers} ({args.rq_worker_class or 'concilia worker'})")
    load = os.getloadavg()
    print(f"load average         {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start")
    if args.quiet_wait:
        busy = wait_for_quiet(args.quiet_wait)
        print(f"machine busy         {busy:.0f}% just before the run", flush=True)
    print()
    report: dict = {
        "code": code_version(),
        "workers": args.workers,
        "rq_worker_class": args.rq_worker_class or "",
    }
    failures = 0
    with deployed(args) as deployment:
        report["redis_db"] = deployment.redis.number
        warm_up(deployment)
        runs = []
        if args.changes:
            runs.append(run_webhooks(deployment, "burst", args.changes, 0.0))
        if args.paced_changes:
            runs.append(run_webhooks(deployment, "paced", args.paced_changes, args.paced_rate))
        for run in runs:
            print(describe_webhooks(run), end="\n\n", flush=True)
            failures += len(run.got.missing) + run.errors
        report["webhooks"] = [run.row() for run in runs]
        if args.emails:
            mail = run_emails(deployment, args.emails)
            print(describe_emails(mail), end="\n\n", flush=True)
            report["emails"] = mail.row()
            failures += mail.errors
        imap = run_imap(deployment, args.imap_emails) if args.imap_emails else None
        if imap is not None:
            print(describe_imap(imap), end="\n\n", flush=True)
            report["imap"] = imap.row()
            failures += imap.processed.errors
    report["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        print(f"{failures} missing events, failures or unexpected outcomes.", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["receive"]:
        return receive_main(argv[1:])
    args = parse(argv)
    # SIGTERM (and SIGINT, which a shell's background job ignores) stop the run the same way,
    # through the `finally`s that stop the processes and drop the database.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    return exit_code(lambda: measure(args), BenchError)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _environment_args(args: argparse.Namespace) -> argparse.Namespace:
    """complaints.environment() names its load generator: here, the built-in one."""
    return argparse.Namespace(**{**vars(args), "client": "builtin"})


if __name__ == "__main__":
    sys.exit(main())
