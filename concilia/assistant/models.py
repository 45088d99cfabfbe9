"""Conversations with the assistant, their messages, hand-overs, and what administrators tune."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import get_attachment_storage
from concilia.core.encrypted_json import EncryptedJSONField
from concilia.core.fields import EncryptedCharField, EncryptedTextField
from concilia.core.i18n import in_language


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConversationStatus(models.TextChoices):
    ACTIVE = "active", _("With the assistant")
    HANDED_OVER = "handed_over", _("With a person")
    CLOSED = "closed", _("Ended")


class ConversationChannel(models.TextChoices):
    WIDGET = "widget", _("Website widget")
    PAGE = "page", _("Chat page")
    API = "api", _("Chat API")
    TELEGRAM = "telegram", _("Telegram")


class Conversation(models.Model):
    """One chat between a customer and the assistant (and, after a hand-over, a person).

    Its public id and a secret token (kept as a digest) are what a channel needs to continue it,
    so a customer can come back later to the same conversation.
    """

    PERSONAL_FIELDS = ("state",)

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    token_digest = models.CharField(max_length=64, editable=False)
    channel = models.CharField(
        _("channel"), max_length=10, choices=ConversationChannel.choices, default="page"
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=ConversationStatus.choices,
        default=ConversationStatus.ACTIVE,
    )
    # The dialogue's memory: current step, collected fields, understanding, counters. Encrypted
    # (what the customer typed is in it): read it whole, never filter inside it.
    state = EncryptedJSONField(default=dict, blank=True)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("customer"),
    )
    # The customer proved who they are (a signed-in tracking session), so the assistant may
    # greet them by name and talk about their cases.
    verified = models.BooleanField(default=False)
    consent = models.ForeignKey(
        "customers.Consent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("privacy consent"),
    )
    consent_declined_at = models.DateTimeField(null=True, blank=True)
    case = models.ForeignKey(
        "cases.Case",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("case"),
    )
    category_code = models.CharField(_("category"), max_length=40, blank=True)
    # Solved without a case and without a person (an answer, a troubleshooting step).
    resolved_by_assistant = models.BooleanField(default=False)
    csat_score = models.PositiveSmallIntegerField(
        _("satisfaction (1-5)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    csat_comment = EncryptedTextField(_("satisfaction comment"), blank=True)
    csat_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("started"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_customer_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        indexes = [
            models.Index(
                fields=["status", "-updated_at"],
                condition=Q(status="handed_over"),
                name="conversation_live",
            ),
        ]

    def __str__(self) -> str:
        return str(self.public_id)

    @staticmethod
    def new_token() -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        return token, token_digest(token)

    def token_matches(self, token: str) -> bool:
        return secrets.compare_digest(self.token_digest, token_digest(token or ""))

    @property
    def step(self) -> str:
        return self.state.get("step", "")


class Author(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    ASSISTANT = "assistant", _("Assistant")
    AGENT = "agent", _("Agent")
    SYSTEM = "system", _("System")


class ChatMessage(models.Model):
    """One message of a conversation, numbered so that channels can ask for what is new."""

    PERSONAL_FIELDS = ("body", "understanding")

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    author = models.CharField(max_length=10, choices=Author.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    body = EncryptedTextField(_("message"))
    # Buttons offered with the message: [{"value": "...", "label": "..."}].
    choices = models.JSONField(default=list, blank=True)
    # What the assistant waits for after this message: text, email, choice, file, rating, none.
    expects = models.CharField(max_length=10, blank=True)
    # What the NLU read in a customer's message (language, category, act, frustration...).
    understanding = EncryptedJSONField(default=dict, blank=True)
    # A customer's thumbs up (1) or down (-1) on one of the assistant's answers.
    rating = models.SmallIntegerField(null=True, blank=True)
    upload = models.ForeignKey(
        "ChatUpload", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "seq"]
        verbose_name = _("chat message")
        verbose_name_plural = _("chat messages")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="chat_message_seq"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__in=(-1, 1)),
                name="chat_message_rating_values",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.author}"


def upload_path(instance: ChatUpload, filename: str) -> str:
    return f"chat/{timezone.now():%Y/%m}/{instance.sha256[:2]}/{filename}"


class ChatUpload(models.Model):
    """A file sent in the chat (checked like the form's), kept until it joins the case."""

    PERSONAL_FIELDS = ("file", "original_name")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(storage=get_attachment_storage, upload_to=upload_path, max_length=300)
    original_name = EncryptedCharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    # The slot the file answered (invoice, photo...).
    purpose = models.CharField(max_length=30, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.original_name


class HandoverReason(models.TextChoices):
    REQUESTED = "requested", _("The customer asked for a person")
    FRUSTRATION = "frustration", _("The customer is frustrated")
    NOT_UNDERSTOOD = "not_understood", _("The assistant did not understand twice")
    CATEGORY = "category", _("This category always goes to a person")
    POLICY = "policy", _("The company's policy escalates it")
    AMOUNT = "amount", _("The amount is above the limit")
    UNSOLVED = "unsolved", _("Troubleshooting did not solve it")


class Handover(models.Model):
    """The moment a conversation went to a person, why, and who took it."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="handovers"
    )
    case = models.ForeignKey(
        "cases.Case", on_delete=models.PROTECT, related_name="handovers", verbose_name=_("case")
    )
    reason = models.CharField(_("reason"), max_length=20, choices=HandoverReason.choices)
    detail = EncryptedCharField(_("detail"), max_length=300, blank=True)
    # What the assistant had understood and collected when it handed over.
    snapshot = EncryptedJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When a person is expected: now (inside business hours) or the next opening.
    expected_at = models.DateTimeField(null=True, blank=True)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("taken by"),
    )
    taken_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("hand-over")
        verbose_name_plural = _("hand-overs")

    def __str__(self) -> str:
        return f"{self.conversation_id} {self.reason}"


class HandoverRules(models.Model):
    """When the assistant hands a conversation to a person (one row, edited in the admin).

    Asking for a person is always honoured (Spain's customer-service law of 2025 requires it), so
    it is not a setting here.
    """

    frustration_threshold = models.FloatField(
        _("frustration threshold"),
        default=0.75,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("One message this frustrated (0 calm, 1 furious) goes to a person."),
    )
    frustration_warning = models.FloatField(
        _("repeated frustration level"),
        default=0.45,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    frustration_repeats = models.PositiveSmallIntegerField(
        _("repeated frustration messages"),
        default=2,
        help_text=_("This many messages at the repeated frustration level go to a person."),
    )
    confidence_threshold = models.FloatField(
        _("understanding confidence threshold"),
        default=0.45,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    low_confidence_turns = models.PositiveSmallIntegerField(
        _("not understood, in a row"),
        default=2,
        help_text=_("After this many messages in a row not understood, a person takes over."),
    )
    amount_limit = models.DecimalField(
        _("amount limit"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        default=Decimal("500.00"),
        help_text=_("Complaints above this amount go to a person. Empty: no limit."),
    )
    person_categories = models.ManyToManyField(
        "cases.Category",
        blank=True,
        related_name="+",
        verbose_name=_("categories that always go to a person"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("hand-over rules")
        verbose_name_plural = _("hand-over rules")

    def __str__(self) -> str:
        return str(_("hand-over rules"))


class KnowledgeArticle(models.Model):
    """A frequent question the assistant answers without opening a case."""

    question_es = models.CharField(_("question (Spanish)"), max_length=200)
    question_en = models.CharField(_("question (English)"), max_length=200)
    answer_es = models.TextField(_("answer (Spanish)"))
    answer_en = models.TextField(_("answer (English)"))
    # Other ways customers ask it, one per line, in either language.
    phrasings = models.TextField(_("other phrasings"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    shown_count = models.PositiveIntegerField(_("times shown"), default=0, editable=False)
    helpful_count = models.PositiveIntegerField(_("found helpful"), default=0, editable=False)
    unhelpful_count = models.PositiveIntegerField(_("found unhelpful"), default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["question_en"]
        verbose_name = _("knowledge-base answer")
        verbose_name_plural = _("knowledge-base answers")

    def __str__(self) -> str:
        return self.question

    @property
    def question(self) -> str:
        return in_language(self.question_es, self.question_en)

    def answer_in(self, language: str) -> str:
        return in_language(self.answer_es, self.answer_en, language)


class TroubleshootingGuide(models.Model):
    """The checks a customer can try for one product before a technician is sent."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    product_es = models.CharField(_("product (Spanish)"), max_length=120)
    product_en = models.CharField(_("product (English)"), max_length=120)
    # One step per line.
    steps_es = models.TextField(_("steps (Spanish)"), help_text=_("One step per line."))
    steps_en = models.TextField(_("steps (English)"), help_text=_("One step per line."))
    keywords = models.CharField(
        _("keywords"), max_length=300, blank=True, help_text=_("Words that name the product.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("troubleshooting guide")
        verbose_name_plural = _("troubleshooting guides")

    def __str__(self) -> str:
        return self.product_in("en")

    def product_in(self, language: str) -> str:
        return in_language(self.product_es, self.product_en, language)

    def steps_in(self, language: str) -> list[str]:
        text = in_language(self.steps_es, self.steps_en, language)
        return [line.strip() for line in text.splitlines() if line.strip()]


class TechnicianVisit(models.Model):
    """A technician's visit booked from the chat, with the report the technician reads."""

    case = models.OneToOneField(
        "cases.Case", on_delete=models.PROTECT, related_name="technician_visit"
    )
    guide = models.ForeignKey(
        TroubleshootingGuide, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    starts_at = models.DateTimeField(_("visit starts"))
    ends_at = models.DateTimeField(_("visit ends"))
    report = EncryptedTextField(_("report for the technician"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at"]
        verbose_name = _("technician visit")
        verbose_name_plural = _("technician visits")

    def __str__(self) -> str:
        return f"{self.case_id} {self.starts_at:%Y-%m-%d %H:%M}"
