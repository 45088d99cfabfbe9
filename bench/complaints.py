#!/usr/bin/env python3
"""Benchmark: complaints filed through the HTTP API (POST /api/v1/complaints).

Starts Concilia the way the README does (`concilia serve`, data in a fresh CONCILIA_HOME), once on
SQLite and once on PostgreSQL, gets an API token from `concilia demo`, warms up, then sends exactly
--requests complaints with --concurrency clients and checks that the database gained one case per
201 answer. Exits 1 if any request failed or the count does not match.

    python bench/complaints.py                                  # both databases, defaults
    python bench/complaints.py --db sqlite --workers 2,3,4,5    # a sweep: one line per setting
    python bench/complaints.py --client hey --requests 4992     # another load generator

Everything stays on 127.0.0.1; the PostgreSQL database (--pg-db, default concilia_bench) is
created for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import math
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from common import CLK_TCK, proc_stat

HOST = "127.0.0.1"
PATH = "/api/v1/complaints"
BODY = (
    '{{"category":"refund","kind":"complaint","name":"Bench Customer",'
    '"email":"bench+{id}@example.com",'
    '"description":"My refund has not arrived after three weeks",'
    '"desired_resolution":"Refund please","order_number":"A-{id}",'
    '"purchase_date":"{date}","amount":"12.50","accept_privacy":true}}'
).replace(
    "{date}", (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)).date().isoformat()
)
PROTECTED_DATABASES = {"postgres", "test", "template0", "template1"}
DISTURBED_PCT = 5.0  # other processes using more of the machine than this spoil a run
COUNT_SNIPPET = (
    "import json; from concilia.cases.models import Case; "
    "from django_tasks_db.models import DBTaskResult as T; "
    "print('COUNTS ' + json.dumps({'cases': Case.objects.count(), "
    "'ready': T.objects.filter(status='READY').count(), "
    "'done': T.objects.filter(status='SUCCESSFUL').count(), "
    "'failed': T.objects.filter(status='FAILED').count()}))"
)


class BenchError(Exception):
    """The benchmark could not run (as opposed to a run with failed requests)."""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Load:
    """What a load generator reports for one batch of requests."""

    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # transport errors, by kind
    latencies_ms: dict[str, float] = field(default_factory=dict)  # p50, p95, p99
    duration_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def created(self) -> int:
        return self.statuses.get(201, 0)


@dataclass
class Result:
    db: str
    workers: int
    concurrency: int
    requests: int
    client: str
    load: Load
    cases_added: int
    cpu: dict[str, float]  # CPU seconds used during the load, by role
    busy_pct: float  # how busy the whole machine was during the load
    speed_us: float  # python_speed() just before the load
    tasks_ready: int  # confirmation emails still queued when the load ended
    tasks_failed: int
    tasks_done: int  # confirmation emails sent while the load ran
    code: str
    task_worker: bool = True

    @property
    def failed(self) -> int:
        return self.requests - self.load.created

    @property
    def rate(self) -> float:
        return self.load.created / self.load.duration_s if self.load.duration_s else 0.0

    @property
    def other_pct(self) -> float:
        """Share of the machine used by processes other than the server, database and client."""
        capacity = (os.cpu_count() or 1) * self.load.duration_s
        return 100 * self.cpu.get("other", 0.0) / capacity if capacity else 0.0

    @property
    def disturbed(self) -> bool:
        return self.other_pct > DISTURBED_PCT

    @property
    def verified(self) -> bool:
        return self.cases_added == self.load.created

    def row(self) -> dict[str, object]:
        return {
            "db": self.db,
            "workers": self.workers,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "client": self.client,
            "complaints_per_s": round(self.rate, 1),
            "p50_ms": round(self.load.latencies_ms.get("p50", 0.0), 1),
            "p95_ms": round(self.load.latencies_ms.get("p95", 0.0), 1),
            "p99_ms": round(self.load.latencies_ms.get("p99", 0.0), 1),
            "failed": self.failed,
            "statuses": {str(k): v for k, v in sorted(self.load.statuses.items())},
            "transport_errors": dict(self.load.errors),
            "cases_added": self.cases_added,
            "verified": self.verified,
            "duration_s": round(self.load.duration_s, 2),
            "cpu_s": {k: round(v, 1) for k, v in self.cpu.items()},
            "machine_busy_pct": round(self.busy_pct, 1),
            "python_speed_us": round(self.speed_us, 2),
            "other_processes_pct": round(self.other_pct, 1),
            "emails_sent_during_load": self.tasks_done,
            "emails_queued_at_end": self.tasks_ready,
            "emails_failed": self.tasks_failed,
            "task_worker": self.task_worker,
            "code": self.code,
        }


# --------------------------------------------------------------------------------------------
# Processes and CPU accounting


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _proc_stat(pid: str) -> tuple[str, int, float] | None:
    """(command name, process group, CPU seconds) of a process, from /proc/<pid>/stat."""
    stat = proc_stat(pid)
    return None if stat is None else (stat.comm, stat.group, stat.cpu_s)


def _role(pid: str, pgid: int) -> str:
    if int(pid) == pgid:
        return "serve"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "web"
    if "db_worker" in cmdline or "concilia worker" in cmdline or " rqworker" in cmdline:
        return "task worker"
    return "sweep" if " sweep" in cmdline else "web"  # web: granian's main process and workers


def server_cpu(pgid: int) -> dict[str, tuple[str, float]]:
    """pid -> (role, CPU seconds) for the server's process group and PostgreSQL's processes."""
    found: dict[str, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(entry)
        if stat is None:
            continue
        comm, group, seconds = stat
        if group == pgid:
            found[entry] = (_role(entry, pgid), seconds)
        elif comm == "postgres":
            found[entry] = ("postgresql", seconds)
    return found


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    by_role: dict[str, float] = {}
    for pid, (role, seconds) in after.items():
        previous = before.get(pid, (role, 0.0))[1]
        by_role[role] = by_role.get(role, 0.0) + seconds - previous
    return by_role


def python_speed() -> float:
    """Microseconds one CPU takes to sum 1000 integers (best of 5), to compare machines and runs:
    a shared virtual machine can be slower at one moment than at another."""
    values = list(range(1000))
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2000):
            sum(values)
        best = min(best, (time.perf_counter() - started) / 2000 * 1e6)
    return best


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    # user nice system idle iowait irq softirq steal (guest time is already counted in user)
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_for_quiet(max_wait: float, threshold: float = 20.0) -> float:
    """Wait up to `max_wait` seconds for the machine to be mostly idle (other programs, such as
    test suites, share its cores); returns the share of the machine last seen busy."""
    deadline = time.monotonic() + max_wait
    while True:
        before = machine_busy()
        time.sleep(1.0)
        after = machine_busy()
        busy = 100 * (after[0] - before[0]) / max(1, after[1] - before[1])
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        time.sleep(2.0)


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# A Concilia instance: home folder, database, token, server


class Instance:
    def __init__(self, db: str, workers: int | None, args: argparse.Namespace):
        self.db = db
        self.workers = workers
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix=f"concilia-bench-{db}-"))
        self.env = {**os.environ, "CONCILIA_HOME": str(self.home)}
        self.env.pop("DATABASE_URL", None)
        self.pg_created = False
        if db == "postgres":
            self.env["DATABASE_URL"] = f"{args.pg_url.rstrip('/')}/{args.pg_db}"
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.server: subprocess.Popen | None = None
        self.log_path = self.home / "serve.log"
        self.token = ""
        self.code = ""

    # -- database ------------------------------------------------------------------------------

    def _pg_admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.args.pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self) -> None:
        if self.db != "postgres":
            return
        name = self.args.pg_db
        self._pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._pg_admin(f'CREATE DATABASE "{name}"')
        self.pg_created = True

    def drop_database(self) -> None:
        if self.pg_created:
            self._pg_admin(f'DROP DATABASE IF EXISTS "{self.args.pg_db}" WITH (FORCE)')
            self.pg_created = False

    # -- management commands -------------------------------------------------------------------

    def manage(self, *command: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "concilia", *command],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(
                f"`concilia {' '.join(command)}` failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
        return done.stdout

    def get_token(self) -> str:
        output = self.manage("demo")
        match = re.search(r"API token[^\n]*:\s*(cnc_\S+)", output)
        if not match:
            raise BenchError(f"`concilia demo` printed no API token:\n{output}")
        self.token = match.group(1)
        return self.token

    def counts(self) -> dict[str, int]:
        output = self.manage("shell", "-c", COUNT_SNIPPET)
        line = next((ln for ln in output.splitlines() if ln.startswith("COUNTS ")), None)
        if line is None:
            raise BenchError(f"Could not count cases:\n{output}")
        return json.loads(line[len("COUNTS ") :])

    # -- server --------------------------------------------------------------------------------

    def start(self) -> None:
        self.code = code_version()
        command = [sys.executable, "-m", "concilia", "serve", "--host", HOST]
        command += ["--port", str(self.port)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        if self.args.no_worker:
            command.append("--no-worker")
        with open(self.log_path, "wb") as log:
            self.server = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped (and measured) as one
            )
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise BenchError(f"`concilia serve` exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v1/categories", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise BenchError(
            f"The server did not answer within {self.args.start_timeout}s:\n{self.log()}"
        )

    def log(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    @property
    def pgid(self) -> int:
        assert self.server is not None
        return self.server.pid  # start_new_session: the group id is the leader's pid

    def stop(self) -> None:
        if self.server is None or self.server.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGTERM)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            self.server.wait(timeout=10)
        # Give gunicorn's workers (same group) a moment to go before the folder is removed.
        deadline = time.monotonic() + 15
        while any(r != "postgresql" for r, _ in server_cpu(self.pgid).values()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            try:
                self.drop_database()
            finally:
                if self.args.keep:
                    print(f"kept {self.home} (serve.log is there)", file=sys.stderr)
                else:
                    shutil.rmtree(self.home, ignore_errors=True)


@contextlib.contextmanager
def running(db: str, workers: int | None, args: argparse.Namespace) -> Iterator[Instance]:
    instance = Instance(db, workers, args)
    try:
        instance.create_database()
        instance.get_token()
        instance.start()
        yield instance
    finally:
        instance.cleanup()


# --------------------------------------------------------------------------------------------
# Load generators


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(p / 100 * len(sorted_values))))  # nearest rank
    return sorted_values[rank - 1]


class _Exchange:
    """One connection of the built-in client and the request it is working on."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.out = b""  # request bytes not yet sent
        self.buffer = b""  # response bytes so far
        self.started = 0.0
        self.header_end = -1
        self.status = 0
        self.length: int | None = None  # Content-Length, when given
        self.chunked = False
        self.closing = False  # the server will close the connection after this response

    def begin(self, request: bytes) -> None:
        self.out, self.buffer, self.started = request, b"", time.perf_counter()
        self.header_end, self.status, self.length = -1, 0, None
        self.chunked = self.closing = False

    def feed(self, data: bytes) -> bool:
        """Take received bytes; True once the response is complete."""
        self.buffer += data
        if self.header_end < 0:
            self.header_end = self.buffer.find(b"\r\n\r\n")
            if self.header_end < 0:
                return False
            head = self.buffer[: self.header_end].decode("latin-1").split("\r\n")
            version, _, rest = head[0].partition(" ")
            self.status = int(rest[:3]) if rest[:3].isdigit() else -1
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head[1:])
            }
            if "content-length" in headers:
                self.length = int(headers["content-length"])
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            connection = headers.get("connection", "").lower()
            self.closing = connection == "close" or (
                version == "HTTP/1.0" and connection != "keep-alive"
            )
            if self.length is None and not self.chunked:
                self.closing = True  # the body ends when the connection does
        body = len(self.buffer) - self.header_end - 4
        if self.length is not None:
            return body >= self.length
        if self.chunked:
            return self.buffer.endswith(b"\r\n0\r\n\r\n")
        return False


