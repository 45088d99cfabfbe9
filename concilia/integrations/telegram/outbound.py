"""Sending a Telegram conversation's new messages to the customer: every message of the assistant,
an agent or the system, once and in order, its choices as an inline keyboard whose buttons
answer them.

The web widget polls for what is new; Telegram cannot, so every write to a Telegram
conversation queues `tasks.push_messages`, which sends what lies past the conversation's
`sent_seq`. Several senders may run at once (two writes in a row, two workers): a sender claims
the conversation for a while with a conditional UPDATE, records each message as sent as soon as
Telegram took it, and looks again after letting go, so a message written meanwhile is not left
behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from concilia.assistant.models import Author, ChatMessage
from concilia.integrations.telegram.client import (
    MAX_TEXT,
    BotApi,
    TelegramBlocked,
    TelegramRateLimited,
    TelegramRejected,
)
from concilia.integrations.telegram.models import TelegramChat, TelegramConversation

logger = logging.getLogger(__name__)

# How long a sender's claim lasts without progress (more than a few sends' timeouts).
CLAIM = dt.timedelta(seconds=60)
# Buttons whose labels are all this short (the survey's 1-5) share one row.
_SHORT_LABEL = 3


@dataclass(frozen=True)
class Pushed:
    """What one run did: messages sent, and when to run again (rate limit, another sender)."""

    sent: int = 0
    again_at: dt.datetime | None = None


# ASCII digits as str(int) writes them: a superscript two passes str.isdigit but not int().
_DATA_NUMBER = re.compile(r"0|[1-9][0-9]*")


def callback_data(conversation_id: int, seq: int, index: int) -> str:
    """A button's data (at most 64 bytes): the message it belongs to and which choice it is."""
    return f"c:{conversation_id}:{seq}:{index}"


def parse_callback_data(data: str | None) -> tuple[int, int, int] | None:
    """The triple of `callback_data`, or None for anything else a client sends instead."""
    parts = (data or "").split(":")
    if len(parts) != 4 or parts[0] != "c" or not all(_DATA_NUMBER.fullmatch(p) for p in parts[1:]):
        return None
    numbers = int(parts[1]), int(parts[2]), int(parts[3])
    return numbers if max(numbers) < 2**63 else None  # beyond, no row has it


def keyboard(message: ChatMessage) -> list[list[dict[str, str]]]:
    buttons = [
        {
            "text": str(choice.get("label") or choice.get("value"))[:100],
            "callback_data": callback_data(message.conversation_id, message.seq, index),
        }
        for index, choice in enumerate(message.choices)
    ]
    if all(len(button["text"]) <= _SHORT_LABEL for button in buttons):
        return [buttons]
    return [[button] for button in buttons]


def texts(message: ChatMessage) -> list[str]:
    """The message as Telegram messages: an agent's is signed with their name; a long one is
    cut at line ends into pieces Telegram accepts."""
    body = message.body.strip() or ("…" if message.choices else "")
    if message.author == Author.AGENT and message.author_user is not None:
        user = message.author_user
        body = f"{user.get_short_name() or user.get_username()}: {body}"
    pieces: list[str] = []
    while len(body) > MAX_TEXT:
        cut = body.rfind("\n", 0, MAX_TEXT)
        cut = cut if cut > MAX_TEXT // 2 else MAX_TEXT
        pieces.append(body[:cut].rstrip())
        body = body[cut:].lstrip("\n")
    if body:
        pieces.append(body)
    return pieces


def _unsent(link: TelegramConversation) -> list[ChatMessage]:
    return list(
        ChatMessage.objects.filter(conversation_id=link.conversation_id, seq__gt=link.sent_seq)
        .exclude(author=Author.CUSTOMER)
        .select_related("author_user")
        .order_by("seq")
    )


def _claim(link: TelegramConversation) -> bool:
    now = timezone.now()
    return bool(
        TelegramConversation.objects.filter(pk=link.pk)
        .filter(Q(sending_until__isnull=True) | Q(sending_until__lt=now))
        .update(sending_until=now + CLAIM)
    )


def _release(link: TelegramConversation) -> None:
    TelegramConversation.objects.filter(pk=link.pk).update(sending_until=None)


def _progress(link: TelegramConversation, *, seq: int, parts: int) -> None:
    """Recorded after each piece Telegram took, so that a retry never sends it twice."""
    TelegramConversation.objects.filter(pk=link.pk).update(
        sent_seq=seq, sent_parts=parts, sending_until=timezone.now() + CLAIM
    )
    link.sent_seq, link.sent_parts = seq, parts


def _record_error(chat: TelegramChat, description: str, *, blocked: bool = False) -> None:
    fields = {"last_error": description[:300]}
    if blocked:
        fields["blocked_at"] = timezone.now()
    TelegramChat.objects.filter(pk=chat.pk).update(**fields)


def _send(api: BotApi, link: TelegramConversation, messages: list[ChatMessage]) -> int:
    chat = link.chat
    sent = 0
    for message in messages:
        pieces = texts(message)
        done_before = link.sent_parts
        for number, text in enumerate(pieces, 1):
            if number <= done_before:
                continue
            last = number == len(pieces)
            try:
                api.send_message(
                    chat_id=chat.chat_id,
                    text=text,
                    keyboard=keyboard(message) if last and message.choices else None,
                )
            except TelegramRejected as error:
                # This message will never go as it is: noted, and the next ones still go.
                logger.warning("Telegram refused message %s: %s", message.pk, error.description)
                _record_error(chat, error.description)
                break
            if not last:
                _progress(link, seq=link.sent_seq, parts=number)
        _progress(link, seq=message.seq, parts=0)
        sent += 1
    return sent


def push(*, conversation_id: int) -> Pushed:
    """Send the conversation's unsent messages. Raises TelegramUnavailable when Telegram is
    away (the job tries again later); a customer who blocked the bot is recorded, not retried."""
    link = (
        TelegramConversation.objects.select_related("chat__bot")
        .filter(conversation_id=conversation_id)
        .first()
    )
    if link is None or not link.chat.bot.active:
        return Pushed()
    sent = 0
    with BotApi.of(link.chat.bot) as api:
        while True:
            link.refresh_from_db(fields=["sent_seq", "sent_parts", "sending_until"])
            link.chat.refresh_from_db(fields=["blocked_at"])
            if link.chat.blocked_at is not None:
                return Pushed(sent)
            messages = _unsent(link)
            if not messages:
                return Pushed(sent)
            if not _claim(link):
                # Another sender is at it; should it die, this run takes over after its claim.
                return Pushed(sent, again_at=link.sending_until or timezone.now() + CLAIM)
            try:
                link.refresh_from_db(fields=["sent_seq", "sent_parts"])
                sent += _send(api, link, [m for m in messages if m.seq > link.sent_seq])
            except TelegramRateLimited as error:
                wait = dt.timedelta(seconds=error.retry_after)
                return Pushed(sent, again_at=timezone.now() + wait)
            except TelegramBlocked as error:
                logger.info("Telegram chat %s blocked the bot", link.chat.pk)
                _record_error(link.chat, error.description, blocked=True)
                return Pushed(sent)
            finally:
                _release(link)
