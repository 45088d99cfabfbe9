"""Staff users, their roles and teams, the API tokens integrations authenticate with, and the
devices of two-factor sign-in (an authenticator app, recovery codes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from binascii import unhexlify
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from concilia.core.calendar import WorkingCalendar, default_calendar
from concilia.core.fields import EncryptedCharField
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
    # Kept by accounts.actions beside the devices, so that no request needs a query to know.
    two_factor_enabled = models.BooleanField(
        _("two-factor sign-in"),
        default=False,
        editable=False,
        help_text=_("Signs in with a code from an authenticator app after the password."),
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


class Scope(models.TextChoices):
    """What a token may do; the person behind it must still be allowed to do it."""

    CASES_READ = "cases:read", _("Read cases")
    CASES_WRITE = "cases:write", _("Work cases (reply, notes, status, assign, transfer)")
    COMPLAINTS_WRITE = "complaints:write", _("File complaints for customers")
    WEBHOOKS_MANAGE = "webhooks:manage", _("Manage webhooks")


# What a token may do when no scopes are named: everything tokens could do before scopes existed.
DEFAULT_SCOPES = (Scope.CASES_READ, Scope.CASES_WRITE, Scope.COMPLAINTS_WRITE)


class UnknownScope(ValueError):
    """A scope outside Scope's fixed set."""

    def __init__(self, scope: str):
        super().__init__(scope)
        self.scope = scope


class TokenRevoked(Exception):
    """A revoked token cannot be rotated: issue a new one instead."""


