#!/usr/bin/env python3
"""Soak: customers talking to the assistant and agents working the queue at the same time, for
minutes, with the server's memory and the job queue watched all along.

Two deployments, both started on loopback in a fresh CONCILIA_HOME:

- `--db postgres` (the scaled one, README "Scaled deployment"): a fresh PostgreSQL database,
  `concilia serve --workers 2 --no-worker` (2 web processes and the sweep) and 2 `concilia worker`
  processes on RQ, on a Redis database of the run's own (claimed as the test suite claims its own,
  flushed before and after).
- `--db sqlite` (the embedded default): `concilia serve` as the README starts it (its web
  processes, its two job workers on the database and the sweep).

`concilia demo` loads the demo company, then --agents agent accounts are added (half in each of
the demo's two teams). Then, for --minutes:

- --customers seats each hold one customer at a time in the chat API (bench/conversations.py's
  Customer: privacy notice, problem, questions, summary, case, the policies' answer polled for,
  offer, survey), pausing a random 0-2x --think seconds before each message; when a conversation
  ends a new customer takes the seat. At the end each customer under way leaves before their
  next message (a request on the wire is answered first): those conversations are "cut", not
  errors, and the database check covers them too.
- --agents agents, each signed in through /helpdesk/login/ with their own cookies, loop: their
  queue (mine; else their teams' unassigned, taking one), a case page, then a reply (50%), an
  internal note (25%), a reply that closes the case (15%) or a transfer to the other team (10%),
  pausing 0-2x --agent-think seconds between steps. A stale form (409, someone changed the case)
  is sent again once with the version the 409 page shows, as a person would.
- every --sample seconds: the RSS and CPU of every web and worker process, the load average, the
  jobs waiting; on RQ the jobs that finished since (how long each waited in its queue).

Afterwards the database must hold one case per conversation that got one, and every reply and
note an agent was told was saved. Errors are any other answer than the expected one (5xx, 4xx,
transport errors), unfinished conversations and missing rows; 409 conflicts are counted apart.

    python bench/soak.py --db postgres                                  # 500 customers, 50 agents, 10 min
    python bench/soak.py --db sqlite --customers 100 --agents 10 --minutes 3
    python bench/soak.py --db sqlite --customers 6 --agents 2 --minutes 0.25 --think 0.5  # smoke

Exit status 0 with no errors, 1 with errors, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import exit_code, proc_stat
from complaints import (
    PROTECTED_DATABASES,
    BenchError,
    Instance,
    code_version,
    machine_busy,
    percentile,
    python_speed,
)
from conversations import Customer, Run, check_cases, count_cases

JOB_QUEUES = ["customer", "default", "mail", "webhooks"]  # settings.JOB_QUEUES
AGENT_PREFIX = "soak-"
REFERENCE_LINK = re.compile(r'href="/helpdesk/cases/(RC-[0-9A-Z-]+)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')
# What an agent does with a case it opened, and how often.
AGENT_ACTIONS = (["reply", "note", "close", "transfer"], [50, 25, 15, 10])
END_LIMIT_S = 120.0  # after the end and the longest pause, everyone must have left by then

AGENTS_SNIPPET = """
import json
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from concilia.accounts.models import ROLE_GROUPS, Role, Team, User
from concilia.intake.management.commands.demo import DEMO_PASSWORD
teams = list(Team.objects.filter(code__in=["customer-care", "logistics"]).order_by("code"))
role = Group.objects.get(name=ROLE_GROUPS[Role.AGENT][0])
permissions = Permission.objects.filter(
    content_type__app_label="cases", codename__in=["view_case", "change_case"]
)
hashed = make_password(DEMO_PASSWORD)  # once: Argon2 for each of them would take a while
made = []
for n in range({agents}):
    team = teams[n % len(teams)]
    name = "{prefix}%03d" % (n + 1)
    user = User.objects.create_user(name, name + "@concilia.localhost", None,
                                    first_name="Soak %d" % (n + 1), is_staff=True)
    user.password = hashed
    user.save(update_fields=["password"])
    user.user_permissions.add(*permissions)
    user.groups.add(role, team.group)
    made.append({{"username": name, "id": user.pk, "team": team.code}})
print("AGENTS " + json.dumps({{"agents": made, "teams": [t.code for t in teams],
                              "password": DEMO_PASSWORD}}))
"""
AGENT_CHECK_SNIPPET = """
import json
from concilia.cases.models import Message
mine = Message.objects.filter(author_user__username__startswith={prefix!r})
print("AGENTCHECK " + json.dumps({{
    "replies": mine.filter(internal=False).count(),
    "notes": mine.filter(internal=True).count(),
}}))
"""
DB_JOBS_SNIPPET = """
import json
from django_tasks_db.models import DBTaskResult
since = {since!r}
rows = DBTaskResult.objects.filter(enqueued_at__gte=since).values_list(
    "queue_name", "status", "enqueued_at", "run_after", "started_at", "finished_at")
print("DBJOBS " + json.dumps([
    [q, s, e.timestamp(), r.timestamp() if r else None, b.timestamp() if b else None,
     f.timestamp() if f else None] for q, s, e, r, b, f in rows]))
