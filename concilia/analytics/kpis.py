"""The KPIs of docs/analytics.md, read from the daily aggregates only (never from the cases).

`Filters` says which rows: a date range (days in the company's time zone, both included) and
optionally a category, channel, team, agent and language. With no dimension the "all" roll-up
is read, with one its own roll-up, with more the full rows: a handful of rows per day either way.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from django.db.models import QuerySet, Sum

from concilia.analytics import buckets
from concilia.analytics.models import (
    AGE_BUCKETS,
    CASE_METRICS,
    CONVERSATION_METRICS,
    DIMENSIONS,
    DURATIONS,
    OPEN_METRICS,
    SINGLE_GRAINS,
    CaseDay,
    ConversationDay,
    DurationDay,
    Grain,
    OpenNow,
    RefreshState,
)

ESCALATION_REASONS = (
    "requested",
    "frustration",
    "not_understood",
    "category",
    "policy",
    "amount",
    "unsolved",
)


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    category: int | None = None
    channel: str | None = None
    team: int | None = None
    assignee: int | None = None
    language: str | None = None

    def chosen(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DIMENSIONS if getattr(self, name) is not None}

    def rows(self, queryset: QuerySet) -> QuerySet:
        """The rows of the right grain for these dimensions (without the date range)."""
        chosen = self.chosen()
        if not chosen:
            return queryset.filter(grain=Grain.ALL)
        if len(chosen) == 1:
            [(name, value)] = chosen.items()
            return queryset.filter(grain=SINGLE_GRAINS[name], **{name: value})
        return queryset.filter(grain=Grain.FULL, **chosen)

    def grouped_by(self, queryset: QuerySet, dimension: str) -> QuerySet:
        """Rows to group by one dimension: its roll-up when nothing else is chosen."""
        chosen = {k: v for k, v in self.chosen().items() if k != dimension}
        if not chosen:
            return queryset.filter(grain=SINGLE_GRAINS[dimension])
        return queryset.filter(grain=Grain.FULL, **chosen)

    def in_range(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(day__gte=self.start, day__lte=self.end)

    @property
    def days(self) -> list[dt.date]:
        count = (self.end - self.start).days + 1
        return [self.start + dt.timedelta(days=i) for i in range(count)]


def _sums(metrics: tuple[str, ...]) -> dict[str, Sum]:
    return {name: Sum(name) for name in metrics}


def _clean(values: dict[str, Any]) -> dict[str, int]:
    return {name: int(value or 0) for name, value in values.items()}


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def case_totals(filters: Filters) -> dict[str, int]:
    rows = filters.in_range(filters.rows(CaseDay.objects.all()))
    return _clean(rows.aggregate(**_sums(CASE_METRICS)))


def conversation_totals(filters: Filters) -> dict[str, int]:
    rows = filters.in_range(filters.rows(ConversationDay.objects.all()))
    return _clean(rows.aggregate(**_sums(CONVERSATION_METRICS)))


def duration_counts(filters: Filters) -> dict[str, dict[int, int]]:
    rows = (
        filters.in_range(filters.rows(DurationDay.objects.all()))
        .values("metric", "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts: dict[str, dict[int, int]] = {name: {} for name in DURATIONS}
    for row in rows:
        counts[row["metric"]][row["bucket"]] = int(row["n"])
    return counts


def case_series(filters: Filters, metrics: tuple[str, ...]) -> list[tuple[dt.date, dict[str, int]]]:
    """One point per day of the range (zeros on days without rows)."""
    rows = {
        row.pop("day"): _clean(row)
        for row in filters.in_range(filters.rows(CaseDay.objects.all()))
        .values("day")
        .annotate(**_sums(metrics))
        .order_by()
    }
    empty = dict.fromkeys(metrics, 0)
    return [(day, rows.get(day, empty)) for day in filters.days]


def open_now(filters: Filters) -> dict[str, Any]:
    """The open cases as of the last refresh: totals and counts per age bucket."""
    rows = list(
        filters.rows(OpenNow.objects.all())
        .values("age_bucket")
        .annotate(**_sums(OPEN_METRICS))
        .order_by("age_bucket")
    )
    by_age = {row["age_bucket"]: _clean({m: row[m] for m in OPEN_METRICS}) for row in rows}
    totals = {m: sum(row[m] for row in by_age.values()) for m in OPEN_METRICS}
    return {
        "totals": totals,
        "by_age": [
            (index, by_age.get(index, dict.fromkeys(OPEN_METRICS, 0))["open"])
            for index in range(len(AGE_BUCKETS) + 1)
        ],
    }


def backlog_series(filters: Filters, today: dt.date, open_total: int) -> list[tuple[dt.date, int]]:
    """Open cases at the end of each day: the open count now, less what each later day added
    (opened + reopened - closed); reads the days from the range's start up to today."""
    flows = case_series(
        replace(filters, end=max(today, filters.end)), ("opened", "closed", "reopened")
    )
    net = {day: m["opened"] + m["reopened"] - m["closed"] for day, m in flows}
    result = []
    later = sum(n for day, n in net.items() if day > filters.end)
    for day in reversed(filters.days):
        result.append((day, open_total - later if day <= today else None))
        later += net.get(day, 0)
    return [(day, n) for day, n in reversed(result) if n is not None]


