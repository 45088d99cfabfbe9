"""Sets up, fills and profiles Concilia for bench/peer/compare.py, in CONCILIA_HOME (and
DATABASE_URL when set), with bench/helpdesk.py's company and bulk fill.

    python seed_concilia.py setup              # demo + the company; the API token (JSON out)
    python seed_concilia.py fill 100000        # cases until there are 100,000 (JSON out)
    python seed_concilia.py profile 200 OUT TOKEN  # 200 complaints by API and by form under
                                                   # pyinstrument, in-process
"""

from __future__ import annotations

import io
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import helpdesk as company  # noqa: E402 - bench/helpdesk.py: the company and its bulk fill
from complaints import BODY  # noqa: E402


def start() -> None:
    import os

    company.start_django(
        "postgres" if os.environ.get("DATABASE_URL") else "sqlite",
        Path(os.environ["CONCILIA_HOME"]),
        os.environ.get("DATABASE_URL"),
    )


def setup() -> dict[str, Any]:
    from django.core.management import call_command

    from concilia.intake.management.commands.demo import DEMO_PASSWORD

    output = io.StringIO()
    call_command("demo", stdout=output)
    match = re.search(r"API token[^\n]*:\s*(cnc_\S+)", output.getvalue())
    if not match:
        raise SystemExit(f"`concilia demo` printed no API token:\n{output.getvalue()}")
    company.set_up_company()
    return {"token": match.group(1), "agent": company.BENCH_USERNAME, "password": DEMO_PASSWORD}


def fill(target: int, seed: int = 2026) -> dict[str, Any]:
    from concilia.cases.models import Case

    started = time.monotonic()
    added, customers, messages = company.fill(target, seed)
    filled = time.monotonic() - started
    analyzed = company.analyze()
    record = company.Fill("", Case.objects.count(), added, customers, messages, filled, analyzed)
    company.describe_data(record)
    return {
        "cases": record.cases,
        "added": added,
        "messages": messages,
        "open": record.open_cases,
        "overdue": record.overdue_cases,
        "agent_open": record.bench_agent_open,
        "emails": company.customer_emails(random.Random(seed)),
        "fill_s": round(filled, 1),
        "analyze_s": round(analyzed, 1),
    }


def profile(n: int, out: Path, token: str) -> dict[str, Any]:
    """Where a complaint's time goes in the web process (no HTTP server, no network), through
    the API and through the form: pyinstrument's text report of each, in `out`."""
    import datetime as dt
    import uuid

    from django.test import Client
    from django.utils import timezone
    from pyinstrument import Profiler

    from concilia.customers.queries import current_notice

    api = Client(HTTP_HOST=company.HOST, HTTP_AUTHORIZATION=f"Bearer {token}")
    notice = current_notice().version
    bought = (timezone.localdate() - dt.timedelta(days=30)).isoformat()

    def post_api(index: str) -> int:
        body = BODY.format(id=f"profile-{index}")
        return api.post("/api/v1/complaints", body, content_type="application/json").status_code

    # One client (a new one loads every middleware again: WhiteNoise alone reads the static
    # files, ~100 ms), without cookies before each post: a new customer's browser.
    browser = Client(HTTP_HOST=company.HOST, HTTP_ACCEPT_LANGUAGE="en")

    def post_form(index: str) -> int:
        browser.cookies.clear()
        data = {
            "kind": "complaint", "category": "refund", "name": "Bench Customer",
            "email": f"profile+{index}@example.com", "order_number": f"P-{index}",
            "purchase_date": bought, "amount": "12.50", "notice_version": notice,
            "accept_privacy": "on", "submission_id": str(uuid.uuid4()),
            "description": "My refund has not arrived after three weeks",
            "desired_resolution": "Refund please",
        }  # fmt: skip
        return browser.post("/complaints/new", data).status_code

    found: dict[str, Any] = {}
    reports = []
    for surface, post in (("api", post_api), ("form", post_form)):
        for index in range(20):  # warm: imports, caches, the first connection
            post(f"w{surface}{index}")
        profiler = Profiler(interval=0.0005)
        started = time.perf_counter()
        with profiler:
            statuses = {post(f"{surface}{index}") for index in range(n)}
        found[surface] = {
            "ms_per_request": round((time.perf_counter() - started) / n * 1000, 2),
            "statuses": sorted(statuses),
        }
        tree = profiler.output_text(
            unicode=True, show_all=False, processor_options={"filter_threshold": 0.03}
        )  # frames under 3% of the time are left out
        reports.append(f"== {surface}\n{tree}")
    out.write_text("\n".join(reports))
    return {"requests": n, **found}


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    start()
    if command == "setup":
        result = setup()
    elif command == "fill" and len(sys.argv) == 3:
        result = fill(int(sys.argv[2]))
    elif command == "profile" and len(sys.argv) == 5:
        result = profile(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
    print("RESULT " + json.dumps(result))
