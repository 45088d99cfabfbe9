"""`concilia worker`: run background jobs on the configured backend (the database worker by
default, an RQ worker with its scheduler when CONCILIA_TASKS_BACKEND=rq), every job in the worker's
own process, from the queues given (docs/workers.md)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from concilia.core import workers


def queue_list(text: str) -> list[str]:
    """`customer,mail` -> ["customer", "mail"], in that order (RQ takes the first one first)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(settings.JOB_QUEUES))
    if unknown or not names:
        raise CommandError(
            f"Unknown queue(s) {', '.join(unknown) or '(none)'}; "
            f"the queues are {', '.join(settings.JOB_QUEUES)}."
        )
    return names


class Command(BaseCommand):
    help = (
        "Run background jobs (emails, webhooks, retries) until stopped: the database worker, or "
        "an RQ worker when CONCILIA_TASKS_BACKEND=rq. Start as many as the load needs, on any "
        "machine that reaches the database (and Redis)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--queues",
            default=",".join(settings.JOB_QUEUES),
            help=(
                "the queues to take jobs from, separated by commas (default: all of them, "
                f"{','.join(settings.JOB_QUEUES)}); RQ takes them in the order given"
            ),
        )
        parser.add_argument(
            "--burst", action="store_true", help="run the jobs that are due, then exit"
        )
        parser.add_argument(
            "--name", help="the worker's name in RQ (default: generated, unique per process)"
        )

    def handle(self, *args, queues: str, burst: bool, name: str | None, **options):
        names = queue_list(queues)
        if settings.TASKS_BACKEND == "rq":
            self.run_rq(names, burst=burst, name=name, verbosity=options["verbosity"])
        else:
            self.run_database(names, burst=burst, verbosity=options["verbosity"])

    def run_rq(self, names: list[str], *, burst: bool, name: str | None, verbosity: int) -> None:
        from django_rq.utils import reset_db_connections
        from django_rq.workers import get_worker
        from redis.exceptions import ConnectionError as RedisConnectionError
        from rq.logutils import setup_loghandlers

        level = "DEBUG" if verbosity >= 2 else "WARNING" if verbosity == 0 else "INFO"
        setup_loghandlers(level)
        worker = get_worker(
            *names,
            job_class="django_tasks_rq.Job",
            worker_class=workers.rq_worker_class(),
            name=name,
            maintenance_interval=60,  # abandoned jobs are found within a minute
        )
        worker.push_exc_handler(workers.requeue_abandoned)
        reset_db_connections()
        try:
            # The scheduler moves retries whose backoff has passed back into their queue; RQ lets
            # one worker at a time hold it, so every worker may be started with it.
            worker.work(burst=burst, with_scheduler=True, logging_level=level)
        except RedisConnectionError as exc:
            raise CommandError(str(exc)) from exc

    def run_database(self, names: list[str], *, burst: bool, verbosity: int) -> None:
        from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
        from django_tasks_db.management.commands.db_worker import Worker

        DbWorkerCommand(stdout=self.stdout, stderr=self.stderr).configure_logging(verbosity)
        worker = Worker(
            queue_names=names,
            interval=0.5,
            batch=burst,
            backend_name="default",
            startup_delay=not burst,
            max_tasks=None,
            worker_id=workers.database_worker_id(),
            excluded_queue_names=[],
        )
        stop = threading.Event()
        if burst:
            workers.reclaim_database_jobs()
        else:
            threading.Thread(
                target=workers.reclaim_in_background, args=(stop,), daemon=True
            ).start()
        worker.configure_signals()
        try:
            worker.run()
        finally:
            stop.set()
