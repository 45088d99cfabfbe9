"""The integrations' personal data (house rule 8): emails as they arrived (sender, subject, the
raw message kept in the encrypted store) and Telegram chats (the chat's id, updates not yet
handled); the customer's copy of their emails, and their erasure.

An erased email keeps its row (mailbox, outcome, size, dates: what statistics and duplicate
detection of the mailbox need) without sender, subject, Message-ID or raw file; a customer's
Telegram chats are deleted (the conversations held there stay, anonymised by the assistant).
Outbound webhooks carry identifiers only (concilia.core.events), so they hold nothing to erase.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from concilia.cases.models import Case
from concilia.core.encrypted_json import filled
from concilia.core.personal_data import (
    DELETED,
    Export,
    ExportedFile,
    PersonalFields,
    counted,
    forget_files_after_commit,
    iso,
)
from concilia.customers.models import Customer
from concilia.integrations.mail.models import InboundEmail, sender_index
from concilia.integrations.telegram.models import TelegramChat, TelegramUpdate

DECLARED = [
    PersonalFields(
        "integrations.InboundEmail",
        fields=("from_address", "subject", "header_id", "raw", "detail"),
        exported=("from_address", "subject", "raw"),
        note="The raw message is deleted; the row keeps its outcome and dates.",
    ),
    PersonalFields(
        "integrations.TelegramChat",
        fields=("chat_id", "last_error"),
        exported=("chat_id",),
        erasure=DELETED,
    ),
    PersonalFields(
        "integrations.TelegramUpdate",
        fields=("payload",),
        note="Emptied once handled; those of an erased chat are emptied then.",
    ),
]


def _emails_of(customer: Customer) -> Any:
    address = (customer.email or "").strip()
    sender = Q(from_index=sender_index(address)) if address else Q(pk__in=[])
    return InboundEmail.objects.filter(sender | Q(case__customer=customer))


def _chat_of(payload: dict[str, Any]) -> int | None:
    """The chat an update came from: a message's, or the message a button was under."""
    message = payload.get("message") or (payload.get("callback_query") or {}).get("message") or {}
    return (message.get("chat") or {}).get("id")


def _chats_of(customer: Customer) -> Any:
    return TelegramChat.objects.filter(
        Q(conversations__conversation__customer=customer)
        | Q(conversations__conversation__case__customer=customer)
    ).distinct()


def export_customer(customer: Customer) -> Export:
    """The emails the customer sent (each as it arrived, a .eml file) and their Telegram chats."""
    export = Export(data={"emails": [], "telegram_chats": []})
    emails = _emails_of(customer).select_related("case").order_by("received_at", "pk")
    for number, email in enumerate(emails, start=1):
        file_path = f"emails/{number:03d}.eml" if email.raw else None
        if email.raw:
            export.files.append(ExportedFile(path=file_path or "", name=email.raw.name))
        export.data["emails"].append(
            {
                "received_at": iso(email.received_at),
                "from": email.from_address,
                "subject": email.subject,
                "case": email.case.reference if email.case else None,
                "file": file_path,
            }
        )
    for chat in _chats_of(customer).select_related("bot").order_by("created_at", "pk"):
        export.data["telegram_chats"].append(
            {"bot": chat.bot.name, "chat_id": chat.chat_id, "started_at": iso(chat.created_at)}
        )
    return export


def _forget_emails(emails: Any) -> dict[str, int]:
    """Blank the emails' sender (and its index), subject, id and detail, and delete their raw
    files."""
    found = emails.filter(
        ~Q(header_id="") | ~Q(raw="") | filled("from_address", "subject", "detail")
    )
    names = list(found.exclude(raw="").values_list("raw", flat=True))
    changed = found.update(
        from_address="", from_index="", subject="", header_id="", raw="", detail=""
    )
    forget_files_after_commit(names)
    return counted(emails=changed, email_files=len(names))


def anonymise_case(case: Case) -> dict[str, int]:
    return _forget_emails(InboundEmail.objects.filter(case_id=case.pk))


def erase_customer(customer: Customer, *, reason: str) -> dict[str, int]:
    """The emails sent from the customer's address (those with no case too) and their chats."""
    parts = _forget_emails(_emails_of(customer))
    chats = list(_chats_of(customer).values_list("pk", "bot_id", "chat_id"))
    updates = 0
    for _pk, bot_id, chat_id in chats:
        # The payload is encrypted: the (few) updates not yet handled are read and matched here.
        pending = TelegramUpdate.objects.filter(bot_id=bot_id).filter(filled("payload"))
        of_chat = [update.pk for update in pending if _chat_of(update.payload) == chat_id]
        updates += TelegramUpdate.objects.filter(pk__in=of_chat).update(payload={})
    deleted, _by_model = TelegramChat.objects.filter(pk__in=[pk for pk, _b, _c in chats]).delete()
    return {
        **parts,
        **counted(telegram_chats=len(chats) if deleted else 0, telegram_updates=updates),
    }
