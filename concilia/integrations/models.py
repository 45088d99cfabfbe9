"""The integrations' tables, defined in their sub-packages (Django looks for models here)."""

from concilia.integrations.mail.models import InboundEmail, Mailbox
from concilia.integrations.telegram.models import (
    TelegramBot,
    TelegramChat,
    TelegramConversation,
    TelegramUpdate,
)
from concilia.integrations.webhooks.models import Delivery, DeliveryAttempt, Endpoint

__all__ = [
    "Delivery",
    "DeliveryAttempt",
    "Endpoint",
    "InboundEmail",
    "Mailbox",
    "TelegramBot",
    "TelegramChat",
    "TelegramConversation",
    "TelegramUpdate",
]