def checked_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, deduplicated in Scope's order; UnknownScope for any outside the fixed set."""
    wanted = set(scopes)
    for scope in wanted:
        if scope not in Scope.values:
            raise UnknownScope(scope)
    return [scope for scope in Scope.values if scope in wanted]


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now()),
            revoked_at__isnull=True,
            user__is_active=True,
        )


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
    scopes = models.JSONField(
        _("scopes"),
        default=list,
        blank=True,
        help_text=_("What the token may do; the user's own permissions still apply."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(
        _("expires"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Set when the token was rotated with a grace period."),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, *, user: User, name: str, scopes: Iterable[str] | None = None
    ) -> tuple[ApiToken, str]:
        """Create a token; the plain text is returned once and never stored.

        Without `scopes` the token gets DEFAULT_SCOPES; UnknownScope for a scope outside Scope.
        """
        token = cls(
            user=user,
            name=name,
            scopes=checked_scopes(DEFAULT_SCOPES if scopes is None else scopes),
        )
        raw = token.set_secret()
        token.save(force_insert=True)
        return token, raw

    def set_secret(self) -> str:
        """Give an unsaved token its secret: the prefix and digest are kept, the text returned."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix, self.digest = raw[:12], digest_token(raw)
        return raw

    @classmethod
    def authenticate(cls, raw: str) -> ApiToken | None:
        if not raw.startswith(TOKEN_PREFIX):
            return None
        token = _active_token(digest_token(raw))
        if token is None or not token.is_usable:
            return None  # the remembered row may have expired since it was read
        return token

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def record_use(self) -> None:
        """Note the time of use, writing at most once a minute per token across all processes."""
        now = timezone.now()
        stale = now - LAST_USED_RESOLUTION
        if self.last_used_at is not None and self.last_used_at > stale:
            return
        ApiToken.objects.filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lte=stale), pk=self.pk
        ).update(last_used_at=now)
        self.last_used_at = now  # the remembered instance skips the query for a minute

    def revoke(self) -> None:
        """Stop accepting this token (other processes stop within a few seconds)."""
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
        _active_token.forget()  # type: ignore[attr-defined]

    @transaction.atomic
    def rotate(self, *, grace_minutes: int | None = None) -> tuple[ApiToken, str]:
        """Issue a token with the same user, name and scopes and retire this one.

        This one stops at once, or after `grace_minutes` (default:
        CONCILIA_TOKEN_ROTATION_GRACE_MINUTES) so that the integration can switch over.
        The new token's plain text is returned once.
        """
        current = ApiToken.objects.select_for_update().get(pk=self.pk)
        if not current.is_usable:
            raise TokenRevoked(str(self))
        if grace_minutes is None:
            grace_minutes = settings.CONCILIA_TOKEN_ROTATION_GRACE_MINUTES
        new, raw = ApiToken.issue(user=current.user, name=current.name, scopes=current.scopes)
        if grace_minutes > 0:
            expires_at = timezone.now() + dt.timedelta(minutes=grace_minutes)
            if current.expires_at is not None:  # rotated again within the grace: never extend
                expires_at = min(expires_at, current.expires_at)
            ApiToken.objects.filter(pk=self.pk).update(expires_at=expires_at)
            self.expires_at = expires_at
            _active_token.forget()  # type: ignore[attr-defined]
        else:
            self.revoke()
        return new, raw


# How precisely `last_used_at` is kept: one UPDATE a minute per token at most.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@remember_for(seconds=5)
def _active_token(digest: str) -> ApiToken | None:
    return ApiToken.objects.active().select_related("user").filter(digest=digest).first()


# -- two-factor sign-in devices (django-otp) ---------------------------------------------------
# Ours rather than django-otp's TOTPDevice and StaticDevice, which keep the app's key and the
# recovery codes in clear: the key is encrypted at rest (it must be read to check a code), the
# codes are kept as digests (only ever compared). django-otp's middleware and login work with
# any Device.

TOTP_STEP = 30  # seconds
TOTP_DIGITS = 6
TOTP_TOLERANCE = 1  # time steps either side: a code from just before or after is accepted


class AuthenticatorApp(TimestampMixin, ThrottlingMixin, Device):
    """A staff member's authenticator app: codes from its TOTP key (RFC 6238)."""

    # Hex, as django-otp keeps it; encrypted (docs/encryption.md).
    key = EncryptedCharField(_("key"), max_length=80, editable=False)
    # The time step of the last code accepted: a code is never accepted twice.
    last_t = models.BigIntegerField(default=-1, editable=False)
    drift = models.SmallIntegerField(default=0, editable=False)

    class Meta(Device.Meta):
        verbose_name = _("authenticator app")
        verbose_name_plural = _("authenticator apps")

    def verify_token(self, token: str) -> bool:
        allowed, _reason = self.verify_is_allowed()
        if not allowed:
            return False
        verified = False
        if str(token).isdigit():
            totp = TOTP(unhexlify(self.key), TOTP_STEP, 0, TOTP_DIGITS, self.drift)
            totp.time = time.time()
            verified = totp.verify(int(token), TOTP_TOLERANCE, self.last_t + 1)
        if not verified:
            self.throttle_increment(commit=True)
            return False
        self.last_t = totp.t()
        self.drift = totp.drift
        self.throttle_reset(commit=False)
        self.set_last_used_timestamp(commit=False)
        self.save()
        return True

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)


def digest_code(code: str, secret: str | None = None) -> str:
    """A recovery code's digest: an HMAC keyed by SECRET_KEY (or `secret`), so that a copy of the
    database alone does not let anyone try every short code against it."""
    mac = salted_hmac("concilia.recovery-code", code, secret=secret, algorithm="sha256")
    return mac.hexdigest()


def code_digests(code: str) -> list[str]:
    """The digests `code` may be stored as: under SECRET_KEY and each of its fallbacks."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [digest_code(code, key) for key in keys]


class RecoveryCodes(ThrottlingMixin, Device):
    """A staff member's one-time recovery codes, for a lost phone; only their digests are kept."""

    class Meta(Device.Meta):
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def verify_token(self, token: str) -> bool:
        allowed, _reason = self.verify_is_allowed()
        if not allowed:
            return False
        used, _by_model = self.codes.filter(digest__in=code_digests(str(token))).delete()
        if not used:
            self.throttle_increment(commit=True)
            return False
        self.throttle_reset(commit=True)
        return True

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)


class RecoveryCode(models.Model):
    """One unused recovery code, as its digest."""

    device = models.ForeignKey(RecoveryCodes, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, db_index=True)

    def __str__(self) -> str:
        return f"recovery code {self.pk} of {self.device_id}"