def load_builtin(
    instance: Instance, n: int, concurrency: int, prefix: str, time_limit: float
) -> Load:
    """Exactly n complaints over `concurrency` connections, with the standard library only (see
    drive()); every body has its own email and order number."""
    keep_alive = not instance.args.new_connections
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{instance.port}\r\n"
        f"Authorization: Bearer {instance.token}\r\nContent-Type: application/json\r\n"
        + ("" if keep_alive else "Connection: close\r\n")
        + "Content-Length: "
    ).encode()

    def build(index: int) -> bytes:
        body = BODY.format(id=f"{prefix}-{index}").encode()
        return head + str(len(body)).encode() + b"\r\n\r\n" + body

    return drive(instance.port, n, concurrency, build, time_limit, keep_alive=keep_alive)


def drive(
    port: int,
    n: int,
    concurrency: int,
    build: Callable[[int], bytes],
    time_limit: float,
    keep_alive: bool = True,
) -> Load:
    """Exactly n requests to 127.0.0.1:`port` over `concurrency` connections; `build(i)` makes
    the i-th request's bytes (i from 1 to n).

    Non-blocking sockets and one selector; connections are kept alive unless the server closes
    them (or keep_alive is off: one per request). Measured here it costs about as little CPU per
    request as wrk (see README).
    """
    request_timeout = 30.0
    selector = selectors.DefaultSelector()
    load = Load()
    latencies: list[float] = []
    exchanges: set[_Exchange] = set()
    issued = 0
    deadline = time.monotonic() + time_limit

    def next_request() -> bytes | None:
        nonlocal issued
        if issued >= n or time.monotonic() > deadline:
            return None
        issued += 1
        return build(issued)

    def open_with(request: bytes) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((HOST, port))
        exchange = _Exchange(sock)
        exchange.begin(request)
        exchanges.add(exchange)
        selector.register(sock, selectors.EVENT_WRITE, exchange)

    def close(exchange: _Exchange) -> None:
        exchanges.discard(exchange)
        selector.unregister(exchange.sock)
        exchange.sock.close()

    def done(exchange: _Exchange, error: str | None = None) -> None:
        if error is None and exchange.status < 0:
            error = "bad response"
        if error:
            load.errors[error] += 1
        else:
            load.statuses[exchange.status] += 1
            latencies.append((time.perf_counter() - exchange.started) * 1000)
        request = next_request()
        if error or exchange.closing or not keep_alive or request is None:
            close(exchange)
            if request is not None:
                open_with(request)
        else:
            exchange.begin(request)
            selector.modify(exchange.sock, selectors.EVENT_WRITE, exchange)

    cpu_before = time.process_time()
    started = time.monotonic()
    next_timeout_check = started + 1
    for _ in range(min(concurrency, n)):
        first = next_request()
        if first is not None:
            open_with(first)
    try:
        while exchanges:
            for key, events in selector.select(timeout=1.0):
                exchange: _Exchange = key.data
                try:
                    if events & selectors.EVENT_WRITE:
                        sent = exchange.sock.send(exchange.out)
                        exchange.out = exchange.out[sent:]
                        if not exchange.out:
                            selector.modify(exchange.sock, selectors.EVENT_READ, exchange)
                        continue
                    chunk = exchange.sock.recv(65536)
                except OSError as exc:
                    done(exchange, type(exc).__name__)
                    continue
                if chunk:
                    if exchange.feed(chunk):
                        done(exchange)
                elif exchange.header_end >= 0 and exchange.length is None and not exchange.chunked:
                    done(exchange)  # a body delimited by the end of the connection
                else:
                    done(exchange, "closed before the response")
            now = time.monotonic()
            if now >= next_timeout_check:
                next_timeout_check = now + 1
                limit = time.perf_counter() - request_timeout
                for exchange in [e for e in exchanges if e.started < limit]:
                    done(exchange, "timeout")
    finally:
        for exchange in list(exchanges):
            close(exchange)
        selector.close()
    load.duration_s = time.monotonic() - started
    load.client_cpu_s = time.process_time() - cpu_before
    latencies.sort()
    load.latencies_ms = {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)}
    return load


