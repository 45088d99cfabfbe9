#!/usr/bin/env python3
# ruff: noqa: S608 - the fill's statements are built from integers and this file's constants
"""Benchmark: the analytics dashboard with its default filters at 100,000 and 1,000,000 cases.

Fills one database (SQLite or PostgreSQL) size by size with bench/helpdesk.py's realistic cases
(two years of history, customers, threads), then gives each case its history in the case-event
table with one INSERT ... SELECT per kind (opened, the first reply, waiting for the customer,
closed, and "customer viewed" lines up to --events-per-case: 10 by default, so 1,000,000 cases
make 10,000,000 events). The aggregates are then computed by the real code (`refresh(full=True)`,
timed), an incremental refresh after 1,000 new events is timed, and the real server
(`concilia serve`) answers a signed-in supervisor's GET /helpdesk/analytics/ (the last 30 days,
no filter) --requests times: p50 and p95 per size.

Target (issue 8): p95 at the largest size <= 1.5 x p95 at the smallest.

    python bench/analytics.py --db postgres --sizes 100000,1000000
    python bench/analytics.py --db sqlite --sizes 2000 --requests 5 --json /tmp/a.json   # smoke

Without --keep the database (SQLite file in --home, or the PostgreSQL database --pg-db,
default bench_analytics) is made afresh and removed at the end. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from common import exit_code  # noqa: E402
from complaints import (  # noqa: E402 - the sibling benchmarks' helpers
    PROTECTED_DATABASES,
    BenchError,
    code_version,
    machine_busy,
    percentile,
)
from helpdesk import (  # noqa: E402
    AGENTS,
    CATEGORIES,
    YEARS_OF_HISTORY,
    Browser,
    Server,
    Table,
    analyze,
    pg_admin,
    pg_exists,
    sealed,
    sealed_text,
    set_up_company,
    start_django,
)

SUPERVISOR = "bench-supervisor"
PAUSED = '{"from": "pending_agent", "to": "pending_customer"}'
CLOSED = '{"from": "pending_customer", "to": "closed", "outcome": "resolved"}'
PATH = "/helpdesk/analytics/"


@dataclass
class SizeResult:
    db: str
    cases: int
    events: int
    fill_s: float
    events_s: float
    full_refresh_s: float
    incremental_refresh_s: float
    aggregate_rows: int
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    statuses: dict[str, int]
    machine_busy_pct: float  # the whole machine, this benchmark included
    code: str = ""


DAY = 86400.0
CUSTOMERS = 2000  # the analytics read no customer: a pool is enough
CHANNELS = (["web", "chat", "email", "api"], [45, 30, 20, 5])


def fill(target: int, seed: int, chunk: int = 50_000) -> int:
    """Cases up to `target` by bulk insert (COPY on PostgreSQL): two years of history, more
    lately; most closed (first reply within hours, closing within days), recent ones often open.
    Texts are one sealed sentence (the analytics never read them). Returns cases added."""
    import datetime as dt
    import random

    from django.db import connection, transaction
    from django.db.models import Max
    from django.utils import timezone

    from concilia.accounts.models import Team, User
    from concilia.cases.models import Case, Category
    from concilia.customers.models import Customer

    rng = random.Random(seed + target)
    have = Case.objects.count()
    wanted = target - have
    if wanted <= 0:
        return 0
    if Customer.objects.count() < CUSTOMERS:
        base = (Customer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
        now = timezone.now()
        Table(Customer, ["id", "name", "email", "phone", "email_index", "name_words",
                         "language", "created_at", "updated_at"]).insert(
            [(base + i, *sealed(f"Cliente {i}", f"cliente.{base + i}@example.com", ""), "es",
              now, now) for i in range(CUSTOMERS)]
        )  # fmt: skip
    customers = list(Customer.objects.values_list("id", flat=True)[:CUSTOMERS])
    teams = {t.code: t.pk for t in Team.objects.all()}
    people: dict[int, list[int]] = {}
    users = dict(User.objects.values_list("username", "pk"))
    for username, _first, team_code, share in AGENTS:
        people.setdefault(teams[team_code], []).extend([users[username]] * share)
    categories = {c.code: c.pk for c in Category.objects.all()}
    codes = [code for code in CATEGORIES if code in categories]
    code_weights = [CATEGORIES[c][1] for c in codes]
    code_team = {code: teams[CATEGORIES[code][0]] for code in codes}
    subject, description = sealed_text("Pedido con problema"), sealed_text("Texto del caso.")
    now = timezone.now().timestamp()
    span = YEARS_OF_HISTORY * 365 * DAY
    first_id = (Case.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    created = sorted(now - span * rng.random() ** 1.25 for _ in range(wanted))
    table = Table(
        Case,
        ["id", "reference", "category_id", "channel", "status", "outcome", "customer_id",
         "language", "subject", "description", "team_id", "assignee_id", "deadline",
         "sla_paused_at", "last_activity_at", "created_at", "updated_at", "first_response_at",
         "resolved_at", "closed_at"],
    )  # fmt: skip

    def when(epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)

    for start in range(0, wanted, chunk):
        rows = []
        for index in range(start, min(start + chunk, wanted)):
            pk, t = first_id + index, created[index]
            code = rng.choices(codes, code_weights)[0]
            team = code_team[code]
            age = now - t
            answered = t + rng.expovariate(1 / 0.3) * DAY
            end = answered + rng.expovariate(1 / 3) * DAY
            first = answered if answered < now else None
            if end < now and (age > 20 * DAY or rng.random() < 0.7):
                status, outcome, closed = (
                    "closed",
                    rng.choice(["resolved", "answered", "rejected"]),
                    end,
                )
            else:
                status, outcome, closed = ("pending_customer" if first else "not_started"), "", None
            rows.append((
                pk, f"BA-{pk}", categories[code], rng.choices(*CHANNELS)[0], status, outcome,
                rng.choice(customers), "en" if rng.random() < 0.25 else "es", subject,
                description, team, rng.choice(people[team]), when(t + 10 * DAY),
                when(first) if status == "pending_customer" and first else None,
                when(closed or first or t), when(t), when(closed or first or t),
                when(first) if first else None, when(closed) if closed else None,
                when(closed) if closed else None,
            ))  # fmt: skip
        with transaction.atomic():
            table.insert(rows)
        print(
            f"\r  filled {min(start + chunk, wanted):,}/{wanted:,} cases", end="", file=sys.stderr
        )
    print(file=sys.stderr)
    if connection.vendor == "postgresql":  # COPY with explicit ids leaves the sequences behind
        from django.core.management.color import no_style

        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), [Customer, Case]):
                cursor.execute(statement)
    return wanted


def _json(text: str) -> str:
    from django.db import connection

    return f"'{text}'::jsonb" if connection.vendor == "postgresql" else f"'{text}'"


def _plus_minutes(column: str, minutes: str) -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"{column} + ({minutes}) * interval '1 minute'"
    return f"strftime('%Y-%m-%d %H:%M:%f', {column}, '+' || ({minutes}) || ' minutes')"


def add_events(per_case: int) -> int:
    """Each case's history in cases_caseevent, for the cases that have none yet; returns how many
    events were added. Statements over the case table, so the fill stays a few statements."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(case_id), 0) FROM cases_caseevent")
        after = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM cases_caseevent")
        before = cursor.fetchone()[0]
    insert = (
        "INSERT INTO cases_caseevent (case_id, kind, actor_kind, actor_user_id, data, created_at) "
    )
    statements = [
        insert + f"SELECT id, 'opened', 'customer', NULL, {_json('{}')}, created_at "
        f"FROM cases_case WHERE id > {after}",
        insert + f"SELECT id, 'reply_sent', 'staff', assignee_id, {_json('{}')}, first_response_at "
        f"FROM cases_case WHERE id > {after} AND first_response_at IS NOT NULL",
        insert + "SELECT id, 'status_changed', 'staff', assignee_id, "
        f"{_json(PAUSED)}, first_response_at "
        f"FROM cases_case WHERE id > {after} AND first_response_at IS NOT NULL "
        "AND status IN ('pending_customer', 'closed')",
        insert + "SELECT id, 'status_changed', 'staff', assignee_id, "
        f"{_json(CLOSED)}, "
        f"closed_at FROM cases_case WHERE id > {after} AND closed_at IS NOT NULL",
    ]
    padding = max(per_case - 3, 0)
    if padding:
        numbers = (
            f"generate_series(1, {padding}) AS n(k)"
            if connection.vendor == "postgresql"
            else f"(WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n "
            f"WHERE k < {padding}) SELECT k FROM n) AS n"
        )
        statements.append(
            insert + f"SELECT id, 'customer_viewed', 'customer', NULL, {_json('{}')}, "
            f"{_plus_minutes('created_at', 'n.k * 7')} FROM cases_case, {numbers} "
            f"WHERE id > {after}"
        )
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("SELECT COUNT(*) FROM cases_caseevent")
        return cursor.fetchone()[0] - before


