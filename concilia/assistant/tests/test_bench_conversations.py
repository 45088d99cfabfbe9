"""bench/conversations.py with a handful of customers, so the benchmark does not rot: it loads the
demo, starts `concilia serve` on loopback, walks every conversation to a case, the policies' answer
(polled for, as the widget does) and the survey, and checks the database holds exactly one case per
conversation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
)


def test_ten_customers_each_reach_a_case_and_the_survey_through_a_real_server(tmp_path: Path):
    # Given a fresh home (the benchmark makes its own), when ten customers talk at once
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    env["TMPDIR"] = str(tmp_path)  # the benchmark's CONCILIA_HOME goes here, and is removed
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "conversations.py"),
            "--customers=10",
            "--connections=4",
            "--workers=1",
            "--warmup=0",
            "--quiet-wait=0",
            "--retry-disturbed=0",
            "--time-limit=60",
            f"--json={report}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it succeeds, with no error of any kind
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["errors"] == 0
    assert result["failed_requests"] == {}
    assert result["unfinished"] == []
    # and every conversation finished with its own case, which the database holds
    assert result["conversations_finished"] == 10
    assert result["cases_added"] == 10
    assert result["case_problems"] == []
    check = result["case_check"]
    assert check["conversations_with_case"] == check["distinct_cases"] == 10
    assert check["cases_shared_by_conversations"] == 0
    assert check["surveys"] == result["surveys_answered"] == 10 - result["handed_over"]
    # and every scripted kind of complaint, in both languages, took part, timed turn by turn
    assert len(result["finished_by_script"]) == 10
    assert result["turns"] >= 10 * 8
    assert {"start", "consent", "problem", "email", "name", "confirm"} <= set(result["by_step"])
    assert result["p95_ms"] > 0
    # and every case's answer from the policies came by polling, after the reply, and was timed
    assert result["decision_shown_ms"]["count"] == 10
    assert result["decision_shown_ms"]["p50"] >= result["poll_interval_s"] * 1000
    assert result["decision_server_ms"]["count"] == 10
    assert result["polls"]["requests"] >= 10
    assert result["memory_peak"]["web"]["rss_mib"] > 0
    # and the server is gone with its home folder
    assert not list(tmp_path.glob("concilia-bench-*"))