def load_hey(instance: Instance, n: int, concurrency: int, prefix: str, time_limit: float) -> Load:
    """hey sends the same body every time: every case goes to one customer."""
    if n % concurrency:
        raise BenchError(
            f"hey sends n/c requests per client: use --requests divisible by {concurrency}"
        )
    body = instance.home / f"body-{prefix}.json"
    body.write_text(BODY.format(id=prefix))
    command = [
        "hey", "-n", str(n), "-c", str(concurrency), "-m", "POST", "-T", "application/json",
        "-H", f"Authorization: Bearer {instance.token}", "-D", str(body), "-t", "30",
        instance.base_url + PATH,
    ]  # fmt: skip
    cpu_before = children_cpu()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=time_limit + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError("hey did not finish in time") from None
    load = Load(client_cpu_s=children_cpu() - cpu_before)
    out = done.stdout
    total = re.search(r"Total:\s+([\d.]+) secs", out)
    if not total:
        raise BenchError(f"hey printed no figures:\n{out}{done.stderr}")
    load.duration_s = float(total.group(1))
    for p in ("50", "95", "99"):
        found = re.search(rf"{p}% in ([\d.]+) secs", out)
        load.latencies_ms[f"p{p}"] = float(found.group(1)) * 1000 if found else 0.0
    for status, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out):
        load.statuses[int(status)] += int(count)
    errors = out.partition("Error distribution:")[2]
    for count, _message in re.findall(r"\[(\d+)\]\s+(.+)", errors):
        load.errors["hey"] += int(count)
    return load


