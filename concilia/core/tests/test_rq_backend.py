"""The same jobs on the RQ backend: queued to a real Redis on loopback, run by real RQ workers
(`concilia worker` in other processes, as in the scaled deployment), retried with backoff by RQ's
scheduler, dead-lettered, and retried from the admin.

.ci/run installs and starts Redis where it is not running; elsewhere these tests are skipped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from concilia.core.models import DeadJob, PeriodicRun
from concilia.core.tests.jobs_for_tests import fail_until_fixed, mark_done

REDIS = ("127.0.0.1", 6379)


def redis_answers() -> bool:
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        return False
    return True


redis = pytest.importorskip(
    "redis", reason="the RQ backend is not installed (pip install -e '.[rq]')"
)
pytest.importorskip(
    "django_tasks_rq", reason="the RQ backend is not installed (pip install -e '.[rq]')"
)

pytestmark = [
    pytest.mark.skipif(
        not redis_answers(), reason="Redis does not answer on 127.0.0.1:6379 (.ci/run starts it)"
    ),
    # Committed rows, so that the workers in other processes see them.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def redis_db() -> Iterator[int]:
    """A Redis database number that no other test run on this machine uses meanwhile (claimed
    with a key that expires); only this test's RQ keys are deleted from it afterwards."""
    claims = redis.Redis(*REDIS, db=0)
    for number in range(15, 3, -1):
        claim = f"concilia-tests:redis-db:{number}"
        if claims.set(claim, os.getpid(), nx=True, ex=600):
            break
    else:
        pytest.fail("no free Redis database for the RQ tests (numbers 4-15 are all claimed)")
    mine = redis.Redis(*REDIS, db=number)
    stale = list(mine.scan_iter("rq:*"))
    if stale:
        mine.delete(*stale)
    try:
        yield number
    finally:
        keys = list(mine.scan_iter("rq:*"))
        if keys:
            mine.delete(*keys)
        claims.delete(claim)


@pytest.fixture
def rq_backend(settings, redis_db):
    """This process queues to Redis as a scaled deployment's web process does."""
    url = f"redis://{REDIS[0]}:{REDIS[1]}/{redis_db}"
    settings.RQ_QUEUES = {name: {"URL": url} for name in settings.JOB_QUEUES}
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": settings.JOB_QUEUES}
    }
    return url


def database_url() -> str:
    """The test database, for the workers in other processes."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_env(rq_backend, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CONCILIA_HOME": str(tmp_path / "worker-home"),
        "DATABASE_URL": database_url(),
        "CONCILIA_TASKS_BACKEND": "rq",
        "CONCILIA_REDIS_URL": rq_backend,
        "CONCILIA_JOB_ATTEMPTS": "3",
        "CONCILIA_JOB_BACKOFF_SECONDS": "0.4",
    }


@pytest.fixture
def run_rq_worker(worker_env):
    """Run `concilia worker --burst` (an RQ worker with its scheduler) in another process."""

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "concilia", "worker", "--burst"],
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    return run


@pytest.fixture
def rq_worker(worker_env, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """One `concilia worker` (RQ, with its scheduler) running for the whole test: started once,
    as on a server, instead of a new process for every pass."""
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "concilia", "worker"], env=worker_env, stdout=log, stderr=log
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def wait_for(condition, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def attempts_of(name: str) -> int:
    row = PeriodicRun.objects.filter(name=f"{name}-attempts").first()
    return int(row.last_result) if row else 0


def test_a_job_queued_on_redis_is_run_by_an_rq_worker(run_rq_worker, rq_backend):
    result = mark_done.enqueue(name="rq-ok")
    assert not PeriodicRun.objects.filter(name="rq-ok").exists()
    run_rq_worker()
    assert PeriodicRun.objects.filter(name="rq-ok").count() == 1
    assert mark_done.get_result(result.id).status == "SUCCESSFUL"


def test_a_failing_job_is_retried_with_backoff_then_dead_then_retried_by_an_admin(
    rq_worker, rq_backend, admin_client
):
    # Given a job whose service is away, when an RQ worker runs it, then it is tried three times
    # (each retry waits in RQ's schedule for its backoff) and then kept as a dead job.
    fail_until_fixed.enqueue(name="rq-mail")
    wait_for(DeadJob.objects.exists)
    dead = DeadJob.objects.get()
    assert attempts_of("rq-mail") == 3
    assert (dead.task_path, dead.kwargs, dead.attempts) == (
        "concilia.core.tests.jobs_for_tests.fail_until_fixed",
        {"name": "rq-mail"},
        3,
    )
    assert "ConnectionError: the service behind rq-mail is away" in dead.error
    time.sleep(2)  # longer than any backoff: nothing more was queued
    assert attempts_of("rq-mail") == 3

    # When the service is back and an administrator retries the job, then the worker runs it once.
    PeriodicRun.objects.create(name="rq-mail-fixed")
    changelist = reverse("admin:core_deadjob_changelist")
    response = admin_client.post(
        changelist,
        {"action": "retry", "_selected_action": [dead.pk]},
        follow=True,
        headers={"Accept-Language": "en"},
    )
    assert "1 job queued again." in response.content.decode()
    wait_for(lambda: PeriodicRun.objects.filter(name="rq-mail").exists())
    assert attempts_of("rq-mail") == 4
    assert PeriodicRun.objects.filter(name="rq-mail").count() == 1
    assert DeadJob.objects.count() == 1
