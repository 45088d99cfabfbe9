"""Handling one update Telegram delivered: a customer's text, photo or document, or a button they
pressed, as a turn of the chat's conversation with the assistant, exactly as the web widget's
turns (the same actions, so the same dialogue and the same case).

A chat holds one conversation at a time; a message after it has ended starts a new one. Each
update is handled once: it is marked handled in the same transaction as its turn.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.assistant import actions as assistant_actions
from concilia.assistant.models import (
    ChatMessage,
    Conversation,
    ConversationChannel,
    ConversationStatus,
)
from concilia.cases.attachments import CheckedFile, check_file
from concilia.core.tasks import enqueue_with_change
from concilia.integrations.telegram import outbound
from concilia.integrations.telegram.client import (
    BotApi,
    TelegramError,
    TelegramRejected,
)
from concilia.integrations.telegram.models import (
    TelegramBot,
    TelegramChat,
    TelegramConversation,
    TelegramUpdate,
)
from concilia.integrations.telegram.schemas import (
    CallbackQuery,
    ChatMemberUpdated,
    Document,
    Message,
    PhotoSize,
    Update,
    User,
)

logger = logging.getLogger(__name__)

START = "/start"


def handle(*, update_pk: int) -> None:
    """Handle a received update (nothing when it already was)."""
    row = (
        TelegramUpdate.objects.select_related("bot")
        .filter(pk=update_pk, handled_at__isnull=True)
        .first()
    )
    if row is None:
        return
    update = Update.model_validate(row.payload)
    if update.message is not None and update.message.chat.type == "private":
        _on_message(row, update.message)
    elif update.callback_query is not None:
        _on_press(row, update.callback_query)
    elif update.my_chat_member is not None and update.my_chat_member.chat.type == "private":
        _on_membership(row, update.my_chat_member)
    else:  # groups, channels and kinds of update the channel does not use
        with transaction.atomic():
            _claim(row)


def _claim(row: TelegramUpdate) -> bool:
    """Mark the update handled (its content dropped); False when another run already did."""
    return bool(
        TelegramUpdate.objects.filter(pk=row.pk, handled_at__isnull=True).update(
            handled_at=timezone.now(), payload={}
        )
    )


def _language(bot: TelegramBot, user: User | None) -> str:
    code = (user.language_code if user else "")[:2].lower()
    return code if code in dict(settings.LANGUAGES) else bot.language


def _chat(bot: TelegramBot, chat_id: int) -> TelegramChat:
    """The chat, locked for this turn; a customer who writes has let the bot back in."""
    chat, _created = TelegramChat.objects.get_or_create(bot=bot, chat_id=chat_id)
    chat = TelegramChat.objects.select_for_update().get(pk=chat.pk)
    if chat.blocked_at is not None:
        chat.blocked_at = None
        chat.save(update_fields=["blocked_at"])
    return chat


def _current(chat: TelegramChat) -> TelegramConversation | None:
    return (
        TelegramConversation.objects.select_related("conversation")
        .filter(chat=chat)
        .order_by("-created_at", "-pk")
        .first()
    )


def _ended(conversation: Conversation) -> bool:
    # The survey after the end still belongs to the conversation it rates.
    return conversation.status == ConversationStatus.CLOSED and conversation.step not in (
        "survey",
        "survey_comment",
    )


def _conversation(chat: TelegramChat, language: str) -> tuple[TelegramConversation, bool]:
    """The chat's conversation, or a new one (greeting and privacy notice) when it has none or
    the last one has ended; True when it is new."""
    link = _current(chat)
    if link is not None and not _ended(link.conversation):
        return link, False
    started = assistant_actions.start_conversation(
        language=language, channel=ConversationChannel.TELEGRAM
    )
    link = TelegramConversation.objects.create(chat=chat, conversation=started.conversation)
    return link, True


def _notice(chat: TelegramChat, text: str) -> None:
    """A word to the customer that is not part of the conversation (sent after commit)."""
    from concilia.integrations.telegram.tasks import send_notice

    enqueue_with_change(send_notice, chat_pk=chat.pk, text=text)


# -- messages ------------------------------------------------------------------------------


def _on_message(row: TelegramUpdate, message: Message) -> None:
    bot = row.bot
    language = _language(bot, message.sender)
    if message.photo or message.document:
        _on_file(row, message, language)
        return
    text = (message.text or "").strip()
    with transaction.atomic():
        if not _claim(row):
            return
        chat = _chat(bot, message.chat.id)
        link, started = _conversation(chat, language)
        if not text:
            with translation.override(link.conversation.language):
                _notice(chat, _("I can read text messages, photos and documents."))
            return
        if started or text.split(maxsplit=1)[0].split("@")[0] == START:
            return  # the greeting and the privacy notice are the answer
        assistant_actions.post_customer_message(conversation=link.conversation, text=text[:4000])


def _largest(message: Message) -> PhotoSize | Document | None:
    if message.document is not None:
        return message.document
    sizes = sorted(message.photo or [], key=lambda p: (p.file_size or 0, p.width * p.height))
    limit = settings.CONCILIA_MAX_ATTACHMENT_BYTES
    fitting = [p for p in sizes if (p.file_size or 0) <= limit]
    return (fitting or sizes)[-1] if sizes else None


def _refusal(conversation: Conversation | None) -> str:
    """Why no file can be taken now (the chat API's own reasons), or ""."""
    if conversation is None or "consent" not in conversation.state:
        return _("Please accept the privacy notice before sending files.")
    if conversation.uploads.count() >= settings.CONCILIA_MAX_ATTACHMENTS * 2:
        return _("No more files can be sent here.")
    return ""


def _fetch(bot: TelegramBot, file: PhotoSize | Document) -> CheckedFile:
    """Download the file through getFile and check it as the chat API checks uploads. Raises
    ValidationError with the reason for the customer, TelegramUnavailable to try again later."""
    limit = settings.CONCILIA_MAX_ATTACHMENT_BYTES
    declared = file.file_size or 0
    name = file.file_name if isinstance(file, Document) else ""
    if declared > limit:
        return check_file(name or "file", b"\0", declared)  # raises "too large"
    with BotApi.of(bot) as api:
        try:
            found = api.get_file(file_id=file.file_id)
            content = api.download(file_path=found["file_path"], limit=limit)
        except TelegramRejected:
            raise ValidationError(
                _("The file could not be received. Please send it again.")
            ) from None
    name = name or str(found["file_path"]).rsplit("/", 1)[-1]
    return check_file(name, content, max(declared, int(found.get("file_size") or 0)))


def _on_file(row: TelegramUpdate, message: Message, language: str) -> None:
    bot = row.bot
    existing = TelegramChat.objects.filter(bot=bot, chat_id=message.chat.id).first()
    link = _current(existing) if existing is not None else None
    conversation = link.conversation if link is not None and not _ended(link.conversation) else None
    checked = None
    file = _largest(message)
    with translation.override(conversation.language if conversation else language):
        refusal = _refusal(conversation)
        if not refusal and file is not None:
            try:
                checked = _fetch(bot, file)  # outside the transaction: it is a download
            except ValidationError as error:
                refusal = " ".join(str(m) for m in error.messages)
    with transaction.atomic():
        if not _claim(row):
            return
        chat = _chat(bot, message.chat.id)
        link, _started = _conversation(chat, language)
        if checked is None or link.conversation_id != getattr(conversation, "pk", None):
            with translation.override(link.conversation.language):
                _notice(chat, refusal or _refusal(link.conversation) or _("Please send it again."))
            return
        assistant_actions.receive_upload(conversation=link.conversation, checked=checked)


# -- buttons and membership ----------------------------------------------------------------


def _pressed(link: TelegramConversation | None, data: str | None) -> str | None:
    """The choice a button answers, or None for a button of an older question."""
    parsed = outbound.parse_callback_data(data)
    if link is None or parsed is None or parsed[0] != link.conversation_id:
        return None
    conversation_id, seq, index = parsed
    message = ChatMessage.objects.filter(conversation_id=conversation_id, seq=seq).first()
    if message is None or index >= len(message.choices):
        return None
    value = str(message.choices[index].get("value", ""))
    offered = link.conversation.state.get("offered") or {}
    return value if value in offered else None


def _on_press(row: TelegramUpdate, query: CallbackQuery) -> None:
    bot = row.bot
    chat_id = query.message.chat.id if query.message is not None else query.sender.id
    answer = ""
    with transaction.atomic():
        if not _claim(row):
            return
        chat = _chat(bot, chat_id)
        link = _current(chat)
        choice = _pressed(link, query.data)
        if link is None or choice is None:
            language = link.conversation.language if link else _language(bot, query.sender)
            with translation.override(language):
                answer = _("This button belongs to an earlier question; please use the last one.")
        else:
            assistant_actions.post_customer_message(conversation=link.conversation, choice=choice)
    # Ends the button's loading state; cosmetic, so a failure is only logged.
    try:
        with BotApi.of(bot) as api:
            api.answer_callback_query(callback_query_id=query.id, text=answer)
    except TelegramError as error:
        logger.info("answerCallbackQuery failed: %s", error.description)


def _on_membership(row: TelegramUpdate, change: ChatMemberUpdated) -> None:
    """The customer blocked the bot ("kicked") or let it back in."""
    with transaction.atomic():
        if not _claim(row):
            return
        chat, _created = TelegramChat.objects.get_or_create(bot=row.bot, chat_id=change.chat.id)
        blocked = change.new_chat_member.status == "kicked"
        if blocked != (chat.blocked_at is not None):
            chat.blocked_at = timezone.now() if blocked else None
            chat.save(update_fields=["blocked_at"])
        link = _current(chat)
        if not blocked and link is not None:
            from concilia.integrations.telegram.tasks import push_messages

            # What was written while the bot was blocked reaches the customer now.
            enqueue_with_change(push_messages, conversation_id=link.conversation_id)
