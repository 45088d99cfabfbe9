#!/usr/bin/env python3
"""Benchmark: Concilia side by side with django-helpdesk, its Python peer, and a floor.

In one run and on the same server stack (granian, WSGI, the same number of worker processes,
bound to 127.0.0.1), for each database (SQLite, PostgreSQL):

1. intake: complaints (Concilia) and tickets (django-helpdesk) created per second through the
   public web form and through the API, with concurrent clients; p50/p95/p99 latency. The floor
   is a bare Django view on the same server that inserts one row and answers JSON.
2. the agent's list: p95 of the list page for open cases assigned to me, by customer email and
   overdue, at each --sizes (rows added in bulk to both systems).
3. memory (RSS) of every server process after the run.

django-helpdesk (the latest release on PyPI, with the Django it needs) is installed in its own
virtual environment (--venv, default /tmp/peer-venv, created when missing) and runs in a minimal
site written into a temporary folder from bench/peer/site/. Concilia runs as `concilia serve`.

    python bench/peer/compare.py                                  # both databases, 10k and 100k
    python bench/peer/compare.py --db sqlite --sizes 10000,100000,1000000
    python bench/peer/compare.py --db sqlite --sizes 500 --requests 50 --no-peer  # smoke

Everything stays on 127.0.0.1; the PostgreSQL databases (peer_cc, peer_dh, peer_floor) are made
for the run and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT), str(HERE.parent)]

import helpdesk as concilia_bench  # noqa: E402 - bench/helpdesk.py: filters, sign-in, browser
from common import CLK_TCK, exit_code, proc_stat  # noqa: E402
from complaints import (  # noqa: E402 - the intake benchmark's load generator and helpers
    BODY,
    HOST,
    PROTECTED_DATABASES,
    BenchError,
    code_version,
    drive,
    free_port,
    machine_busy,
    percentile,
    python_speed,
)

DEFAULT_VENV = Path(tempfile.gettempdir()) / "peer-venv"  # outside the repository
SYSTEMS = ("concilia", "django-helpdesk", "floor")
SUCCESS = {"form": 302, "api": 201}  # the floor answers 201 to both
FORM_FIELDS = {  # what a customer types, the same in both forms (and the floor)
    "name": "Bench Customer",
    "description": "My refund has not arrived after three weeks",
    "desired_resolution": "Refund please",
}
PURCHASE_DATE = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).date().isoformat()
TABLES = {"concilia": "cases_case", "django-helpdesk": "helpdesk_ticket", "floor": "floor_row"}
LIST_FILTERS = ("mine", "email", "overdue")


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Intake:
    db: str
    system: str
    surface: str  # "form" or "api"
    requests: int
    concurrency: int
    created: int = 0  # answers with the success status
    rows_added: int = 0  # rows the database gained
    per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    other_pct: float = 0.0  # the machine's use by other programs meanwhile
    # CPU of the web processes (and PostgreSQL's) per row created: what a complaint costs in the
    # request, less sensitive than the rate to other programs on a shared machine.
    cpu_ms: float = 0.0
    # CPU of Concilia's background processes per row (triage, confirmation email, sweep): work
    # done after the answer, which django-helpdesk does in the request or not at all.
    background_ms: float = 0.0


@dataclass
class Listing:
    db: str
    system: str
    rows: int  # cases or tickets in the table
    filter: str
    requests: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    shown: int = 0  # rows on the page (or in its data request)
    note: str = ""


@dataclass
class Memory:
    db: str
    system: str
    when: str
    web_mb: float  # every web process (granian's main process and its workers), RSS
    web_processes: int
    largest_mb: float
    other_mb: float = 0.0  # Concilia's task worker, sweep and `concilia serve` itself


# ---------------------------------------------------------------------------------------------
# The peer's virtual environment and site


def concilia_granian() -> str:
    from importlib.metadata import version

    return version("granian")


def ensure_venv(venv: Path, install: bool) -> dict[str, str]:
    """The peer's virtual environment (made when missing and allowed) and what it holds."""
    python = venv / "bin" / "python"
    if not python.exists():
        if not install:
            raise BenchError(f"no django-helpdesk environment at {venv} (drop --no-install)")
        if ROOT in venv.resolve().parents or venv.resolve() == ROOT:
            raise BenchError("the peer's environment must live outside the repository")
        print(f"installing django-helpdesk into {venv} (PyPI)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "django-helpdesk",
             f"granian=={concilia_granian()}", "psycopg[binary]"],
            check=True,
        )  # fmt: skip
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True
    )
    versions = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout or "[]")}
    wanted = ("django-helpdesk", "django", "djangorestframework", "granian", "psycopg")
    missing = [name for name in wanted[:4] if name not in versions]
    if missing:
        raise BenchError(f"{venv} lacks {missing}: remove it to reinstall")
    return {name: versions[name] for name in wanted if name in versions}


