"""What the privacy app keeps: the company as data controller, how long data outside cases is
kept, and the report of every retention run."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    telegram_update_days = models.PositiveIntegerField(
        _("handled Telegram updates (days)"), default=2
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