"""


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --------------------------------------------------------------------------------------------
# The deployment


class Deployment:
    """`concilia serve` (SQLite: with its own job workers; PostgreSQL: --no-worker, plus RQ
    workers on a Redis database of our own), and what its processes use."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.scaled = args.db == "postgres"
        self.instance = Instance(
            args.db,
            args.web_workers if self.scaled else args.web_workers or None,
            argparse.Namespace(**{**vars(args), "no_worker": self.scaled}),
        )
        env = self.instance.env
        # Every simulated customer and agent comes from 127.0.0.1: the per-address limits are off.
        env["CONCILIA_CHAT_START_RATE"] = "0"
        env["CONCILIA_CHAT_MESSAGE_RATE"] = "0"
        self.redis: Any = None
        if self.scaled:
            from integrations import RedisDb

            self.redis = RedisDb(args.redis_url, args.redis_db)
            env["CONCILIA_TASKS_BACKEND"] = "rq"
            env["CONCILIA_REDIS_URL"] = self.redis.database_url
            env["REDIS_URL"] = self.redis.database_url  # the shared cache, as the README sets it
        self.workers: list[subprocess.Popen] = []
        self.agents: list[dict] = []
        self.teams: list[str] = []
        self.password = ""
        self.seen_jobs: set[bytes] = set()

    def start(self) -> None:
        instance = self.instance
        step(f"{self.args.db}: creating the database, loading the demo")
        instance.create_database()
        instance.manage("demo", timeout=600)
        output = instance.manage(
            "shell", "-c", AGENTS_SNIPPET.format(agents=self.args.agents, prefix=AGENT_PREFIX)
        )
        line = next((ln for ln in output.splitlines() if ln.startswith("AGENTS ")), None)
        if line is None:
            raise BenchError(f"The agents were not made:\n{output}")
        made = json.loads(line[len("AGENTS ") :])
        self.agents, self.teams, self.password = made["agents"], made["teams"], made["password"]
        step("starting `concilia serve`" + (" --no-worker" if self.scaled else ""))
        instance.start()
        if self.scaled:
            step(f"starting {self.args.job_workers} `concilia worker` on RQ")
            for number in range(self.args.job_workers):
                with open(instance.home / f"worker-{number + 1}.log", "wb") as log:
                    self.workers.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "concilia", "worker"],
                            env=instance.env,
                            cwd=instance.home,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )
            deadline = time.monotonic() + self.args.start_timeout
            while self.redis.db.scard("rq:workers") < len(self.workers):
                if time.monotonic() > deadline or any(w.poll() is not None for w in self.workers):
                    raise BenchError(f"The RQ workers did not start:\n{self.logs()[-3000:]}")
                time.sleep(0.25)

    def stop(self) -> None:
        try:
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
        finally:
            try:
                self.instance.cleanup()  # the server, the database and the home folder
            finally:
                if self.redis is not None:
                    self.redis.release()

    def logs(self) -> str:
        parts = [self.instance.log(10_000_000)]
        for path in sorted(self.instance.home.glob("worker-*.log")):
            parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # -- the processes ---------------------------------------------------------------------

    def processes(self) -> dict[int, tuple[str, float, float]]:
        """pid -> (role, RSS MiB, CPU s) of every process of the deployment, and PostgreSQL's
        (CPU only: its shared memory would be counted once per backend)."""
        groups = {self.instance.pgid: "serve", **{w.pid: "job worker" for w in self.workers}}
        found: dict[int, tuple[str, float, float]] = {}
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (stat := proc_stat(entry)) is not None:
                stats[int(entry)] = stat
        for pid, stat in stats.items():
            if stat.comm == "postgres" and self.scaled:
                found[pid] = ("postgresql", 0.0, stat.cpu_s)
                continue
            if stat.group not in groups:
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            match = re.search(r"VmRSS:\s+(\d+) kB", status)
            rss = int(match.group(1)) / 1024 if match else 0.0
            found[pid] = (self.role(pid, stat.parent, stat.group, argv, groups), rss, stat.cpu_s)
        return found

    def role(self, pid: int, parent: int, group: int, argv: str, groups: dict[int, str]) -> str:
        if groups[group] == "job worker":
            return "job worker" if pid == group else "job worker (scheduler)"
        if pid == group:
            return "serve"
        if " sweep" in argv:
            return "sweep"
        if " worker" in argv and "granian" not in argv:
            return "job worker"
        return "web (granian main)" if parent == group else "web"

    # -- the jobs ---------------------------------------------------------------------------

    def jobs_waiting(self) -> int | None:
        """Jobs due and not started (django-tasks' database backend writes "no run_after" as
        the year 9999)."""
        if self.scaled:
            return sum(int(self.redis.db.llen(f"rq:queue:{q}")) for q in JOB_QUEUES)
        path = self.instance.home / "concilia.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as c:
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            (count,) = c.execute(
                "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'READY' "
                "AND (run_after IS NULL OR run_after <= ? OR run_after >= '9999')",
                [now],
            ).fetchone()
        return int(count)

    def finished_jobs(self, since: float) -> list[dict]:
        """RQ: the jobs that finished since the last call (RQ keeps them for 500 s), with how
        long each waited in its queue and ran."""
        found = []
        for queue in JOB_QUEUES:
            ids = [i for i in self.redis.db.zrange(f"rq:finished:{queue}", 0, -1)]
            new = [i for i in ids if i not in self.seen_jobs]
            self.seen_jobs.update(new)
            pipe = self.redis.db.pipeline()
            for job_id in new:
                pipe.hmget(b"rq:job:" + job_id, "enqueued_at", "started_at", "ended_at")
            for values in pipe.execute():
                enqueued, started, ended = (_rq_time(v) for v in values)
                if enqueued is None or started is None or enqueued < since:
                    continue
                found.append(
                    {
                        "queue": queue,
                        "enqueued": enqueued,
                        "wait_ms": 1000 * (started - enqueued),
                        "run_ms": 1000 * ((ended or started) - started),
                    }
                )
        return found

    def failed_jobs(self) -> int:
        if self.scaled:
            return sum(int(self.redis.db.zcard(f"rq:failed:{q}")) for q in JOB_QUEUES)
        return 0

    def database_jobs(self, since: float) -> tuple[list[dict], Counter]:
        """The database backend's jobs queued since `since`: waits, and statuses."""
        since_iso = dt.datetime.fromtimestamp(since, dt.UTC).isoformat()
        output = self.instance.manage("shell", "-c", DB_JOBS_SNIPPET.format(since=since_iso))
        line = next((ln for ln in output.splitlines() if ln.startswith("DBJOBS ")), None)
        if line is None:
            raise BenchError(f"Could not read the jobs:\n{output}")
        found, statuses = [], Counter()
        for queue, status, enqueued, run_after, started, ended in json.loads(line[7:]):
            statuses[status] += 1
            if started is None:
                continue
            # A job to run later waits from its run_after (django-tasks' "none" is year 9999).
            due = (
                run_after if run_after is not None and enqueued < run_after < started else enqueued
            )
            found.append(
                {
                    "queue": queue,
                    "enqueued": enqueued,
                    "wait_ms": 1000 * (started - due),
                    "run_ms": 1000 * ((ended or started) - started),
                }
            )
        return found, statuses


