"""bench/helpdesk.py on a small SQLite database, so the benchmark does not rot: it fills, starts
`concilia serve`, signs the agent in, times every filter and explains the queue's query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
    ),
]


def test_the_helpdesk_benchmark_fills_serves_and_measures_every_filter(tmp_path: Path):
    # Given an empty home, when the benchmark runs at 2,000 cases with a few requests per filter
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "helpdesk.py"),
            "--db=sqlite",
            "--sizes=2000",
            "--requests=3",
            "--warmup=1",
            "--quiet-wait=0",
            "--retry-disturbed=0",
            f"--home={tmp_path / 'home'}",
            f"--json={report}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # Then it succeeds and leaves nothing behind
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (tmp_path / "home").exists()
    result = json.loads(report.read_text())

    # with 2,000 cases: most closed, some open and overdue, some for the benchmark agent
    [fill] = result["fills"]
    assert fill["cases"] == 2000
    assert fill["added"] > 1900  # the demo's own cases count too
    assert fill["messages_added"] > fill["added"]
    assert 0 < fill["overdue_cases"] < fill["open_cases"] < fill["cases"] / 4
    assert fill["bench_agent_open"] > 0

    # and every filter of the queue page answered 200 with rows, in a bounded number of queries
    pages = {t["filter"]: t for t in result["timings"] if t["surface"] == "page"}
    for name in ("mine", "email", "overdue", "text", "all"):
        assert pages[name]["statuses"] == {"200": 3}, name
        assert pages[name]["rows"] > 0, name
        assert pages[name]["queries"] is not None and pages[name]["queries"] < 20, name
    # (deeper pages too, where a database this small has them)
    for timing in result["timings"]:
        assert timing["statuses"] in ({"200": 3}, {}), timing
        assert timing["requests"] or timing["note"].startswith("no page"), timing

    # and the list API, when this checkout has it, answered the same filters
    if result["api_available"]:
        api = {t["filter"]: t for t in result["timings"] if t["surface"] == "api"}
        for name in ("mine", "email", "overdue", "text"):
            assert api[name]["statuses"] == {"200": 3}, name
            assert api[name]["rows"] == pages[name]["rows"], name

    # and the main query of each filter was explained
    assert any(key.startswith("page mine @ 2000") for key in result["plans"])
    assert "case_open_assignee_deadline" in result["plans"]["page mine @ 2000"]