@dataclass
class Site:
    """One system's server: its command, environment and data."""

    system: str
    db: str
    home: Path
    env: dict[str, str]
    command: list[str]
    table: str
    sqlite: Path | None  # the SQLite file, else None (PostgreSQL: dsn)
    dsn: str = ""
    port: int = 0
    process: subprocess.Popen | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def start(self, timeout: float, probe: str) -> None:
        self.port = free_port()
        command = [part.replace("{port}", str(self.port)) for part in self.command]
        with open(self.home / "serve.log", "ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.system} server exited:\n{self.log()}")
            with contextlib.suppress(OSError):
                status, _, _ = concilia_bench.Browser(self.port).request("GET", probe)
                if status < 500:
                    return
            time.sleep(0.3)
        raise BenchError(f"{self.system} did not answer in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.home / "serve.log").read_text(errors="replace")[-3000:]
        return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        deadline = time.monotonic() + 15  # granian's workers share the group: let them go
        while _group_pids(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)

    def count(self) -> int:
        if self.sqlite is not None:
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.sqlite, timeout=30)) as conn:
                return conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]  # noqa: S608
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()  # noqa: S608
            return row[0] if row else 0

    def memory(self, when: str) -> Memory:
        assert self.process is not None
        web, other = [], 0.0
        for pid in _group_pids(self.process.pid):
            rss = _rss_mb(pid)
            if _is_web(pid):
                web.append(rss)
            else:
                other += rss
        return Memory(
            self.db,
            self.system,
            when,
            round(sum(web), 1),
            len(web),
            round(max(web, default=0.0), 1),
            round(other, 1),
        )

    def run(self, *args: str, timeout: float = 3600) -> dict[str, Any]:
        """A helper script in this system's environment; its RESULT line."""
        done = subprocess.run(
            list(args), env=self.env, cwd=self.home, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if done.returncode != 0 or line is None:
            raise BenchError(
                f"{' '.join(args[1:3])} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        return json.loads(line[len("RESULT ") :])


def _group_pids(pgid: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat.group == pgid:
                found.append(entry)
    return found


def _rss_mb(pid: str) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def granian(python: Path, workers: int, target: str) -> list[str]:
    """The server `concilia serve` starts (concilia/core/management/commands/serve.py), with
    the same options."""
    return [
        str(python), "-m", "granian", "--interface", "wsgi", "--host", HOST, "--port", "{port}",
        "--workers", str(workers), "--blocking-threads", "1", "--respawn-failed-workers",
        "--workers-kill-timeout", "10", "--no-ws", "--log-level", "warning", target,
    ]  # fmt: skip


def make_sites(db: str, scratch: Path, args: argparse.Namespace) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    pg = args.pg_url.rstrip("/")
    # Concilia as a user runs it; no rate limits (django-helpdesk has none).
    home = scratch / "concilia"
    home.mkdir()
    env = {**base_env, "CONCILIA_HOME": str(home), "CONCILIA_TOKEN_RATE": "0"}
    env["CONCILIA_ANON_SUBMISSION_RATE"] = "0"
    if db == "postgres":
        env["DATABASE_URL"] = f"{pg}/{args.pg_prefix}_cc"
    command = [sys.executable, "-m", "concilia", "serve", "--host", HOST, "--port", "{port}"]
    sites["concilia"] = Site(
        "concilia", db, home, env, [*command, "--workers", str(args.workers)], TABLES["concilia"],
        home / "concilia.sqlite3" if db == "sqlite" else None, env.get("DATABASE_URL", ""),
    )  # fmt: skip
    python = args.venv / "bin" / "python"
    site_dir = scratch / "site"
    shutil.copytree(HERE / "site", site_dir)
    for system, settings, name in (
        ("django-helpdesk", "peersite.settings", "dh"),
        ("floor", "floor.settings", "floor"),
    ):
        if system == "django-helpdesk" and args.no_peer:
            continue
        if system == "floor" and not python.exists():
            python = Path(sys.executable)  # the floor needs only Django: Concilia's will do
        home = scratch / name
        home.mkdir()
        dsn = f"{pg}/{args.pg_prefix}_{name}" if db == "postgres" else ""
        env = {
            **base_env,
            "PEER_HOME": str(home),
            "PEER_DATABASE": dsn or "sqlite",
            "DJANGO_SETTINGS_MODULE": settings,
            "PYTHONPATH": str(site_dir),
        }
        sites[system] = Site(
            system, db, home, env, granian(python, args.workers, "wsgi:application"),
            TABLES[system], home / "site.sqlite3" if db == "sqlite" else None, dsn,
        )  # fmt: skip
        sites[system].info["python"] = str(python)
    return sites


def set_up(sites: dict[str, Site]) -> None:
    concilia = sites["concilia"]
    concilia.info.update(concilia.run(sys.executable, str(HERE / "seed_concilia.py"), "setup"))
    if "django-helpdesk" in sites:
        peer = sites["django-helpdesk"]
        peer.info.update(peer.run(peer.info["python"], str(HERE / "seed_helpdesk.py"), "setup"))
    floor = sites["floor"]
    done = subprocess.run(
        [floor.info["python"], "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
        env=floor.env, cwd=floor.home, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"the floor's table could not be made:\n{done.stderr[-2000:]}")


def fill(sites: dict[str, Site], size: int) -> dict[str, dict[str, Any]]:
    filled = {}
    concilia = sites["concilia"]
    filled["concilia"] = concilia.run(
        sys.executable, str(HERE / "seed_concilia.py"), "fill", str(size)
    )
    if "django-helpdesk" in sites:
        peer = sites["django-helpdesk"]
        filled["django-helpdesk"] = peer.run(
            peer.info["python"], str(HERE / "seed_helpdesk.py"), "fill", str(size)
        )
    return filled


# ---------------------------------------------------------------------------------------------
# Intake: the requests of each system and surface


def _form_page(site: Site, path: str) -> tuple[str, str, str]:
    """(csrftoken cookie, the form's csrfmiddlewaretoken, Concilia's notice version) from a GET of
    the form, as a customer's browser has them before sending it."""
    browser = concilia_bench.Browser(site.port, {"Accept-Language": "en"})
    status, _, page = browser.request("GET", path)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    notice = re.search(rb'name="notice_version" value="([^"]*)"', page)
    if status != 200 or token is None or "csrftoken" not in browser.cookies:
        raise BenchError(f"{site.system}: no form at {path} ({status})")
    return (
        browser.cookies["csrftoken"],
        token.group(1).decode(),
        notice.group(1).decode() if notice else "",
    )


def _request(site: Site, path: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{site.port}\r\nContent-Type: {content_type}\r\n"
        f"Accept-Language: en\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def intake_requests(site: Site, surface: str, prefix: str) -> Any:
    """build(i) for drive(): the i-th request of this system's form or API."""
    email = "bench+" + prefix + "-{i}@example.com"
    if site.system == "floor":
        content = "application/json" if surface == "api" else "application/x-www-form-urlencoded"

        def floor(i: int) -> bytes:
            data = {"email": email.format(i=i), "description": FORM_FIELDS["description"]}
            encoded = json.dumps(data) if surface == "api" else urllib.parse.urlencode(data)
            return _request(site, "/floor", content, encoded.encode())

        return floor
    if site.system == "concilia" and surface == "api":
        auth = f"Authorization: Bearer {site.info['token']}\r\n"
        return lambda i: _request(
            site, "/api/v1/complaints", "application/json",
            BODY.format(id=f"{prefix}-{i}").encode(), auth,
        )  # fmt: skip
    if site.system == "django-helpdesk" and surface == "api":
        auth = f"Authorization: Token {site.info['token']}\r\n"

        def peer_api(i: int) -> bytes:
            data = {
                "queue": site.info["queue_id"],
                "title": FORM_FIELDS["description"],
                "description": FORM_FIELDS["description"]
                + ". "
                + FORM_FIELDS["desired_resolution"],
                "submitter_email": email.format(i=i),
                "priority": 3,
            }
            return _request(
                site, "/helpdesk/api/tickets/", "application/json", json.dumps(data).encode(), auth
            )

        return peer_api
    path = "/complaints/new" if site.system == "concilia" else "/helpdesk/tickets/submit/"
    cookie, token, notice = _form_page(site, path)
    extra = f"Cookie: csrftoken={cookie}\r\n"

    def form(i: int) -> bytes:
        if site.system == "concilia":
            data = {
                "kind": "complaint", "category": "refund", "email": email.format(i=i),
                "order_number": f"A-{prefix}-{i}", "purchase_date": PURCHASE_DATE, "amount": "12.50",
                "notice_version": notice, "accept_privacy": "on",
                "submission_id": str(uuid.uuid4()), **FORM_FIELDS,
            }  # fmt: skip
        else:
            data = {
                "queue": site.info["queue_id"], "title": FORM_FIELDS["description"],
                "body": FORM_FIELDS["description"] + ". " + FORM_FIELDS["desired_resolution"],
                "priority": 3, "due_date": "", "submitter_email": email.format(i=i),
            }  # fmt: skip
        data["csrfmiddlewaretoken"] = token
        body = urllib.parse.urlencode(data).encode()
        return _request(site, path, "application/x-www-form-urlencoded", body, extra)

    return form


def measure_intake(site: Site, surface: str, args: argparse.Namespace, batch: str) -> Intake:
    expected = 201 if site.system == "floor" else SUCCESS[surface]
    warm = drive(
        site.port,
        args.warmup,
        args.concurrency,
        intake_requests(site, surface, f"w{batch}"),
        args.time_limit,
    )
    if warm.statuses.get(expected, 0) != args.warmup:  # counted below: the run goes on
        print(
            f"{site.system} {surface}: warm-up answered {dict(warm.statuses)} {dict(warm.errors)}, "
            f"expected {args.warmup} x {expected}:\n{site.log()[-1500:]}",
            file=sys.stderr,
        )
    build = intake_requests(site, surface, f"m{batch}")
    before = site.count()
    busy_before = machine_busy()
    _postgres_cpu_delta(site)  # from here on
    web_before, background_before = _group_cpu(site)
    load = drive(site.port, args.requests, args.concurrency, build, args.time_limit)
    busy_after = machine_busy()
    postgres = _postgres_cpu_delta(site)
    web_after, background_after = _group_cpu(site)
    server = web_after - web_before + postgres
    background = background_after - background_before
    used = server + background + load.client_cpu_s
    rows = site.count() - before
    busy = (busy_after[0] - busy_before[0]) / CLK_TCK
    capacity = (busy_after[1] - busy_before[1]) / CLK_TCK
    created = load.statuses.get(expected, 0)
    return Intake(
        site.db, site.system, surface, args.requests, args.concurrency, created, rows,
        round(created / load.duration_s, 1) if load.duration_s else 0.0,
        round(load.latencies_ms["p50"], 1), round(load.latencies_ms["p95"], 1),
        round(load.latencies_ms["p99"], 1),
        {str(k): v for k, v in load.statuses.items()}, dict(load.errors),
        round(100 * max(0.0, busy - used) / capacity, 1) if capacity else 0.0,
        round(server / created * 1000, 2) if created else 0.0,
        round(background / created * 1000, 2) if created else 0.0,
    )  # fmt: skip


_pg_seen: dict[str, float] = {}


def _postgres_cpu_delta(site: Site) -> float:
    """PostgreSQL's CPU since the last call (0 on SQLite): not "other programs"."""
    if site.sqlite is not None:
        return 0.0
    total = 0.0
    now: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat.comm == "postgres":
                now[entry] = stat.cpu_s
                total += stat.cpu_s - _pg_seen.get(entry, stat.cpu_s)
    _pg_seen.clear()
    _pg_seen.update(now)
    return total


def _group_cpu(site: Site) -> tuple[float, float]:
    """CPU seconds so far of the server's web processes (granian's), and of the rest of its
    process group (Concilia's `serve`, task worker and sweep)."""
    assert site.process is not None
    web = background = 0.0
    for pid in _group_pids(site.process.pid):
        stat = proc_stat(pid)
        if stat is None:
            continue
        if _is_web(pid):
            web += stat.cpu_s
        else:
            background += stat.cpu_s
    return web, background


def _is_web(pid: str) -> bool:
    with contextlib.suppress(OSError):
        return b"granian" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


# ---------------------------------------------------------------------------------------------
# The agent's list page


class Agent:
    """A signed-in agent's browser on one system, and each filter's list as it shows it."""

    def __init__(self, site: Site, emails: list[str]):
        self.site = site
        self.emails = emails or ["nobody@example.com"]
        self.browser = concilia_bench.Browser(site.port, {"Accept-Language": "en"})
        if site.system == "concilia":
            self.browser.sign_in(site.info["agent"], site.info["password"])
        else:
            self._sign_in_peer()

    def _sign_in_peer(self) -> None:
        status, _, page = self.browser.request("GET", "/helpdesk/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise BenchError(f"django-helpdesk: no sign-in form ({status})")
        form = urllib.parse.urlencode(
            {
                "csrfmiddlewaretoken": token.group(1).decode(),
                "username": self.site.info["agent"],
                "password": self.site.info["password"],
                "next": "/helpdesk/tickets/",
            }
        ).encode()
        status, _, _ = self.browser.request(
            "POST", "/helpdesk/login/", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        if status != 302 or "sessionid" not in self.browser.cookies:
            raise BenchError(f"django-helpdesk: signing in failed ({status})")

    def show(self, name: str, index: int) -> tuple[int, int]:
        """One list as the agent sees it: (status, rows shown)."""
        email = self.emails[index % len(self.emails)]
        if self.site.system == "concilia":
            flt = next(f for f in concilia_bench.FILTERS if f.name == name)
            params = concilia_bench._params_for(flt, [email], 0)
            status, _, body = self.browser.request(
                "GET", f"/helpdesk/?{urllib.parse.urlencode(params)}"
            )
            return status, concilia_bench._rows("page", status, body)
        # django-helpdesk: the page, then the table's data, which its page fetches from
        # datatables_ticket_list (the page itself holds no tickets). It has no filter by email
        # nor for overdue tickets: its search box (q) and open tickets sorted by due date.
        agent = self.site.info["agent_id"]
        params: list[tuple[str, Any]] = {
            "mine": [("assigned_to", agent), ("status", 1), ("status", 2)],
            "email": [("q", email)],
            "overdue": [("status", 1), ("status", 2), ("sort", "due_date")],
        }[name]
        status, _, page = self.browser.request(
            "GET", f"/helpdesk/tickets/?{urllib.parse.urlencode(params)}"
        )
        found = re.search(rb'"url": "(/helpdesk/datatables_ticket_list/[^"]+)"', page)
        if status != 200 or found is None:
            return status or 599, 0
        data_url = found.group(1).decode() + "?draw=1&start=0&length=50"
        status, _, body = self.browser.request("GET", data_url)
        if status != 200:
            return status, 0
        return status, len(json.loads(body).get("data") or [])


def measure_list(agent: Agent, name: str, size: int, args: argparse.Namespace) -> Listing:
    listing = Listing(agent.site.db, agent.site.system, size, name)
    stop_warm = time.monotonic() + args.budget / 4
    for index in range(args.list_warmup):
        agent.show(name, index)
        if time.monotonic() > stop_warm:
            break
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    stop_at = time.monotonic() + args.budget
    for index in range(args.list_requests):
        started = time.perf_counter()
        status, shown = agent.show(name, index)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if index == 0:
            listing.shown = shown
        if time.monotonic() > stop_at and len(latencies) >= 5:
            listing.note = f"stopped after {args.budget:.0f}s"
            break
    latencies.sort()
    listing.requests = len(latencies)
    listing.p50_ms = round(percentile(latencies, 50), 1)
    listing.p95_ms = round(percentile(latencies, 95), 1)
    listing.statuses = statuses
    return listing


# ---------------------------------------------------------------------------------------------
# Profile


def profile_intake(site: Site, scratch: Path) -> dict[str, Any]:
    out = scratch / "concilia-intake-profile.txt"
    result = site.run(
        sys.executable, str(HERE / "seed_concilia.py"), "profile", "200", str(out),
        site.info["token"],
    )  # fmt: skip
    result["text"] = out.read_text()
    return result


# ---------------------------------------------------------------------------------------------
# The run


def pg_admin(pg_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def run_database(db: str, args: argparse.Namespace, report: dict[str, Any]) -> None:
    scratch = Path(tempfile.mkdtemp(prefix=f"peer-bench-{db}-"))
    names = [f"{args.pg_prefix}_{n}" for n in ("cc", "dh", "floor")]
    sites: dict[str, Site] = {}
    try:
        if db == "postgres":
            for name in names:
                pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                pg_admin(args.pg_url, f'CREATE DATABASE "{name}"')
        sites = make_sites(db, scratch, args)
        print(f"\n== {db}: setting up {', '.join(sites)}", flush=True)
        set_up(sites)
        # 1. Intake, on each system's fresh database, one server at a time.
        for system, site in sites.items():
            site.start(args.start_timeout, "/helpdesk/login/" if system != "floor" else "/")
            try:
                for surface in ("form", "api"):
                    result = measure_intake(site, surface, args, f"{db}-{system}-{surface}")
                    report["intake"].append(asdict(result))
                    print(
                        f"  intake {system:<16} {surface:<4} {result.per_s:>7.1f}/s  p50/p95/p99 "
                        f"{result.p50_ms}/{result.p95_ms}/{result.p99_ms} ms  rows +{result.rows_added} "
                        f"CPU {result.cpu_ms} ms each (+{result.background_ms} after)  statuses {result.statuses} {result.errors or ''} "
                        f"other {result.other_pct}%",
                        flush=True,
                    )
                report["memory"].append(asdict(site.memory("after intake")))
            finally:
                site.stop()
        floor_api = _rate(report, db, "floor", "api")
        cc_api = _rate(report, db, "concilia", "api")
        cc_form, floor_form = (
            _rate(report, db, "concilia", "form"),
            _rate(report, db, "floor", "form"),
        )
        if args.profile and (cc_api < floor_api / 2 or cc_form < floor_form / 2):
            print("  Concilia's intake is under half the floor: profiling it", flush=True)
            report["profiles"][db] = profile_intake(sites["concilia"], scratch)
        # 2. The agent's list at each size; 3. memory after it.
        for size in args.sizes:
            print(f"  filling to {size:,} rows", flush=True)
            filled = fill(sites, size)
            report["fills"].append({"db": db, "size": size, **filled})
            for system in ("concilia", "django-helpdesk"):
                if system not in sites:
                    continue
                site = sites[system]
                site.start(args.start_timeout, "/helpdesk/login/")
                try:
                    agent = Agent(site, filled[system]["emails"])
                    for name in LIST_FILTERS:
                        listing = measure_list(agent, name, size, args)
                        report["lists"].append(asdict(listing))
                        print(
                            f"  list {size:>9,} {system:<16} {name:<8} p50 {listing.p50_ms:>7} ms  "
                            f"p95 {listing.p95_ms:>7} ms  rows {listing.shown:>3}  "
                            f"n {listing.requests} {listing.statuses} {listing.note}",
                            flush=True,
                        )
                    report["memory"].append(asdict(site.memory(f"after the lists at {size:,}")))
                finally:
                    site.stop()
    finally:
        for site in sites.values():
            site.stop()
        if db == "postgres" and not args.keep:
            for name in names:
                with contextlib.suppress(Exception):
                    pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _rate(report: dict[str, Any], db: str, system: str, surface: str) -> float:
    return next(
        (r["per_s"] for r in report["intake"]
         if (r["db"], r["system"], r["surface"]) == (db, system, surface)),
        0.0,
    )  # fmt: skip


def _cpu(report: dict[str, Any], db: str, system: str, surface: str) -> float:
    return next(
        (r["cpu_ms"] for r in report["intake"]
         if (r["db"], r["system"], r["surface"]) == (db, system, surface)),
        0.0,
    )  # fmt: skip


def tables(report: dict[str, Any]) -> str:
    """The intake, list and memory tables, with Concilia's ratios to the peer and the floor."""
    lines = [
        "| db | surface | system | created/s | p50 / p95 / p99 ms | web CPU ms each "
        "(+ background) | failed | Concilia's rate ÷ this | this CPU ÷ Concilia's |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["intake"]:
        cc = _rate(report, r["db"], "concilia", r["surface"])
        ratio = cost = ""
        if r["system"] != "concilia" and r["per_s"]:
            ratio = f"{cc / r['per_s']:.2f}x"
            cc_cpu = _cpu(report, r["db"], "concilia", r["surface"])
            cost = f"{r['cpu_ms'] / cc_cpu:.2f}x" if cc_cpu else ""
        failed = r["requests"] - r["created"]
        lines.append(
            f"| {r['db']} | {r['surface']} | {r['system']} | {r['per_s']} | "
            f"{r['p50_ms']} / {r['p95_ms']} / {r['p99_ms']} | {r['cpu_ms']}"
            + (f" (+ {r['background_ms']})" if r["background_ms"] else "")
            + f" | {failed} | {ratio} "
            f"| {cost} |"
        )
    lines += [
        "",
        "| db | rows | filter | Concilia p50 / p95 ms | django-helpdesk p50 / p95 ms | "
        "p95 ratio (helpdesk ÷ Concilia) |",
        "|---|---|---|---|---|---|",
    ]
    by = {(r["db"], r["system"], r["rows"], r["filter"]): r for r in report["lists"]}
    for db, _system, size, name in sorted({k for k in by if k[1] == "concilia"}):
        cc = by[(db, "concilia", size, name)]
        dh = by.get((db, "django-helpdesk", size, name))
        peer = f"{dh['p50_ms']} / {dh['p95_ms']}" if dh else "-"
        ratio = f"{dh['p95_ms'] / cc['p95_ms']:.1f}x" if dh and cc["p95_ms"] else "-"
        lines.append(
            f"| {db} | {size:,} | {name} | {cc['p50_ms']} / {cc['p95_ms']} | {peer} | {ratio} |"
        )
    lines += [
        "",
        "| db | system | when | web RSS MB (processes) | largest MB | other MB |",
        "|---|---|---|---|---|---|",
    ]
    for m in report["memory"]:
        lines.append(
            f"| {m['db']} | {m['system']} | {m['when']} | {m['web_mb']} ({m['web_processes']}) | "
            f"{m['largest_mb']} | {m['other_mb'] or '-'} |"
        )
    return "\n".join(lines)


def verdicts(report: dict[str, Any]) -> list[str]:
    found = []
    for db in sorted({r["db"] for r in report["intake"]}):
        for surface in ("form", "api"):
            cc = _rate(report, db, "concilia", surface)
            dh = _rate(report, db, "django-helpdesk", surface)
            floor = _rate(report, db, "floor", surface)
            if dh:
                found.append(
                    f"{db} {surface}: Concilia {cc}/s = {cc / dh:.2f}x django-helpdesk "
                    f"(target ≥ 5x: {'holds' if cc >= 5 * dh else 'does NOT hold'})"
                )
            if floor:
                found.append(
                    f"{db} {surface}: Concilia = {cc / floor:.2f} of the floor's {floor}/s "
                    f"(target ≥ 0.5: {'holds' if cc >= floor / 2 else 'does NOT hold'})"
                )
        sizes = sorted({r["rows"] for r in report["lists"] if r["db"] == db})
        if len(sizes) >= 2:
            for system in ("concilia", "django-helpdesk"):
                for name in LIST_FILTERS:
                    rows = {
                        r["rows"]: r["p95_ms"]
                        for r in report["lists"]
                        if (r["db"], r["system"], r["filter"]) == (db, system, name)
                    }
                    if sizes[0] in rows and sizes[-1] in rows and rows[sizes[0]]:
                        ratio = rows[sizes[-1]] / rows[sizes[0]]
                        mark = (
                            ("holds" if ratio <= 1.5 else "does NOT hold")
                            if system == "concilia"
                            else ""
                        )
                        found.append(
                            f"{db} list {system} {name}: p95 {rows[sizes[-1]]} ms at {sizes[-1]:,} = "
                            f"{ratio:.2f}x its p95 at {sizes[0]:,} {('(target ≤ 1.5x: ' + mark + ')') if mark else ''}"
                        )
    return found


def print_tables(paths: list[Path]) -> int:
    report: dict[str, Any] = {"intake": [], "lists": [], "memory": []}
    for path in paths:
        saved = json.loads(path.read_text())
        for key in report:
            report[key] += saved.get(key, [])
    print(tables(report) + "\n")
    for line in verdicts(report):
        print(line)
    return 0


def parse_sizes(text: str) -> list[int]:
    values = sorted({int(v.replace("_", "")) for v in text.split(",") if v.strip()})
    if not values or values[0] < 100:
        raise argparse.ArgumentTypeError("sizes are row counts of at least 100, e.g. 10000,100000")
    return values


def main(argv: list[str] | None = None) -> int:
    from concilia.core.management.commands.serve import default_workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=2000, help="intake requests per surface")
    parser.add_argument("--warmup", type=int, default=100, help="uncounted intake requests first")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="web processes, all systems"
    )
    parser.add_argument("--list-requests", type=int, default=100, help="timed lists per filter")
    parser.add_argument("--list-warmup", type=int, default=10)
    parser.add_argument("--budget", type=float, default=90, help="seconds per filter at most")
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help="django-helpdesk's environment"
    )
    parser.add_argument("--no-install", action="store_true", help="never create --venv")
    parser.add_argument(
        "--no-peer", action="store_true", help="Concilia and the floor only (no django-helpdesk)"
    )
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-prefix", default="peer", help="databases <prefix>_cc, _dh, _floor")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds per intake batch")
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--keep", action="store_true", help="keep the folders and databases")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument(
        "--tables-from",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print the tables of earlier runs' --json files (merged) and stop",
    )
    args = parser.parse_args(argv)
    if args.tables_from:
        return print_tables(args.tables_from)
    if args.requests < 1 or args.warmup < 1 or args.list_requests < 1 or args.concurrency < 1:
        parser.error("--requests, --warmup, --list-requests and --concurrency must be positive")
    if (
        not re.fullmatch(r"[a-z_][a-z0-9_]*", args.pg_prefix)
        or args.pg_prefix in PROTECTED_DATABASES
    ):
        parser.error(f"refusing the database prefix {args.pg_prefix!r}")
    return exit_code(lambda: run(args), BenchError)


def run(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"intake": [], "lists": [], "memory": [], "fills": [], "profiles": {}}
    if not args.no_peer:
        report["peer"] = ensure_venv(args.venv, not args.no_install)
    report["environment"] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
        "speed": f"{python_speed():.2f} µs to sum 1000 integers",
        "code": code_version(),
        "server": f"granian {concilia_granian()}, WSGI, {args.workers} workers each",
        "intake": f"{args.requests} requests per surface, {args.concurrency} connections",
    }
    for key, value in {**report["environment"], **report.get("peer", {})}.items():
        print(f"{key:<20}{value}")
    databases = ["sqlite", "postgres"] if args.db == "both" else [args.db]

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for db in databases:
            run_database(db, args, report)
    finally:
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print("\n" + tables(report) + "\n")
    for line in verdicts(report):
        print(line)
    for db, found in report["profiles"].items():
        each = ", ".join(f"{k} {v['ms_per_request']} ms" for k, v in found.items() if k in SUCCESS)
        print(f"\nProfile of Concilia's intake on {db} (in-process, per complaint: {each}):")
        print(found["text"][:12000])
    failed = [
        r
        for r in report["intake"]
        if r["created"] != r["requests"] or r["rows_added"] != r["created"]
    ]
    failed += [r for r in report["lists"] if set(r["statuses"]) != {"200"}]
    if failed:
        print(
            f"\n{len(failed)} measurement(s) had failed requests or uncounted rows", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
