"""Cases and what belongs to them: category, messages, attachments and the event history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.db import models
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone
from django.utils.functional import LazyObject, empty
from django.utils.translation import gettext_lazy as _

from concilia.cases.jurisdictions import Jurisdiction
from concilia.core.fields import EncryptedCharField, EncryptedTextField
from concilia.core.i18n import in_language
from concilia.customers.models import Consent, Customer


class Kind(models.TextChoices):
    COMPLAINT = "complaint", _("Complaint")
    QUESTION = "question", _("Question")
    SUGGESTION = "suggestion", _("Suggestion")
    THANKS = "thanks", _("Thanks")


class Channel(models.TextChoices):
    WEB = "web", _("Web form")
    API = "api", _("API")
    CHAT = "chat", _("Chat")
    EMAIL = "email", _("Email")


class Status(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    PENDING_AGENT = "pending_agent", _("Waiting for us")
    PENDING_CUSTOMER = "pending_customer", _("Waiting for the customer")
    CLOSED = "closed", _("Closed")


class Outcome(models.TextChoices):
    RESOLVED = "resolved", _("Resolved in the customer's favour")
    PARTIALLY_RESOLVED = "partially_resolved", _("Partially resolved")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn by the customer")
    DUPLICATE = "duplicate", _("Duplicate")
    ANSWERED = "answered", _("Answered")


class Priority(models.TextChoices):
    LOW = "low", _("Low")
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class FieldRule(models.TextChoices):
    REQUIRED = "required", _("Required")
    OPTIONAL = "optional", _("Optional")
    HIDDEN = "hidden", _("Not asked")


# The case fields whose need depends on the category (data minimisation).
CATEGORY_FIELDS = ("order_number", "purchase_date", "amount")
# The customer's contact fields a category may do without (name and email are always needed:
# the case is answered by email).
CUSTOMER_FIELDS = ("phone",)
# Every field a category declares as required, optional or not asked (field_rules' keys).
DECLARED_FIELDS = CATEGORY_FIELDS + CUSTOMER_FIELDS

# How long a closed case is kept by default: five years, the limitation period of personal
# actions in Spain (Código Civil art. 1964.2), within which the complaint may still be claimed.
DEFAULT_RETENTION_DAYS = 5 * 365


class LegalBasis(models.TextChoices):
    """Why the case's personal data may be processed (GDPR article 6.1)."""

    CONSENT = "consent", _("Consent to the privacy notice")
    CONTRACT = "contract", _("Contract or pre-contractual steps")
    LEGITIMATE_INTEREST = "legitimate_interest", _("Legitimate interest in answering the customer")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation to handle complaints")


class CategoryQuerySet(models.QuerySet["Category"]):
    def active(self) -> CategoryQuerySet:
        return self.filter(active=True).order_by("position", "code")


