"""`concilia audit verify`: walk the audit log's hash chain from its first entry and report the
first broken link (an entry changed, rewritten or deleted); exit status 1 when there is one."""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from concilia.core import audit, audit_triggers
from concilia.core.models import AuditChainHead, AuditEntry

_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = "Check the audit log: every entry intact, in order, and nothing removed."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        verify = commands.add_parser("verify", help="Walk the whole chain; exit 1 if it is broken.")
        verify.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="An entry's number and hash noted earlier (this command prints the last one); "
            "checks that the chain still passes through it. May be repeated.",
        )

    def handle(self, *args: object, **options: object) -> None:
        getattr(self, f"_{options['command']}")(options)

    def _verify(self, options: dict) -> None:
        anchors = [self._anchor(text) for text in options["anchor"]]
        total = AuditChainHead.objects.values_list("seq", flat=True).first() or 0
        with tqdm(
            total=total,
            desc=_("verifying"),
            unit=_("entry"),
            leave=False,
            disable=options["verbosity"] < 1 or total < 10_000,
        ) as bar:
            status = audit.verify(progress=bar.update)
        if not status.ok:
            raise CommandError(
                _("The audit log is broken at entry %(seq)d: %(problem)s")
                % {"seq": status.broken.seq, "problem": status.broken.message},
                returncode=1,
            )
        for seq, expected in anchors:
            found = AuditEntry.objects.filter(seq=seq).values_list("hash", flat=True).first()
            if found != expected:
                raise CommandError(
                    _(
                        "Entry %(seq)d no longer has the hash noted for it: the log was rewritten "
                        "up to there."
                    )
                    % {"seq": seq},
                    returncode=1,
                )
        audit.remember(status)
        self._warn_of_missing_triggers()
        self.stdout.write(
            _("The audit log is intact: %(count)d entries. Last entry: %(seq)d:%(hash)s")
            % {"count": status.checked, "seq": status.verified_to, "hash": status.head_hash}
        )

    def _warn_of_missing_triggers(self) -> None:
        """An intact chain without its triggers is one nothing stops from being edited."""
        absent = audit_triggers.missing()
        if absent:
            self.stderr.write(
                _(
                    "Warning: the database lacks the audit log's triggers %(names)s, so it no "
                    "longer refuses edits of entries. Run `concilia migrate` to put them back."
                )
                % {"names": ", ".join(absent)}
            )

    def _anchor(self, text: str) -> tuple[int, str]:
        match = _ANCHOR.match(text.strip().lower())
        if match is None:
            raise CommandError(
                _("Write an anchor as the entry's number, a colon and its hash: 1234:9f86d0…")
            )
        return int(match.group(1)), match.group(2)
