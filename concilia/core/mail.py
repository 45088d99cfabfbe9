"""Every email Concilia sends is composed here: HTML and plain text from one pair of templates,
the case reference in a header, and the headers that thread replies (Message-ID, In-Reply-To,
References) and keep mail programs from answering automatically (RFC 3834), so that the inbound
mailbox can tell a customer's reply from an out-of-office or our own mail coming back."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string

# On every email we send; incoming mail that carries it is ours coming back (a loop).
LOOP_HEADER = "X-Concilia-Loop"

_THREAD_ID = re.compile(r"<(?:message-\d+\.|case\.)([A-Za-z0-9-]+)@[^<>\s]+>")


def message_id_domain() -> str:
    return getattr(settings, "EMAIL_MESSAGE_ID_DOMAIN", "") or (
        urlsplit(settings.BASE_URL).hostname or "concilia.localhost"
    )


def case_thread_id(reference: str) -> str:
    """The Message-ID of a case's thread: the root every email about the case refers to."""
    return f"<case.{reference}@{message_id_domain()}>"


def message_thread_id(reference: str, message_pk: int) -> str:
    return f"<message-{message_pk}.{reference}@{message_id_domain()}>"


def references_in(message_ids: Sequence[str]) -> list[str]:
    """The case references our Message-IDs carry (a reply's In-Reply-To and References)."""
    return [m.group(1) for value in message_ids for m in [_THREAD_ID.fullmatch(value)] if m]


def compose(
    *,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    to: Sequence[str],
    reference: str = "",
    message_pk: int | None = None,
    root: bool = False,
    automatic: bool = True,
) -> EmailMultiAlternatives:
    """An email from `template`.txt and `template`.html (render inside the recipient's language).

    With a case `reference` it joins the case's thread: the first email to the customer (`root`)
    is the thread's root, later ones answer it (a message of the case's thread: `message_pk`). `automatic` mail (confirmations,
    codes, alerts) says so, which tells well-behaved autoresponders not to answer it.
    """
    headers = {
        LOOP_HEADER: message_id_domain(),
        # Asks Exchange and Outlook not to send out-of-office replies to this message.
        "X-Auto-Response-Suppress": "All",
    }
    if automatic:
        headers["Auto-Submitted"] = "auto-generated"
    if reference:
        root_id = case_thread_id(reference)
        headers["X-Concilia-Reference"] = reference
        if root:
            headers["Message-ID"] = root_id
        else:
            headers["Message-ID"] = (
                message_thread_id(reference, message_pk)
                if message_pk is not None
                else make_msgid(domain=message_id_domain())
            )
            headers["In-Reply-To"] = root_id
            headers["References"] = root_id
    else:
        headers["Message-ID"] = make_msgid(domain=message_id_domain())
    reply_to = getattr(settings, "CONCILIA_REPLY_TO_EMAIL", "")
    email = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        to=list(to),
        headers=headers,
        reply_to=[reply_to] if reply_to else None,
    )
    email.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return email
