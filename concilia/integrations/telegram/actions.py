"""Every write to Telegram bots and their updates by people and by the webhook: configuring a bot,
registering its webhook with Telegram, and taking in an update (once per update_id)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from concilia.core.tasks import enqueue_with_change
from concilia.integrations.telegram.client import BotApi
from concilia.integrations.telegram.models import TelegramBot, TelegramUpdate
from concilia.integrations.telegram.schemas import Update

logger = logging.getLogger(__name__)

# The kinds of update the bot asks Telegram for (the others are never sent to the webhook).
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


@transaction.atomic
def save_bot(*, bot: TelegramBot, token: str = "") -> TelegramBot:
    """Create or change a bot; a non-empty `token` replaces the stored one (kept encrypted)."""
    if token:
        bot.set_token(token.strip())
    if not bot.api_token:
        raise ValueError("a new bot needs its token")
    bot.full_clean(exclude=["api_token", "bot_id", "webhook_secret"])
    bot.save()
    return bot


def register_webhook(*, bot: TelegramBot) -> str:
    """Tell Telegram to send the bot's updates to our webhook with the bot's secret token
    (setWebhook); returns the address. Raises TelegramError when Telegram refuses."""
    address = bot.webhook_address()
    with BotApi.of(bot) as api:
        api.set_webhook(
            url=address, secret_token=bot.webhook_secret, allowed_updates=ALLOWED_UPDATES
        )
    _webhook_registered(bot=bot, address=address)
    return address


@transaction.atomic
def _webhook_registered(*, bot: TelegramBot, address: str) -> None:
    bot.webhook_url = address
    bot.webhook_registered_at = timezone.now()
    bot.save(update_fields=["webhook_url", "webhook_registered_at"])


@transaction.atomic
def receive_update(*, bot: TelegramBot, update: Update, payload: dict[str, Any]) -> bool:
    """Keep an update and queue its handling; False (and nothing queued) when this update_id
    was received before: Telegram sends an update again when our answer was late."""
    from concilia.integrations.telegram.tasks import handle_update

    try:
        with transaction.atomic():
            row = TelegramUpdate.objects.create(
                bot=bot, update_id=update.update_id, payload=payload
            )
    except IntegrityError:
        logger.info("Telegram update %s of bot %s came again", update.update_id, bot.code)
        return False
    enqueue_with_change(handle_update, update_pk=row.pk)
    return True
