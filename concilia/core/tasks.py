"""Helpers for Django's task API shared by every app."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string
from django_tasks import task_backends

from concilia.core.logging import current_request_id

# The keyword argument that carries the queuing request's id to a retried job (concilia.core.jobs)
# so that the job's log lines carry it too; the job's own function never sees it.
REQUEST_ID_KWARG = "_request_id"

logger = logging.getLogger(__name__)

# A hand-off row older than this is taken for one whose process died before handing it over.
HANDOFF_GRACE = dt.timedelta(seconds=30)
# The id the RQ backend gives the job it is queuing (the hand-off row's), instead of a random one.
_job_id: ContextVar[str | None] = ContextVar("concilia_job_id", default=None)


def enqueue_with_change(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue `task` so that it runs only if the surrounding transaction commits.

    The database backend writes the job row inside the same transaction (an outbox: both land or
    neither does); other backends (RQ on Redis) are handed the job after commit.
    """
    request_id = current_request_id()
    if request_id and getattr(task.func, "carries_request_id", False):
        kwargs[REQUEST_ID_KWARG] = request_id
    backend = task_backends[task.backend]
    if backend.__class__.__module__.startswith("django_tasks_db"):
        task.enqueue(*args, **kwargs)
        return
    # Redis is outside the transaction: the job is written down with the change and handed over
    # after commit; a process killed in between leaves the row for the sweep (hand_over_left).
    from concilia.core.models import JobHandoff

    handoff = JobHandoff.objects.create(
        task_path=task.module_path,
        args=list(args),
        kwargs=kwargs,
        queue_name=task.queue_name,
        priority=task.priority,
        run_after=task.run_after,
    )
    transaction.on_commit(lambda: _hand_over(task, handoff))


@contextlib.contextmanager
def _queued_as(job_id: str) -> Iterator[None]:
    _install_job_ids()
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


def _install_job_ids() -> None:
    """Let the RQ backend take the hand-off row's id for the job it queues: django-tasks-rq
    draws a random id with no way to pass one, so its id function is wrapped once (a context
    variable, so threads and other jobs keep their random ids)."""
    try:
        from django_tasks_rq import backend as rq_backend
    except ImportError:  # pragma: no cover - only the RQ extra has it
        return
    if getattr(rq_backend.get_random_id, "concilia", False):
        return
    random_id = rq_backend.get_random_id

    def job_id() -> str:
        return _job_id.get() or random_id()

    job_id.concilia = True  # type: ignore[attr-defined]
    rq_backend.get_random_id = job_id


def _hand_over(task: Any, handoff: Any) -> None:
    with _queued_as(str(handoff.pk)):
        task.enqueue(*handoff.args, **handoff.kwargs)
    type(handoff).objects.filter(pk=handoff.pk).delete()


def _already_queued(handoff: Any) -> bool:
    """Whether Redis already holds the job of this row (its process died after the hand-off
    but before deleting the row)."""
    try:
        import django_rq
        from rq.job import Job
    except ImportError:  # pragma: no cover - only the RQ extra has it
        return False
    return Job.exists(str(handoff.pk), connection=django_rq.get_connection(handoff.queue_name))


def hand_over_left(*, now: dt.datetime) -> int:
    """Sweep job: hand to the backend the jobs whose process died between commit and hand-off
    (rows older than HANDOFF_GRACE); a job Redis already holds is not queued again. Returns how
    many jobs were queued."""
    from concilia.core.models import JobHandoff

    queued = 0
    for handoff in JobHandoff.objects.filter(created_at__lte=now - HANDOFF_GRACE).order_by(
        "created_at"
    )[:1000]:
        if not _already_queued(handoff):
            task = import_string(handoff.task_path).using(
                queue_name=handoff.queue_name,
                priority=handoff.priority,
                run_after=handoff.run_after,
            )
            with _queued_as(str(handoff.pk)):
                task.enqueue(*handoff.args, **handoff.kwargs)
            queued += 1
            logger.warning("Job %s (%s) handed over by the sweep", handoff.task_path, handoff.pk)
        handoff.delete()
    return queued