def load_httpx(
    instance: Instance, n: int, concurrency: int, prefix: str, time_limit: float
) -> Load:
    """httpx in threads: needs no extra tool, but shares the CPU with the server."""
    import httpx

    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    load = Load()
    deadline = time.monotonic() + time_limit
    headers = {"Authorization": f"Bearer {instance.token}", "Content-Type": "application/json"}
    url = instance.base_url + PATH

    def client_loop() -> None:
        nonlocal issued
        with httpx.Client(headers=headers, timeout=30) as client:
            while True:
                with lock:
                    if issued >= n or time.monotonic() > deadline:
                        return
                    issued += 1
                    index = issued
                body = BODY.format(id=f"{prefix}-{index}").encode()
                started = time.perf_counter()
                try:
                    status = client.post(url, content=body).status_code
                except httpx.HTTPError as exc:
                    with lock:
                        load.errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - started
                with lock:
                    load.statuses[status] += 1
                    latencies.append(elapsed * 1000)

    cpu_before = time.process_time()
    started = time.monotonic()
    workers = [threading.Thread(target=client_loop, daemon=True) for _ in range(concurrency)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()) + 35)
    load.duration_s = time.monotonic() - started
    load.client_cpu_s = time.process_time() - cpu_before
    latencies.sort()
    load.latencies_ms = {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)}
    return load


