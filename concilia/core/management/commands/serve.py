"""`concilia serve`: migrate, then run the web server, a background worker and the periodic sweep
of alerts and deadlines side by side."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


def _lower_priority() -> None:
    # Background jobs (emails, later webhooks) yield the CPU to people waiting for a page.
    os.nice(10)


def metrics_dir(configured: str | None) -> Path:
    """Where every child process writes its counters for /metrics (concilia.core.metrics), emptied
    at start: counts from an earlier run would be added to this one's."""
    directory = Path(configured) if configured else settings.HOME / "metrics"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def default_workers() -> int:
    # Measured best on 2 cores (bench/README.md): more processes only queue on the database.
    return min((os.cpu_count() or 1) + 1, 9)


class Command(BaseCommand):
    help = "Run Concilia: web server, background worker and sweep (data in CONCILIA_HOME)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="web processes (default: cores + 1)",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help=(
                "do not start the background worker (run `concilia worker` elsewhere: the "
                "database worker, or an RQ worker when CONCILIA_TASKS_BACKEND=rq)"
            ),
        )
        parser.add_argument(
            "--no-sweep",
            action="store_true",
            help=(
                "do not start the sweep of alerts and deadlines (it is safe to run in every "
                "process: one sweep starts per period in total)"
            ),
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        workers: int,
        no_worker: bool,
        no_sweep: bool,
        **options,
    ):
        settings.HOME.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        url_host = f"[{host}]" if ":" in host else host
        env = {**os.environ, "CONCILIA_HOME": str(settings.HOME)}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(env.get("PROMETHEUS_MULTIPROC_DIR")))
        # Links in emails point at this server unless the deployment says otherwise.
        env.setdefault("CONCILIA_BASE_URL", f"http://{url_host}:{port}")
        children = [
            subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "granian",
                    "--interface",
                    "wsgi",
                    "--host",
                    host,
                    "--port",
                    str(port),
                    "--workers",
                    str(workers),
                    "--blocking-threads",
                    "1",
                    "--respawn-failed-workers",
                    "--workers-kill-timeout",
                    "10",
                    "--no-ws",
                    "--log-level",
                    "info" if options["verbosity"] > 1 else "warning",
                    *(["--access-log"] if options["verbosity"] > 1 else []),
                    "concilia.wsgi:application",
                ],
                env=env,
            )
        ]
        if not no_worker:
            # The database worker, or an RQ worker when CONCILIA_TASKS_BACKEND=rq. What a customer
            # is waiting for (the policies' answer in the chat, a sign-in code) has a worker of
            # its own at the web's priority; the other, niced, takes every queue, that one first.
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "concilia", "worker", "--queues", "customer"], env=env
                )
            )
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "concilia", "worker"],
                    env=env,
                    preexec_fn=_lower_priority,  # no threads have started yet
                )
            )
        if not no_sweep:
            # Its own process, like the worker: a slow sweep never holds up pages or jobs.
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "concilia", "sweep"],
                    env=env,
                    preexec_fn=_lower_priority,
                )
            )
        self.stdout.write(
            f"Concilia is running on http://{url_host}:{port}/\n"
            f"  complaint form  http://{url_host}:{port}/complaints/new "
            f"(/reclamaciones/nueva)\n"
            f"  track a case    http://{url_host}:{port}/track\n"
            f"  staff admin     http://{url_host}:{port}/admin/\n"
            f"  API docs        http://{url_host}:{port}/api/v1/docs\n"
            f"  data            {settings.HOME}\n"
            "Press Ctrl+C to stop."
        )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
