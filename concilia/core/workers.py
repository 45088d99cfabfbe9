"""The job workers that `concilia worker` runs, without a process per job, and what finds the jobs
of a worker that died while running them.

A worker runs every job in its own process (RQ's `SimpleWorker`; django-tasks' database worker
always does): forking a process per job costs about five times the CPU (bench/README.md). The
price is that a job that kills the interpreter (a segfault, the kernel's OOM killer, SIGKILL)
takes the worker with it and leaves its job marked as running. Such an abandoned job is queued
again: at once when the dead worker was on this machine (its process id is gone), after
`settings.JOB_TIMEOUT` plus a minute when it was on another. A job that kills its worker every
time is kept as a `DeadJob` after `settings.JOB_ATTEMPTS` tries, as a job that raises is.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from concilia.core.jobs import RETRY_KWARG
from concilia.core.models import DeadJob

logger = logging.getLogger(__name__)

ABANDONED = "The worker running this job died (killed, out of memory or crashed) before it ended."
# How often a database worker looks for jobs a dead worker left running.
RECLAIM_SECONDS = 30.0


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def keep_dead(
    *,
    task_path: str,
    args: list[Any],
    kwargs: dict[str, Any],
    queue_name: str,
    backend: str,
    attempts: int,
    first_failed_at: dt.datetime,
) -> DeadJob:
    """Keep a job that killed its worker every time it ran, for an administrator to retry."""
    kwargs = {k: v for k, v in kwargs.items() if k != RETRY_KWARG}
    logger.error("Job %s killed its worker %s times and is now a dead job", task_path, attempts)
    return DeadJob.objects.create(
        task_path=task_path,
        args=args,
        kwargs=kwargs,
        queue_name=queue_name,
        backend=backend,
        attempts=attempts,
        error=ABANDONED,
        first_failed_at=first_failed_at,
        last_failed_at=timezone.now(),
    )


# The database backend ---------------------------------------------------------------------------


def database_worker_id() -> str:
    """`host/pid/random`: tells a later worker whether this one is still alive (django-tasks'
    worker ids are at most 64 characters)."""
    suffix = f"/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    return socket.gethostname()[: 64 - len(suffix)] + suffix


def _owner_gone(worker_id: str, started_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether the worker that claimed a job can no longer be running it."""
    host, _, rest = worker_id.rpartition("/")[0].rpartition("/")
    pid = rest if host else ""
    if host == socket.gethostname() and pid.isdigit():
        return not process_alive(int(pid))
    # Another machine, or a worker id of another format: only a claim older than any job may be.
    stale = now - dt.timedelta(seconds=settings.JOB_TIMEOUT + 60)
    return started_at is None or started_at < stale


def reclaim_database_jobs(*, now: dt.datetime | None = None) -> int:
    """Queue again the database backend's jobs whose worker died while running them; keep the
    ones that did so `settings.JOB_ATTEMPTS` times as dead jobs. Returns how many were queued.

    Safe with many workers at once: each row changes only while it still holds the claim seen."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    now = now or timezone.now()
    queued = 0
    for row in DBTaskResult.objects.running().only(
        "id", "worker_ids", "started_at", "enqueued_at", "task_path", "args_kwargs"
    ):
        if not _owner_gone((row.worker_ids or [""])[-1], row.started_at, now):
            continue
        claim = DBTaskResult.objects.filter(
            pk=row.pk, status=TaskResultStatus.RUNNING, started_at=row.started_at
        )
        attempts = len(row.worker_ids)
        if attempts < settings.JOB_ATTEMPTS:
            if claim.update(status=TaskResultStatus.READY):
                logger.warning("Job %s was abandoned by a dead worker; queued again", row.pk)
                queued += 1
            continue
        if claim.update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path="concilia.core.workers.AbandonedJob",
            traceback=ABANDONED,
        ):
            full = DBTaskResult.objects.get(pk=row.pk)
            keep_dead(
                task_path=full.task_path,
                args=full.args_kwargs.get("args", []),
                kwargs=full.args_kwargs.get("kwargs", {}),
                queue_name=full.queue_name,
                backend=full.backend_name,
                attempts=attempts,
                first_failed_at=full.enqueued_at,
            )
    return queued


def reclaim_in_background(stop: threading.Event, seconds: float = RECLAIM_SECONDS) -> None:
    """Look for abandoned jobs now and every `seconds` until `stop` is set (a worker's thread)."""
    while True:
        try:
            reclaim_database_jobs()
        except Exception:
            logger.exception("Could not look for abandoned jobs")
        finally:
            close_old_connections()
        if stop.wait(seconds):
            connection.close()
            return


# RQ ----------------------------------------------------------------------------------------------


def requeue_abandoned(job: Any, exc_type: type, exc_value: BaseException, tb: Any) -> bool:
    """RQ exception handler: an abandoned job (its worker died) is queued again by RQ's registry
    cleanup, up to `settings.JOB_ATTEMPTS` times in all, then kept as a dead job. Any other
    failure is left to `concilia.core.jobs` and RQ's own handling."""
    from rq.exceptions import AbandonedJobError

    if not issubclass(exc_type, AbandonedJobError):
        return True
    abandoned = int(job.meta.get("concilia_abandoned", 0)) + 1
    job.meta["concilia_abandoned"] = abandoned
    job.save_meta()
    if abandoned < settings.JOB_ATTEMPTS:
        logger.warning("Job %s was abandoned by a dead worker; queued again", job.id)
        job.retries_left = 1  # RQ's cleanup then queues it again instead of failing it
        job.retry_intervals = None  # at once
    else:
        keep_dead(
            task_path=job.func_name,
            args=list(job.args),
            kwargs=dict(job.kwargs),
            queue_name=job.origin,
            backend=job.meta.get("backend_name", "default"),
            attempts=abandoned,
            first_failed_at=job.enqueued_at or timezone.now(),
        )
    return True


def rq_worker_class() -> type:
    """RQ's SimpleWorker (no fork per job) that, at start and at each maintenance pass (every
    minute), hands the jobs of dead workers on this machine to RQ's cleanup at once instead of
    after their timeout."""
    from rq.executions import Execution
    from rq.registry import StartedJobRegistry
    from rq.worker import SimpleWorker

    class ConciliaWorker(SimpleWorker):
        def run_maintenance_tasks(self) -> None:
            for queue in self.queues:
                expire_dead_executions(queue.started_job_registry)
            super().run_maintenance_tasks()

    def expire_dead_executions(registry: StartedJobRegistry) -> int:
        """Move the running jobs of dead workers on this machine to the front of the cleanup."""
        expired = 0
        host = socket.gethostname()
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                execution = Execution.fetch(execution_id, job_id, connection=registry.connection)
            except ValueError:
                continue  # expired with its registry entry: the cleanup takes it anyway
            worker = registry.connection.hmget(
                f"rq:worker:{execution.worker_name}", "hostname", "pid"
            )
            worker_host, pid = (v.decode() if v else "" for v in worker)
            if worker_host != host or not pid.isdigit() or process_alive(int(pid)):
                continue  # alive, or on another machine: its entry expires after the timeout
            registry.connection.zadd(registry.key, {execution.composite_key: 1}, xx=True)
            expired += 1
        return expired

    return ConciliaWorker
