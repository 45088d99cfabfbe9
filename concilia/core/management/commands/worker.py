"""`concilia worker`: run background jobs on the configured backend, the database worker by
default or an RQ worker (with its scheduler, for retries that wait) when CONCILIA_TASKS_BACKEND=rq."""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run background jobs (emails, webhooks, retries) until stopped: the database worker, or "
        "an RQ worker when CONCILIA_TASKS_BACKEND=rq. Start as many as the load needs, on any "
        "machine that reaches the database (and Redis)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--burst", action="store_true", help="run the jobs that are due, then exit"
        )
        parser.add_argument(
            "--name", help="the worker's name in RQ (default: generated, unique per process)"
        )

    def handle(self, *args, burst: bool, name: str | None, **options):
        verbosity = options["verbosity"]
        if settings.TASKS_BACKEND == "rq":
            # The scheduler moves retries whose backoff has passed back into the queue; RQ lets
            # one worker at a time hold it, so every worker may be started with it.
            call_command(
                "rqworker",
                *settings.TASKS["default"]["QUEUES"],
                job_class="django_tasks_rq.Job",
                with_scheduler=True,
                burst=burst,
                name=name,
                verbosity=verbosity,
            )
        else:
            call_command(
                "db_worker",
                batch=burst,
                interval=0.5,
                reload=False,
                queue_name="*",
                verbosity=verbosity,
            )
