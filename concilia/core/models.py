"""Kernel tables: the counters behind reference numbers and the public-holiday calendar."""

from __future__ import annotations

from django.db import IntegrityError, connection, models, transaction
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
