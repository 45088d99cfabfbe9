"""Background jobs of the Telegram channel: handling an update the webhook took in, and sending a
conversation's new messages (queued by the assistant with every write to a Telegram
conversation). Telegram being away fails the job, which the job system tries again with
backoff; a 429 waits exactly the retry_after Telegram asked for."""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone
from django_tasks import task_backends

from concilia.core.jobs import job
from concilia.integrations.telegram import inbound, outbound
from concilia.integrations.telegram.client import (
    BotApi,
    TelegramBlocked,
    TelegramRejected,
    TelegramUnavailable,
)
from concilia.integrations.telegram.models import TelegramChat, TelegramUpdate

logger = logging.getLogger(__name__)

# Telegram gives up on an update after 24 hours, so an update_id older than this never comes
# again and its row is no longer needed to answer a retry.
KEEP_UPDATES = dt.timedelta(days=2)
# A conversation waits this many times for a rate limit or another sender before the wait
# counts as a failure (and so goes through the job system's backoff and dead jobs).
MAX_WAITS = 20


@job(queue_name="customer")
def handle_update(*, update_pk: int) -> None:
    """A customer's message or button press, as a turn of their conversation."""
    inbound.handle(update_pk=update_pk)


@job(queue_name="customer")
def push_messages(*, conversation_id: int, waits: int = 0) -> int:
    """Send the conversation's messages the customer has not had yet; returns how many."""
    pushed = outbound.push(conversation_id=conversation_id)
    if pushed.again_at is not None:
        _again(conversation_id=conversation_id, waits=waits, at=pushed.again_at)
    return pushed.sent


def _again(*, conversation_id: int, waits: int, at: dt.datetime) -> None:
    if waits >= MAX_WAITS or not task_backends[push_messages.backend].supports_defer:
        raise TelegramUnavailable(f"still waiting to send conversation {conversation_id}")
    push_messages.using(run_after=max(at, timezone.now())).enqueue(
        conversation_id=conversation_id, waits=waits + 1
    )


@job(queue_name="customer")
def send_notice(*, chat_pk: int, text: str) -> None:
    """A word to the customer outside the conversation (why a file was not taken)."""
    chat = TelegramChat.objects.select_related("bot").filter(pk=chat_pk).first()
    if chat is None or chat.blocked_at is not None or not chat.bot.active:
        return
    try:
        with BotApi.of(chat.bot) as api:
            api.send_message(chat_id=chat.chat_id, text=text)
    except (TelegramBlocked, TelegramRejected) as error:
        logger.info("Telegram notice to chat %s not sent: %s", chat.pk, error.description)


def forget_old_updates(*, now: dt.datetime | None = None) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): delete handled updates Telegram can no
    longer send again. Returns how many."""
    cutoff = (now or timezone.now()) - KEEP_UPDATES
    deleted, _kinds = TelegramUpdate.objects.filter(
        handled_at__isnull=False, received_at__lt=cutoff
    ).delete()
    return deleted
