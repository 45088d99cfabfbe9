"""`concilia mail read|receive|retry`: read mailboxes now, take one raw message from standard
input (for a mail server that pipes mail to a program, e.g. Postfix's aliases:
`support: "|concilia mail receive --mailbox support"`), and process failed emails again."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from concilia.integrations.mail.actions import process_email, receive_email
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome


class Command(BaseCommand):
    help = "Read support mailboxes, receive a raw email on standard input, retry failed emails."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="command", required=True)
        read = commands.add_parser("read", help="Read the active IMAP mailboxes now.")
        read.add_argument("--mailbox", help="Only this mailbox (its slug).")
        receive = commands.add_parser("receive", help="Process one raw email from stdin.")
        receive.add_argument("--mailbox", required=True, help="The mailbox (slug) it came to.")
        commands.add_parser("retry", help="Process failed emails again.")

    def _mailbox(self, slug: str) -> Mailbox:
        mailbox = Mailbox.objects.filter(slug=slug).first()
        if mailbox is None:
            raise CommandError(_("There is no mailbox “%(slug)s”.") % {"slug": slug})
        return mailbox

    def handle(self, *args: object, **options: object) -> None:
        getattr(self, f"_{options['command']}")(options)

    def _read(self, options: dict) -> None:
        from concilia.integrations.mail.imap import read_mailbox

        mailboxes = (
            [self._mailbox(options["mailbox"])]
            if options.get("mailbox")
            else list(Mailbox.objects.filter(active=True).exclude(host=""))
        )
        failed = False
        for mailbox in mailboxes:
            try:
                result = read_mailbox(mailbox)
            except Exception as error:
                failed = True
                self.stderr.write(f"{mailbox}: {error}")
                continue
            self.stdout.write(
                _("%(mailbox)s: %(read)d read, %(large)d too large")
                % {"mailbox": mailbox, "read": result.read, "large": result.too_large}
                if not result.skipped
                else _("%(mailbox)s: being read by another process") % {"mailbox": mailbox}
            )
        if failed:
            raise CommandError(_("Some mailboxes could not be read."))

    def _receive(self, options: dict) -> None:
        mailbox = self._mailbox(options["mailbox"])
        raw = sys.stdin.buffer.read(settings.CONCILIA_MAIL_MAX_BYTES + 1)
        if not raw.strip():
            raise CommandError(_("No email on standard input."))
        if len(raw) > settings.CONCILIA_MAIL_MAX_BYTES:
            raise CommandError(_("The email is larger than this server accepts."))
        email = receive_email(raw=raw, mailbox=mailbox)
        self.stdout.write(
            f"{email.pk} {email.outcome} {email.case.reference if email.case else ''}"
        )

    def _retry(self, options: dict) -> None:
        done = 0
        for email in InboundEmail.objects.filter(outcome=Outcome.FAILED):
            done += process_email(email=email).outcome != Outcome.FAILED
        self.stdout.write(_("%(count)d emails processed.") % {"count": done})