def set_up_supervisor() -> None:
    from django.contrib.auth.models import Group

    from concilia.accounts.models import ROLE_GROUPS, Role, Team, User
    from concilia.intake.management.commands.demo import DEMO_PASSWORD

    if User.objects.filter(username=SUPERVISOR).exists():
        return
    user = User.objects.create_user(
        SUPERVISOR, f"{SUPERVISOR}@concilia.localhost", DEMO_PASSWORD, is_staff=True
    )
    user.groups.add(
        Group.objects.get(name=ROLE_GROUPS[Role.SUPERVISOR][0]),
        *(team.group for team in Team.objects.all()),
    )


def touch_some_cases(count: int) -> None:
    """New events on `count` recent cases, as a busy minute of the helpdesk would add."""
    from concilia.cases.models import Case, CaseEvent

    ids = list(Case.objects.order_by("-id").values_list("id", flat=True)[:count])
    CaseEvent.objects.bulk_create(
        [CaseEvent(case_id=pk, kind="note_added", actor_kind="staff", data={}) for pk in ids]
    )


def aggregate_rows() -> int:
    from concilia.analytics.models import CaseDay, DurationDay, OpenNow

    return sum(m.objects.count() for m in (CaseDay, DurationDay, OpenNow))


@dataclass
class Copy:
    """One size's database as it stood once that size was filled and refreshed."""

    size: int
    home: Path
    env: dict[str, str]
    pg_db: str | None
    facts: dict[str, Any]


