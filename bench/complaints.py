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
import json
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PATH = "/api/v1/complaints"
BODY = (
    '{{"category":"refund","kind":"complaint","name":"Bench Customer",'
    '"email":"bench+{id}@example.com",'
    '"description":"My refund has not arrived after three weeks",'
    '"desired_resolution":"Refund please","order_number":"A-{id}",'
    '"purchase_date":"2026-10-01","amount":"12.50","accept_privacy":true}}'
)
PROTECTED_DATABASES = {"postgres", "test", "template0", "template1"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNT_SNIPPET = (
    "import json; from concilia.cases.models import Case; "
    "from django_tasks_db.models import DBTaskResult as T; "
    "print('COUNTS ' + json.dumps({'cases': Case.objects.count(), "
    "'ready': T.objects.filter(status='READY').count(), "
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
    tasks_ready: int  # confirmation emails still queued when the load ended
    tasks_failed: int

    @property
    def failed(self) -> int:
        return self.requests - self.load.created

    @property
    def rate(self) -> float:
        return self.load.created / self.load.duration_s if self.load.duration_s else 0.0

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
            "emails_queued_at_end": self.tasks_ready,
            "emails_failed": self.tasks_failed,
        }


# --------------------------------------------------------------------------------------------
# Processes and CPU accounting


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _proc_stat(pid: str) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def _role(pid: str) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "other"
    if "db_worker" in cmdline:
        return "task worker"
    if "gunicorn" in cmdline:
        return "web"
    return "serve"


def group_cpu(pgid: int) -> dict[str, dict[str, float]]:
    """CPU seconds of every live process in a process group, by pid, with its role."""
    found: dict[str, dict[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(entry)
        if stat and stat[0] == pgid:
            found[entry] = {_role(entry): stat[1]}
    return found


def cpu_delta(before: dict, after: dict) -> dict[str, float]:
    by_role: dict[str, float] = {}
    for pid, roles in after.items():
        for role, seconds in roles.items():
            by_role[role] = by_role.get(role, 0.0) + seconds - before.get(pid, {}).get(role, 0.0)
    return by_role


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    # user nice system idle iowait irq softirq steal (guest time is already counted in user)
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


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
        command = [sys.executable, "-m", "concilia", "serve", "--host", HOST]
        command += ["--port", str(self.port)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
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
        while group_cpu(self.pgid) and time.monotonic() < deadline:
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
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def load_builtin(
    instance: Instance, n: int, concurrency: int, prefix: str, time_limit: float
) -> Load:
    """Exactly n requests from `concurrency` connections, with the standard library only.

    Non-blocking sockets and one selector: one request per connection (gunicorn's sync workers
    close every connection after answering), every body with its own email and order number.
    Measured here it costs the machine about as much CPU per request as wrk (see README).
    """
    request_timeout = 30.0
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{instance.port}\r\n"
        f"Authorization: Bearer {instance.token}\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: {length}\r\n\r\n"
    )
    selector = selectors.DefaultSelector()
    load = Load()
    latencies: list[float] = []
    # socket -> [bytes still to send, start time, response so far]
    open_requests: dict[socket.socket, list] = {}
    issued = 0
    deadline = time.monotonic() + time_limit

    def start_next() -> None:
        nonlocal issued
        issued += 1
        body = BODY.format(id=f"{prefix}-{issued}").encode()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((HOST, instance.port))
        state = [head.format(length=len(body)).encode() + body, time.perf_counter(), b""]
        open_requests[sock] = state
        selector.register(sock, selectors.EVENT_WRITE, state)

    def finish(sock: socket.socket, error: str | None = None) -> None:
        state = open_requests.pop(sock)
        selector.unregister(sock)
        sock.close()
        response = state[2]
        if error is None and not (response.startswith(b"HTTP/1.") and response[9:12].isdigit()):
            error = "bad response" if response else "closed without response"
        if error:
            load.errors[error] += 1
        else:
            load.statuses[int(response[9:12])] += 1
            latencies.append((time.perf_counter() - state[1]) * 1000)
        if issued < n and time.monotonic() < deadline:
            start_next()

    cpu_before = time.process_time()
    started = time.monotonic()
    next_timeout_check = started + 1
    for _ in range(min(concurrency, n)):
        start_next()
    try:
        while open_requests:
            for key, events in selector.select(timeout=1.0):
                sock, state = key.fileobj, key.data
                try:
                    if events & selectors.EVENT_WRITE:
                        sent = sock.send(state[0])
                        state[0] = state[0][sent:]
                        if not state[0]:
                            selector.modify(sock, selectors.EVENT_READ, state)
                        continue
                    chunk = sock.recv(65536)
                except OSError as exc:
                    finish(sock, type(exc).__name__)
                    continue
                if chunk:
                    state[2] += chunk
                else:
                    finish(sock)
            now = time.monotonic()
            if now >= next_timeout_check:
                next_timeout_check = now + 1
                limit = time.perf_counter() - request_timeout
                for sock in [s for s, st in open_requests.items() if st[1] < limit]:
                    finish(sock, "timeout")
            if now > deadline + request_timeout:
                for sock in list(open_requests):
                    finish(sock, "timeout")
    finally:
        for sock in list(open_requests):
            selector.unregister(sock)
            sock.close()
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


def measure(instance: Instance, concurrency: int, run: int, args: argparse.Namespace) -> Result:
    generate = CLIENTS[args.client]
    limit = args.time_limit
    if args.warmup:
        warm = generate(instance, args.warmup, min(concurrency, args.warmup), f"w{run}", limit)
        if warm.created != args.warmup:
            print(
                f"  warm-up: {args.warmup - warm.created} of {args.warmup} requests failed "
                f"({dict(warm.statuses)} {dict(warm.errors)})",
                file=sys.stderr,
            )
    before = instance.counts()
    cpu_before = group_cpu(instance.pgid)
    busy_before = machine_busy()
    load = generate(instance, args.requests, concurrency, f"m{run}", limit)
    busy_after = machine_busy()
    cpu = cpu_delta(cpu_before, group_cpu(instance.pgid))
    cpu["client"] = load.client_cpu_s
    total = busy_after[1] - busy_before[1]
    cpu["machine busy %"] = 100 * (busy_after[0] - busy_before[0]) / total if total else 0.0
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
        client=args.client,
        load=load,
        cases_added=after["cases"] - before["cases"],
        cpu=cpu,
        tasks_ready=after["ready"],
        tasks_failed=after["failed"],
    )


def default_workers() -> int:
    # The same default as `concilia serve`.
    return min(2 * (os.cpu_count() or 1) + 1, 9)


def describe(result: Result) -> str:
    load = result.load
    cpu = result.cpu
    lines = [
        f"database             {result.db}",
        f"server workers       {result.workers}",
        f"requests             {result.requests}",
        f"concurrency          {result.concurrency}",
        f"client               {result.client}",
        f"complaints/s         {result.rate:.1f}",
        f"latency p50/p95/p99  {load.latencies_ms.get('p50', 0):.1f} / "
        f"{load.latencies_ms.get('p95', 0):.1f} / {load.latencies_ms.get('p99', 0):.1f} ms",
        f"failed (non-201)     {result.failed}"
        + (f"  statuses {dict(load.statuses)}" if set(load.statuses) - {201} else "")
        + (f"  transport errors {dict(load.errors)}" if load.errors else ""),
        f"cases added          {result.cases_added} "
        + ("(= 201 responses)" if result.verified else f"(≠ {load.created} 201 responses!)"),
        "CPU seconds          "
        + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items() if k != "machine busy %")
        + f" (machine {cpu.get('machine busy %', 0):.0f}% busy over {load.duration_s:.1f}s)",
        f"emails still queued  {result.tasks_ready}"
        + (f" ({result.tasks_failed} failed)" if result.tasks_failed else ""),
    ]
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
    parser.add_argument("--warmup", type=int, default=200, help="uncounted requests first")
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting")
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
    if args.requests < 1 or args.warmup < 0 or args.repeat < 1:
        parser.error("--requests and --repeat must be positive, --warmup not negative")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the throw-away benchmark database")

    try:
        check_client(args.client)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 2
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: list[Result] = []
    try:
        for db in databases:
            for workers in args.workers or [None]:
                with running(db, workers, args) as instance:
                    for concurrency in args.concurrency:
                        for run in range(args.repeat):
                            result = measure(instance, concurrency, run, args)
                            results.append(result)
                            print(describe(result), end="\n\n", flush=True)
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
        print("| db | workers | concurrency | complaints/s | p50 ms | p95 ms | p99 ms | failed |")
        print("|---|---|---|---|---|---|---|---|")
        for r in results:
            row = r.row()
            print(
                f"| {r.db} | {r.workers} | {r.concurrency} | {row['complaints_per_s']} | "
                f"{row['p50_ms']} | {row['p95_ms']} | {row['p99_ms']} | {r.failed} |"
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