def grouped(filters: Filters, dimension: str, metrics: tuple[str, ...]) -> dict[Any, dict]:
    """Totals per value of one dimension (per category, per team, per agent...)."""
    rows = (
        filters.in_range(filters.grouped_by(CaseDay.objects.all(), dimension))
        .values(dimension)
        .annotate(**_sums(metrics))
        .order_by()
    )
    return {row.pop(dimension): _clean(row) for row in rows}


def grouped_conversations(
    filters: Filters, dimension: str, metrics: tuple[str, ...]
) -> dict[Any, dict]:
    rows = (
        filters.in_range(filters.grouped_by(ConversationDay.objects.all(), dimension))
        .values(dimension)
        .annotate(**_sums(metrics))
        .order_by()
    )
    return {row.pop(dimension): _clean(row) for row in rows}


def grouped_durations(filters: Filters, dimension: str, metric: str) -> dict[Any, float | None]:
    """The median of one duration per value of a dimension."""
    rows = (
        filters.in_range(filters.grouped_by(DurationDay.objects.filter(metric=metric), dimension))
        .values(dimension, "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts: dict[Any, dict[int, int]] = defaultdict(dict)
    for row in rows:
        counts[row[dimension]][row["bucket"]] = int(row["n"])
    return {value: buckets.percentile(c) for value, c in counts.items()}


@dataclass
class Summary:
    """Every KPI of the dashboard's headline, for one filter."""

    cases: dict[str, int]
    conversations: dict[str, int]
    durations: dict[str, dict[int, int]]
    open: dict[str, Any]
    refreshed_at: dt.datetime | None
    rates: dict[str, float | None] = field(default_factory=dict)
    means: dict[str, float | None] = field(default_factory=dict)
    medians: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        c, v = self.cases, self.conversations
        self.rates = {
            "resolution": ratio(c["resolved"], c["opened"]),
            "fcr": ratio(c["fcr"], c["resolved"]),
            "reopen": ratio(c["reopened_cases"], c["resolved"]),
            "automation": ratio(c["automated"], c["resolved"]),
            "escalation": ratio(c["escalated"], c["opened"]),
            "offer_acceptance": ratio(c["offers_accepted"], c["offers_answered"]),
            "sla": ratio(c["sla_met"], c["sla_met"] + c["sla_missed"]),
            "legal": ratio(c["legal_met"], c["legal_met"] + c["legal_missed"]),
            "csat": ratio(v["csat_sum"], v["csat_n"]),
            "csat_good": ratio(v["csat_good"], v["csat_n"]),
            "csat_response": ratio(v["csat_n"], v["ended"]),
            "thumbs_up": ratio(v["thumbs_up"], v["thumbs_up"] + v["thumbs_down"]),
            "deflection": ratio(v["deflected"] + c["automated"], v["deflected"] + c["opened"]),
            "abandonment": ratio(v["abandoned"], v["started"]),
        }
        self.means = {
            "frt_cal": ratio(c["frt_cal_s"], c["frt_n"]),
            "frt_bus": ratio(c["frt_bus_s"], c["frt_n"]),
            "res_cal": ratio(c["res_cal_s"], c["res_n"]),
            "res_bus": ratio(c["res_bus_s"], c["res_n"]),
        }
        self.medians = {name: buckets.percentile(self.durations[name]) for name in DURATIONS}

    @property
    def average_payout(self) -> float | None:
        return ratio(self.cases["payout_cents"] / 100, self.cases["payouts"])

    @property
    def escalation_reasons(self) -> list[tuple[str, int]]:
        return [(reason, self.cases[f"esc_{reason}"]) for reason in ESCALATION_REASONS]


def summary(filters: Filters) -> Summary:
    state = RefreshState.objects.filter(pk=1).first()
    return Summary(
        cases=case_totals(filters),
        conversations=conversation_totals(filters),
        durations=duration_counts(filters),
        open=open_now(filters),
        refreshed_at=state.refreshed_at if state else None,
    )