def snapshot(size: int, home: Path, args: argparse.Namespace, pg_url: str | None) -> Copy:
    """Copy the database (and the home with its keys) now, so that every size can be timed at
    the end, side by side."""
    from django.db import connections

    connections.close_all()
    copy_home = home.parent / f"{home.name}-{size}"
    shutil.rmtree(copy_home, ignore_errors=True)
    shutil.copytree(home, copy_home, ignore=shutil.ignore_patterns("*.log", "metrics"))
    env = {"CONCILIA_HOME": str(copy_home)}
    name = None
    if pg_url:
        name = f"{args.pg_db}_{size}"
        pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg_admin(args.pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{args.pg_db}"')
        env["DATABASE_URL"] = f"{args.pg_url.rstrip('/')}/{name}"
    return Copy(size, copy_home, env, name, {})


def time_dashboards(browsers: list[Browser], requests: int, warmup: int) -> list[dict[str, Any]]:
    """GET the dashboard from each server in turn, `requests` rounds: whatever else the machine
    is doing weighs on every size alike."""
    for _ in range(warmup):
        for browser in browsers:
            browser.request("GET", PATH)
    times: list[list[float]] = [[] for _ in browsers]
    statuses: list[dict[str, int]] = [{} for _ in browsers]
    cpu_before = machine_busy()
    for _ in range(requests):
        for index, browser in enumerate(browsers):
            started = time.perf_counter()
            status, _headers, body = browser.request("GET", PATH)
            times[index].append((time.perf_counter() - started) * 1000)
            statuses[index][str(status)] = statuses[index].get(str(status), 0) + 1
            if status != 200 or b'data-chart="volume"' not in body:
                raise BenchError(f"GET {PATH} answered {status} without the dashboard")
    cpu_after = machine_busy()
    busy = cpu_after[0] - cpu_before[0]
    total = cpu_after[1] - cpu_before[1]
    timings = []
    for index in range(len(browsers)):
        ordered = sorted(times[index])
        timings.append(
            {
                "requests": requests,
                "p50_ms": round(percentile(ordered, 50), 1),
                "p95_ms": round(percentile(ordered, 95), 1),
                "max_ms": round(ordered[-1], 1),
                "statuses": statuses[index],
                "machine_busy_pct": round(100 * busy / total, 1) if total else 0.0,
            }
        )
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="cases, growing, comma-separated (the first is the baseline)",
    )
    parser.add_argument("--cases", type=int, help="one size only (same as --sizes N)")
    parser.add_argument("--events-per-case", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-db", default="bench_analytics")
    parser.add_argument("--keep", action="store_true", help="reuse a filled database, keep it")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    sizes = [args.cases] if args.cases else sorted(int(v) for v in args.sizes.split(",") if v)
    if args.pg_db.lower() in PROTECTED_DATABASES or not re.fullmatch(
        r"[a-z_][a-z0-9_]*", args.pg_db
    ):
        parser.error(f"refusing to use {args.pg_db!r} as the benchmark database")
    home = (
        args.home or Path(tempfile.gettempdir()) / f"concilia-analytics-bench-{args.db}"
    ).resolve()
    if not args.keep and home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    pg_url = None
    if args.db == "postgres":
        pg_url = f"{args.pg_url.rstrip('/')}/{args.pg_db}"
        exists = pg_exists(args.pg_url, args.pg_db)
        if exists and not args.keep:
            pg_admin(args.pg_url, f'DROP DATABASE "{args.pg_db}" WITH (FORCE)')
        if not exists or not args.keep:
            pg_admin(args.pg_url, f'CREATE DATABASE "{args.pg_db}"')

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    results: list[SizeResult] = []
    try:
        return exit_code(
            lambda: run_sizes(args, sizes, home, pg_url, results) or verdict(results, args),
            BenchError,
        )
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            if pg_url:
                pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)')
            shutil.rmtree(home, ignore_errors=True)


