"""bench/soak.py in its tiny form, so the soak does not rot: a fresh embedded deployment (SQLite,
`concilia serve` as the README starts it) with a few customers in the chat and two agents working
the queue at once for 15 seconds; no errors, one case per conversation, every reply and note the
agents sent is stored, the jobs' queue wait and every process's memory were sampled."""

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
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
    ),
    pytest.mark.slow,  # about 40 s: the demo loaded, a server started, 15 s of load
]


def test_customers_and_agents_at_once_leave_no_error_and_every_case_stored(tmp_path: Path):
    # Given a fresh home (the benchmark makes its own), when 6 customers talk to the assistant
    # and 2 agents work the queue for 15 seconds
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    env["TMPDIR"] = str(tmp_path)  # the benchmark's CONCILIA_HOME goes here, and is removed
    done = subprocess.run(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--db=sqlite",
            "--web-workers=1",
            "--customers=6",
            "--agents=2",
            "--minutes=0.25",
            "--think=0.5",
            "--agent-think=0.5",
            "--warmup=0",
            "--sample=3",
            f"--json={report}",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    # Then it succeeds, with no error of any kind
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["errors"] == 0
    assert result["chat_failed_requests"] == {}
    assert result["agent_failed_requests"] == {}
    assert result["server_log_errors"] == 0
    # and every conversation finished, but those the end cut (a customer leaves before their
    # next message), and the database holds one case per conversation that got a reference
    assert result["conversations"] >= 6
    assert result["conversations_finished"] > 0
    assert (
        result["conversations_finished"] + result["conversations_cut_at_the_end"]
        == result["conversations"]
    )
    assert result["unfinished"] == []
    assert result["case_problems"] == []
    check = result["case_check"]
    assert result["cases_added"] == check["conversations_with_case"] == check["distinct_cases"]
    assert result["cases_added"] >= result["conversations_finished"]
    assert result["turn_ms"]["count"] > 0 and result["turn_ms"]["p95"] > 0
    assert result["decision_shown_ms"]["count"] > 0
    # and the agents worked the queue, and the database holds every reply and note they were
    # told was saved (a transfer keeps its note as an internal note). In 15 seconds they may
    # find no case of theirs to act on yet (the demo's agents take the first ones): the full
    # runs in bench/README.md show hundreds of actions.
    saved = result["agent_actions_saved"]
    assert result["agent_check"] == {
        "replies": saved.get("reply", 0) + saved.get("close", 0),
        "notes": saved.get("note", 0) + saved.get("transfer", 0),
    }
    assert result["agent_ms"]["queue"]["count"] > 0
    # and the jobs' wait in their queue was measured, none failed
    assert result["job_wait_ms_all"]["count"] > 0
    assert result["job_statuses"].get("FAILED", 0) == 0
    # and each web and job worker process's memory was sampled over time
    sampled = {
        name.rsplit(" ", 1)[0] for name, m in result["memory"].items() if len(m["samples"]) >= 3
    }
    assert {"web", "job worker"} <= sampled
    # and the server is gone with its home folder
    assert not list(tmp_path.glob("concilia-bench-*"))
