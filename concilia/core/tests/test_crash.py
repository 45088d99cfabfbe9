"""bench/crash.py's short form: `concilia serve` (web processes, its two job workers and the
sweep) on the test run's database, SIGKILLed three times at random moments while two clients file
complaints with attachments through the API, started again each time; then every complaint a
client got a reference for exists with its attachments intact, and every outbox event reached
the deduplicating webhook receiver. On SQLite in the SQLite pass, on PostgreSQL in the other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from concilia.core.tests.test_workers import database_url

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.slow,  # about a minute: a server started four times
    pytest.mark.django_db(transaction=True),  # the server's processes see the committed rows
]


def test_nothing_acknowledged_is_lost_when_server_and_workers_are_killed(seeded, tmp_path: Path):
    # Given the seeded test database, when the short form runs
    report = tmp_path / "crash.json"
    done = subprocess.run(  # noqa: S603 - our own benchmark
        [
            sys.executable,
            str(ROOT / "bench" / "crash.py"),
            "--db",
            "postgres" if connection.vendor == "postgresql" else "sqlite",
            "--database-url",
            database_url(),
            "--kills",
            "3",
            "--clients",
            "2",
            "--min-gap",
            "1.5",
            "--max-gap",
            "4",
            "--json",
            str(report),
        ],
        cwd=ROOT / "bench",
        env={**os.environ, "CONCILIA_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-5000:]
    # Then nothing a client was told of is missing, and every event arrived
    (run,) = json.loads(report.read_text())
    assert run["kills"] == 3
    assert run["acknowledged"] > 0
    assert (run["missing_complaints"], run["damaged_attachments"]) == ([], [])
    assert run["without_created_event"] == []
    assert run["events"] >= run["acknowledged"]  # at least each case's case.created
    assert (run["missing_events"], run["events_received"]) == ([], run["events"])
    assert run["receiver_refused"] == {}  # every request was signed
    assert run["confirmations_missing"] == []  # the jobs queued with each complaint ran
