"""Jobs that kill the worker running them (as a segfault or the OOM killer would), for the tests
of `concilia worker`'s recovery of abandoned jobs."""

from __future__ import annotations

import os
import signal

from django.db import transaction

from concilia.core.jobs import job
from concilia.core.models import PeriodicRun


def _count_run(name: str) -> int:
    """Count this run in the row `name`-runs (committed before anything else happens)."""
    with transaction.atomic():
        counter, _ = PeriodicRun.objects.get_or_create(name=f"{name}-runs")
        counter.last_result = str(int(counter.last_result or 0) + 1)
        counter.save(update_fields=["last_result"])
    return int(counter.last_result)


@job()
def kill_worker_once(*, name: str) -> None:
    """Kill the worker the first time; record `name` as done the next time."""
    if _count_run(name) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    PeriodicRun.objects.get_or_create(name=name)


@job()
def kill_worker_always(*, name: str) -> None:
    """Kill the worker every time (a job that can never succeed)."""
    _count_run(name)
    os.kill(os.getpid(), signal.SIGKILL)


@job(queue_name="mail")
def mark_done_by_mail(*, name: str) -> None:
    """Record `name` as done, from the mail queue."""
    PeriodicRun.objects.get_or_create(name=name)


@job(queue_name="customer")
def mark_done_for_customer(*, name: str) -> None:
    """Record `name` as done, from the customer queue."""
    PeriodicRun.objects.get_or_create(name=name)
