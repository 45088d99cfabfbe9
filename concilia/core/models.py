"""Kernel tables: the counters behind reference numbers and the public-holiday calendar."""

from __future__ import annotations

from django.db import connection, models
from django.utils.translation import gettext_lazy as _


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
        """Take the next number atomically: one upsert, safe across processes on SQLite and PostgreSQL."""
        table = connection.ops.quote_name(cls._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (prefix, year, last) VALUES (%s, %s, 1) "  # noqa: S608
                "ON CONFLICT (prefix, year) DO UPDATE SET last = "
                f"{table}.last + 1 RETURNING last",
                [prefix, year],
            )
            return int(cursor.fetchone()[0])


class Holiday(models.Model):
    """A day on which no business-day deadline runs."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=120)

    class Meta:
        ordering = ["date"]
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"