def run_sizes(
    args: argparse.Namespace,
    sizes: list[int],
    home: Path,
    pg_url: str | None,
    results: list[SizeResult],
) -> int:
    """Fill and refresh each size, copying the database after each, then time the dashboard
    of every size side by side (one server per copy, requests taken in turn); 0 when done."""
    servers: list[Server] = []
    copies: list[Copy] = []
    try:
        start_django(args.db, home, pg_url)
        from django.db import connection

        from concilia.analytics.refresh import refresh
        from concilia.cases.models import Case, CaseEvent
        from concilia.intake.management.commands.demo import DEMO_PASSWORD

        set_up_company()
        set_up_supervisor()
        for size in sizes:
            print(f"\n== {size:,} cases on {args.db}", flush=True)
            started = time.monotonic()
            fill(size, args.seed)
            filled = time.monotonic() - started
            started = time.monotonic()
            added = add_events(args.events_per_case)
            events_s = time.monotonic() - started
            analyze()
            events = CaseEvent.objects.count()
            print(f"filled in {filled:.0f}s; {added:,} events added in {events_s:.0f}s "
                  f"({events:,} in all)", flush=True)  # fmt: skip
            started = time.monotonic()
            refresh(full=True)
            full_s = time.monotonic() - started
            rows = aggregate_rows()
            analyze()
            print(f"full refresh {full_s:.0f}s: {rows:,} aggregate rows", flush=True)
            touch_some_cases(1000)
            started = time.monotonic()
            report = refresh()
            incremental_s = time.monotonic() - started
            print(f"incremental refresh of {report.cases:,} touched cases: {incremental_s:.2f}s")
            if size == sizes[-1]:  # the last size is timed on the database itself
                live = {"CONCILIA_HOME": str(home), **({"DATABASE_URL": pg_url} if pg_url else {})}
                copy = Copy(size, home, live, None, {})
            else:
                copy = snapshot(size, home, args, pg_url)
            copy.facts = {
                "db": args.db,
                "cases": Case.objects.count(),
                "events": events,
                "fill_s": round(filled, 1),
                "events_s": round(events_s, 1),
                "full_refresh_s": round(full_s, 1),
                "incremental_refresh_s": round(incremental_s, 2),
                "aggregate_rows": rows,
            }
            copies.append(copy)
        connection.close()
        browsers = []
        for copy in copies:
            server = Server(copy.home, None, args.start_timeout, env=copy.env)
            servers.append(server)
            server.start()
            browser = Browser(server.port)
            browser.sign_in(SUPERVISOR, DEMO_PASSWORD)
            browsers.append(browser)
        print(f"\ntiming the dashboard of {len(copies)} sizes in turn", flush=True)
        timings = time_dashboards(browsers, args.requests, args.warmup)
        for copy, timing in zip(copies, timings, strict=True):
            result = SizeResult(**copy.facts, code=code_version(), **timing)
            results.append(result)
            print(
                f"  {result.cases:,} cases: dashboard p50 {result.p50_ms} ms  p95 "
                f"{result.p95_ms} ms  max {result.max_ms} ms  n {result.requests}  statuses "
                f"{result.statuses}  machine busy {result.machine_busy_pct}% (this benchmark "
                "included)",
                flush=True,
            )
    finally:
        for server in servers:
            server.stop()
        for copy in copies:
            if not args.keep and copy.home != home:
                shutil.rmtree(copy.home, ignore_errors=True)
                if copy.pg_db:
                    pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{copy.pg_db}" WITH (FORCE)')
    return 0


def verdict(results: list[SizeResult], args: argparse.Namespace) -> int:
    """The largest size's p95 against the smallest's; 1 when it misses the target."""
    text, holds = "", True
    if len(results) > 1:
        ratio = results[-1].p95_ms / results[0].p95_ms if results[0].p95_ms else 0
        holds = ratio <= args.factor
        text = (
            f"p95 {results[-1].cases:,} / {results[0].cases:,} cases = {ratio:.2f} "
            f"({'holds' if holds else 'misses'} the {args.factor}x target)"
        )
        print("\n" + text)
    if args.json:
        args.json.write_text(
            json.dumps({"results": [asdict(r) for r in results], "verdict": text}, indent=2)
        )
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
