"""`concilia retention run [--dry-run]`: anonymise and delete the personal data whose retention
period has ended, and print what was done (a dry run prints what would be, changing nothing)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.privacy import retention


class Command(BaseCommand):
    help = "Anonymise closed cases and delete other personal data kept past their period."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        run = commands.add_parser(
            "run", help="Run the retention job now (the sweep runs it every day by itself)."
        )
        run.add_argument(
            "--dry-run",
            action="store_true",
            help="Only report what has expired; change nothing and store no report.",
        )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        dry_run = bool(options["dry_run"])
        total = 0 if dry_run else retention.cases_due(now)
        with tqdm(
            total=total,
            desc=_("anonymising cases"),
            unit=_("case"),
            leave=False,
            disable=options["verbosity"] < 1 or total < 100,  # type: ignore[operator]
        ) as bar:
            report = retention.run(dry_run=dry_run, now=now, progress=bar.update)
        for line in report.lines():
            self.stdout.write(line)
