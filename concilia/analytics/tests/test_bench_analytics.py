"""bench/analytics.py on a small SQLite database, so the benchmark does not rot: it fills cases
and their events, refreshes the aggregates fully and incrementally, starts `concilia serve`, signs
a supervisor in and times the dashboard."""

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


def test_the_analytics_benchmark_fills_refreshes_and_times_the_dashboard(tmp_path: Path):
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "analytics.py"),
            "--db=sqlite",
            "--sizes=300,800",
            "--events-per-case=6",
            "--requests=3",
            "--warmup=1",
            "--factor=1000",  # three requests per size say nothing about the target
            f"--home={tmp_path / 'home'}",
            f"--json={report}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # nothing left behind: neither the home nor the copy of the first size
    assert list(tmp_path.glob("home*")) == []
    # each size timed from its own copy of the database
    small, result = json.loads(report.read_text())["results"]
    assert 300 <= small["cases"] < 800 <= result["cases"]
    assert small["statuses"] == {"200": 3}
    assert result["events"] >= 6 * 800  # opened, replies, status changes, padding
    assert result["aggregate_rows"] > 0
    assert result["statuses"] == {"200": 3}
    assert 0 < result["p50_ms"] <= result["p95_ms"]
