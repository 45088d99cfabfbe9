"""Background jobs of the assistant: the verification code sent to a customer's email."""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from concilia.assistant.models import Conversation
from concilia.assistant.verification import CODE_MINUTES, code_for
from concilia.core.jobs import job


@job()
def send_chat_code(*, conversation_id: int, nonce: str) -> None:
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    challenge = (conversation.state.get("challenge") or {}) if conversation else {}
    if conversation is None or challenge.get("nonce") != nonce:
        return  # a newer code was asked for, or the conversation is gone
    with translation.override(conversation.language):
        context = {"code": code_for(nonce), "minutes": CODE_MINUTES}
        message = EmailMultiAlternatives(
            subject=_("Your code for the chat: %(code)s") % context,
            body=render_to_string("assistant/email/chat_code.txt", context),
            to=[str(challenge["email"])],
        )
        message.attach_alternative(
            render_to_string("assistant/email/chat_code.html", context), "text/html"
        )
        message.send()
