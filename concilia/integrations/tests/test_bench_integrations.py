"""bench/integrations.py with tiny numbers, so the benchmark does not rot: on PostgreSQL and a
Redis database of its own it starts `concilia serve` and two RQ workers (`concilia worker`), a
signed-webhook receiver and a mailbox, files complaints, posts emails and reads more over IMAP,
and finds every event delivered once and every email processed as expected."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from concilia.integrations.tests.mailserver import DOVECOT

ROOT = Path(__file__).resolve().parents[3]


def redis_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


pytest.importorskip("django_tasks_rq", reason="the RQ backend is not installed (make rq)")

pytestmark = [
    pytest.mark.slow,  # about two minutes: a database migrated, a server and workers started
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="runs once, in the PostgreSQL pass: the scaled deployment's database",
    ),
    pytest.mark.skipif(
        not redis_answers(), reason="Redis does not answer on 127.0.0.1:6379 (.ci/run starts it)"
    ),
]


def test_every_webhook_event_arrives_once_and_every_email_is_processed(tmp_path: Path):
    # Given PostgreSQL (the test run's server) and Redis, when the benchmark runs small batches
    db = connection.settings_dict
    pg_url = (
        f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    )
    report = tmp_path / "report.json"
    options = {
        "changes": 30,
        "paced-changes": 10,
        "paced-rate": 10,
        "emails": 20,
        "imap-emails": 20,
        "warmup": 5,
        "quiet-wait": 0,
        "settle": 2,
        "drain-timeout": 120,
        "time-limit": 60,
        "pg-url": pg_url,
        "pg-db": f"concilia_bench_integrations_{os.getpid()}",
        "redis-db": "auto",  # a database no other test run has claimed
        "json": report,
    }
    command = [sys.executable, str(ROOT / "bench" / "integrations.py")]
    command += [f"--{name}={value}" for name, value in options.items()]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    env["TMPDIR"] = str(tmp_path)  # the benchmark's CONCILIA_HOME goes here, and is removed
    done = subprocess.run(  # noqa: S603
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False
    )

    # Then it succeeds, with two RQ workers doing the work
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["failures"] == 0
    assert result["workers"] == 2
    # and every complaint's events reached the receiver signed, once each, none missing
    burst, paced = result["webhooks"]
    for batch, changes in ((burst, 30), (paced, 10)):
        assert batch["api"]["succeeded"] == changes
        assert batch["events_by_kind"]["case.created"] == changes
        assert batch["unique"] == batch["events_expected"] >= changes
        assert (batch["missing"], batch["duplicates"], batch["errors"]) == (0, 0, 0)
        assert batch["refused_by_receiver"] == {}
        assert batch["deliveries_by_status"] == {"delivered": batch["events_expected"]}
        assert batch["deliveries_per_s_steady"] > 0
        assert 0 < batch["lag_ms"]["p50"] <= batch["lag_ms"]["p95"]
        assert batch["rq_jobs"] >= changes and batch["rq_jobs_failed"] == 0
        assert batch["cpu_s"]["rq workers"] > 0
    # and every email was kept and processed as its kind says, its cases' events delivered
    emails = result["emails"]
    assert emails["posts"]["succeeded"] == 20
    assert emails["errors"] == 0 and emails["unexpected_outcomes"] == {}
    kinds = emails["by_kind"]
    assert emails["outcomes"] == {
        "new_case": kinds["new_es"] + kinds["new_en"],
        "reply": kinds["reply"],
        "note": kinds["note"],
        "auto_reply": kinds["auto"],
    }
    assert emails["emails_per_s"] > 0
    assert emails["webhook_events"] > 0 and emails["webhook_events_missing"] == 0
    # and, where Dovecot is installed (.ci/run installs it), the same mix read over IMAP too
    if os.path.exists(DOVECOT):
        imap = result["imap"]
        assert imap["errors"] == 0 and imap["unexpected_outcomes"] == {}
        assert sum(imap["outcomes"].values()) == 20 and imap["emails_per_s"] > 0
    else:
        assert "imap" not in result
    # and the server, the workers and the home folder are gone
    assert not list(tmp_path.glob("concilia-bench-*"))