CLIENTS = {"builtin": load_builtin, "hey": load_hey, "httpx": load_httpx}


def check_client(client: str) -> None:
    if client == "hey" and not shutil.which("hey"):
        raise BenchError(
            "hey is not installed: `sudo apt-get install -y hey` (Debian/Ubuntu), "
            "or use the default --client builtin"
        )
    if client == "httpx":
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise BenchError('httpx is missing: pip install -e ".[bench]"') from None


# --------------------------------------------------------------------------------------------
# One measurement


_batches = itertools.count(1)  # every batch gets its own emails and order numbers


def measure(instance: Instance, concurrency: int, args: argparse.Namespace) -> Result:
    generate = CLIENTS[args.client]
    limit = args.time_limit
    warmup = args.warmup
    if warmup and args.client == "hey":  # hey needs a multiple of the concurrency
        warmup = max(1, round(warmup / concurrency)) * concurrency
    if warmup:
        warm = generate(instance, warmup, min(concurrency, warmup), f"w{next(_batches)}", limit)
        if warm.created != warmup:
            print(
                f"  warm-up: {warmup - warm.created} of {warmup} requests failed "
                f"({dict(warm.statuses)} {dict(warm.errors)})",
                file=sys.stderr,
            )
    speed = python_speed()
    before = instance.counts()
    cpu_before = server_cpu(instance.pgid)
    busy_before = machine_busy()
    load = generate(instance, args.requests, concurrency, f"m{next(_batches)}", limit)
    busy_after = machine_busy()
    cpu = cpu_delta(cpu_before, server_cpu(instance.pgid))
    cpu["client"] = load.client_cpu_s
    # Whatever else ran meanwhile (kernel work not charged to a process, other programs).
    busy = busy_after[0] - busy_before[0]
    cpu["other"] = max(0.0, busy / CLK_TCK - sum(cpu.values()))
    total = busy_after[1] - busy_before[1]
    after = instance.counts()
    if load.created != args.requests:
        errors = [
            ln for ln in instance.log(1_000_000).splitlines() if "Error" in ln or "error" in ln
        ]
        print("server log, last errors:\n  " + "\n  ".join(errors[-10:]), file=sys.stderr)
    return Result(
        db=instance.db,
        workers=instance.workers or default_workers(),
        concurrency=concurrency,
        requests=args.requests,
        client=args.client
        + (" (new connections)" if args.new_connections and args.client == "builtin" else ""),
        load=load,
        cases_added=after["cases"] - before["cases"],
        cpu=cpu,
        busy_pct=100 * busy / total if total else 0.0,
        speed_us=speed,
        tasks_ready=after["ready"],
        tasks_failed=after["failed"],
        tasks_done=after["done"] - before["done"],
        code=instance.code,
        task_worker=not args.no_worker,
    )


