#!/usr/bin/env python3
"""Benchmark: the helpdesk's free-text search over encrypted case texts (concilia.cases.search).

Fills a fresh database with the helpdesk benchmark's cases (bench/helpdesk.py: encrypted
subjects, descriptions and messages, with their blind trigram index, as the application writes
them), growing size by size (10,000 → 100,000 cases by default), and at each size times the
queue's first page for a few kinds of text, in process (no HTTP): a rare text (one case's
tracking number), words of a note a few percent of cases have, a word in a fifth of them, a
phrase nobody wrote, and two characters (which scan the most recent cases). It prints p50 and
p95 per query, the index's rows, and how many cases each text finds.

    python bench/search.py --db sqlite
    python bench/search.py --db postgres --sizes 10000,100000
    python bench/search.py --db sqlite --sizes 2000 --repeat 3     # smoke

The database (SQLite file in a scratch home, or the PostgreSQL database --pg-db, default
bench_search) is made afresh and removed at the end. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpdesk  # the helpdesk benchmark's company and fill

QUERIES = [
    ("rare", None),  # filled in: one case's tracking number
    ("note", "confirmar el abono con contabilidad"),
    ("common", helpdesk.TEXT_WORD),
    ("nothing", "frase que nadie escribió"),
    ("short", "iv"),
]


def tracking_number(user: Any) -> str:
    """A tracking number a message of a case the agent sees holds (the fill writes one per
    follow-up)."""
    import re

    from concilia.cases import queue
    from concilia.cases.models import Message

    seen = queue.filtered(user, {"view": "all"}).values("pk")
    messages = Message.objects.filter(case__in=seen).order_by("-pk")
    for body in messages.values_list("body", flat=True)[:2000]:
        if match := re.search(r"1Z\d{10}", body):
            return match.group(0)
    return "1Z0000000000"


def time_query(user: Any, text: str, repeat: int) -> dict[str, Any]:
    from concilia.cases import queue

    spent = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        page = queue.page(user, {"view": "all", "q": text})
        spent.append((time.perf_counter() - started) * 1000)
        rows = len(page.cases)
    found = queue.filtered(user, {"view": "all", "q": text}).count()
    spent.sort()
    return {
        "p50_ms": statistics.median(spent),
        "p95_ms": spent[min(len(spent) - 1, round(0.95 * (len(spent) - 1)))],
        "rows": rows,
        "found": found,
    }


def index_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM cases_textgram")
        return int(cursor.fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", type=helpdesk.parse_sizes, default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per query and size")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-db", default="bench_search")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix=f"concilia-search-bench-{args.db}-"))
    pg_url = None
    if args.db == "postgres":
        if args.pg_db.lower() in helpdesk.PROTECTED_DATABASES:
            parser.error(f"refusing to use {args.pg_db!r}")
        pg_url = f"{args.pg_url.rstrip('/')}/{args.pg_db}"
        if helpdesk.pg_exists(args.pg_url, args.pg_db):
            helpdesk.pg_admin(args.pg_url, f'DROP DATABASE "{args.pg_db}" WITH (FORCE)')
        helpdesk.pg_admin(args.pg_url, f'CREATE DATABASE "{args.pg_db}"')
    results: list[dict[str, Any]] = []
    try:
        helpdesk.start_django(args.db, home, pg_url)
        from concilia.accounts.models import User

        helpdesk.set_up_company()
        user = User.objects.get(username=helpdesk.BENCH_USERNAME)
        for size in args.sizes:
            started = time.monotonic()
            added, _customers, messages = helpdesk.fill(size, args.seed)
            filled = time.monotonic() - started
            helpdesk.analyze()
            grams = index_rows()
            print(
                f"\n== {size:,} cases on {args.db}: filled {added:,} cases, {messages:,} "
                f"messages in {filled:.0f}s; {grams:,} index rows "
                f"({grams / max(size, 1):.0f} a case), database {helpdesk.database_mb():,.0f} MB",
                flush=True,
            )
            print(f"{'query':<9}{'text':<38}{'p50 ms':>9}{'p95 ms':>9}{'found':>8}")
            for name, text in QUERIES:
                text = text or tracking_number(user)
                time_query(user, text, 1)  # warm the caches
                figures = time_query(user, text, args.repeat)
                print(
                    f"{name:<9}{text[:36]:<38}{figures['p50_ms']:>9.1f}{figures['p95_ms']:>9.1f}"
                    f"{figures['found']:>8,}",
                    flush=True,
                )
                results.append(
                    {"db": args.db, "size": size, "query": name, "text": text, **figures}
                )
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(home, ignore_errors=True)
        if pg_url is not None:
            helpdesk.pg_admin(args.pg_url, f'DROP DATABASE "{args.pg_db}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
