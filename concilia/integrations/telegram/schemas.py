"""The parts of Telegram's Update object (core.telegram.org/bots/api#update) the channel reads.

Lenient on purpose: Telegram adds fields and kinds of update, and what is not read here is
ignored; only what would make an update unusable (no update_id, a chat without an id) fails.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class User(_Lenient):
    id: int
    is_bot: bool = False
    language_code: str = ""


class Chat(_Lenient):
    id: int
    type: str = "private"


class PhotoSize(_Lenient):
    file_id: str
    file_unique_id: str = ""
    width: int = 0
    height: int = 0
    file_size: int | None = None


class Document(_Lenient):
    file_id: str
    file_unique_id: str = ""
    file_name: str = ""
    mime_type: str = ""
    file_size: int | None = None


class Message(_Lenient):
    message_id: int
    chat: Chat
    sender: User | None = Field(None, alias="from")
    text: str | None = None
    photo: list[PhotoSize] | None = None
    document: Document | None = None


class CallbackQuery(_Lenient):
    id: str
    sender: User = Field(alias="from")
    message: Message | None = None
    data: str | None = None


class ChatMember(_Lenient):
    status: str


class ChatMemberUpdated(_Lenient):
    chat: Chat
    sender: User = Field(alias="from")
    new_chat_member: ChatMember


class Update(_Lenient):
    update_id: int = Field(ge=0)
    message: Message | None = None
    callback_query: CallbackQuery | None = None
    # The customer blocked the bot ("kicked") or let it back ("member").
    my_chat_member: ChatMemberUpdated | None = None

    @property
    def chat_id(self) -> int | None:
        if self.message is not None:
            return self.message.chat.id
        if self.callback_query is not None and self.callback_query.message is not None:
            return self.callback_query.message.chat.id
        if self.my_chat_member is not None:
            return self.my_chat_member.chat.id
        return None
