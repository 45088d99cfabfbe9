"""Reviews of conversations the assistant handled badly, the labels reviewers give them, the
questions it could not answer, and each use of an agent's reply template."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.core.fields import BlindIndexField, EncryptedTextField, with_blind_indexes


class ReviewReason(models.TextChoices):
    THUMBS_DOWN = "thumbs_down", _("Thumbs down")
    ABANDONED = "abandoned", _("Abandoned")
    HANDOVER = "handover", _("Handed to a person")


class ReviewStatus(models.TextChoices):
    LABELLED = "labelled", _("Labelled")
    DISMISSED = "dismissed", _("Nothing to learn")


class ReviewItem(models.Model):
    """A conversation a reviewer has looked at (the queue is the ones nobody has yet)."""

    conversation = models.OneToOneField(
        "assistant.Conversation", on_delete=models.CASCADE, related_name="+"
    )
    # Why it was in the queue when it was reviewed (ReviewReason values).
    reasons = models.JSONField(default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ReviewStatus.choices)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reviewer"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), default=timezone.now)

    class Meta:
        ordering = ["-reviewed_at", "-pk"]
        verbose_name = _("conversation review")
        verbose_name_plural = _("conversation reviews")

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.status}"


class LabelledModel(models.TextChoices):
    """The NLU models a reviewer's label trains (`concilia nlu train --model NAME`)."""

    CATEGORIES = "categories", _("Category")
    KINDS = "kinds", _("Kind of message")


class ReviewLabel(models.Model):
    """What the assistant should have understood in one customer message: a training example."""

    PERSONAL_FIELDS = ("text", "slots")

    review = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="labels")
    message = models.ForeignKey(
        "assistant.ChatMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The message as it will be trained on: the reviewer may cut what does not show the intent.
    text = EncryptedTextField(_("text"))
    model = models.CharField(_("model"), max_length=20, choices=LabelledModel.choices)
    label = models.CharField(_("label"), max_length=40)
    # The slots the message gave, "name: value" one a line (for reviewers; the extractors are
    # rules, not trained).
    slots = EncryptedTextField(_("slots"), blank=True)
    excluded = models.BooleanField(
        _("kept out of training"),
        default=False,
        help_text=_("Kept for the record, but not given to `concilia nlu train`."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("review label")
        verbose_name_plural = _("review labels")

    def __str__(self) -> str:
        return f"{self.model}={self.label}"


class QuestionStatus(models.TextChoices):
    OPEN = "open", _("Waiting for an answer")
    ANSWERED = "answered", _("Answered by an article")
    DISMISSED = "dismissed", _("Dismissed")


class UnansweredQuestion(models.Model):
    """One question (after normalising case, accents, punctuation and spaces) the assistant
    could not answer, however many customers asked it."""

    PERSONAL_FIELDS = ("text",)

    text = EncryptedTextField(_("question"))
    # What the unique constraint and look-ups use: the text is encrypted.
    text_index = BlindIndexField(source="text", purpose="unanswered-question", unique=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=QuestionStatus.choices, default=QuestionStatus.OPEN
    )
    article = models.ForeignKey(
        "assistant.KnowledgeArticle",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("answered by"),
    )
    first_asked_at = models.DateTimeField(_("first asked"), default=timezone.now)
    last_asked_at = models.DateTimeField(_("last asked"), default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_asked_at", "-pk"]
        verbose_name = _("unanswered question")
        verbose_name_plural = _("unanswered questions")
        indexes = [models.Index(fields=["status", "-last_asked_at"], name="unanswered_by_status")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="answered") | Q(article__isnull=False),
                name="unanswered_answered_has_article",
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]

    def save(self, *args, update_fields=None, **kwargs):  # type: ignore[no-untyped-def]
        super().save(
            *args, update_fields=with_blind_indexes(UnansweredQuestion, update_fields), **kwargs
        )


class UnansweredReason(models.TextChoices):
    NO_ANSWER = "no_answer", _("No knowledge-base answer")
    NOT_UNDERSTOOD = "not_understood", _("Not understood")


class UnansweredAsk(models.Model):
    """One time a customer asked an unanswered question (erased with the conversation)."""

    PERSONAL_FIELDS = ("text",)

    question = models.ForeignKey(UnansweredQuestion, on_delete=models.CASCADE, related_name="asks")
    conversation = models.ForeignKey(
        "assistant.Conversation", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # The customer's own words (the question holds them normalised).
    text = EncryptedTextField(_("message"))
    reason = models.CharField(_("reason"), max_length=20, choices=UnansweredReason.choices)
    asked_at = models.DateTimeField(_("asked"), default=timezone.now)

    class Meta:
        ordering = ["-asked_at", "-pk"]
        verbose_name = _("unanswered ask")
        verbose_name_plural = _("unanswered asks")

    def __str__(self) -> str:
        return f"{self.question_id} {self.asked_at:%Y-%m-%d %H:%M}"


class TemplateUse(models.Model):
    """An agent's reply that started from a reply template."""

    template = models.ForeignKey("cases.ReplyTemplate", on_delete=models.CASCADE, related_name="+")
    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        "cases.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-used_at", "-pk"]
        verbose_name = _("reply template use")
        verbose_name_plural = _("reply template uses")
        indexes = [models.Index(fields=["template", "used_at"], name="template_use_by_template")]

    def __str__(self) -> str:
        return f"{self.template_id} {self.case_id}"
