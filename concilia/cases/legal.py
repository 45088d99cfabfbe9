"""Legal deadlines of cases: each jurisdiction's response rule counted in its working days (its
public holidays from the `holidays` package plus its business calendar's own), the deadline and
warning instant of a case, changing a case's jurisdiction, and loading the shipped rules.

The legal clock runs from the day the complaint is received and never pauses (the law counts
from receipt; waiting for the customer does not stop it). A reopened case gets a new legal
deadline from its reopening, as it gets a new SLA deadline.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holidays
import yaml
from django.db import transaction
from django.utils import timezone

from concilia.cases.jurisdictions import (
    CountedFrom,
    DayCount,
    Jurisdiction,
    LegalRule,
    Origin,
    RuleKind,
)
from concilia.cases.models import ActorKind, Case, Category, EventKind
from concilia.core.calendar import WorkingCalendar
from concilia.core.memo import remember_for

DATA_FILE = Path(__file__).resolve().parent / "data" / "jurisdictions.yaml"
_END_OF_DAY = dt.time(23, 59, 59)


@functools.lru_cache(maxsize=512)
def _public_holidays(country: str, subdivision: str, year: int) -> frozenset[dt.date]:
    """A country's (and region's) public holidays of one year: pure data, kept for the process."""
    try:
        days = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except (NotImplementedError, ValueError, KeyError):
        return frozenset()  # an unknown country or region: only weekends (the admin form says so)
    return frozenset(days)


@remember_for(seconds=10)
def _own_holidays(calendar_id: int) -> frozenset[dt.date]:
    """The holidays entered for one business calendar (not those "of every calendar": those are
    the company's own closing days, which do not move a legal deadline)."""
    from concilia.core.models import Holiday

    return frozenset(Holiday.objects.filter(calendar_id=calendar_id).values_list("date", flat=True))


@dataclass(frozen=True)
class LegalCalendar(WorkingCalendar):
    """Working days under a jurisdiction's law: its weekdays without its public holidays."""

    country: str = ""
    subdivision: str = ""

    def _holidays(self, start: dt.date, end: dt.date) -> frozenset[dt.date]:
        closed: set[dt.date] = set()
        if self.country:
            for year in range(start.year, end.year + 1):
                closed |= _public_holidays(self.country, self.subdivision, year)
        if self.calendar_id is not None:
            closed |= _own_holidays(self.calendar_id)
        return frozenset(day for day in closed if start < day <= end)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() in self.workdays and day not in self._holidays(
            day - dt.timedelta(days=1), day
        )

    def working_days_before(self, day: dt.date, days: int) -> dt.date:
        """The working day `days` working days before `day`."""
        current = day
        remaining = days
        while remaining > 0:
            current -= dt.timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current


@dataclass(frozen=True)
class LegalTerms:
    """A jurisdiction as the clocks need it: its response rule and its calendar."""

    jurisdiction_id: int
    code: str
    days: int | None
    day_count: str
    warn_days: int
    calendar: LegalCalendar
    is_default: bool = False
    rule_id: int | None = None

    def deadline(self, received: dt.datetime) -> dt.datetime | None:
        """The end of the last day to answer a complaint received at `received` (UTC)."""
        if self.days is None:
            return None
        if self.day_count == DayCount.CALENDAR:
            local = timezone.localtime(received, self.calendar.tz).date()
            due = local + dt.timedelta(days=self.days)
            end = dt.datetime.combine(due, _END_OF_DAY, tzinfo=self.calendar.tz)
            return end.astimezone(dt.UTC)
        return self.calendar.deadline(received, self.days)

    def warning_at(self, received: dt.datetime, deadline: dt.datetime) -> dt.datetime:
        """When `warn_days` working (or calendar) days are left: the end of the day before them."""
        due = timezone.localtime(deadline, self.calendar.tz).date()
        if self.day_count == DayCount.CALENDAR:
            day = due - dt.timedelta(days=self.warn_days)
        else:
            day = self.calendar.working_days_before(due, self.warn_days)
        instant = dt.datetime.combine(day, _END_OF_DAY, tzinfo=self.calendar.tz).astimezone(dt.UTC)
        return max(instant, received)


@remember_for(seconds=10)
def _all_terms() -> dict[int, LegalTerms]:
    """Every active jurisdiction with its response rule, read once a while (a small table)."""
    rules = {
        rule.jurisdiction_id: rule
        for rule in LegalRule.objects.filter(kind=RuleKind.RESPONSE, jurisdiction__active=True)
    }
    terms = {}
    for place in Jurisdiction.objects.active().select_related("calendar"):
        rule = rules.get(place.pk)
        workdays = (
            frozenset(int(d) - 1 for d in place.calendar.workdays)
            if place.calendar is not None
            else frozenset(range(5))
        )
        terms[place.pk] = LegalTerms(
            jurisdiction_id=place.pk,
            code=place.code,
            days=rule.days if rule is not None else None,
            day_count=rule.day_count if rule is not None else DayCount.WORKING,
            warn_days=place.warn_days,
            calendar=LegalCalendar(
                time_zone=place.time_zone,
                workdays=workdays,
                calendar_id=place.calendar_id,
                country=place.holiday_country,
                subdivision=place.holiday_subdivision,
            ),
            is_default=place.is_default,
            rule_id=rule.pk if rule is not None else None,
        )
    return terms


def terms_of(jurisdiction_id: int | None) -> LegalTerms | None:
    if jurisdiction_id is None:
        return None
    return _all_terms().get(jurisdiction_id)


def default_jurisdiction_id() -> int | None:
    return next((t.jurisdiction_id for t in _all_terms().values() if t.is_default), None)


def jurisdiction_for(category: Category) -> int | None:
    """The category's jurisdiction if it names an active one, else the default one."""
    if category.jurisdiction_id is not None and terms_of(category.jurisdiction_id) is not None:
        return category.jurisdiction_id
    return default_jurisdiction_id()


def set_legal_deadline(case: Case, received: dt.datetime) -> None:
    """The legal deadline of a complaint received (or reopened) at `received`, in memory."""
    terms = terms_of(case.jurisdiction_id)
    deadline = terms.deadline(received) if terms is not None else None
    case.legal_deadline = deadline
    case.legal_alerted = ""
    case.legal_alert_due_at = (
        terms.warning_at(received, deadline) if terms is not None and deadline else None
    )


def response_rule(case: Case) -> LegalRule | None:
    """The rule that sets the case's legal deadline (with its source), if it has one."""
    if case.jurisdiction_id is None:
        return None
    return LegalRule.objects.filter(
        jurisdiction_id=case.jurisdiction_id, kind=RuleKind.RESPONSE
    ).first()


LEGAL_FIELDS = ("jurisdiction", "legal_deadline", "legal_alerted", "legal_alert_due_at")


@dataclass(frozen=True)
class LegalClock:
    """Where a case stands against its legal deadline, for the helpdesk's badge."""

    colour: str  # "green", "amber" (warning sent or due), "red" (missed), "grey" (closed)
    deadline: dt.datetime | None = None


def legal_clock(case: Case, now: dt.datetime | None = None) -> LegalClock:
    now = now or timezone.now()
    if case.legal_deadline is None:
        return LegalClock(colour="grey")
    if not case.is_open:
        return LegalClock(colour="grey", deadline=case.legal_deadline)
    if case.legal_deadline <= now:
        return LegalClock(colour="red", deadline=case.legal_deadline)
    near = case.legal_alerted != "" or (
        case.legal_alert_due_at is not None and case.legal_alert_due_at <= now
    )
    return LegalClock(colour="amber" if near else "green", deadline=case.legal_deadline)


@transaction.atomic
def set_jurisdiction(
    *,
    case: Case,
    jurisdiction: Jurisdiction | None,
    actor: Any,
    expected_version: int | None = None,
) -> Case:
    """A member of staff says whose law applies to the case: its legal deadline is counted again
    from the day it was received, and its legal warnings start over for the new deadline."""
    from concilia.cases.actions import _event, _lock, _save

    current = _lock(case, expected_version)
    previous = current.jurisdiction.code if current.jurisdiction_id else None
    now = timezone.now()
    current.jurisdiction = jurisdiction
    set_legal_deadline(current, current.created_at)
    _event(
        current,
        EventKind.JURISDICTION_CHANGED,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={
            "from": previous,
            "to": jurisdiction.code if jurisdiction else None,
            "legal_deadline": current.legal_deadline.isoformat()
            if current.legal_deadline
            else None,
        },
        now=now,
    )
    _save(current, LEGAL_FIELDS, now)
    case.version = current.version
    return current


# --- the shipped rules ------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What loading the rules file did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed by an administrator: left alone
    default: str | None = None

    def __str__(self) -> str:
        parts = [
            f"created: {', '.join(self.created) or '-'}",
            f"updated: {', '.join(self.updated) or '-'}",
            f"kept as the administrators left them: {', '.join(self.kept) or '-'}",
        ]
        if self.default:
            parts.append(f"default: {self.default}")
        return "; ".join(parts)


def read_file(path: Path = DATA_FILE) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    return list(data.get("jurisdictions") or [])


def _jurisdiction_fields(entry: dict[str, Any]) -> dict[str, Any]:
    places = entry.get("holidays") or {}
    return {
        "name_es": entry["name_es"],
        "name_en": entry["name_en"],
        "holiday_country": places.get("country") or "",
        "holiday_subdivision": places.get("subdivision") or "",
        "time_zone": entry.get("time_zone") or "Europe/Madrid",
        "note": " ".join(str(entry.get("note") or "").split()),
    }


# How a rule whose citation was not confirmed (`verified: false` in the file) says so.
NOT_VERIFIED = "Not verified against the official text."


def _checked(rule: dict[str, Any], note: str) -> str:
    """The rule's note, opened by NOT_VERIFIED when the file marks the rule `verified: false`."""
    if rule.get("verified") is False:
        return f"{NOT_VERIFIED} {note}".strip()
    return note


def _rule_fields(rule: dict[str, Any], position: int) -> dict[str, Any]:
    source = rule.get("source") or {}

    def text(key: str) -> str:
        return " ".join(str(rule.get(key) or "").split())

    return {
        "kind": rule["kind"],
        "title_es": rule["title_es"],
        "title_en": rule["title_en"],
        "text_es": text("text_es"),
        "text_en": text("text_en"),
        "days": rule.get("days"),
        "day_count": rule.get("day_count") or DayCount.WORKING,
        "counted_from": rule.get("counted_from") or CountedFrom.RECEIPT,
        "source_law": str(source.get("law") or ""),
        "source_article": str(source.get("article") or ""),
        "source_url": str(source.get("url") or ""),
        "note": _checked(rule, text("note")),
        "position": position,
    }


def load(
    entries: Iterable[dict[str, Any]],
    *,
    update: bool = False,
    jurisdiction_model: Any = Jurisdiction,
    rule_model: Any = LegalRule,
) -> LoadResult:
    """Add the jurisdictions and rules of the file that the database lacks; with `update`, also
    refresh those still as shipped. What an administrator changed or added is never touched.

    The models are parameters so that a data migration can pass its historical ones.
    """
    result = LoadResult()
    entries = list(entries)
    with transaction.atomic():
        for entry in entries:
            code = entry["code"]
            place = jurisdiction_model.objects.filter(code=code).first()
            if place is not None and place.origin != Origin.FILE:
                result.kept.append(code)
                continue
            if place is None:
                place = jurisdiction_model.objects.create(
                    code=code, origin=Origin.FILE, **_jurisdiction_fields(entry)
                )
                result.created.append(code)
            elif update:
                for name, value in _jurisdiction_fields(entry).items():
                    setattr(place, name, value)
                place.save()
                result.updated.append(code)
            else:
                continue
            for position, rule in enumerate(entry.get("rules") or []):
                existing = rule_model.objects.filter(jurisdiction=place, code=rule["code"]).first()
                if existing is None:
                    rule_model.objects.create(
                        jurisdiction=place,
                        code=rule["code"],
                        origin=Origin.FILE,
                        **_rule_fields(rule, position),
                    )
                elif existing.origin == Origin.FILE:
                    rule_model.objects.filter(pk=existing.pk).update(**_rule_fields(rule, position))
        if not jurisdiction_model.objects.filter(is_default=True).exists():
            chosen = next((e["code"] for e in entries if e.get("default")), None)
            if chosen and jurisdiction_model.objects.filter(code=chosen).update(is_default=True):
                result.default = chosen
    _all_terms.forget()  # type: ignore[attr-defined]
    return result
