"""`concilia analytics refresh [--full]`: bring the dashboard's daily aggregates up to date
(only what changed since the last refresh; everything again with --full)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.analytics.refresh import refresh


class Command(BaseCommand):
    help = "Refresh the analytics' daily aggregates (incrementally, or all again with --full)."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        run = commands.add_parser("refresh", help="Refresh the daily aggregates.")
        run.add_argument(
            "--full",
            action="store_true",
            help="Empty the aggregates and compute them again from every case and conversation.",
        )

    def handle(self, *args: object, **options: object) -> None:
        with tqdm(unit=" cases", disable=not options["full"]) as bar:
            report = refresh(full=bool(options["full"]), progress=bar.update)
        self.stdout.write(
            _("Aggregates refreshed (%(kind)s): %(cases)d cases, %(conversations)d conversations.")
            % {
                "kind": _("full") if report.full else _("incremental"),
                "cases": report.cases,
                "conversations": report.conversations,
            }
        )
