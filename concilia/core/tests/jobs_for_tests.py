"""Jobs that only the tests queue: they leave a trace in the database that a test (or a worker
in another process) can see, and fail on demand."""

from __future__ import annotations

import datetime as dt
import os
import uuid

from django.db import transaction

from concilia.core.jobs import job
from concilia.core.models import PeriodicRun


@job()
def mark_done(*, name: str) -> None:
    """Record that the job ran: one PeriodicRun row named `name` (idempotent)."""
    PeriodicRun.objects.get_or_create(name=name)


@job()
def fail_until_fixed(*, name: str) -> None:
    """Fail while no row `name`-fixed exists; once it does, record `name` as done. Each attempt
    is counted in the row `name`-attempts (its last_result)."""
    with transaction.atomic():
        counter, _ = PeriodicRun.objects.get_or_create(name=f"{name}-attempts")
        counter.last_result = str(int(counter.last_result or 0) + 1)
        counter.save(update_fields=["last_result"])
    if not PeriodicRun.objects.filter(name=f"{name}-fixed").exists():
        raise ConnectionError(f"the service behind {name} is away")
    PeriodicRun.objects.get_or_create(name=name)


def record_sweep(*, now: dt.datetime) -> int:
    """A sweep job (settings.SWEEP_JOBS): one row per sweep, at the sweep's claimed instant."""
    PeriodicRun.objects.create(
        name=f"swept-{uuid.uuid4().hex[:16]}", last_started_at=now, last_result=str(os.getpid())
    )
    return 1
