"""What the privacy app keeps: the company as data controller, how long data outside cases is
kept, the report of every retention run, data-subject requests (access, rectification, erasure,
objection) with their legal deadlines and exports, and the legal holds that keep a customer's
data."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import get_attachment_storage
from concilia.core.fields import EncryptedEmailField, EncryptedTextField

# Who may download the record of processing activities and the impact assessment draft (the
# data-protection officer's and the administrators' roles hold it; a migration gives it to them).
DOCUMENTS_PERMISSION = "privacy.download_accountability_documents"


class Controller(models.Model):
    """The company responsible for the complaints' personal data (one row, edited in the admin),
    named in the record of processing activities and the impact assessment."""

    name = models.CharField(_("company name"), max_length=200, blank=True)
    tax_id = models.CharField(_("tax id"), max_length=40, blank=True)
    address = models.TextField(_("postal address"), blank=True)
    email = models.EmailField(_("privacy contact email"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    dpo_name = models.CharField(_("data-protection officer"), max_length=200, blank=True)
    dpo_email = models.EmailField(_("data-protection officer's email"), blank=True)
    representative = models.TextField(
        _("representative in the EU"),
        blank=True,
        help_text=_("Only for companies outside the EU (GDPR article 27): name and contact."),
    )
    supervisory_authority = models.CharField(
        _("supervisory authority"),
        max_length=200,
        default="Agencia Española de Protección de Datos (AEPD)",
        blank=True,
    )
    transfers = models.TextField(
        _("international transfers"),
        blank=True,
        help_text=_(
            "Recipients outside the European Economic Area and the safeguard for each "
            "(adequacy decision, standard contractual clauses). Empty: none."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("data controller")
        verbose_name_plural = _("data controller")
        default_permissions = ("view", "change")
        permissions = [
            (
                "download_accountability_documents",
                _("Can download the record of processing and the impact assessment"),
            )
        ]

    def __str__(self) -> str:
        return self.name or str(_("data controller"))

    @classmethod
    def current(cls) -> Controller:
        """The company's details (an unsaved empty row until an administrator fills them)."""
        return cls.objects.first() or cls()