def default_workers() -> int:
    """The number of web processes `concilia serve` starts when not told."""
    from concilia.core.management.commands.serve import default_workers as serve_default

    return serve_default()


def per_complaint(result: Result) -> str:
    """Milliseconds of CPU per complaint filed: web processes, and PostgreSQL if used."""
    created = max(result.load.created, 1)
    parts = [f"web {result.cpu.get('web', 0.0) / created * 1000:.2f} ms"]
    if result.cpu.get("postgresql", 0.0) >= 0.05:
        parts.append(f"postgresql {result.cpu['postgresql'] / created * 1000:.2f} ms")
    return ", ".join(parts)


def describe(result: Result) -> str:
    load = result.load
    cpu = result.cpu
    lines = [
        f"database             {result.db}",
        f"server workers       {result.workers}"
        + ("" if result.task_worker else " (no background task worker)"),
        f"requests             {result.requests}",
        f"concurrency          {result.concurrency}",
        f"client               {result.client}",
        f"code                 {result.code}",
        f"complaints/s         {result.rate:.1f}",
        f"latency p50/p95/p99  {load.latencies_ms.get('p50', 0):.1f} / "
        f"{load.latencies_ms.get('p95', 0):.1f} / {load.latencies_ms.get('p99', 0):.1f} ms",
        f"failed (non-201)     {result.failed}"
        + (f"  statuses {dict(load.statuses)}" if set(load.statuses) - {201} else "")
        + (f"  transport errors {dict(load.errors)}" if load.errors else ""),
        f"cases added          {result.cases_added} "
        + ("(= 201 responses)" if result.verified else f"(≠ {load.created} 201 responses!)"),
        "CPU seconds          "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if v >= 0.05 or k in ("web", "client"))
        + f" (machine {result.busy_pct:.0f}% busy over {load.duration_s:.1f}s)",
        f"CPU per complaint    {per_complaint(result)}",
        f"machine speed        {result.speed_us:.2f} µs to sum 1000 integers before the load",
        f"emails               {result.tasks_done} sent during the load, "
        f"{result.tasks_ready} still queued at its end"
        + (f" ({result.tasks_failed} failed)" if result.tasks_failed else ""),
    ]
    if result.disturbed:
        lines.append(
            f"WARNING              other processes used {result.other_pct:.0f}% of the machine "
            "during this run: its figures are disturbed, run it again on a quiet machine"
        )
    return "\n".join(lines)