class Category(models.Model):
    """A kind of problem, with the data it needs and the time the company has to answer it."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_es = models.CharField(_("name (Spanish)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    response_days = models.PositiveSmallIntegerField(_("response time (business days)"), default=10)
    first_response_days = models.PositiveSmallIntegerField(
        _("first response within (business days)"), default=1
    )
    reopen_days = models.PositiveSmallIntegerField(
        _("reopen window (days)"),
        default=14,
        help_text=_(
            "A customer reply within this many days of closing reopens the case; "
            "a later one opens a new, linked case."
        ),
    )
    # {"order_number": "required", "purchase_date": "optional", "amount": "hidden", "phone": ...}
    field_rules = models.JSONField(
        _("field rules"),
        default=dict,
        blank=True,
        help_text=_(
            "For order_number, purchase_date, amount and phone: required, optional or hidden "
            "(not asked, and never stored for this category)."
        ),
    )
    retention_days = models.PositiveIntegerField(
        _("kept after closing (days)"),
        default=DEFAULT_RETENTION_DAYS,
        help_text=_(
            "Then the retention job anonymises the case: its statistics stay, the personal data "
            "and files go. Default: five years, the limitation period of claims in Spain."
        ),
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("active"), default=True)
    jurisdiction = models.ForeignKey(
        Jurisdiction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("jurisdiction"),
        help_text=_("Whose legal deadline its cases get; empty: the default jurisdiction."),
    )

    objects = CategoryQuerySet.as_manager()

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return in_language(self.name_es, self.name_en)

    def rule(self, field: str) -> str:
        return self.field_rules.get(field, FieldRule.OPTIONAL)

    def asks(self, field: str) -> bool:
        """Whether the category needs `field` at all (data minimisation): hidden ones are never
        asked nor stored."""
        return self.rule(field) != FieldRule.HIDDEN

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        rules = self.field_rules if isinstance(self.field_rules, dict) else None
        if rules is None or any(
            name not in DECLARED_FIELDS or value not in FieldRule.values
            for name, value in rules.items()
        ):
            raise ValidationError(
                {
                    "field_rules": _(
                        "Give each of %(fields)s as required, optional or hidden, for example "
                        '{"amount": "hidden", "phone": "hidden"}.'
                    )
                    % {"fields": ", ".join(DECLARED_FIELDS)}
                }
            )


# Saving either of these (or every field) indexes the case's text again.
SEARCHED_CASE_FIELDS = frozenset({"subject", "description"})


class CaseQuerySet(models.QuerySet["Case"]):
    def open(self) -> CaseQuerySet:
        return self.exclude(status=Status.CLOSED)

    def for_customer(self, customer: Customer) -> CaseQuerySet:
        return self.filter(customer=customer)

    def overdue(self) -> CaseQuerySet:
        return self.open().filter(deadline__lt=timezone.now())


class Case(models.Model):
    """One complaint, question, suggestion or thanks, from its reception to its closing."""

    PERSONAL_FIELDS = ("description", "desired_resolution", "order_number")

    reference = models.CharField(_("reference"), max_length=40, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.COMPLAINT)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="cases", verbose_name=_("category")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.NOT_STARTED
    )
    outcome = models.CharField(_("outcome"), max_length=30, choices=Outcome.choices, blank=True)
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="cases", verbose_name=_("customer")
    )
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    # Encrypted (docs/encryption.md); found by text through the blind gram index (TextGram).
    subject = EncryptedCharField(_("subject"), max_length=200)
    description = EncryptedTextField(_("description"))
    desired_resolution = EncryptedTextField(_("desired resolution"), blank=True)
    order_number = models.CharField(_("order number"), max_length=60, blank=True)
    purchase_date = models.DateField(_("purchase date"), null=True, blank=True)
    amount = models.DecimalField(
        _("amount"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    privacy_consent = models.ForeignKey(
        Consent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("privacy consent"),
    )
    # Consent when the customer accepted the notice (form, API, chat); an email has no such click.
    legal_basis = models.CharField(
        _("legal basis"),
        max_length=30,
        choices=LegalBasis.choices,
        default=LegalBasis.CONSENT,
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("team"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_cases",
        verbose_name=_("assignee"),
    )
    deadline = models.DateTimeField(_("response deadline"))
    first_response_due = models.DateTimeField(_("first response due"), null=True, blank=True)
    # While the case waits for the customer its clocks stop; they move on by the paused time.
    sla_paused_at = models.DateTimeField(_("clock paused since"), null=True, blank=True)
    # The last SLA warning sent ("" none, "at_risk", "breached"), so each goes out once.
    sla_alerted = models.CharField(max_length=10, blank=True, editable=False)
    # When the next of those warnings is due: at AT_RISK of the business time, then at the
    # deadline, then never (None). The sweep finds due cases by this column alone.
    sla_alert_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_alert_at = models.DateTimeField(_("next alert"), null=True, blank=True, editable=False)
    # Whose law applies and the deadline it sets, counted from receipt in its working days; it
    # never pauses. Warned of like the SLA: `legal_alerted` ("", "at_risk", "breached") and the
    # instant of the next warning (`legal.warning_due`).
    jurisdiction = models.ForeignKey(
        Jurisdiction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("jurisdiction"),
    )
    legal_deadline = models.DateTimeField(_("legal deadline"), null=True, blank=True)
    legal_alerted = models.CharField(max_length=10, blank=True, editable=False)
    legal_alert_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_customer_message_at = models.DateTimeField(
        _("last customer message"), null=True, blank=True, editable=False
    )
    last_activity_at = models.DateTimeField(
        _("last activity"), default=timezone.now, editable=False
    )
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_cases",
        verbose_name=_("merged into"),
    )
    # Raised by every change made through the helpdesk: a save based on an older version is refused.
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    first_response_at = models.DateTimeField(_("first response"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # Its personal data removed (retention or erasure): only anonymous statistics are left.
    anonymised_at = models.DateTimeField(_("anonymised"), null=True, blank=True, editable=False)

    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        indexes = [
            models.Index(fields=["status", "deadline"], name="case_status_deadline"),
            models.Index(fields=["customer", "-created_at"], name="case_customer_created"),
            # The helpdesk queue: open cases by owner, by team and overall, in deadline order.
            models.Index(
                fields=["assignee", "deadline", "id"],
                condition=~Q(status="closed"),
                name="case_open_assignee_deadline",
            ),
            models.Index(
                fields=["team", "deadline", "id"],
                condition=~Q(status="closed"),
                name="case_open_team_deadline",
            ),
            models.Index(
                fields=["deadline", "id"],
                condition=~Q(status="closed"),
                name="case_open_deadline",
            ),
            # Views that include closed cases ("all", "closed"), sorted by deadline.
            models.Index(fields=["deadline", "id"], name="case_deadline"),
            # The sweep: running clocks whose next warning is due.
            models.Index(
                fields=["sla_alert_due_at", "id"],
                condition=~Q(status="closed")
                & Q(sla_paused_at__isnull=True, sla_alert_due_at__isnull=False),
                name="case_sla_alert_due",
            ),
            # The sweep: open cases whose next legal-deadline warning is due.
            models.Index(
                fields=["legal_alert_due_at", "id"],
                condition=~Q(status="closed") & Q(legal_alert_due_at__isnull=False),
                name="case_legal_alert_due",
            ),
            # The retention job: closed cases not yet anonymised, by category and closing date.
            models.Index(
                fields=["category", "closed_at"],
                condition=Q(status="closed", anonymised_at__isnull=True),
                name="case_retention_due",
            ),
            models.Index(fields=["-last_activity_at", "-id"], name="case_last_activity"),
            models.Index(fields=["-created_at", "-id"], name="case_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status=Status.CLOSED, closed_at__isnull=False) & ~Q(outcome=""))
                | (~Q(status=Status.CLOSED) & Q(closed_at__isnull=True, outcome="")),
                name="case_closed_iff_outcome",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="case_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def save(self, *args: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
        adding = self._state.adding
        super().save(*args, update_fields=update_fields, **kwargs)
        if update_fields is not None and not SEARCHED_CASE_FIELDS & set(update_fields):
            return
        from concilia.cases.search import add_texts, index_cases  # search reads these models

        texts = self._searched_texts()
        if adding:
            # A new case has no pieces stored yet and no messages: only add its own.
            add_texts(self.pk, texts or ())
        elif texts is None or texts != getattr(self, "_indexed", None):
            index_cases([self.pk])
        self._indexed = texts

    @classmethod
    def from_db(cls, db: str, field_names: Any, values: Any) -> Case:
        case = super().from_db(db, field_names, values)
        case._indexed = case._searched_texts()
        return case

    def _searched_texts(self) -> tuple[str, ...] | None:
        """The searched texts as loaded (None when one of them was not loaded)."""
        loaded = self.__dict__
        if not all(name in loaded for name in SEARCHED_CASE_FIELDS):
            return None
        return tuple(loaded[name] or "" for name in sorted(SEARCHED_CASE_FIELDS))

    @property
    def is_overdue(self) -> bool:
        return self.status != Status.CLOSED and self.deadline < timezone.now()

    @property
    def is_open(self) -> bool:
        return self.status != Status.CLOSED


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    STAFF = "staff", _("Staff")
    INTEGRATION = "integration", _("Integration")
    SYSTEM = "system", _("System")


class EventKind(models.TextChoices):
    OPENED = "opened", _("Case opened")
    MESSAGE_ADDED = "message_added", _("Message added")
    ATTACHMENT_ADDED = "attachment_added", _("Attachment added")
    STATUS_CHANGED = "status_changed", _("Status changed")
    CUSTOMER_VIEWED = "customer_viewed", _("Customer viewed the case")
    REPLY_SENT = "reply_sent", _("Reply sent to the customer")
    NOTE_ADDED = "note_added", _("Internal note added")
    ASSIGNED = "assigned", _("Assigned")
    TRANSFERRED = "transferred", _("Transferred")
    PRIORITY_CHANGED = "priority_changed", _("Priority changed")
    CONTACT_CHANGED = "contact_changed", _("Contact data changed")
    REMINDER_SET = "reminder_set", _("Alert set")
    REMINDER_DUE = "reminder_due", _("Alert due")
    SLA_AT_RISK = "sla_at_risk", _("Deadline at risk")
    SLA_BREACHED = "sla_breached", _("Deadline missed")
    LEGAL_AT_RISK = "legal_at_risk", _("Legal deadline near")
    LEGAL_BREACHED = "legal_breached", _("Legal deadline missed")
    JURISDICTION_CHANGED = "jurisdiction_changed", _("Jurisdiction changed")
    DOSSIER_EXPORTED = "dossier_exported", _("Dossier downloaded")
    MERGED = "merged", _("Merged")
    LINKED = "linked", _("Linked")
    REOPENED = "reopened", _("Reopened")
    HANDED_OVER = "handed_over", _("Handed over to a person by the assistant")
    DECISION = "decision", _("Policy decision")
    DECISION_OVERRIDDEN = "decision_overridden", _("Decision overridden by an agent")
    OFFER_MADE = "offer_made", _("Offer made")
    OFFER_ANSWERED = "offer_answered", _("Offer answered")
    OFFER_EXPIRED = "offer_expired", _("Offer expired")
    RESOLUTION_AGREED = "resolution_agreed", _("Resolution agreed")
    PARTY_INVITED = "party_invited", _("Another party invited")
    STATEMENT_ADDED = "statement_added", _("Statement added")
    PROPOSAL_MADE = "proposal_made", _("Mediation proposal made")
    PROPOSAL_ANSWERED = "proposal_answered", _("Mediation proposal answered")


class CaseEvent(models.Model):
    """One line of a case's history: who did what, and when."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("case event")
        verbose_name_plural = _("case events")

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.created_at:%Y-%m-%d %H:%M}"


