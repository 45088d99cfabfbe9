"""The assistant's personal data (house rule 8): conversations (the dialogue's memory, the
survey's comment), their messages and the files sent in the chat, hand-over snapshots and the
technician's visit report; the customer's copy of their conversations, and anonymising them.

An anonymised conversation keeps its channel, language, status, category, dates, satisfaction
score and the number, authors and times of its messages; the texts go, the files are deleted,
and a conversation still running is ended.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from concilia.assistant.models import (
    ChatMessage,
    ChatUpload,
    Conversation,
    ConversationStatus,
    Handover,
    TechnicianVisit,
)
from concilia.cases.models import Case
from concilia.core.encrypted_json import filled
from concilia.core.personal_data import (
    DELETED,
    Export,
    PersonalFields,
    counted,
    exported_files,
    forget_files_after_commit,
    iso,
    summed,
)
from concilia.customers.models import Customer

DECLARED = [
    PersonalFields(
        "assistant.Conversation",
        fields=("state", "csat_comment"),
        exported=("csat_comment",),
        note="The dialogue's memory holds what the customer typed before the case existed.",
    ),
    PersonalFields(
        "assistant.ChatMessage",
        fields=("body", "understanding"),
        exported=("body",),
    ),
    PersonalFields(
        "assistant.ChatUpload",
        fields=("file", "original_name"),
        exported=("file", "original_name"),
        erasure=DELETED,
    ),
    PersonalFields("assistant.Handover", fields=("detail", "snapshot")),
    PersonalFields("assistant.TechnicianVisit", fields=("report",)),
]


def _conversations_of(customer: Customer) -> Any:
    return Conversation.objects.filter(Q(customer=customer) | Q(case__customer=customer)).order_by(
        "created_at", "pk"
    )


def export_customer(customer: Customer) -> Export:
    """The customer's conversations, message by message, and the files they sent in them."""
    export = Export(data={"conversations": []})
    conversations = _conversations_of(customer).prefetch_related("messages", "uploads")
    for conversation in conversations.select_related("case"):
        uploads = list(conversation.uploads.all())
        export.files += exported_files(f"chat/{conversation.public_id}", uploads)
        export.data["conversations"].append(
            {
                "id": str(conversation.public_id),
                "channel": conversation.channel,
                "language": conversation.language,
                "started_at": iso(conversation.created_at),
                "ended_at": iso(conversation.ended_at),
                "case": conversation.case.reference if conversation.case else None,
                "satisfaction": conversation.csat_score,
                "satisfaction_comment": conversation.csat_comment,
                "messages": [
                    {"at": iso(message.created_at), "from": message.author, "body": message.body}
                    for message in conversation.messages.all()
                ],
                "files": [upload.original_name for upload in uploads],
            }
        )
    return export


def anonymise_conversation(conversation: Conversation) -> dict[str, int]:
    """Empty one conversation's texts and memory, delete its files (after commit), end it."""
    now = timezone.now()
    changed = 0
    if conversation.state or conversation.csat_comment or conversation.status != "closed":
        Conversation.objects.filter(pk=conversation.pk).update(
            state={},
            csat_comment="",
            status=ConversationStatus.CLOSED,
            ended_at=conversation.ended_at or now,
        )
        changed = 1
    messages = (
        ChatMessage.objects.filter(conversation_id=conversation.pk)
        .filter(filled("body", "understanding"))
        .update(body="", understanding={})
    )
    uploads = ChatUpload.objects.filter(conversation_id=conversation.pk)
    names = list(uploads.values_list("file", flat=True))
    deleted, _by_model = uploads.delete()
    handovers = (
        Handover.objects.filter(conversation_id=conversation.pk)
        .filter(filled("detail", "snapshot"))
        .update(detail="", snapshot={})
    )
    forget_files_after_commit(names)
    return counted(
        conversations=changed,
        chat_messages=messages,
        chat_uploads=deleted,
        handovers=handovers,
    )


def anonymise_case(case: Case) -> dict[str, int]:
    """The conversations that led to the case, its hand-overs and its technician's report."""
    parts = [
        anonymise_conversation(conversation)
        for conversation in Conversation.objects.filter(case_id=case.pk)
    ]
    parts.append(
        counted(
            handovers=Handover.objects.filter(case_id=case.pk)
            .filter(filled("detail", "snapshot"))
            .update(detail="", snapshot={}),
            technician_reports=TechnicianVisit.objects.filter(case_id=case.pk)
            .filter(filled("report"))
            .update(report=""),
        )
    )
    return summed(parts)


def erase_customer(customer: Customer, *, reason: str) -> dict[str, int]:
    """The customer's conversations that opened no case (those with one went with the case)."""
    return summed(
        [
            anonymise_conversation(conversation)
            for conversation in Conversation.objects.filter(customer=customer)
        ]
    )