def _rq_time(value: bytes | None) -> float | None:
    if not value:
        return None
    return (
        dt.datetime.strptime(value.decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=dt.UTC)
        .timestamp()
    )


# --------------------------------------------------------------------------------------------
# The agents


@dataclass
class Call:
    kind: str  # queue, case, reply, note, close, transfer, take, sign in
    status: int  # 0: no answer (transport error)
    ms: float
    at: float  # seconds since the run started


@dataclass
class AgentLog:
    username: str
    calls: list[Call] = field(default_factory=list)
    done: Counter = field(default_factory=Counter)  # actions saved (302)
    conflicts: int = 0  # 409: the case changed under the agent
    problems: list[str] = field(default_factory=list)


class Agent:
    """One person at the helpdesk, in a browser of their own (cookies, CSRF token)."""

    def __init__(self, base_url: str, me: dict, password: str, other_team: str, args, rng, t0):
        import httpx

        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=30, headers={"Accept-Language": "en"}
        )
        self.me, self.password, self.other_team = me, password, other_team
        self.think_s = args.agent_think
        self.rng = rng
        self.t0 = t0
        self.log = AgentLog(me["username"])

    async def call(self, kind: str, method: str, path: str, data: dict | None = None):
        import httpx

        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, data=data)
            status, text = response.status_code, response.text
        except httpx.HTTPError as exc:
            status, text = 0, type(exc).__name__
        ended = time.perf_counter()
        self.log.calls.append(Call(kind, status, 1000 * (ended - started), ended - self.t0))
        return status, text

    def expect(self, kind: str, status: int, wanted: int, text: str) -> bool:
        if status == wanted:
            return True
        self.log.problems.append(f"{kind}: HTTP {status or text}")
        return False

    async def think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 2 * self.think_s))

    async def sign_in(self) -> None:
        status, page = await self.call("sign in", "GET", "/helpdesk/login/")
        token = CSRF.search(page)
        if status != 200 or token is None:
            raise BenchError(f"no sign-in form for {self.me['username']} ({status})")
        form = {
            "csrfmiddlewaretoken": token.group(1),
            "username": self.me["username"],
            "password": self.password,
            "next": "/helpdesk/",
        }
        status, _ = await self.call("sign in", "POST", "/helpdesk/login/", form)
        if status != 302:
            raise BenchError(f"signing in as {self.me['username']} failed ({status})")

    async def work(self, deadline: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, 2 * self.think_s))  # not all at once
        while time.monotonic() < deadline:
            status, page = await self.call("queue", "GET", "/helpdesk/?view=mine")
            if not self.expect("queue", status, 200, page):
                await self.think()
                continue
            cases = REFERENCE_LINK.findall(page)
            take = False
            if not cases:
                await self.think()
                status, page = await self.call("queue", "GET", "/helpdesk/?view=team_unassigned")
                if not self.expect("queue", status, 200, page):
                    continue
                cases, take = REFERENCE_LINK.findall(page), True
            if not cases:
                await self.think()
                continue
            reference = self.rng.choice(cases[:10])
            await self.think()
            status, page = await self.call("case", "GET", f"/helpdesk/cases/{reference}")
            if not self.expect("case", status, 200, page):
                continue
            await self.think()  # reading, writing
            if take:
                page = await self.act(reference, "take", page)
                if page is None:
                    continue
            action = self.rng.choices(*AGENT_ACTIONS)[0]
            await self.act(reference, action, page)
            await self.think()

    def form(self, action: str, reference: str) -> tuple[str, dict[str, str]]:
        text = f"{action} by {self.me['username']} on {reference} at {time.time():.3f}"
        if action == "reply":
            return "reply", {"body": f"Hello, about your case: {text}", "then": "pending_customer"}
        if action == "close":
            body = f"We have solved it: {text}"
            return "reply", {"body": body, "then": "closed", "outcome": "resolved"}
        if action == "note":
            return "note", {"body": f"Internal note: {text}"}
        if action == "take":
            return "assign", {"assignee": str(self.me["id"]), "team": "", "note": ""}
        return "assign", {"team": self.other_team, "assignee": "", "note": f"Over to you: {text}"}

    async def act(self, reference: str, action: str, page: str) -> str | None:
        """Send one form of the case page; on a 409 send it again once with the version the 409
        page shows. The case page after the redirect, or None."""
        path, data = self.form(action, reference)
        for attempt in range(2):
            token, version = CSRF.search(page), VERSION.search(page)
            if token is None or version is None:
                self.log.problems.append(f"{action}: no form on the case page")
                return None
            sent = {**data, "csrfmiddlewaretoken": token.group(1), "version": version.group(1)}
            url = f"/helpdesk/cases/{reference}/{path}"
            status, page = await self.call(action, "POST", url, sent)
            if status == 409:
                self.log.conflicts += 1
                if attempt == 0:
                    continue
                return None
            if not self.expect(action, status, 302, page):
                return None
            self.log.done[action] += 1
            kind = "case after transfer" if action == "transfer" else "case"
            status, page = await self.call(kind, "GET", f"/helpdesk/cases/{reference}")
            if action == "transfer" and status == 404:
                return None  # no longer in the agent's teams: as it should be
            return page if self.expect("case", status, 200, page) else None
        return None