class Message(models.Model):
    """A message in a case's thread; internal notes are never shown to the customer."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    author_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    body = EncryptedTextField(_("message"))  # found by text through TextGram
    internal = models.BooleanField(_("internal note"), default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")

    def __str__(self) -> str:
        return f"{self.case_id} {self.author_kind} {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
        adding = self._state.adding
        super().save(*args, update_fields=update_fields, **kwargs)
        if update_fields is None or {"body", "case"} & set(update_fields):
            from concilia.cases.search import add_texts, index_cases  # search reads these models

            if adding:
                # A new message only adds pieces to its case's index.
                add_texts(self.case_id, [self.body or ""])
            else:
                index_cases([self.case_id])


class TextGram(models.Model):
    """One distinct three-character piece of a case's text (subject, description, any message,
    notes included) as a keyed hash (crypto.gram_hashes): the blind index that free-text search
    looks up, since the texts themselves are encrypted (concilia.cases.search). Written from
    Python by search.index_cases, never by the database, which cannot compute the hashes."""

    pk = models.CompositePrimaryKey("case", "gram")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    gram = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["gram", "case"], name="textgram_gram_case")]

    def __str__(self) -> str:
        return f"{self.case_id} {self.gram}"


class AttachmentStorage(LazyObject):
    """The "attachments" storage of settings.STORAGES, looked up again when the setting changes."""

    def _setup(self) -> None:
        self._wrapped = storages["attachments"]


attachment_storage = AttachmentStorage()


def get_attachment_storage() -> AttachmentStorage:
    # A callable keeps deployment paths out of migrations.
    return attachment_storage


@receiver(setting_changed)
def _forget_storage(*, setting: str, **kwargs: object) -> None:
    if setting == "STORAGES":
        attachment_storage._wrapped = empty


PREVIEWABLE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def attachment_path(instance: Attachment, filename: str) -> str:
    # A random name: nothing the uploader chose ends up in a path.
    return f"{timezone.now():%Y/%m}/{instance.sha256[:2]}/{filename}"


class Attachment(models.Model):
    """A file in a case's thread, checked by content and served only to people who may see the case."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    file = models.FileField(
        storage=get_attachment_storage, upload_to=attachment_path, max_length=300
    )
    original_name = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("type"), max_length=100)
    size = models.PositiveIntegerField(_("size"))
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.CharField(max_length=20, choices=ActorKind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.original_name

    @property
    def previewable(self) -> bool:
        """An image every browser shows (not HEIC, never SVG), checked by content at upload."""
        return self.content_type in PREVIEWABLE_IMAGES


class Reminder(models.Model):
    """An alert an agent sets on a case for a date, with a note of what to do then."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="reminders")
    due_at = models.DateTimeField(_("due"))
    note = models.CharField(_("note"), max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        indexes = [
            # Alerts still to send; one completed before its date is not waited for.
            models.Index(
                fields=["due_at", "id"],
                condition=Q(notified_at__isnull=True, done_at__isnull=True),
                name="reminder_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.due_at:%Y-%m-%d %H:%M} {self.note}"


class LinkKind(models.TextChoices):
    RELATED = "related", _("Related")
    FOLLOW_UP = "follow_up", _("Follow-up")
    MERGED = "merged", _("Merged")


class CaseLink(models.Model):
    """Two cases that belong together; stored once in each direction."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="links")
    other = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=LinkKind.choices, default=LinkKind.RELATED)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "other"], name="case_link_once"),
            models.CheckConstraint(condition=~Q(case=F("other")), name="case_link_not_self"),
        ]
        verbose_name = _("case link")
        verbose_name_plural = _("case links")

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.other_id}"


