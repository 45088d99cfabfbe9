"""Reading a mailbox over IMAP: each new message (by UID) is kept, then processed, and where
reading stopped is saved after every message, so a crash or a lost connection re-reads nothing
twice and skips nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from imapclient import IMAPClient

from concilia.integrations.mail.actions import process_email, record_too_large, store_email
from concilia.integrations.mail.models import Mailbox, Security

# Messages fetched per IMAP command: fewer round trips without holding many in memory.
_FETCH_GROUP = 20


@dataclass
class ReadResult:
    read: int = 0
    too_large: int = 0
    skipped: bool = False  # another process is reading this mailbox


def connect(mailbox: Mailbox) -> IMAPClient:
    context = ssl.create_default_context()
    client = IMAPClient(
        mailbox.host,
        port=mailbox.port,
        ssl=mailbox.security == Security.SSL,
        ssl_context=context,
        timeout=settings.CONCILIA_MAIL_TIMEOUT_SECONDS,
    )
    if mailbox.security == Security.STARTTLS:
        client.starttls(context)
    client.login(mailbox.username, mailbox.password)
    return client


def _claim(mailbox: Mailbox, now: dt.datetime) -> bool:
    """One reader per mailbox at a time; a claim lapses if its reader died."""
    until = now + dt.timedelta(seconds=settings.CONCILIA_MAIL_TIMEOUT_SECONDS * 10)
    free = Q(polling_until__isnull=True) | Q(polling_until__lt=now)
    return bool(Mailbox.objects.filter(free, pk=mailbox.pk).update(polling_until=until))


def read_mailbox(mailbox: Mailbox, *, limit: int | None = None) -> ReadResult:
    """Read what arrived since last time (at most `limit` messages, CONCILIA_MAIL_BATCH)."""
    result = ReadResult()
    if not _claim(mailbox, timezone.now()):
        result.skipped = True
        return result
    error = ""
    try:
        client = connect(mailbox)
        try:
            _read(client, mailbox, limit or settings.CONCILIA_MAIL_BATCH, result)
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                client.logout()
    except Exception as problem:
        error = f"{type(problem).__name__}: {problem}"[:2000]
        raise
    finally:
        Mailbox.objects.filter(pk=mailbox.pk).update(
            polling_until=None, last_polled_at=timezone.now(), last_error=error
        )
    return result


def _read(client: IMAPClient, mailbox: Mailbox, limit: int, result: ReadResult) -> None:
    folder = client.select_folder(mailbox.folder)
    uidvalidity = int(folder[b"UIDVALIDITY"])
    mailbox.refresh_from_db(fields=["uidvalidity", "last_uid"])
    last_uid = mailbox.last_uid if mailbox.uidvalidity == uidvalidity else 0
    # "n:*" also matches the highest UID when it is below n, hence the filter.
    uids = sorted(u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid)[:limit]
    for start in range(0, len(uids), _FETCH_GROUP):
        group = uids[start : start + _FETCH_GROUP]
        sizes = client.fetch(group, ["RFC822.SIZE"])
        small = [u for u in group if sizes[u][b"RFC822.SIZE"] <= settings.CONCILIA_MAIL_MAX_BYTES]
        bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
        for uid in group:
            if uid in bodies:
                stored = store_email(
                    raw=bodies[uid][b"BODY[]"], mailbox=mailbox, uidvalidity=uidvalidity, uid=uid
                )
                process_email(email=stored.email)
                result.read += 1
            else:
                headers = client.fetch([uid], ["BODY.PEEK[HEADER]"])[uid][b"BODY[HEADER]"]
                record_too_large(
                    mailbox=mailbox,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    size=sizes[uid][b"RFC822.SIZE"],
                    headers=headers,
                )
                result.too_large += 1
            Mailbox.objects.filter(pk=mailbox.pk).update(uidvalidity=uidvalidity, last_uid=uid)
        if small:
            client.add_flags(small, [b"\\Seen"])
