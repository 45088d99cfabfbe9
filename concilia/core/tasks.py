"""Helpers for Django's task API shared by every app."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django_tasks import task_backends


def enqueue_with_change(task: Any, *args: Any, **kwargs: Any) -> None:
    """Queue `task` so that it runs only if the surrounding transaction commits.

    The database backend writes the job row inside the same transaction (an outbox: both land or
    neither does); other backends (RQ on Redis) are handed the job after commit.
    """
    backend = task_backends[task.backend]
    if backend.__class__.__module__.startswith("django_tasks_db"):
        task.enqueue(*args, **kwargs)
    else:
        transaction.on_commit(lambda: task.enqueue(*args, **kwargs))