class ReplyTemplate(models.Model):
    """A reply agents start from, in both languages, with variables such as {{ customer_name }}."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_es = models.CharField(_("name (Spanish)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    body_es = models.TextField(_("text (Spanish)"))
    body_en = models.TextField(_("text (English)"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("reply template")
        verbose_name_plural = _("reply templates")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return in_language(self.name_es, self.name_en)

    def body(self, language: str) -> str:
        return in_language(self.body_es, self.body_en, language)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from concilia.cases.templating import unknown_variables

        errors = {}
        for field in ("body_es", "body_en"):
            unknown = unknown_variables(getattr(self, field))
            if unknown:
                errors[field] = _("Unknown variables: %(names)s.") % {"names": ", ".join(unknown)}
        if errors:
            raise ValidationError(errors)


class Strategy(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin")
    LEAST_LOADED = "least_loaded", _("Least loaded (fewest open cases)")
    TEAM_QUEUE = "team_queue", _("Leave in the team's queue")


class AssignmentRule(models.Model):
    """Which team (and then which agent) gets a new case; the first matching rule wins."""

    name = models.CharField(_("name"), max_length=120)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("active"), default=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, blank=True)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, blank=True)
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, blank=True)
    customer_email_domain = models.CharField(
        _("customer email domain"),
        max_length=120,
        blank=True,
        help_text=_("For example bigclient.com: the customer's address ends with @bigclient.com."),
    )
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, related_name="+", verbose_name=_("team")
    )
    strategy = models.CharField(
        _("then"), max_length=20, choices=Strategy.choices, default=Strategy.ROUND_ROBIN
    )

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("assignment rule")
        verbose_name_plural = _("assignment rules")

    def __str__(self) -> str:
        return self.name

    def matches(self, case: Case) -> bool:
        domain = self.customer_email_domain.strip().lstrip("@").lower()
        return (
            (self.category_id is None or self.category_id == case.category_id)
            and (not self.kind or self.kind == case.kind)
            and (not self.language or self.language == case.language)
            and (not self.channel or self.channel == case.channel)
            and (not domain or case.customer.email.lower().endswith("@" + domain))
        )


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", _("A case was assigned to you")
    CUSTOMER_REPLIED = "customer_replied", _("The customer replied")
    TRANSFERRED = "transferred", _("A case was transferred to you")
    ALERT_DUE = "alert_due", _("An alert is due")
    SLA_AT_RISK = "sla_at_risk", _("A deadline is at risk")
    SLA_BREACHED = "sla_breached", _("A deadline was missed")
    LEGAL_AT_RISK = "legal_at_risk", _("A legal deadline is near")
    LEGAL_BREACHED = "legal_breached", _("A legal deadline was missed")
    HANDOVER = "handover", _("A customer in the chat needs a person")
    COLLECTIVE = "collective", _("Many customers complain about the same thing")


class Notification(models.Model):
    """Something an agent should know about a case, in the app and by email."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(
                fields=["recipient", "-created_at"],
                condition=Q(read_at__isnull=True),
                name="notification_unread",
            )
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id} {self.kind} {self.case_id}"