# --------------------------------------------------------------------------------------------
# The customers


class Stopped(Exception):
    """The run is over: the customer leaves before sending their next message."""


class SeatedCustomer(Customer):
    """bench/conversations.py's customer, who leaves when the run is over."""

    stopping = False

    async def post(self, path: str, payload: dict, step: str) -> dict | None:
        if self.think_s:
            await asyncio.sleep(self.rng.uniform(0, 2 * self.think_s))
        if self.stopping:
            raise Stopped
        return await self.request(path, payload, step, self.outcome.turns)


class Seats:
    """--customers seats, each holding one customer at a time until the end."""

    def __init__(self, args, base_url: str, t0: float):
        self.args = args
        self.base_url = base_url
        self.t0 = t0
        self.index = itertools.count()
        self.people: list[Customer] = []
        self.live: set[Customer] = set()
        self.cut: set[int] = set()  # id() of the customers who left at the end
        self.batch = f"soak{os.getpid()}"

    async def seat(self, client, gate, rng, deadline: float) -> None:
        while time.monotonic() < deadline:
            person = SeatedCustomer(
                client, gate, next(self.index), self.batch, self.args.think, rng, self.args.poll
            )
            self.people.append(person)
            self.live.add(person)
            try:
                await person.run()
            except Stopped:
                person.outcome.problem = "cut at the end"
                self.cut.add(id(person))
            except Exception as exc:  # a client bug is reported, not raised
                person.outcome.problem = f"client error: {exc!r}"
            finally:
                self.live.discard(person)

    def end(self) -> None:
        for person in self.live:
            person.stopping = True


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class Sample:
    at: float  # seconds since the run started
    load: tuple[float, float, float]
    busy_pct: float
    jobs_waiting: int | None
    processes: dict[int, tuple[str, float, float]]


