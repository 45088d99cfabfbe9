"""RQ is handed a change's jobs after the change commits: a web process killed between the
commit and the hand-off used to lose them (bench/crash.py found confirmations never sent). Now
each job is written down with the change and the sweep hands over what a dead process left,
never queuing twice a job that Redis already holds. Real Redis, real processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from django.utils import timezone

from concilia.core.models import JobHandoff, PeriodicRun
from concilia.core.tasks import _queued_as, enqueue_with_change, hand_over_left
from concilia.core.tests.jobs_for_tests import mark_done

try:  # test_rq_backend's fixtures: a Redis database of this test's own, the workers' settings
    from concilia.core.tests.test_rq_backend import (  # noqa: F401 - fixtures
        redis_answers,
        redis_db,
        rq_backend,
        run_rq_worker,
        worker_env,
    )
except pytest.skip.Exception:  # the RQ extra is not installed
    pytest.skip("the RQ backend is not installed", allow_module_level=True)

pytestmark = [
    pytest.mark.skipif(not redis_answers(), reason="Redis does not answer on 127.0.0.1:6379"),
    pytest.mark.django_db(transaction=True),
]

# A web process that commits a change with its job and dies before handing the job to Redis.
KILLED_AFTER_COMMIT = """
import os
from django.db import transaction
from concilia.core.tasks import enqueue_with_change
from concilia.core.tests.jobs_for_tests import mark_done
with transaction.atomic():
    transaction.on_commit(lambda: os._exit(9))
    enqueue_with_change(mark_done, name="{name}")
"""


def queued() -> int:
    import django_rq

    return django_rq.get_queue("default").count


def test_a_job_committed_with_its_change_is_handed_over(rq_backend, run_rq_worker):
    enqueue_with_change(mark_done, name="handed")
    assert queued() == 1
    assert not JobHandoff.objects.exists()  # handed over: nothing left for the sweep
    run_rq_worker()
    assert PeriodicRun.objects.filter(name="handed").exists()


def test_a_process_killed_between_commit_and_hand_off_loses_no_job(
    rq_backend, worker_env, run_rq_worker
):
    # Given a process that committed its change and died before giving the job to Redis
    died = subprocess.run(  # noqa: S603 - our own command
        [
            sys.executable,
            "-m",
            "concilia",
            "shell",
            "-c",
            KILLED_AFTER_COMMIT.format(name="orphan"),
        ],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert died.returncode == 9, died.stdout + died.stderr
    assert queued() == 0
    assert JobHandoff.objects.count() == 1
    # When the sweep runs within the grace period, then it leaves the row (its process may be alive)
    now = timezone.now()
    assert hand_over_left(now=now) == 0
    assert JobHandoff.objects.count() == 1
    # When it runs later, then the job is queued once, and a worker runs it
    assert hand_over_left(now=now + dt.timedelta(minutes=1)) == 1
    assert hand_over_left(now=now + dt.timedelta(minutes=2)) == 0
    assert queued() == 1
    assert not JobHandoff.objects.exists()
    run_rq_worker()
    assert PeriodicRun.objects.filter(name="orphan").exists()


def test_a_job_redis_already_holds_is_not_queued_twice(rq_backend):
    # Given a process that handed the job over and died before deleting its row
    handoff = JobHandoff.objects.create(
        task_path=mark_done.module_path, kwargs={"name": "twice"}, queue_name="default"
    )
    with _queued_as(str(handoff.pk)):
        mark_done.enqueue(name="twice")
    assert queued() == 1
    # When the sweep finds the row, then it forgets it without queuing the job again
    assert hand_over_left(now=timezone.now() + dt.timedelta(minutes=1)) == 0
    assert queued() == 1
    assert not JobHandoff.objects.exists()
