"""Background jobs that retry: `@job()` in place of django-tasks' `@task()` runs the same
function, and when it raises queues it again later (exponential backoff with jitter), up to
`settings.JOB_ATTEMPTS` attempts in all; the last failure is kept as a `DeadJob`, which an
administrator retries from the admin. It works the same on every backend (database, RQ).

    from concilia.core.jobs import job

    @job()
    def deliver_webhook(*, delivery_id: int) -> None: ...

    enqueue_with_change(deliver_webhook, delivery_id=delivery.pk)

Every attempt runs with the same arguments, so the job must be idempotent: look its row up by
id, do nothing when the work is already done, mark it done last (or claim it with a
conditional UPDATE). A job that should not retry a failure raises nothing (it records it).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import TaskContext, task, task_backends
from django_tasks.base import Task

from concilia.core.logging import new_request_id, request_context
from concilia.core.metrics import count_job_failure
from concilia.core.models import DeadJob
from concilia.core.tasks import REQUEST_ID_KWARG, enqueue_with_change

logger = logging.getLogger(__name__)

# The keyword argument that carries the attempt number and the first failure from one attempt
# to the next; the job's own function never sees it.
RETRY_KWARG = "_retry"


def backoff_seconds(
    attempt: int, *, base: float | None = None, ceiling: float | None = None
) -> float:
    """How long to wait after failed attempt number `attempt` (1, 2…): base * 2^(attempt-1),
    at most `ceiling`, of which a random half is waited (so that jobs that failed together,
    say while the mail server was away, do not all come back at the same instant)."""
    base = settings.JOB_BACKOFF_SECONDS if base is None else base
    ceiling = settings.JOB_MAX_BACKOFF_SECONDS if ceiling is None else ceiling
    delay = min(ceiling, base * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not a secret


def job(
    *, attempts: int | None = None, **task_options: Any
) -> Callable[[Callable[..., Any]], Task]:
    """Make `function` a task (django-tasks' `@task(**task_options)`) that is retried with
    backoff when it raises, `attempts` times in all (default `settings.JOB_ATTEMPTS`), then
    recorded as a `DeadJob`. On success it behaves exactly as `@task()` would."""

    def decorate(function: Callable[..., Any]) -> Task:
        def run(context: TaskContext, *args: Any, **kwargs: Any) -> Any:
            retry = kwargs.pop(RETRY_KWARG, None) or {}
            # The id of the request that queued the job: its log lines carry it (operations.md).
            queued_by = kwargs.pop(REQUEST_ID_KWARG, None)
            with request_context(queued_by or new_request_id()):
                try:
                    return function(*args, **kwargs)
                except Exception:
                    count_job_failure(context.task_result.task.module_path)
                    _after_failure(
                        context.task_result.task,
                        args=list(args),
                        kwargs=kwargs,
                        attempt=int(retry.get("attempt", 1)),
                        first_failed_at=retry.get("first_failed_at"),
                        attempts=attempts or settings.JOB_ATTEMPTS,
                        queued_by=queued_by,
                    )
                    raise  # the backend records this attempt's failure as usual

        # Named as the function, so the task is found at its module path; no __wrapped__, so
        # django-tasks sees `context` as the first argument.
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(run, name, getattr(function, name))
        run.carries_request_id = True  # type: ignore[attr-defined]
        options = dict(task_options)
        # RQ refuses any priority but the default (InvalidTaskError); there the queue comes first.
        if not task_backends[options.get("backend", "default")].supports_priority:
            options.pop("priority", None)
        return task(takes_context=True, **options)(run)

    return decorate


def _after_failure(
    current: Task,
    *,
    args: list[Any],
    kwargs: dict[str, Any],
    attempt: int,
    first_failed_at: str | None,
    attempts: int,
    queued_by: str | None = None,
) -> None:
    """Queue the next attempt (with the id of the request that queued the first, if any), or
    keep the job as dead after its last one."""
    now = timezone.now()
    first = first_failed_at or now.isoformat()
    error = traceback.format_exc()
    if attempt < attempts:
        delay = backoff_seconds(attempt)
        again = current.using(run_after=now + dt.timedelta(seconds=delay))
        if not task_backends[current.backend].supports_defer:
            again = current
        try:
            again.enqueue(
                *args,
                **kwargs,
                **{RETRY_KWARG: {"attempt": attempt + 1, "first_failed_at": first}},
                **({REQUEST_ID_KWARG: queued_by} if queued_by else {}),
            )
        except Exception:
            # The queue itself is away: keep the job where an administrator sees it.
            logger.exception("Could not queue attempt %s of %s", attempt + 1, current.module_path)
        else:
            logger.warning(
                "Job %s failed (attempt %s of %s); trying again in %.0f s",
                current.module_path,
                attempt,
                attempts,
                delay,
            )
            return
    DeadJob.objects.create(
        task_path=current.module_path,
        args=args,
        kwargs=kwargs,
        queue_name=current.queue_name,
        backend=current.backend,
        attempts=attempt,
        error=error[-20000:],
        first_failed_at=dt.datetime.fromisoformat(first),
        last_failed_at=now,
    )
    logger.error("Job %s failed %s times and is now a dead job", current.module_path, attempt)


@transaction.atomic
def retry_dead_job(*, dead_job: DeadJob) -> bool:
    """Queue a dead job again with fresh attempts (after commit); false if it already was."""
    claimed = DeadJob.objects.filter(pk=dead_job.pk, retried_at__isnull=True).update(
        retried_at=timezone.now()
    )
    if not claimed:
        return False
    found = import_string(dead_job.task_path)
    if not isinstance(found, Task):
        raise TypeError(f"{dead_job.task_path} is not a task")
    again = found.using(queue_name=dead_job.queue_name, backend=dead_job.backend)
    enqueue_with_change(again, *dead_job.args, **dead_job.kwargs)
    return True
