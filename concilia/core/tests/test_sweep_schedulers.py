"""However many schedulers run, each period is swept once: two real `concilia sweep` processes
on one database (SQLite file, or PostgreSQL when DATABASE_URL points at it) over several periods."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from concilia.core.models import PeriodicRun

pytestmark = pytest.mark.django_db(transaction=True)  # the schedulers see committed rows only

PERIOD = 1.0
RUN_FOR = 8.0


def database_url() -> str:
    """The test database, for the schedulers in other processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def test_two_schedulers_sweep_each_period_once(tmp_path: Path):
    env = {
        **os.environ,
        "CONCILIA_HOME": str(tmp_path / "home"),
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "concilia.core.tests.sweep_settings",
    }
    command = [sys.executable, "-m", "concilia", "sweep", "--every", str(PERIOD)]
    schedulers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
        for _ in range(2)
    ]
    swept = PeriodicRun.objects.filter(name__startswith="swept-")
    try:
        deadline = time.monotonic() + 90  # starting Django takes seconds on a busy machine
        while not swept.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(RUN_FOR)
        exited = [scheduler.poll() for scheduler in schedulers]
    finally:
        for scheduler in schedulers:
            scheduler.terminate()
        outputs = [scheduler.communicate(timeout=30)[0].decode() for scheduler in schedulers]

    assert exited == [None, None], outputs  # both schedulers ran the whole time (else: why)
    sweeps = list(swept.order_by("last_started_at").values_list("last_started_at", "last_result"))
    assert len(sweeps) >= RUN_FOR / PERIOD / 2, outputs  # several periods went by
    starts = [started for started, _ in sweeps]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Exactly once per period: no two sweeps ever started within one period of each other.
    assert min(gaps) >= dt.timedelta(seconds=PERIOD), (gaps, outputs)
    last = PeriodicRun.objects.get(name="cases-sweep")
    assert last.last_failed is False, (last.last_result, outputs)
