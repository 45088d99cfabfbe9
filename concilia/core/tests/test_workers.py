"""`concilia worker` runs each job in its own process, so a job that kills the interpreter takes
the worker with it: real worker processes, on the database backend and on RQ with a real Redis,
are killed by their job, and the next worker runs the abandoned job again, or keeps it as a dead
job when it kills every worker that tries. Queues: a worker takes jobs only from its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from concilia.core.models import DeadJob, PeriodicRun
from concilia.core.tests.jobs_that_crash import (
    kill_worker_always,
    kill_worker_once,
    mark_done_by_mail,
    mark_done_for_customer,
)

pytestmark = pytest.mark.django_db(transaction=True)  # committed rows, seen by the workers


def database_url() -> str:
    """The test database, for the workers in other processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def run_worker(env: dict[str, str], *options: str) -> int:
    """Run `concilia worker --burst` in another process (its own group, so that whatever it
    started goes with it); its exit status, -9 when its job killed it."""
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "concilia", "worker", "--burst", "-v0", *options],
        env=env,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def runs_of(name: str) -> int:
    row = PeriodicRun.objects.filter(name=f"{name}-runs").first()
    return int(row.last_result) if row else 0


def done(name: str) -> bool:
    return PeriodicRun.objects.filter(name=name).exists()


@pytest.fixture
def database_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CONCILIA_HOME": str(tmp_path / "worker-home"),
        "DATABASE_URL": database_url(),
        "CONCILIA_TASKS_BACKEND": "database",
        "CONCILIA_JOB_ATTEMPTS": "2",
    }


def test_database_worker_killed_by_its_job_the_next_worker_runs_the_job_again(database_env):
    # Given a job that kills the worker running it the first time
    kill_worker_once.enqueue(name="db-once")
    # When a worker takes it, then the worker dies and the job stays claimed by the dead worker
    assert run_worker(database_env) == -signal.SIGKILL
    assert runs_of("db-once") == 1
    assert DBTaskResult.objects.get().status == "RUNNING"
    # When another worker starts, then it runs the abandoned job again, to the end
    assert run_worker(database_env) == 0
    assert (runs_of("db-once"), done("db-once")) == (2, True)
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    assert not DeadJob.objects.exists()


def test_database_job_that_kills_every_worker_is_kept_as_dead_job(database_env):
    # Given a job that kills every worker, and 2 attempts in all
    kill_worker_always.enqueue(name="db-always")
    # When workers keep starting, then it runs twice, and the third worker keeps it as dead
    assert run_worker(database_env) == -signal.SIGKILL
    assert run_worker(database_env) == -signal.SIGKILL
    assert run_worker(database_env) == 0
    assert runs_of("db-always") == 2
    dead = DeadJob.objects.get()
    assert (dead.task_path, dead.kwargs, dead.attempts, dead.queue_name) == (
        "concilia.core.tests.jobs_that_crash.kill_worker_always",
        {"name": "db-always"},
        2,
        "default",
    )
    assert "worker running this job died" in dead.error
    assert DBTaskResult.objects.get().status == "FAILED"
    # And the next worker leaves it alone
    assert run_worker(database_env) == 0
    assert runs_of("db-always") == 2


def test_a_worker_takes_jobs_only_from_its_queues(database_env):
    # Given a job in the mail queue and one in the customer queue
    mark_done_by_mail.enqueue(name="by-mail")
    mark_done_for_customer.enqueue(name="for-customer")
    # When a worker of the customer queue runs, then only the customer's job is done
    assert run_worker(database_env, "--queues", "customer") == 0
    assert (done("for-customer"), done("by-mail")) == (True, False)
    # When a worker of every queue runs, then the mail job is done too
    assert run_worker(database_env) == 0
    assert done("by-mail")


def test_an_unknown_queue_is_refused(database_env):
    done_ = subprocess.run(
        [sys.executable, "-m", "concilia", "worker", "--burst", "--queues", "customer,post"],
        env=database_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done_.returncode == 1
    assert "Unknown queue(s) post; the queues are customer, default, mail, webhooks." in (
        done_.stderr
    )


# RQ on a real Redis (skipped where Redis does not answer; .ci/run starts it) ---------------------


try:  # test_rq_backend's fixtures: a Redis database of this test's own, the workers' settings
    from concilia.core.tests.test_rq_backend import (  # noqa: F401 - fixtures
        redis_answers,
        redis_db,
        rq_backend,
        worker_env,
    )
except pytest.skip.Exception:  # the RQ backend is not installed
    redis_answers = None


@pytest.fixture
def rq_env(request, tmp_path: Path) -> dict[str, str]:
    if redis_answers is None or not redis_answers():
        pytest.skip("the RQ backend is not installed, or Redis does not answer (.ci/run)")
    env = request.getfixturevalue("worker_env")
    return {**env, "CONCILIA_HOME": str(tmp_path / "rq-worker-home")}


def test_rq_worker_killed_by_its_job_the_next_worker_runs_the_job_again(rq_env):
    # Given a job on Redis that kills the RQ worker (no fork: the job runs in the worker) once
    kill_worker_once.enqueue(name="rq-once")
    assert run_worker(rq_env) == -signal.SIGKILL
    assert runs_of("rq-once") == 1
    # When another worker starts on this machine, then it finds the dead worker's job at once
    # (not after the job's timeout) and runs it to the end
    assert run_worker(rq_env) == 0
    assert (runs_of("rq-once"), done("rq-once")) == (2, True)
    assert not DeadJob.objects.exists()


def test_rq_job_that_kills_every_worker_is_kept_as_dead_job(rq_env):
    # Given a job that kills every worker, and 3 attempts in all (test_rq_backend's worker_env)
    kill_worker_always.enqueue(name="rq-always")
    for _ in range(3):
        assert run_worker(rq_env) == -signal.SIGKILL
    # When the next worker starts, then it keeps the job as dead instead of running it again
    assert run_worker(rq_env) == 0
    assert runs_of("rq-always") == 3
    dead = DeadJob.objects.get()
    assert (dead.task_path, dead.kwargs, dead.attempts, dead.backend) == (
        "concilia.core.tests.jobs_that_crash.kill_worker_always",
        {"name": "rq-always"},
        3,
        "default",
    )
    assert run_worker(rq_env) == 0
    assert runs_of("rq-always") == 3