async def sampler(
    deployment: Deployment,
    samples: list[Sample],
    jobs: list,
    t0: float,
    wall0: float,
    stop: asyncio.Event,
    every: float,
) -> None:
    busy_before = machine_busy()
    while True:
        busy_after = machine_busy()
        total = busy_after[1] - busy_before[1]
        busy = 100 * (busy_after[0] - busy_before[0]) / total if total else 0.0
        busy_before = busy_after
        processes = await asyncio.to_thread(deployment.processes)
        waiting = await asyncio.to_thread(deployment.jobs_waiting)
        if deployment.scaled:
            jobs.extend(await asyncio.to_thread(deployment.finished_jobs, wall0))
        samples.append(Sample(time.monotonic() - t0, os.getloadavg(), busy, waiting, processes))
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def soak(deployment: Deployment, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    instance = deployment.instance
    rng = random.Random(args.seed)  # think times and choices, not secrets
    t0 = time.monotonic()
    teams = deployment.teams
    agents = [
        Agent(
            instance.base_url,
            me,
            deployment.password,
            teams[(teams.index(me["team"]) + 1) % len(teams)],
            args,
            random.Random(f"{args.seed}-{me['username']}"),
            t0,
        )
        for me in deployment.agents
    ]
    step(f"signing {len(agents)} agents in")
    for agent in agents:
        await agent.sign_in()
    samples: list[Sample] = []
    jobs: list[dict] = []
    stop = asyncio.Event()
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    gate = asyncio.Semaphore(args.connections)
    t0 = time.monotonic()
    wall0 = time.time()
    for agent in agents:
        agent.t0 = t0
        agent.log.calls.clear()
    deadline = t0 + 60 * args.minutes
    seats = Seats(args, instance.base_url, t0)
    cpu_before = time.process_time()
    busy_before = machine_busy()
    step(
        f"soaking for {args.minutes:g} min: {args.customers} customers (think {args.think:g}s),"
        f" {len(agents)} agents (think {args.agent_think:g}s)"
    )
    watcher = asyncio.create_task(sampler(deployment, samples, jobs, t0, wall0, stop, args.sample))
    async with httpx.AsyncClient(base_url=instance.base_url, limits=limits, timeout=30) as client:
        working = [asyncio.create_task(a.work(deadline)) for a in agents]
        talking = [
            asyncio.create_task(seats.seat(client, gate, rng, deadline))
            for _ in range(args.customers)
        ]
        progress = asyncio.create_task(report_progress(seats, agents, samples, deadline, t0))
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        seats.end()
        step(f"time is up: {len(seats.live)} customers under way leave before their next message")
        progress.cancel()
        ended_at = time.monotonic()
        limit = 2 * max(args.think, args.agent_think) + END_LIMIT_S
        _done, pending = await asyncio.wait(talking + working, timeout=limit)
        for task in pending:
            task.cancel()
        for person in seats.live:
            person.outcome.problem = f"still talking {limit:.0f}s after the end"
        drain_s = time.monotonic() - ended_at
    for agent in agents:
        await agent.client.aclose()
    stop.set()
    await watcher
    busy_after = machine_busy()
    total = busy_after[1] - busy_before[1]
    return {
        "seats": seats,
        "agents": agents,
        "samples": samples,
        "jobs": jobs,
        "wall0": wall0,
        "duration_s": deadline - t0,
        "drain_s": drain_s,
        "client_cpu_s": time.process_time() - cpu_before,
        "busy_pct": 100 * (busy_after[0] - busy_before[0]) / total if total else 0.0,
    }


async def report_progress(seats: Seats, agents: list[Agent], samples, deadline, t0) -> None:
    while True:
        await asyncio.sleep(60)
        turns = [t for p in seats.people for t in p.outcome.turns]
        recent = sorted(t.ms for t in turns[-2000:])
        failed = sum(1 for t in turns if not 200 <= t.status < 300)
        calls = [c for a in agents for c in a.log.calls]
        load = samples[-1].load[0] if samples else 0.0
        step(
            f"{time.monotonic() - t0:5.0f}s: {len(seats.people)} conversations, {len(turns)} turns"
            f" (last 2000 p95 {percentile(recent, 95):.0f} ms, {failed} failed),"
            f" agents {len(calls)} requests, load {load:.2f}, {deadline - time.monotonic():.0f}s left"
        )


# --------------------------------------------------------------------------------------------
# Figures


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        **{f"p{p}": round(percentile(ordered, p), 1) for p in (50, 95, 99)},
        "max": round(ordered[-1], 1) if ordered else 0.0,
    }


