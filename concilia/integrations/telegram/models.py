"""Telegram bots, the chats customers hold with them, each chat's conversations with the assistant
(and how far their messages were sent), and the updates Telegram delivered to the webhook."""

from __future__ import annotations

import re
import secrets

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.core.encrypted_json import EncryptedJSONField
from concilia.core.fields import EncryptedCharField

DEFAULT_API_URL = "https://api.telegram.org"
# A token as @BotFather gives it: the bot's numeric id, a colon, then the secret part.
TOKEN_PATTERN = re.compile(r"^(\d{3,20}):[A-Za-z0-9_-]{30,100}$")


def new_webhook_secret() -> str:
    """Telegram sends it back in X-Telegram-Bot-Api-Secret-Token ([A-Za-z0-9_-], 1-256)."""
    return secrets.token_urlsafe(48)


class TelegramBot(models.Model):
    """A bot customers write to on Telegram; its updates come to our webhook, which proves they
    are Telegram's with the secret token we gave it."""

    code = models.SlugField(
        _("code"),
        max_length=40,
        unique=True,
        help_text=_("Part of the webhook's address: /integrations/telegram/<code>/webhook"),
    )
    name = models.CharField(_("name"), max_length=100)
    # The token from @BotFather, encrypted at rest (docs/encryption.md); only its bot id is
    # kept readable. Set it with set_token.
    api_token = EncryptedCharField(_("token"), max_length=200, editable=False)
    bot_id = models.CharField(_("bot id"), max_length=20, editable=False)
    # What Telegram sends back with every update (given to it when the webhook is registered):
    # encrypted at rest like the token.
    webhook_secret = EncryptedCharField(max_length=100, default=new_webhook_secret, editable=False)
    api_url = models.CharField(
        _("Bot API address"),
        max_length=200,
        default=DEFAULT_API_URL,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("Telegram's own unless you run a local Bot API server."),
    )
    language = models.CharField(
        _("default language"),
        max_length=8,
        choices=settings.LANGUAGES,
        default=settings.LANGUAGE_CODE,
        help_text=_("For customers whose Telegram is in neither Spanish nor English."),
    )
    active = models.BooleanField(
        _("active"), default=True, help_text=_("An inactive bot's updates are refused.")
    )
    webhook_url = models.CharField(_("registered webhook"), max_length=300, blank=True)
    webhook_registered_at = models.DateTimeField(_("webhook registered"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = _("Telegram bot")
        verbose_name_plural = _("Telegram bots")

    def __str__(self) -> str:
        return self.name

    def set_token(self, token: str) -> None:
        match = TOKEN_PATTERN.match(token)
        if match is None:
            raise ValueError("not a bot token")
        self.api_token = token
        self.bot_id = match[1]

    def webhook_address(self) -> str:
        path = reverse("telegram:webhook", kwargs={"code": self.code})
        return settings.BASE_URL.rstrip("/") + path


class TelegramChat(models.Model):
    """One customer's private chat with a bot."""

    PERSONAL_FIELDS = ("chat_id", "last_error")

    bot = models.ForeignKey(TelegramBot, on_delete=models.CASCADE, related_name="chats")
    chat_id = models.BigIntegerField(_("Telegram chat"))
    # The customer blocked the bot (Telegram answered 403): nothing is sent until they write again.
    blocked_at = models.DateTimeField(_("blocked the bot"), null=True, blank=True)
    last_error = models.CharField(_("last sending error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("first message"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("Telegram chat")
        verbose_name_plural = _("Telegram chats")
        constraints = [
            models.UniqueConstraint(fields=["bot", "chat_id"], name="telegram_chat_per_bot"),
        ]

    def __str__(self) -> str:
        return f"{self.bot} #{self.pk}"


class TelegramConversation(models.Model):
    """A conversation with the assistant held in a Telegram chat, and how far its messages have
    reached the customer (each is sent once, in order)."""

    chat = models.ForeignKey(TelegramChat, on_delete=models.CASCADE, related_name="conversations")
    conversation = models.OneToOneField(
        "assistant.Conversation", on_delete=models.CASCADE, related_name="telegram"
    )
    # Every message up to this seq was sent; of the next one, `sent_parts` parts were (a long
    # message goes in several Telegram messages).
    sent_seq = models.PositiveIntegerField(default=0)
    sent_parts = models.PositiveSmallIntegerField(default=0)
    # A sender's claim: until then, no other sender sends this conversation's messages.
    sending_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("Telegram conversation")
        verbose_name_plural = _("Telegram conversations")

    def __str__(self) -> str:
        return f"{self.chat} {self.conversation_id}"


class TelegramUpdate(models.Model):
    """An update Telegram delivered to the webhook, kept to answer each update_id once (Telegram
    sends one again when we did not answer in time); its content is dropped once handled."""

    PERSONAL_FIELDS = ("payload",)

    bot = models.ForeignKey(TelegramBot, on_delete=models.CASCADE, related_name="updates")
    update_id = models.BigIntegerField()
    # What the customer wrote is in it: encrypted, read whole (never filtered inside).
    payload = EncryptedJSONField(default=dict, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    handled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["update_id"]
        verbose_name = _("Telegram update")
        verbose_name_plural = _("Telegram updates")
        constraints = [
            models.UniqueConstraint(fields=["bot", "update_id"], name="telegram_update_once"),
        ]

    def __str__(self) -> str:
        return f"{self.bot} {self.update_id}"
