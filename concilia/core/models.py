"""Kernel tables: the counters behind reference numbers, business calendars and holidays, the
claims that keep periodic jobs to one run per period, the outbox of outbound events, and the
hash-chained audit log."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.core.calendar import WorkingCalendar


class ReferenceSequence(models.Model):
    """The last number handed out for one prefix and year (RC-2026-…)."""

    prefix = models.CharField(max_length=8)
    year = models.PositiveIntegerField()
    last = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prefix", "year"], name="unique_reference_sequence")
        ]

    def __str__(self) -> str:
        return f"{self.prefix}-{self.year}: {self.last}"

    @classmethod
    def next_number(cls, prefix: str, year: int) -> int:
        """Take the next number, unique across processes and machines.

        On PostgreSQL a native sequence per prefix and year: taking a number holds no lock until
        commit, so concurrent submissions do not queue behind each other (a rolled-back
        submission leaves a gap, which references may have). Elsewhere one atomic upsert on this
        table (SQLite serialises writers anyway).
        """
        if connection.vendor == "postgresql":
            return _next_from_sequence(prefix, year)
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (prefix, year, last) VALUES (%s, %s, 1) "  # noqa: S608
                "ON CONFLICT (prefix, year) DO UPDATE SET last = "
                f"{table}.last + 1 RETURNING last",
                [prefix, year],
            )
            return int(cursor.fetchone()[0])


_known_sequences: set[tuple[str, str]] = set()


def _next_from_sequence(prefix: str, year: int) -> int:
    if not (prefix.isalnum() and prefix.isascii()):
        raise ValueError(f"Invalid reference prefix: {prefix!r}")
    name = f"concilia_reference_{prefix.lower()}_{int(year)}"
    key = (connection.settings_dict["NAME"], name)
    if key not in _known_sequences:
        # Two first submissions of a year may race to create it: the loser finds it there.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {name}")
        except IntegrityError:
            pass
        # Remembered only once committed: a rolled-back creation must be tried again.
        transaction.on_commit(lambda: _known_sequences.add(key))
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [name])
        return int(cursor.fetchone()[0])


def _workdays_valid(value: str) -> None:
    from django.core.exceptions import ValidationError

    if not value or any(ch not in "1234567" for ch in value) or len(set(value)) != len(value):
        raise ValidationError(
            _("Write the working days as ISO weekday digits, 1 (Monday) to 7 (Sunday): 12345.")
        )


class BusinessCalendar(models.Model):
    """When a team works: the days and hours its deadlines and SLA clocks count."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Madrid")
    workdays = models.CharField(
        _("working days"),
        max_length=7,
        default="12345",
        validators=[_workdays_valid],
        help_text=_("ISO weekday digits, 1 (Monday) to 7 (Sunday)."),
    )
    opens = models.TimeField(
        _("opens"), null=True, blank=True, help_text=_("Empty: the whole day counts.")
    )
    closes = models.TimeField(_("closes"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("business calendar")
        verbose_name_plural = _("business calendars")
        constraints = [
            models.CheckConstraint(
                condition=(Q(opens__isnull=True) & Q(closes__isnull=True))
                | (Q(opens__isnull=False) & Q(closes__isnull=False) & Q(opens__lt=F("closes"))),
                name="calendar_hours_in_order",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from zoneinfo import available_timezones

        from django.core.exceptions import ValidationError

        errors = {}
        if self.time_zone and self.time_zone not in available_timezones():  # empty: required
            errors["time_zone"] = _("Unknown time zone.")
        # Errors are tied to a field, so the hours' check constraint is not reported again.
        if (self.opens is None) != (self.closes is None):
            missing = "opens" if self.opens is None else "closes"
            errors[missing] = _("Give both the opening and the closing time, or neither.")
        elif self.opens is not None and self.closes is not None and self.opens >= self.closes:
            errors["closes"] = _("The closing time must be after the opening time.")
        if errors:
            raise ValidationError(errors)

    def working(self) -> WorkingCalendar:
        return WorkingCalendar(
            time_zone=self.time_zone,
            workdays=frozenset(int(d) - 1 for d in self.workdays),
            opens=self.opens,
            closes=self.closes,
            calendar_id=self.pk,
        )


class Holiday(models.Model):
    """A day on which no business-day deadline runs: for every calendar, or for one."""

    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=120)
    calendar = models.ForeignKey(
        BusinessCalendar,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="holidays",
        verbose_name=_("calendar"),
        help_text=_("Empty: a holiday for every calendar."),
    )

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        constraints = [
            models.UniqueConstraint(
                fields=["date"], condition=Q(calendar__isnull=True), name="holiday_everywhere_once"
            ),
            models.UniqueConstraint(fields=["calendar", "date"], name="holiday_once_per_calendar"),
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"


class PeriodicRun(models.Model):
    """A job that runs every so often (the deadline sweep…), started once per period in total
    however many processes and machines run its scheduler: each start is claimed on this row."""

    name = models.SlugField(max_length=60, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    # What the last finished run did ("3 alerts due, 1 at risk"), or why it failed.
    last_result = models.TextField(blank=True)
    last_failed = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("periodic job")
        verbose_name_plural = _("periodic jobs")

    def __str__(self) -> str:
        return self.name

    @classmethod
    def claim(cls, name: str, *, period: dt.timedelta, now: dt.datetime) -> bool:
        """Take the run of this period: true for exactly one caller per period.

        One conditional UPDATE decides: it only matches while the last start is a period old, and
        the database lets one writer through, so the others find it already moved on. A run that
        died half-way simply lets the next period start; runs never wait on one another.
        """
        cls.objects.get_or_create(name=name)
        due = Q(last_started_at__isnull=True) | Q(last_started_at__lte=now - period)
        return cls.objects.filter(due, name=name).update(last_started_at=now) == 1

    @classmethod
    def next_start(cls, name: str, *, period: dt.timedelta) -> dt.datetime | None:
        """When the next run of this job may be claimed (None: now)."""
        started = cls.objects.filter(name=name).values_list("last_started_at", flat=True).first()
        return None if started is None else started + period

    @classmethod
    def finish(cls, name: str, *, now: dt.datetime, result: str, failed: bool = False) -> None:
        cls.objects.filter(name=name).update(
            last_finished_at=now, last_result=result[:2000], last_failed=failed
        )


class OutboxEvent(models.Model):
    """Something that happened, written in the same transaction as the change itself, for
    delivery to other systems (webhooks) after commit: a crash in between loses nothing."""

    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("event"), max_length=40)
    # What the event is about (a case's reference): deliveries keep this order per subject.
    subject = models.CharField(_("subject"), max_length=64)
    version = models.PositiveSmallIntegerField(_("payload version"), default=1)
    payload = models.JSONField(_("payload"), default=dict)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    # Set once the event has been handed to every subscriber (a delivery row each).
    dispatched_at = models.DateTimeField(_("dispatched"), null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = _("outbound event")
        verbose_name_plural = _("outbound events")
        indexes = [
            models.Index(
                fields=["id"],
                condition=Q(dispatched_at__isnull=True),
                name="outbox_undispatched",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.subject} ({self.event_id})"


class JobHandoff(models.Model):
    """A job queued with a change for a backend outside the database (RQ on Redis): written in
    the change's transaction and deleted once Redis holds the job, so that a process killed
    between the commit and the hand-off loses no job; the sweep hands over what is left
    (concilia.core.tasks). Its id is the job's id in Redis: a job already there is never queued
    twice. Jobs carry ids, not personal data."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_path = models.CharField(_("job"), max_length=200)
    args = models.JSONField(_("arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)
    queue_name = models.CharField(_("queue"), max_length=100, default="default")
    priority = models.SmallIntegerField(_("priority"), default=0)
    run_after = models.DateTimeField(_("run after"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("job being handed over")
        verbose_name_plural = _("jobs being handed over")

    def __str__(self) -> str:
        return f"{self.task_path} ({self.id})"


class DeadJob(models.Model):
    """A background job that failed on every attempt (concilia.core.jobs): kept for an
    administrator to read why and to run it again once the cause is fixed.

    Jobs carry ids, not personal data; the error may quote an address a mail server refused.
    """

    task_path = models.CharField(_("job"), max_length=200)
    args = models.JSONField(_("arguments"), default=list, blank=True)
    kwargs = models.JSONField(_("keyword arguments"), default=dict, blank=True)
    queue_name = models.CharField(_("queue"), max_length=100, default="default")
    backend = models.CharField(_("backend"), max_length=100, default="default")
    attempts = models.PositiveSmallIntegerField(_("attempts"))
    error = models.TextField(_("last error"), blank=True)
    first_failed_at = models.DateTimeField(_("first failed"))
    last_failed_at = models.DateTimeField(_("last failed"))
    # Set when an administrator queued it again: a retry that fails too is a new dead job.
    retried_at = models.DateTimeField(_("retried"), null=True, blank=True)

    class Meta:
        ordering = ["-last_failed_at", "-pk"]
        verbose_name = _("dead job")
        verbose_name_plural = _("dead jobs")
        indexes = [models.Index(fields=["-last_failed_at"], name="dead_job_recent")]

    def __str__(self) -> str:
        return f"{self.task_path} ({self.last_failed_at:%Y-%m-%d %H:%M})"


class AuditAction(models.TextChoices):
    """What an audit entry says was done to personal data, or decided."""

    VIEW = "view", _("Viewed")
    LIST = "list", _("Listed")
    CREATE = "create", _("Created")
    CHANGE = "change", _("Changed")
    MERGE = "merge", _("Merged")
    DOWNLOAD = "download", _("Downloaded")
    EXPORT = "export", _("Exported")
    ERASE = "erase", _("Erased")
    DECIDE = "decide", _("Decided")
    OVERRIDE = "override", _("Overrode a decision")
    AGREE = "agree", _("Agreed a resolution")
    SIGN_IN = "sign_in", _("Signed in")
    SIGN_OUT = "sign_out", _("Signed out")
    SIGN_IN_FAILED = "sign_in_failed", _("Failed to sign in")
    LOCK_OUT = "lock_out", _("Locked out")


class AuditActorKind(models.TextChoices):
    STAFF = "staff", _("Staff user")
    CUSTOMER = "customer", _("Customer")
    TOKEN = "token", _("API token")
    SYSTEM = "system", _("System")


class AppendOnly(Exception):
    """An audit entry cannot be changed or deleted once written."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnly("Audit entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnly("Audit entries cannot be deleted")


class AuditEntry(models.Model):
    """One access to or change of personal data, or one decision: who, what, when, from where.

    Entries are written only by `concilia.core.audit.record` and never change: each holds the
    hash of the one before it, so `concilia audit verify` finds any entry edited or removed.
    Names of personal fields are kept, never their values; the data subject is an id.
    """

    seq = models.PositiveBigIntegerField(_("number"), unique=True)
    at = models.DateTimeField(_("when"))
    actor_kind = models.CharField(_("who (kind)"), max_length=10, choices=AuditActorKind.choices)
    actor_id = models.CharField(_("who (id)"), max_length=64, blank=True)
    actor_label = models.CharField(_("who"), max_length=200, blank=True)
    action = models.CharField(_("what"), max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=60, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    case_reference = models.CharField(_("case"), max_length=40, blank=True)
    # The customer whose data it is (an id: a log that cannot change must not hold an address).
    customer_pk = models.PositiveBigIntegerField(_("customer id"), null=True, blank=True)
    fields = models.JSONField(_("personal fields"), default=list, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)
    ip_address = models.CharField(_("IP address"), max_length=64, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    channel = models.CharField(_("channel"), max_length=20, blank=True)
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        default_permissions = ("view",)
        permissions = [("export_auditentry", _("Can export the audit log"))]
        indexes = [
            models.Index(fields=["case_reference", "-seq"], name="audit_by_case"),
            models.Index(fields=["customer_pk", "-seq"], name="audit_by_customer"),
            models.Index(fields=["at"], name="audit_by_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly(f"Audit entry {self.seq} cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnly(f"Audit entry {self.seq} cannot be deleted")


class AuditChainHead(models.Model):
    """The last entry of the audit chain (one row): appending locks it, so entries written at
    the same time still form one chain; verification compares it with the last entry, so
    entries removed from the end are noticed too."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"{self.seq} {self.hash}"
