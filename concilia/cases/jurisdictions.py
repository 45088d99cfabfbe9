"""Jurisdictions and their legal rules: whose law sets the deadline to answer a complaint, the
duties that come with it, and the source of each rule (loaded from data/jurisdictions.yaml)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from concilia.core.i18n import in_language


class DayCount(models.TextChoices):
    WORKING = "working", _("Working days")
    CALENDAR = "calendar", _("Calendar days")


class RuleKind(models.TextChoices):
    RESPONSE = "response", _("Response deadline (counted on every case)")
    DUTY = "duty", _("Duty")
    OTHER = "other", _("Other deadline (for information)")


class CountedFrom(models.TextChoices):
    RECEIPT = "receipt", _("From the day the complaint is received")
    COMPLETE_FILE = "complete_file", _("From the day the complete file is received")
    ANSWER = "answer", _("From the day the answer is given")


class Origin(models.TextChoices):
    FILE = "file", _("Shipped with Concilia")
    ADMIN = "admin", _("Set by an administrator")


class JurisdictionQuerySet(models.QuerySet["Jurisdiction"]):
    def active(self) -> JurisdictionQuerySet:
        return self.filter(active=True)


class Jurisdiction(models.Model):
    """Where a complaint is made: whose law sets the legal deadline to answer it, counted in its
    working days (public holidays from the `holidays` package plus its calendar's own)."""

    code = models.CharField(
        _("code"),
        max_length=12,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Z][A-Z0-9-]{1,11}$",
                _("Capital letters, digits and hyphens, starting with a letter: ES, EU-ADR."),
            )
        ],
    )
    name_es = models.CharField(_("name (Spanish)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    holiday_country = models.CharField(
        _("public holidays of"),
        max_length=3,
        blank=True,
        help_text=_(
            "ISO country code (ES, CL, MX…); empty: only weekends and the calendar's days."
        ),
    )
    holiday_subdivision = models.CharField(
        _("region"),
        max_length=10,
        blank=True,
        help_text=_("Optional: a region's holidays too (MD for Madrid, CT for Catalonia…)."),
    )
    calendar = models.ForeignKey(
        "core.BusinessCalendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("business calendar"),
        help_text=_("Optional: its working days and its own holidays count too (local holidays)."),
    )
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Madrid")
    warn_days = models.PositiveSmallIntegerField(
        _("warn this many working days before"),
        default=3,
        help_text=_("The helpdesk warns the owner (or the supervisors) this long before."),
    )
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("For cases whose category names no jurisdiction.")
    )
    trader_name = models.CharField(
        _("company name"),
        max_length=200,
        blank=True,
        help_text=_("The company's legal name there, as printed on the dossier."),
    )
    trader_id = models.CharField(_("company tax ID"), max_length=60, blank=True)
    trader_address = models.CharField(_("company address"), max_length=300, blank=True)
    note = models.TextField(_("note"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    origin = models.CharField(
        _("origin"), max_length=10, choices=Origin.choices, default=Origin.ADMIN, editable=False
    )

    objects = JurisdictionQuerySet.as_manager()

    class Meta:
        ordering = ["code"]
        verbose_name = _("jurisdiction")
        verbose_name_plural = _("jurisdictions")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_jurisdiction"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def name(self) -> str:
        return in_language(self.name_es, self.name_en)

    def clean(self) -> None:
        from zoneinfo import available_timezones

        from django.core.exceptions import ValidationError

        errors = {}
        if self.time_zone and self.time_zone not in available_timezones():
            errors["time_zone"] = _("Unknown time zone.")
        if self.holiday_country:
            import holidays

            try:
                holidays.country_holidays(
                    self.holiday_country, subdiv=self.holiday_subdivision or None, years=2026
                )
            except NotImplementedError:
                errors["holiday_country"] = _("No public holidays are known for this country.")
            except ValueError:
                errors["holiday_subdivision"] = _("This country has no such region.")
        elif self.holiday_subdivision:
            errors["holiday_subdivision"] = _("A region needs its country.")
        if errors:
            raise ValidationError(errors)


class LegalRule(models.Model):
    """One rule of a jurisdiction: its response deadline, a duty, or another deadline, with the
    law it comes from."""

    jurisdiction = models.ForeignKey(
        Jurisdiction, on_delete=models.CASCADE, related_name="rules", verbose_name=_("jurisdiction")
    )
    code = models.SlugField(_("code"), max_length=40)
    kind = models.CharField(_("kind"), max_length=10, choices=RuleKind.choices)
    title_es = models.CharField(_("title (Spanish)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    text_es = models.TextField(_("what it says (Spanish)"), blank=True)
    text_en = models.TextField(_("what it says (English)"), blank=True)
    days = models.PositiveSmallIntegerField(
        _("days"), null=True, blank=True, help_text=_("Empty: no deadline is counted.")
    )
    day_count = models.CharField(
        _("counted in"), max_length=10, choices=DayCount.choices, default=DayCount.WORKING
    )
    counted_from = models.CharField(
        _("counted"), max_length=15, choices=CountedFrom.choices, default=CountedFrom.RECEIPT
    )
    source_law = models.CharField(_("law"), max_length=400)
    source_article = models.CharField(_("article"), max_length=120, blank=True)
    source_url = models.URLField(_("official text"), max_length=400, blank=True)
    note = models.TextField(
        _("note"), blank=True, help_text=_("What is uncertain or must be checked.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    origin = models.CharField(
        _("origin"), max_length=10, choices=Origin.choices, default=Origin.ADMIN, editable=False
    )

    class Meta:
        ordering = ["jurisdiction", "position", "pk"]
        verbose_name = _("legal rule")
        verbose_name_plural = _("legal rules")
        constraints = [
            models.UniqueConstraint(fields=["jurisdiction", "code"], name="legal_rule_code_once"),
            models.UniqueConstraint(
                fields=["jurisdiction"],
                condition=Q(kind="response"),
                name="one_response_rule_per_jurisdiction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction_id} {self.code}"

    def title(self, language: str | None = None) -> str:
        return in_language(self.title_es, self.title_en, language)

    def text(self, language: str | None = None) -> str:
        return in_language(self.text_es, self.text_en, language)

    @property
    def source(self) -> str:
        """The law, its article and the official text's address, on one line."""
        parts = ", ".join(p for p in (self.source_law, self.source_article) if p)
        return f"{parts} — {self.source_url}" if self.source_url else parts