class RetentionRules(models.Model):
    """How long data that belongs to no closed case is kept (one row, edited in the admin); how
    long a case is kept after closing is its category's `retention_days`."""

    conversation_days = models.PositiveIntegerField(
        _("chat conversations without a case (days)"),
        default=30,
        help_text=_(
            "A conversation with the assistant that opened no case is deleted this many "
            "days after its last message."
        ),
    )
    inbound_email_days = models.PositiveIntegerField(
        _("original emails (days)"),
        default=90,
        help_text=_(
            "The raw copy of each email received is deleted this many days after it "
            "arrived; what it added to a case stays with the case."
        ),
    )
    dead_job_days = models.PositiveIntegerField(
        _("failed background jobs (days)"),
        default=30,
        help_text=_(
            "The arguments and error of a job that failed for good (they may name a "
            "person) are cleared this many days after its last failure."
        ),
    )
    pending_upload_hours = models.PositiveIntegerField(
        _("files of forms never sent (hours)"), default=24
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("retention rules")
        verbose_name_plural = _("retention rules")

    def __str__(self) -> str:
        return str(_("retention rules"))

    @classmethod
    def current(cls) -> RetentionRules:
        return cls.objects.first() or cls()


class RetentionTrigger(models.TextChoices):
    SWEEP = "sweep", _("Scheduled")
    COMMAND = "command", _("Command")


class RetentionRun(models.Model):
    """What one retention run anonymised and deleted, per category and per kind of data; kept for
    the data-protection officer (a dry run is only printed, never stored)."""

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    trigger = models.CharField(_("run by"), max_length=10, choices=RetentionTrigger.choices)
    # {"cases": {"refund": {"cases": 2, "attachments": 3, ...}}, "other": {"conversations": 4}}
    report = models.JSONField(_("report"), default=dict, blank=True)
    cases_anonymised = models.PositiveIntegerField(_("cases anonymised"), default=0)
    records_deleted = models.PositiveIntegerField(_("other records deleted"), default=0)
    failed = models.PositiveIntegerField(_("failures"), default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        verbose_name = _("retention run")
        verbose_name_plural = _("retention runs")
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M}"


# Data-subject requests ----------------------------------------------------------------------


class RequestKind(models.TextChoices):
    ACCESS = "access", _("Copy of the data (access and portability)")
    RECTIFICATION = "rectification", _("Correction of the data (rectification)")
    ERASURE = "erasure", _("Erasure of the data")
    OBJECTION = "objection", _("Objection to processing")


class RequestStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("Identity not verified yet")
    OPEN = "open", _("In progress")
    ON_HOLD = "on_hold", _("Blocked by a legal hold")
    COMPLETED = "completed", _("Completed")
    REFUSED = "refused", _("Refused")


# Requests still to be answered (their deadline runs).
PENDING_STATUSES = (RequestStatus.UNVERIFIED, RequestStatus.OPEN, RequestStatus.ON_HOLD)


class Regime(models.TextChoices):
    """The law whose deadline applies (concilia.privacy.deadlines)."""

    GDPR = "gdpr", _("GDPR (one month, extendable by two more)")
    CCPA = "ccpa", _("CCPA (45 days, extendable by 45 more)")


class RequestChannel(models.TextChoices):
    TRACKING = "tracking", _("Tracking pages")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    POST = "post", _("Letter")
    IN_PERSON = "in_person", _("In person")
    OTHER = "other", _("Other")


class Verification(models.TextChoices):
    SIGNED_IN = "signed_in", _("Signed in through a link emailed to the address on file")
    EMAIL_LINK = "email_link", _("Confirmed through a link emailed to the address on file")
    STAFF = "staff", _("Checked by staff")


class DataSubjectRequestQuerySet(models.QuerySet["DataSubjectRequest"]):
    def pending(self) -> DataSubjectRequestQuerySet:
        return self.filter(status__in=PENDING_STATUSES)

    def overdue(self, now: dt.datetime | None = None) -> DataSubjectRequestQuerySet:
        return self.pending().filter(due_at__lt=now or timezone.now())

    def for_customer(self, customer: object) -> DataSubjectRequestQuerySet:
        return self.filter(customer=customer)


def export_path(instance: DataSubjectRequest, filename: str) -> str:
    return f"privacy/exports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.zip"


class DataSubjectRequest(models.Model):
    """A person's request about their personal data (GDPR articles 15 to 21, CCPA), tracked to
    its legal deadline by the data-protection officer."""

    PERSONAL_FIELDS = ("contact_email", "details", "export_file")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("request"), max_length=20, choices=RequestKind.choices)
    status = models.CharField(
        _("status"), max_length=20, choices=RequestStatus.choices, default=RequestStatus.OPEN
    )
    regime = models.CharField(_("law"), max_length=10, choices=Regime.choices, default=Regime.GDPR)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_requests",
        verbose_name=_("customer"),
    )
    # Where answers go; kept after an erasure only until its confirmation is sent.
    contact_email = EncryptedEmailField(_("contact email"), blank=True)
    channel = models.CharField(_("received by"), max_length=20, choices=RequestChannel.choices)
    # The language the person is answered in.
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="es"
    )
    # What the person asked (for a correction: what is wrong), in their words.
    details = EncryptedTextField(_("details"), blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    due_at = models.DateTimeField(_("answer due"))
    extended_until = models.DateTimeField(_("extended until"), null=True, blank=True)
    extension_reason = models.TextField(_("reason for the extension"), blank=True)
    verified_at = models.DateTimeField(_("identity verified"), null=True, blank=True)
    verification = models.CharField(
        _("verified by"), max_length=20, choices=Verification.choices, blank=True
    )
    verification_note = models.CharField(_("how it was checked"), max_length=300, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("handled by"),
    )
    outcome = models.TextField(_("outcome"), blank=True)
    # The legal hold that blocked the last attempt to erase, as it was worded then.
    hold_reason = models.TextField(_("legal hold"), blank=True)
    # What an erasure changed, by kind (cases, messages, files…): counts, no data.
    erased = models.JSONField(_("erased"), default=dict, blank=True)
    export_file = models.FileField(
        storage=get_attachment_storage, upload_to=export_path, max_length=300, blank=True
    )
    export_size = models.PositiveBigIntegerField(null=True, blank=True)
    export_sha256 = models.CharField(max_length=64, blank=True)
    export_ready_at = models.DateTimeField(_("export ready"), null=True, blank=True)
    export_expires_at = models.DateTimeField(_("download until"), null=True, blank=True)
    completed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    # The warning before the deadline, sent once per deadline (an extension sends another).
    deadline_warned_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DataSubjectRequestQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "pk"]
        verbose_name = _("data-subject request")
        verbose_name_plural = _("data-subject requests")
        permissions = [("handle_datasubjectrequest", _("Can handle data-subject requests"))]
        indexes = [
            models.Index(
                fields=["due_at", "id"],
                condition=Q(status__in=["unverified", "open", "on_hold"]),
                name="dsr_pending_due",
            ),
            models.Index(fields=["customer", "-received_at"], name="dsr_by_customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(extended_until__isnull=True) | ~Q(extension_reason=""),
                name="dsr_extension_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["completed", "refused"], completed_at__isnull=False)
                | (~Q(status__in=["completed", "refused"]) & Q(completed_at__isnull=True)),
                name="dsr_closed_iff_completed_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def deadline(self) -> dt.datetime:
        """When the answer is due: the extended date once extended."""
        return self.extended_until or self.due_at

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_pending and self.deadline < timezone.now()

    @property
    def export_available(self) -> bool:
        return bool(
            self.export_file
            and self.export_expires_at is not None
            and self.export_expires_at > timezone.now()
        )


class LegalHoldQuerySet(models.QuerySet["LegalHold"]):
    def active(self) -> LegalHoldQuerySet:
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    """A reason, recorded by staff, to keep a customer's data although they asked for its
    erasure (a claim in court, a chargeback): erasure is refused while it is in force."""

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="legal_holds",
        verbose_name=_("customer"),
    )
    reason = models.TextField(_("reason"))
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField(_("placed"), default=timezone.now)
    released_at = models.DateTimeField(_("released"), null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    release_note = models.TextField(_("why it was released"), blank=True)

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "-pk"]
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")

    def __str__(self) -> str:
        return f"{self.customer_id} {self.placed_at:%Y-%m-%d}"
