"""Staff users, their roles and teams, and the API tokens integrations authenticate with."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.core.calendar import WorkingCalendar, default_calendar
from concilia.core.i18n import in_language
from concilia.core.memo import remember_for

TOKEN_PREFIX = "cnc_"  # noqa: S105 - a public prefix, not a secret


def digest_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class User(AbstractUser):
    """A member of the company's staff (agents, supervisors, administrators, integrations)."""

    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="es"
    )
    away_until = models.DateTimeField(
        _("away until"),
        null=True,
        blank=True,
        help_text=_("While away, assignment rules give this person no new cases."),
    )

    class Meta(AbstractUser.Meta):
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_away(self) -> bool:
        return self.away_until is not None and self.away_until > timezone.now()

    @property
    def role(self) -> str:
        """The highest of the person's roles (administrator, supervisor, agent), or ""."""
        if self.is_superuser or self.has_perm("accounts.see_all_cases"):
            return Role.ADMINISTRATOR
        if self.has_perm("accounts.supervise_teams"):
            return Role.SUPERVISOR
        if self.has_perm("accounts.work_cases"):
            return Role.AGENT
        return ""


class Role(models.TextChoices):
    """Roles are groups holding these permissions; a person's teams are other groups."""

    AGENT = "agent", _("Agent")
    SUPERVISOR = "supervisor", _("Supervisor")
    ADMINISTRATOR = "administrator", _("Administrator")


# The group of each role and the permissions it holds (created by a migration).
ROLE_GROUPS = {
    Role.AGENT: ("Role: agent", ["work_cases"]),
    Role.SUPERVISOR: ("Role: supervisor", ["work_cases", "supervise_teams"]),
    Role.ADMINISTRATOR: (
        "Role: administrator",
        ["work_cases", "supervise_teams", "see_all_cases"],
    ),
}


class Team(models.Model):
    """A group of agents who share a queue, a calendar and assignment rules."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_es = models.CharField(_("name (Spanish)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    group = models.OneToOneField(
        Group, on_delete=models.PROTECT, related_name="team", editable=False
    )
    calendar = models.ForeignKey(
        "core.BusinessCalendar",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="teams",
        verbose_name=_("business calendar"),
        help_text=_("Empty: Monday to Friday, the whole day, in the site's time zone."),
    )
    email = models.EmailField(_("team email"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    # Where round-robin assignment goes on from.
    last_assigned = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        permissions = [
            ("work_cases", _("Can work the cases of their teams")),
            ("supervise_teams", _("Can supervise their teams' work and agents' load")),
            ("see_all_cases", _("Can see and work every case")),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.group_id is None:
            self.group, _created = Group.objects.get_or_create(name=f"Team: {self.code}")
        super().save(*args, **kwargs)

    @property
    def name(self) -> str:
        return in_language(self.name_es, self.name_en)

    def members(self) -> models.QuerySet[User]:
        return User.objects.filter(groups=self.group_id, is_active=True)

    def working_calendar(self) -> WorkingCalendar:
        return self.calendar.working() if self.calendar else default_calendar()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for the REST API; only its SHA-256 digest is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, *, user: User, name: str) -> tuple[ApiToken, str]:
        """Create a token; the plain text is returned once and never stored."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=raw[:12], digest=digest_token(raw))
        return token, raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        if not raw.startswith(TOKEN_PREFIX):
            return None
        return _active_token(digest_token(raw))

    def revoke(self) -> None:
        """Stop accepting this token (other processes stop within a few seconds)."""
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        _active_token.forget()  # type: ignore[attr-defined]


@remember_for(seconds=5)
def _active_token(digest: str) -> ApiToken | None:
    return ApiToken.objects.active().select_related("user").filter(digest=digest).first()
