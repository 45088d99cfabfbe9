"""`concilia legal load|list`: the jurisdictions and legal rules shipped with Concilia."""

from __future__ import annotations

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError

from concilia.cases import legal
from concilia.cases.jurisdictions import Jurisdiction


class Command(BaseCommand):
    help = (
        "load: add the jurisdictions and legal rules of the shipped file that the database lacks "
        "(--update also refreshes those nobody changed in the admin); list: show them."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        load = commands.add_parser("load", help="load the rules file into the database")
        load.add_argument(
            "--update",
            action="store_true",
            help="also refresh jurisdictions and rules still as shipped (never the admin's)",
        )
        load.add_argument(
            "--file", type=Path, default=legal.DATA_FILE, help="another rules file (YAML)"
        )
        commands.add_parser("list", help="each jurisdiction with its response deadline")

    def handle(self, *args, command: str, **options):
        if command == "load":
            try:
                entries = legal.read_file(options["file"])
                result = legal.load(entries, update=options["update"])
            except (OSError, yaml.YAMLError) as error:
                raise CommandError(f"Cannot read {options['file']}: {error}") from error
            except (KeyError, TypeError, ValueError) as error:
                raise CommandError(
                    f"{options['file']} is not a valid rules file: {error}"
                ) from error
            self.stdout.write(str(result))
            return
        for place in Jurisdiction.objects.prefetch_related("rules"):
            response = next((r for r in place.rules.all() if r.kind == "response"), None)
            if response is None or response.days is None:
                deadline = "no legal deadline"
            else:
                deadline = f"{response.days} {response.get_day_count_display().lower()}"
            flags = " (default)" if place.is_default else ""
            flags += "" if place.active else " (inactive)"
            self.stdout.write(f"{place.code:8} {place.name_en}{flags}: {deadline}")
