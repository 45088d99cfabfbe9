"""The chat API: start a conversation, send messages, buttons and files, read what is new.

Every channel (the website widget, the chat page, a mobile app, a messaging connector) uses it.
A conversation is continued with its id and the token returned when it started, sent as
`X-Conversation-Token`; new messages are read with `GET /conversations/{id}?after=N`: poll it while
a person answers, and while the newest message expects `wait` (the company's policies decide a
new case after the reply that registers it, and their answer follows a moment later).
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import Field, File, Router, Schema, Status
from ninja.files import UploadedFile

from concilia.assistant import actions
from concilia.assistant.models import ChatMessage, Conversation, ConversationChannel
from concilia.cases.attachments import check_file, read_upload
from concilia.core import audit
from concilia.core.problems import ApiProblem
from concilia.core.throttling import RateLimit, client_address
from concilia.customers.auth import current_customer

router = Router(tags=["conversations"])

TOKEN_HEADER = "X-Conversation-Token"  # noqa: S105 - a header name, not a secret


class ChoiceOut(Schema):
    value: str
    label: str


class UploadOut(Schema):
    name: str
    content_type: str
    size: int


class MessageOut(Schema):
    seq: int
    author: str = Field(description="customer, assistant, agent or system")
    body: str
    choices: list[ChoiceOut] = Field(description="Buttons to offer; free text is always allowed")
    expects: str = Field(
        description="What the assistant waits for: text, email, name, choice, file, rating, none;"
        " wait: more follows without an answer (the policies are deciding): poll for it"
    )
    rating: int | None = None
    upload: UploadOut | None = None
    created_at: dt.datetime


class ConversationOut(Schema):
    id: uuid.UUID
    status: str = Field(description="active, handed_over (a person answers) or closed")
    language: str
    case_reference: str | None = None
    last_seq: int
    messages: list[MessageOut]


class ConversationStarted(ConversationOut):
    token: str = Field(description="Send it as X-Conversation-Token on every later call")


class StartIn(Schema):
    language: str | None = Field(None, description="es or en; defaults to Accept-Language")
    channel: str = Field("api", description="widget, page or api")


class MessageIn(Schema):
    text: str = Field("", max_length=4000)
    choice: str = Field("", max_length=100, description="The value of a button offered")


class RatingIn(Schema):
    helpful: bool


class SurveyIn(Schema):
    score: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=2000)


class RatingOut(Schema):
    seq: int
    rating: int


def _message_out(message: ChatMessage) -> dict:
    upload = message.upload
    return {
        "seq": message.seq,
        "author": message.author,
        "body": message.body,
        "choices": message.choices,
        "expects": message.expects,
        "rating": message.rating,
        "upload": (
            {"name": upload.original_name, "content_type": upload.content_type, "size": upload.size}
            if upload is not None
            else None
        ),
        "created_at": message.created_at,
    }


def _conversation_out(conversation: Conversation, messages: list[ChatMessage]) -> dict:
    return {
        "id": conversation.public_id,
        "status": conversation.status,
        "language": conversation.language,
        "case_reference": conversation.case.reference if conversation.case_id else None,
        "last_seq": conversation.last_seq,
        "messages": [_message_out(m) for m in messages],
    }


def _language(request: HttpRequest, asked: str | None) -> str:
    codes = {code for code, _ in settings.LANGUAGES}
    if asked and asked[:2] in codes:
        return asked[:2]
    return translation.get_language_from_request(request)[:2] if request else "es"


def _conversation(request: HttpRequest, conversation_id: uuid.UUID) -> Conversation:
    conversation = (
        Conversation.objects.select_related("case").filter(public_id=conversation_id).first()
    )
    token = request.headers.get(TOKEN_HEADER, "")
    if conversation is None or not conversation.token_matches(token):
        # The same answer for an unknown id and a wrong token: ids cannot be probed.
        raise ApiProblem(404, _("No such conversation, or the token does not match."))
    translation.activate(conversation.language)
    return conversation


def _throttle(limit: RateLimit, key: str) -> None:
    if not limit.hit(key):
        raise ApiProblem(
            429,
            _("Too many messages. Please wait a moment."),
            headers={"Retry-After": str(limit.retry_after())},
        )


@router.post(
    "/conversations",
    response={201: ConversationStarted},
    summary="Start a conversation with the assistant",
    auth=None,
)
def start(request: HttpRequest, payload: StartIn | None = None) -> Status:
    if request.body.strip() and not request.body.lstrip().startswith(b"{"):
        # The body is optional, but one that is sent must be an object, not `"k"`, `5` or `[]`.
        raise ApiProblem(
            422,
            _("The request has errors."),
            [{"field": "", "code": "type", "message": _("Send a JSON object, or no body.")}],
        )
    payload = payload or StartIn()
    _throttle(RateLimit("chat-start", settings.CHAT_START_RATE), client_address(request))
    # Connectors' channels (Telegram) start their conversations themselves, never through here.
    web = (ConversationChannel.WIDGET, ConversationChannel.PAGE, ConversationChannel.API)
    channel = payload.channel if payload.channel in web else "api"
    language = _language(request, payload.language)
    translation.activate(language)
    started = actions.start_conversation(
        language=language, channel=channel, customer=current_customer(request)
    )
    conversation = started.conversation
    out = _conversation_out(conversation, list(conversation.messages.select_related("upload")))
    return Status(201, {**out, "token": started.token})


@router.get(
    "/conversations/{conversation_id}",
    response=ConversationOut,
    summary="The conversation and its messages after `after` (poll this for new ones)",
    auth=None,
)
def read(request: HttpRequest, conversation_id: uuid.UUID, after: int = 0) -> dict:
    conversation = _conversation(request, conversation_id)
    after = max(0, min(after, 2**31 - 1))
    messages = list(conversation.messages.filter(seq__gt=after).select_related("upload"))
    if after == 0 and messages:  # the whole transcript (the page's polls after it: no entry)
        audit.record(
            audit.VIEW,
            target=conversation,
            case=conversation.case,
            customer=conversation.customer_id,
            actor=conversation.customer,
            fields=["transcript"],
        )
    return _conversation_out(conversation, messages)


@router.post(
    "/conversations/{conversation_id}/messages",
    response=ConversationOut,
    summary="Send a message or press a button; the answer holds the new messages",
    auth=None,
)
def send(request: HttpRequest, conversation_id: uuid.UUID, payload: MessageIn) -> dict:
    conversation = _conversation(request, conversation_id)
    _throttle(RateLimit("chat-message", settings.CHAT_MESSAGE_RATE), str(conversation.pk))
    text = payload.text.strip()
    if not text and not payload.choice:
        raise ApiProblem(
            422,
            _("The request has errors."),
            [{"field": "text", "code": "required", "message": _("Write a message.")}],
        )
    messages = actions.post_customer_message(
        conversation=conversation, text=text, choice=payload.choice.strip()
    )
    # The messages carry the conversation as the turn left it (no second read).
    return _conversation_out(messages[0].conversation, messages)


@router.post(
    "/conversations/{conversation_id}/attachments",
    response=ConversationOut,
    summary="Send a file (a photo, an invoice): checked like the form's attachments",
    auth=None,
)
def upload(request: HttpRequest, conversation_id: uuid.UUID, file: File[UploadedFile]) -> dict:
    conversation = _conversation(request, conversation_id)
    _throttle(RateLimit("chat-message", settings.CHAT_MESSAGE_RATE), str(conversation.pk))
    if "consent" not in conversation.state:
        raise ApiProblem(
            422,
            _("The request has errors."),
            [
                {
                    "field": "file",
                    "code": "consent",
                    "message": _("Please accept the privacy notice before sending files."),
                }
            ],
        )
    if conversation.uploads.count() >= settings.CONCILIA_MAX_ATTACHMENTS * 2:
        raise ApiProblem(
            422,
            _("The request has errors."),
            [
                {
                    "field": "file",
                    "code": "too_many",
                    "message": _("No more files can be sent here."),
                }
            ],
        )
    try:
        content = read_upload(file)
        checked = check_file(file.name or "file", content, file.size)
    except ValidationError as error:
        raise ApiProblem(
            422,
            _("The request has errors."),
            [
                {"field": "file", "code": error.code or "invalid", "message": m}
                for m in error.messages
            ],
        ) from None
    messages = actions.receive_upload(conversation=conversation, checked=checked)
    return _conversation_out(messages[0].conversation, messages)


@router.post(
    "/conversations/{conversation_id}/messages/{seq}/rating",
    response=RatingOut,
    summary="Thumbs up or down on one of the assistant's answers",
    auth=None,
)
def rate(request: HttpRequest, conversation_id: uuid.UUID, seq: int, payload: RatingIn) -> dict:
    conversation = _conversation(request, conversation_id)
    try:
        message = actions.rate_message(
            conversation=conversation, seq=max(0, min(seq, 2**31 - 1)), helpful=payload.helpful
        )
    except ChatMessage.DoesNotExist:
        raise ApiProblem(404, _("Only the assistant's answers can be rated.")) from None
    return {"seq": message.seq, "rating": message.rating}


@router.post(
    "/conversations/{conversation_id}/survey",
    response=ConversationOut,
    summary="The satisfaction survey: a score from 1 to 5 and an optional comment",
    auth=None,
)
def survey(request: HttpRequest, conversation_id: uuid.UUID, payload: SurveyIn) -> dict:
    conversation = _conversation(request, conversation_id)
    conversation = actions.submit_survey(
        conversation=conversation, score=payload.score, comment=payload.comment
    )
    return _conversation_out(conversation, [])