def memory_over_time(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """Per process (role and pid): RSS in the first and the last minute, and its slope after
    the first minute (least squares, MiB per minute)."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for sample in samples:
        for pid, (role, rss, _cpu) in sample.processes.items():
            if role != "postgresql":
                series[f"{role} {pid}"].append((sample.at, rss))
    end = samples[-1].at if samples else 0.0
    found = {}
    for name, points in sorted(series.items()):
        first = [rss for at, rss in points if at <= 60] or [points[0][1]]
        last = [rss for at, rss in points if at >= end - 60] or [points[-1][1]]
        later = [(at, rss) for at, rss in points if at > 60] or points
        found[name] = {
            "first_minute_mib": round(sum(first) / len(first), 1),
            "last_minute_mib": round(sum(last) / len(last), 1),
            "peak_mib": round(max(rss for _at, rss in points), 1),
            "slope_mib_per_min": round(60 * slope(later), 2),
            "samples": [[round(at), round(rss, 1)] for at, rss in points],
        }
    return found


def slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0


def cpu_by_role(samples: list[Sample]) -> dict[str, float]:
    if len(samples) < 2:
        return {}
    first, last = samples[0].processes, samples[-1].processes
    found: dict[str, float] = defaultdict(float)
    for pid, (role, _rss, cpu) in last.items():
        before = first.get(pid)
        found[role.split(" (")[0]] += cpu - (before[2] if before and before[0] == role else 0.0)
    return {role: round(seconds, 1) for role, seconds in found.items()}


def server_errors(log: str) -> list[str]:
    """Tracebacks and error lines in the server's and the workers' logs."""
    lines = log.splitlines()
    found = []
    for number, line in enumerate(lines):
        if line.startswith("Traceback") or " ERROR " in line or "Internal Server Error" in line:
            found.append(
                "\n".join(
                    lines[number : number + 40 if line.startswith("Traceback") else number + 1]
                )
            )
    return found


def figures(deployment: Deployment, run: dict, args: argparse.Namespace, cases_before: int) -> dict:
    seats: Seats = run["seats"]
    agents: list[Agent] = run["agents"]
    people = seats.people
    outcomes = [p.outcome for p in people]
    chat_run = Run(
        outcomes=outcomes, duration_s=run["duration_s"], client_cpu_s=run["client_cpu_s"]
    )
    check = check_cases(deployment.instance, chat_run)
    case_problems = chat_case_problems(check, outcomes, cases_before)
    window_turns = [t for o in outcomes for t in o.turns]
    window_polls = [t for o in outcomes for t in o.polls]
    failed_turns = Counter(
        t.status for t in window_turns + window_polls if not 200 <= t.status < 300
    )
    finished = [o for o in outcomes if o.finished]
    unfinished = [
        o
        for p, o in zip(people, outcomes, strict=True)
        if not o.finished and id(p) not in seats.cut
    ]
    steps = Counter(t.step for t in window_turns)
    agent_calls = [c for a in agents for c in a.log.calls]
    # A case another agent transferred to the other team is no longer there for this one (404):
    # counted apart; a case really lost would show in the database checks below.
    moved_away = Counter(
        c.kind for a in agents for c in a.log.calls if c.status == 404 and c.kind != "queue"
    )
    agent_failed = Counter(
        f"{c.kind} {c.status or 'transport'}"
        for a in agents
        for c in a.log.calls
        if c.status not in (200, 302, 409, 404) or (c.status == 404 and c.kind == "queue")
    )
    done = sum((a.log.done for a in agents), Counter())
    stored = agent_check(deployment)
    agent_problems = []
    if stored["replies"] != done["reply"] + done["close"]:
        agent_problems.append(
            f"{stored['replies']} replies stored for {done['reply'] + done['close']} sent"
        )
    if stored["notes"] != done["note"] + done["transfer"]:
        agent_problems.append(
            f"{stored['notes']} notes stored for {done['note']} notes and"
            f" {done['transfer']} transfers (each keeps its note)"
        )
    if deployment.scaled:
        jobs = run["jobs"] + deployment.finished_jobs(run["wall0"])
        job_statuses = Counter({"finished": len(jobs), "failed": deployment.failed_jobs()})
    else:
        jobs, job_statuses = deployment.database_jobs(run["wall0"])
    by_queue = defaultdict(list)
    for job in jobs:
        by_queue[job["queue"]].append(job["wait_ms"])
    logged = server_errors(deployment.logs())
    failed_jobs = job_statuses.get("failed", 0) + job_statuses.get("FAILED", 0)
    errors = (
        sum(failed_turns.values())
        + len(unfinished)
        + sum(agent_failed.values())
        + len(case_problems)
        + len(agent_problems)
        + failed_jobs
    )
    samples = run["samples"]
    loads = [s.load[0] for s in samples]
    minutes = run["duration_s"] / 60
    return {
        "db": args.db,
        "deployment": (
            f"concilia serve --workers {args.web_workers} --no-worker + {args.job_workers}"
            " concilia worker (RQ on Redis), PostgreSQL"
            if deployment.scaled
            else f"concilia serve{' --workers ' + str(args.web_workers) if args.web_workers else ''}"
            " (its web processes, 2 job workers on the database, the sweep), SQLite"
        ),
        "minutes": args.minutes,
        "customers": args.customers,
        "agents": args.agents,
        "think_s": args.think,
        "agent_think_s": args.agent_think,
        "connections": args.connections,
        "code": deployment.instance.code,
        "started": dt.datetime.fromtimestamp(run["wall0"], dt.UTC).isoformat(timespec="seconds"),
        "errors": errors,
        "conversations": len(people),
        "conversations_finished": len(finished),
        "conversations_cut_at_the_end": len(seats.cut),
        "conversations_per_min": round(len(finished) / minutes, 1) if minutes else 0.0,
        "cases_added": check["cases"] - cases_before,
        "case_check": check,
        "case_problems": case_problems,
        "settled_by_policy": sum(1 for o in finished if o.settled),
        "handed_over": sum(1 for o in finished if o.status == "handed_over"),
        "turns": len(window_turns),
        "turns_per_s": round(len(window_turns) / run["duration_s"], 1),
        "turn_ms": summary([t.ms for t in window_turns]),
        "turn_waited_for_client_connection_ms": summary([t.waited_ms for t in window_turns]),
        "turn_ms_by_step": {s: summary([t.ms for t in window_turns if t.step == s]) for s, _ in steps.most_common()},
        "polls_ms": summary([t.ms for t in window_polls]),
        "seconds_to_leave_after_the_end": round(run["drain_s"], 1),
        "decision_shown_ms": summary([o.decision_shown_ms for o in outcomes if o.decision_shown_ms is not None]),
        "decision_server_ms": summary([o.decision_server_ms for o in outcomes if o.decision_server_ms is not None]),
        "chat_failed_requests": {str(k or "transport"): v for k, v in failed_turns.items()},
        "unfinished": Counter(o.problem for o in unfinished).most_common(10),
        "agent_requests": len(agent_calls),
        "agent_requests_per_s": round(len(agent_calls) / run["duration_s"], 2),
        "agent_ms": {k: summary([c.ms for c in agent_calls if c.kind == k]) for k in sorted({c.kind for c in agent_calls})},
        "agent_ms_all": summary([c.ms for c in agent_calls]),
        "agent_actions_saved": dict(done),
        "agent_conflicts_409": sum(a.log.conflicts for a in agents),
        "agent_cases_moved_away_404": dict(moved_away),
        "agent_failed_requests": dict(agent_failed),
        "agent_problems": agent_problems + Counter(p for a in agents for p in a.log.problems).most_common(5),
        "agent_check": stored,
        "job_wait_ms": {q: summary(v) for q, v in sorted(by_queue.items())},
        "job_wait_ms_all": summary([j["wait_ms"] for j in jobs]),
        "job_run_ms_all": summary([j["run_ms"] for j in jobs]),
        "job_statuses": dict(job_statuses),
        "jobs_waiting_max": max((s.jobs_waiting or 0 for s in samples), default=0),
        "server_log_errors": len(logged),
        "server_log_first_errors": logged[:20],
        "memory": memory_over_time(samples),
        "cpu_s": {**cpu_by_role(samples), "client": round(run["client_cpu_s"], 1)},
        "load_average_1min": {"min": min(loads, default=0), "max": max(loads, default=0), "mean": round(sum(loads) / len(loads), 2) if loads else 0},
        "machine_busy_pct": round(run["busy_pct"], 1),
        "samples": [
            {"at": round(s.at), "load1": s.load[0], "busy_pct": round(s.busy_pct, 1), "jobs_waiting": s.jobs_waiting}
            for s in samples
        ],
    }  # fmt: skip


def chat_case_problems(check: dict, outcomes: list, cases_before: int) -> list[str]:
    """Every way the database disagrees with "one case per conversation that got a reference"
    (conversations cut at the end included)."""
    with_reference = sum(1 for o in outcomes if o.reference)
    added = check["cases"] - cases_before
    problems = []
    if added != with_reference:
        problems.append(f"{added} cases added for {with_reference} conversations with a reference")
    if check["conversations_with_case"] != with_reference:
        problems.append(f"{check['conversations_with_case']} conversations hold a case")
    if check["distinct_cases"] != check["conversations_with_case"]:
        problems.append(f"only {check['distinct_cases']} distinct cases")
    if check["cases_shared_by_conversations"]:
        problems.append(f"{check['cases_shared_by_conversations']} cases shared")
    if check["reference_mismatches"] or check["missing_chat_cases"]:
        problems.append(
            f"references differ: {check['reference_mismatches']} {check['missing_chat_cases']}"
        )
    scored = sum(
        1 for o in outcomes if any(t.step == "survey" and 200 <= t.status < 300 for t in o.turns)
    )
    if check["surveys"] != scored:
        problems.append(f"{check['surveys']} survey scores stored for {scored} sent")
    return problems


def agent_check(deployment: Deployment) -> dict[str, int]:
    output = deployment.instance.manage(
        "shell", "-c", AGENT_CHECK_SNIPPET.format(prefix=AGENT_PREFIX)
    )
    line = next((ln for ln in output.splitlines() if ln.startswith("AGENTCHECK ")), None)
    if line is None:
        raise BenchError(f"Could not check the agents' work:\n{output}")
    return json.loads(line[len("AGENTCHECK ") :])


def describe(f: dict) -> str:
    def lat(s: dict) -> str:
        return f"p50 {s['p50']:.0f} / p95 {s['p95']:.0f} / p99 {s['p99']:.0f} (max {s['max']:.0f}) ms, {s['count']}"

    lines = [
        f"deployment           {f['deployment']}",
        f"load                 {f['customers']} customers (think 0-{2 * f['think_s']:g}s), "
        f"{f['agents']} agents (think 0-{2 * f['agent_think_s']:g}s), {f['minutes']:g} min from "
        f"{f['started']}, code {f['code']}",
        f"errors               {f['errors']}"
        + (f"  chat {f['chat_failed_requests']}" if f["chat_failed_requests"] else "")
        + (f"  agents {f['agent_failed_requests']}" if f["agent_failed_requests"] else "")
        + (f"  jobs failed {f['job_statuses']}" if f["errors"] else ""),
        f"conversations        {f['conversations_finished']} of {f['conversations']} finished"
        f" ({f['conversations_per_min']}/min), {f['conversations_cut_at_the_end']} cut at the end;"
        f" {f['settled_by_policy']} settled by an offer, {f['handed_over']} handed over",
        f"cases added          {f['cases_added']}"
        + (
            " (one per conversation that got a reference)"
            if not f["case_problems"]
            else f"  MISMATCH {f['case_problems']}"
        ),
        f"chat turns           {f['turns']} ({f['turns_per_s']}/s): {lat(f['turn_ms'])}",
        f"policies' answer     in the chat {lat(f['decision_shown_ms'])}; written on the server"
        f" {lat(f['decision_server_ms'])}",
        f"chat polls           {lat(f['polls_ms'])}",
        f"agents               {f['agent_requests']} requests ({f['agent_requests_per_s']}/s): "
        f"{lat(f['agent_ms_all'])}; saved {f['agent_actions_saved']}, "
        f"409 conflicts {f['agent_conflicts_409']}, moved away (404) {f['agent_cases_moved_away_404']},"
        f" stored {f['agent_check']}",
        *(f"  {kind:<18} {lat(s)}" for kind, s in f["agent_ms"].items()),
        f"job queue wait       {lat(f['job_wait_ms_all'])}; at most {f['jobs_waiting_max']} waiting;"
        f" {f['job_statuses']}",
        *(f"  {q:<18} {lat(s)}" for q, s in f["job_wait_ms"].items()),
        f"server log errors    {f['server_log_errors']}",
        "memory (RSS MiB)     first minute -> last minute (peak), slope after minute 1",
        *(
            f"  {name:<28} {m['first_minute_mib']:7.1f} -> {m['last_minute_mib']:7.1f}"
            f" ({m['peak_mib']:.1f}), {m['slope_mib_per_min']:+.2f} MiB/min"
            for name, m in f["memory"].items()
        ),
        f"CPU seconds          {f['cpu_s']}; machine {f['machine_busy_pct']}% busy",
        f"load average (1 min) {f['load_average_1min']}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line


def run(args: argparse.Namespace) -> int:
    print(
        f"date                 {time.strftime('%Y-%m-%d %H:%M %Z')}\n"
        f"machine              {os.cpu_count()} CPUs, load average {os.getloadavg()}\n"
        f"code                 {code_version()}\n"
        f"python speed         {python_speed():.2f} µs to sum 1000 integers",
        flush=True,
    )
    deployment = Deployment(args)
    result: dict | None = None
    try:
        deployment.start()
        if args.warmup:
            step(f"warm-up: {args.warmup} conversations (every web process loads its models)")
            from conversations import run_customers

            warm = asyncio.run(
                run_customers(deployment.instance.base_url, args.warmup, min(8, args.warmup),
                              batch="warm", first_index=1_000_000, poll_s=args.poll)
            )  # fmt: skip
            unfinished = [o.problem for o in warm.outcomes if not o.finished]
            if unfinished:
                raise BenchError(f"warm-up: {len(unfinished)} unfinished: {unfinished[:3]}")
        cases_before = count_cases(deployment.instance)
        outcome = asyncio.run(soak(deployment, args))
        step("checking the database")
        result = figures(deployment, outcome, args, cases_before)
        print(describe(result), flush=True)
        for error in result["server_log_first_errors"]:
            print("server log:\n  " + error.replace("\n", "\n  "), file=sys.stderr)
    finally:
        if args.json and result is not None:
            args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")
        if args.keep:
            print(f"keeping {deployment.instance.home}", file=sys.stderr)
        deployment.stop()
    return 1 if result["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--customers", type=int, default=500, help="customers at once (500)")
    parser.add_argument("--agents", type=int, default=50, help="agents at once (50)")
    parser.add_argument(
        "--think", type=float, default=15.0,
        help="mean seconds a customer takes before each message (uniform 0 to twice that; 15)",
    )  # fmt: skip
    parser.add_argument(
        "--agent-think", type=float, default=10.0,
        help="mean seconds an agent takes between steps (uniform 0 to twice that; 10)",
    )  # fmt: skip
    parser.add_argument("--poll", type=float, default=0.5, help="the widget's poll (0.5 s)")
    parser.add_argument(
        "--connections", type=int, default=100, help="the customers' client's connections (100)"
    )
    parser.add_argument(
        "--web-workers", type=int, default=None,
        help="web processes (postgres: 2; sqlite: serve's default)",
    )  # fmt: skip
    parser.add_argument("--job-workers", type=int, default=2, help="RQ workers (postgres; 2)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples (10)")
    parser.add_argument("--warmup", type=int, default=10, help="conversations before the run")
    parser.add_argument("--seed", default="soak")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-db", default="soak_bench", help="made and dropped for the run")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument(
        "--redis-db", default="auto", help="Redis database number, or auto (a free one of 4-15)"
    )
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--keep", action="store_true", help="keep CONCILIA_HOME (logs)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.db == "postgres" and args.web_workers is None:
        args.web_workers = 2
    if min(args.customers, args.connections) < 1 or args.agents < 0 or args.minutes <= 0:
        parser.error("--customers and --connections must be positive, --minutes above 0")
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the throw-away benchmark database")
    return exit_code(lambda: run(args), BenchError)


if __name__ == "__main__":
    sys.exit(main())
