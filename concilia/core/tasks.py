"""Helpers for Django's task API shared by every app."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_tasks import task_backends

from concilia.core.logging import current_request_id

# The keyword argument that carries the queuing request's id to a retried job (concilia.core.jobs)
# so that the job's log lines carry it too; the job's own function never sees it.
REQUEST_ID_KWARG = "_request_id"


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
    else:
        transaction.on_commit(lambda: task.enqueue(*args, **kwargs))
