"""`concilia sweep`: send the alerts and deadline warnings that are due, every period or once."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connection
from django.utils import timezone

from concilia.cases.sweep import JOB, sweep_if_due
from concilia.core.models import PeriodicRun

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Send the alerts and deadline warnings that are due, every CONCILIA_SWEEP_SECONDS "
        "(`concilia serve` runs this), or once with --once (for cron). However many run, "
        "one sweep starts per period."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once",
            action="store_true",
            help="sweep if this period's sweep has not started yet, then exit",
        )
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="the period (default: the CONCILIA_SWEEP_SECONDS setting, 60)",
        )

    def handle(self, *args, once: bool, every: float | None, **options):
        seconds = every if every is not None else settings.CONCILIA_SWEEP_SECONDS
        if seconds <= 0:
            raise CommandError("The period must be a positive number of seconds.")
        period = dt.timedelta(seconds=seconds)
        if once:
            # cron may start a moment early: a little slack keeps one sweep per cron tick.
            result = sweep_if_due(period=period - min(period / 10, dt.timedelta(seconds=5)))
            self.stdout.write(str(result) if result else "This period's sweep already started.")
            return
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: stop quietly
            self._every(period, verbose=options["verbosity"] > 1)

    def _every(self, period: dt.timedelta, *, verbose: bool) -> None:
        while True:
            close_old_connections()
            wait = period.total_seconds()
            try:
                result = sweep_if_due(period=period)
                if result is not None and verbose:
                    self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {result}")
                next_start = PeriodicRun.next_start(JOB, period=period)
                if next_start is not None:
                    wait = (next_start - timezone.now()).total_seconds()
            except Exception:
                # A database that is away for a while must not stop `concilia serve`: try later.
                logger.exception("The sweep failed; trying again in %s s", period.total_seconds())
                connection.close()
            # Whoever wakes first after the period takes it; the others see it taken and wait.
            jitter = random.uniform(0, min(1.0, period.total_seconds() / 10))  # noqa: S311
            time.sleep(max(0.05, min(wait, period.total_seconds())) + jitter)
