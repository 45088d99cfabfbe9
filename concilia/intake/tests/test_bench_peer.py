"""bench/peer/compare.py on a small SQLite database, so the side-by-side benchmark does not rot:
it sets up Concilia and the floor, starts each on granian, files complaints by form and API,
fills, signs the agent in and times the three lists, and reads each server's memory.

django-helpdesk comes from PyPI into its own environment (bench/peer/compare.py --venv). The test
never installs it: when that environment is absent (as in CI) the peer's part is skipped, with
--no-peer, and only Concilia and the floor are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]
PEER_VENV = Path(tempfile.gettempdir()) / "peer-venv"
PEER_INSTALLED = (PEER_VENV / "bin" / "python").exists()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
    ),
]


def test_the_peer_benchmark_files_lists_and_measures_every_system(tmp_path: Path):
    # Given no PostgreSQL and, in CI, no django-helpdesk environment
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    env["TMPDIR"] = str(tmp_path)  # its scratch folders, removed at the end
    command = [
        sys.executable,
        str(ROOT / "bench" / "peer" / "compare.py"),
        "--db=sqlite",
        "--sizes=300",
        "--requests=20",
        "--warmup=3",
        "--concurrency=4",
        "--workers=1",
        "--list-requests=3",
        "--list-warmup=1",
        "--no-profile",
        "--no-install",
        f"--venv={PEER_VENV}",
        f"--json={report}",
    ]
    if not PEER_INSTALLED:
        command.append("--no-peer")

    # When the benchmark runs with a few requests of each kind
    done = subprocess.run(  # noqa: S603
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )

    # Then it succeeds, prints the table and leaves no scratch folder behind
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "| db | surface | system | created/s |" in done.stdout
    assert not list(tmp_path.glob("peer-bench-*"))
    result = json.loads(report.read_text())
    systems = ["concilia", "floor"] + (["django-helpdesk"] if PEER_INSTALLED else [])

    # and every system took every complaint, by form and by API, each one a row in its table
    intake = {(r["system"], r["surface"]): r for r in result["intake"]}
    assert set(intake) == {(s, surface) for s in systems for surface in ("form", "api")}
    for key, row in intake.items():
        assert row["created"] == 20 and row["rows_added"] == 20, (key, row)
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], (key, row)

    # and the agent's three lists answered 200 at 300 rows, the agent's own one not empty
    lists = {(r["system"], r["filter"]): r for r in result["lists"]}
    listed = [s for s in systems if s != "floor"]
    assert set(lists) == {(s, f) for s in listed for f in ("mine", "email", "overdue")}
    for key, row in lists.items():
        assert row["rows"] == 300 and row["statuses"] == {"200": 3}, (key, row)
    for system in listed:
        assert lists[(system, "mine")]["shown"] > 0, system
        assert lists[(system, "email")]["shown"] > 0, system

    # and each server's memory was read: granian's main process and its one worker
    memory = {(m["system"], m["when"]) for m in result["memory"]}
    assert {(s, "after intake") for s in systems} <= memory
    for m in result["memory"]:
        assert m["web_processes"] == 2 and m["web_mb"] > m["largest_mb"] > 10, m
    concilia = next(m for m in result["memory"] if m["system"] == "concilia")
    assert concilia["other_mb"] > 0  # its task worker and sweep run beside the web processes
