"""Background jobs of the assistant: the verification code sent to a customer's email, the
policies' decision on a case the chat opened."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _
from django_tasks.base import TASK_MAX_PRIORITY

from concilia.assistant import actions
from concilia.assistant.models import Conversation
from concilia.assistant.verification import CODE_MINUTES, code_for
from concilia.core.jobs import job
from concilia.core.mail import compose


@job(queue_name="customer")
def send_chat_code(*, conversation_id: int, nonce: str) -> None:
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    challenge = (conversation.state.get("challenge") or {}) if conversation else {}
    if conversation is None or challenge.get("nonce") != nonce:
        return  # a newer code was asked for, or the conversation is gone
    with translation.override(conversation.language):
        context = {"code": code_for(nonce), "minutes": CODE_MINUTES}
        compose(
            subject=_("Your code for the chat: %(code)s") % context,
            template="assistant/email/chat_code",
            context=context,
            to=[str(challenge["email"])],
        ).send()


# A customer is waiting in the chat for this one: it goes before the other jobs.
@job(priority=TASK_MAX_PRIORITY, queue_name="customer")
def decide_case(*, conversation_id: int, case_id: int) -> int:
    """The policies decide a case the chat just opened; the answer appears in the chat."""
    return len(actions.decide_case(conversation_id=conversation_id, case_id=case_id))