def code_version() -> str:
    """The commit the server runs, "+changes" if the application differs from it."""
    repo = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run([*repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode != 0:
        return "unknown"
    changed = subprocess.run(
        [*repo, "status", "--porcelain", "--", "concilia", "pyproject.toml"],
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def environment(args: argparse.Namespace, databases: list[str]) -> str:
    """What the figures were measured on (for the README's results table)."""
    import platform
    import sqlite3

    import django

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    lines = [
        f"date                 {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"machine              {os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM",
        f"python / django      {platform.python_version()} / {django.get_version()}",
        f"sqlite               {sqlite3.sqlite_version}",
    ]
    if "postgres" in databases:
        try:
            import psycopg

            with psycopg.connect(f"{args.pg_url.rstrip('/')}/postgres") as conn:
                row = conn.execute("SHOW server_version").fetchone()
            lines.append(f"postgresql           {row[0] if row else '?'}")
        except Exception as exc:
            raise BenchError(f"PostgreSQL at {args.pg_url} is not reachable: {exc}") from exc
    lines.append(f"code                 {code_version()}")
    lines.append(f"client               {args.client}")
    return "\n".join(lines)


def parse_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 16 or 2,3,4")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per run")
    parser.add_argument(
        "--concurrency",
        type=parse_list,
        default=[16],
        help="concurrent clients (a comma-separated list runs each in turn)",
    )
    parser.add_argument(
        "--workers",
        type=parse_list,
        default=None,
        help="`concilia serve --workers` (list allowed; default: serve's own, "
        f"{default_workers()} here)",
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="builtin",
        help="load generator: builtin (stdlib sockets, default), hey (apt; same body every "
        "time, --requests must be a multiple of the concurrency) or httpx (threads)",
    )
    parser.add_argument(
        "--new-connections",
        action="store_true",
        help="built-in client: a new connection for every request instead of keep-alive",
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="`concilia serve --no-worker`: the web processes alone, confirmation emails queue up",
    )
    parser.add_argument("--warmup", type=int, default=200, help="uncounted requests first")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting")
    parser.add_argument(
        "--retry-disturbed",
        type=int,
        default=0,
        metavar="N",
        help=f"measure a run again (up to N times) when other processes used more than "
        f"{DISTURBED_PCT:.0f}%% of the machine during it",
    )
    parser.add_argument(
        "--pg-url",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server (trust auth), without a database name",
    )
    parser.add_argument(
        "--pg-db", default="concilia_bench", help="database created and dropped for the run"
    )
    parser.add_argument("--time-limit", type=float, default=300, help="seconds per batch at most")
    parser.add_argument("--start-timeout", type=float, default=90)
    parser.add_argument(
        "--keep", action="store_true", help="keep each CONCILIA_HOME (server log) afterwards"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.repeat < 1 or args.retry_disturbed < 0:
        parser.error("--requests and --repeat must be positive, --warmup not negative")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the throw-away benchmark database")

    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    try:
        check_client(args.client)
        print(environment(args, databases), end="\n\n", flush=True)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    results: list[Result] = []
    try:
        for db in databases:
            for workers in args.workers or [None]:
                with running(db, workers, args) as instance:
                    for concurrency in args.concurrency:
                        for _run in range(args.repeat):
                            for attempt in range(args.retry_disturbed + 1):
                                result = measure(instance, concurrency, args)
                                print(describe(result), end="\n\n", flush=True)
                                if not result.disturbed:
                                    break
                                if attempt < args.retry_disturbed:
                                    print("measuring this setting again\n", flush=True)
                            results.append(result)
    except BenchError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if args.json and results:
            args.json.write_text(json.dumps([r.row() for r in results], indent=2) + "\n")

    if len(results) > 1:
        print(
            "| db | workers | concurrency | complaints/s | p50 ms | p95 ms | p99 ms | failed | note |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            row = r.row()
            print(
                f"| {r.db} | {r.workers} | {r.concurrency} | {row['complaints_per_s']} | "
                f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {r.failed} | "
                + (f"disturbed ({r.other_pct:.0f}% other) |" if r.disturbed else " |")
            )
    bad = [r for r in results if r.failed or not r.verified]
    if bad:
        print(
            f"{len(bad)} run(s) had failed requests or a case count that does not match.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
