"""`concilia serve` as a user runs it: migrates a fresh home, serves pages, static files and the
API, and its background worker sends the confirmation email."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="runs once, on the embedded default (SQLite)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback only
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds}s")


def test_serve_runs_web_and_worker_on_a_fresh_home(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CONCILIA_HOME"] = str(tmp_path / "home")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "concilia", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/complaints/new")
        with urllib.request.urlopen(f"{base}/static/concilia/intake.js") as response:  # noqa: S310
            assert response.status == 200
            assert "javascript" in response.headers["Content-Type"]
        payload = {
            "category": "other",
            "name": "Ana López",
            "email": "ana@example.com",
            "description": "El servicio técnico no me ha llamado.",
            "desired_resolution": "Una llamada",
            "accept_privacy": True,
            "language": "es",
        }
        request = urllib.request.Request(  # noqa: S310
            f"{base}/api/v1/complaints",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:  # noqa: S310
            assert response.status == 201
            reference = json.load(response)["reference"]
            assert reference.startswith("RC-")
        mail_dir = tmp_path / "home" / "mail"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(mail_dir.glob("*.log")):
            time.sleep(0.2)
        [sent] = list(mail_dir.glob("*.log"))
        assert reference in sent.read_text(encoding="utf-8")
        assert (tmp_path / "home" / "concilia.sqlite3").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert "Concilia is running on" in output


# Run inside the served home: Ana sets an alert that is already due on a new case.
DUE_ALERT = """
import datetime as dt
from django.utils import timezone
from concilia.accounts.models import User
from concilia.cases import actions
from concilia.cases.models import Category, Channel
from concilia.customers.models import PrivacyNotice
from concilia.intake.actions import submit_complaint

ana = User.objects.create_user("ana", "ana@company.test", "pw", is_staff=True)
case = submit_complaint(
    data={
        "name": "Lucía Fernández",
        "email": "lucia@example.com",
        "category": Category.objects.get(code="other"),
        "kind": "complaint",
        "description": "Nadie me ha llamado.",
        "desired_resolution": "Una llamada.",
        "notice_version": PrivacyNotice.objects.current(),
    },
    channel=Channel.WEB,
    language="es",
).case
actions.set_reminder(
    case=case, due_at=timezone.now() - dt.timedelta(minutes=1), note="Llamar a Lucía", actor=ana
)
print(case.reference)
"""


def test_serve_sweeps_alerts_that_fall_due(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CONCILIA_HOME"] = str(tmp_path / "home")
    env["CONCILIA_SWEEP_SECONDS"] = "1"
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "concilia", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/complaints/new")
        reference = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "concilia", "shell", "-c", DUE_ALERT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.split()[-1]
        mail_dir = tmp_path / "home" / "mail"
        deadline = time.monotonic() + 10
        alert = None
        while alert is None and time.monotonic() < deadline:
            sent = [p.read_text(encoding="utf-8") for p in mail_dir.glob("*.log")]
            alert = next((m for m in sent if "ana@company.test" in m), None)
            time.sleep(0.2)
        assert alert is not None, "no alert email within 10 s"
        assert reference in alert and "Llamar a Lucía" in alert
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert "Traceback" not in output, output
