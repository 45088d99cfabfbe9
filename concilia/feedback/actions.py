"""Every write of the feedback app: unanswered questions as the assistant meets them, template
uses as agents reply, and reviewers' labels and decisions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from concilia.accounts.models import User
from concilia.assistant import knowledge
from concilia.assistant.models import ChatMessage, Conversation
from concilia.cases.models import Case, ReplyTemplate
from concilia.core import audit
from concilia.core.crypto import blind_index
from concilia.feedback.models import (
    QuestionStatus,
    ReviewItem,
    ReviewLabel,
    ReviewStatus,
    TemplateUse,
    UnansweredAsk,
    UnansweredQuestion,
)
from concilia.feedback.queries import normalise, reasons_of, review_candidates

# The blind index's purpose (models.UnansweredQuestion.text_index).
QUESTION_INDEX = "unanswered-question"
# A customer's message is kept this long in an unanswered ask (the rest is not a question).
ASK_LIMIT = 1000


class AlreadyReviewed(Exception):
    """Someone reviewed this conversation first."""


class NotForReview(Exception):
    """The conversation is not in the review queue (no thumbs-down, abandonment or hand-over)."""


def _question_for(text: str, language: str, now: dt.datetime) -> UnansweredQuestion:
    key = blind_index(text, purpose=QUESTION_INDEX)
    question = UnansweredQuestion.objects.filter(text_index=key).first()
    if question is not None:
        return question
    try:
        with transaction.atomic():
            return UnansweredQuestion.objects.create(
                text=text, language=language, first_asked_at=now, last_asked_at=now
            )
    except IntegrityError:  # another conversation asked it at the same moment
        return UnansweredQuestion.objects.get(text_index=key)


def record_unanswered(*, conversation: Conversation, text: str, reason: str) -> None:
    """Count a message the assistant could not answer (the knowledge base's listener).

    A question answered by an article that is asked (and missed) again goes back to the open
    ones: the article does not match the way customers ask it.
    """
    plain = normalise(text)
    if not plain:
        return
    now = timezone.now()
    question = _question_for(plain, conversation.language, now)
    UnansweredAsk.objects.create(
        question=question,
        conversation=conversation,
        text=text.strip()[:ASK_LIMIT],
        reason=reason,
        asked_at=now,
    )
    question.last_asked_at = now
    fields = ["last_asked_at"]
    if question.status == QuestionStatus.ANSWERED:
        question.status = QuestionStatus.OPEN
        question.resolved_at = None
        fields += ["status", "resolved_at"]
    question.save(update_fields=fields)


def settle_answered_questions() -> int:
    """Mark answered the open questions an active article now answers; how many were."""
    settled = 0
    now = timezone.now()
    for question in UnansweredQuestion.objects.filter(status=QuestionStatus.OPEN):
        article = knowledge.find_answer(question.text)
        if article is None:
            continue
        question.status = QuestionStatus.ANSWERED
        question.article = article
        question.resolved_at = now
        question.save(update_fields=["status", "article", "resolved_at"])
        settled += 1
    return settled


@transaction.atomic
def dismiss_question(*, question: UnansweredQuestion, by: User) -> None:
    """Not a question the knowledge base should answer (spam, a complaint, a one-off)."""
    question.status = QuestionStatus.DISMISSED
    question.resolved_at = timezone.now()
    question.save(update_fields=["status", "resolved_at"])
    audit.record(audit.CHANGE, target=question, fields=["status"], actor=by)


def record_template_use(
    *, code: str, case: Case, message: Any, author: User | None, at: dt.datetime
) -> None:
    """Count a reply sent from a template (the cases app's listener, inside the reply's
    transaction); a code no template has any more is not counted."""
    template = ReplyTemplate.objects.filter(code=code).first()
    if template is None:
        return
    TemplateUse.objects.create(
        template=template,
        case=case,
        agent=author if author is not None and author.pk else None,
        message=message,
        used_at=at,
    )


@dataclass(frozen=True)
class Label:
    """What a reviewer says one customer message meant."""

    message: ChatMessage | None
    text: str
    model: str
    label: str
    slots: str = ""
    excluded: bool = False


@transaction.atomic
def review_conversation(
    *, conversation: Conversation, reviewer: User, labels: Sequence[Label] = ()
) -> ReviewItem:
    """Close a conversation's review: with labels (training examples), or with none when there
    was nothing to learn. It leaves the queue either way."""
    candidate = review_candidates().filter(pk=conversation.pk).first()
    if candidate is None:
        if ReviewItem.objects.filter(conversation=conversation).exists():
            raise AlreadyReviewed
        raise NotForReview
    try:
        with transaction.atomic():
            item = ReviewItem.objects.create(
                conversation=conversation,
                reasons=reasons_of(candidate),
                status=ReviewStatus.LABELLED if labels else ReviewStatus.DISMISSED,
                reviewer=reviewer,
            )
    except IntegrityError:
        raise AlreadyReviewed from None
    ReviewLabel.objects.bulk_create(
        ReviewLabel(
            review=item,
            message=label.message,
            text=label.text.strip(),
            model=label.model,
            label=label.label,
            slots=label.slots.strip(),
            excluded=label.excluded,
            created_by=reviewer,
        )
        for label in labels
    )
    audit.record(
        audit.CREATE,
        target=item,
        customer=conversation.customer_id and conversation.customer,
        detail={"labels": len(labels)},
        actor=reviewer,
    )
    return item


@transaction.atomic
def exclude_label(*, label: ReviewLabel, excluded: bool, by: User) -> None:
    """Keep a label out of training (or let it back in)."""
    label.excluded = excluded
    label.save(update_fields=["excluded"])
    audit.record(audit.CHANGE, target=label, fields=["excluded"], actor=by)
