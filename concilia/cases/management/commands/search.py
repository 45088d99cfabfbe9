"""`concilia search reindex`: compute the cases' blind text index again (concilia.cases.search),
after texts were changed without save() or to repair it."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.cases import search


class Command(BaseCommand):
    help = "Maintain the index that finds cases by their text."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True, metavar="reindex")
        commands.add_parser("reindex", help="index the text of every case again")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        with tqdm(desc=_("Indexing cases"), unit=_(" cases"), disable=None) as bar:
            count = search.reindex_all(progress=bar.update)
        self.stdout.write(_("%(count)s cases indexed.") % {"count": count})
