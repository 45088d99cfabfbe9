"""Each chart of the dashboards as a table: the same rows are drawn as SVG on the page and
downloaded as CSV, so the picture and the file never disagree."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum
from django.utils.functional import Promise
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from concilia.accounts.models import Team, User
from concilia.analytics import buckets, charts, kpis
from concilia.analytics.models import AGE_BUCKETS, ALL, DurationDay, OpenNow
from concilia.cases.models import Category

HOUR = 3600.0


@dataclass
class Table:
    slug: str
    title: str | Promise
    columns: list[str | Promise]
    rows: list[list[Any]]
    kind: str  # "lines" (first column: the day), "bars" or "funnel" (label, value)
    unit: str = ""

    def svg(self) -> SafeString:
        title = str(self.title)
        if self.kind == "lines":
            series = [
                (str(name), [row[i + 1] for row in self.rows])
                for i, name in enumerate(self.columns[1:])
            ]
            return charts.lines(title, [row[0] for row in self.rows], series, self.unit)
        pairs = [(str(row[0]), float(row[1] or 0)) for row in self.rows]
        if self.kind == "funnel":
            return charts.funnel(title, pairs)
        return charts.bars(title, pairs, self.unit)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / HOUR, 2)


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def volume(filters: kpis.Filters, **_context: Any) -> Table:
    series = kpis.case_series(filters, ("opened", "closed"))
    return Table(
        "volume",
        _("Cases opened and closed per day"),
        [_("Day"), _("Opened"), _("Closed")],
        [[day, m["opened"], m["closed"]] for day, m in series],
        "lines",
    )


def backlog(filters: kpis.Filters, *, summary: kpis.Summary, today: dt.date, **_c: Any) -> Table:
    points = kpis.backlog_series(filters, today, summary.open["totals"]["open"])
    return Table(
        "backlog",
        _("Open cases at the end of each day"),
        [_("Day"), _("Open")],
        [[day, n] for day, n in points],
        "lines",
    )


def age_labels() -> list[str]:
    labels, low = [], 0
    for high in AGE_BUCKETS:
        labels.append(str(_("%(low)s-%(high)s days") % {"low": low, "high": high}))
        low = high
    labels.append(str(_("over %(days)s days") % {"days": low}))
    return labels


def ages(filters: kpis.Filters, *, summary: kpis.Summary, **_c: Any) -> Table:
    labels = age_labels()
    return Table(
        "ages",
        _("Open cases by age (now)"),
        [_("Age"), _("Open")],
        [[labels[index], n] for index, n in summary.open["by_age"]],
        "bars",
    )


def response_times(filters: kpis.Filters, **_context: Any) -> Table:
    """Median business hours to first response and to resolution, per day."""
    rows = (
        filters.in_range(
            filters.rows(DurationDay.objects.filter(metric__in=["frt_bus", "res_bus"]))
        )
        .values("day", "metric", "bucket")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts: dict[tuple[dt.date, str], dict[int, int]] = defaultdict(dict)
    for row in rows:
        counts[(row["day"], row["metric"])][row["bucket"]] = int(row["n"])
    return Table(
        "response-times",
        _("Median business hours to first response and to resolution"),
        [_("Day"), _("First response"), _("Resolution")],
        [
            [
                day,
                _hours(buckets.percentile(counts.get((day, "frt_bus"), {}))),
                _hours(buckets.percentile(counts.get((day, "res_bus"), {}))),
            ]
            for day in filters.days
        ],
        "lines",
        unit=" h",
    )


def funnel(filters: kpis.Filters, *, summary: kpis.Summary, **_c: Any) -> Table:
    v = summary.conversations
    return Table(
        "funnel",
        _("From conversation to case to automated resolution or escalation"),
        [_("Step"), _("Conversations")],
        [
            [_("Conversations started"), v["started"]],
            [_("Completed (case opened or solved)"), v["completed"]],
            [_("Solved by the assistant alone"), v["deflected"]],
            [_("Opened a case"), v["with_case"]],
            [_("Case resolved with no person"), v["case_automated"]],
            [_("Handed over to a person"), v["handed_over"]],
        ],
        "funnel",
    )


ESCALATION_LABELS = {
    "requested": _("The customer asked for a person"),
    "frustration": _("The customer is frustrated"),
    "not_understood": _("Not understood twice"),
    "category": _("Category always goes to a person"),
    "policy": _("Escalated by policy"),
    "amount": _("Amount above the limit"),
    "unsolved": _("Troubleshooting did not solve it"),
}


def escalations(filters: kpis.Filters, *, summary: kpis.Summary, **_c: Any) -> Table:
    return Table(
        "escalations",
        _("Escalations by reason"),
        [_("Reason"), _("Cases")],
        [[ESCALATION_LABELS[reason], n] for reason, n in summary.escalation_reasons],
        "bars",
    )


def payouts(filters: kpis.Filters, **_context: Any) -> Table:
    per_category = kpis.grouped(filters, "category", ("payouts", "payout_cents"))
    names = {c.pk: c.name for c in Category.objects.filter(pk__in=list(per_category))}
    rows = [
        [names.get(pk, "—"), round(m["payout_cents"] / 100 / m["payouts"], 2), m["payouts"]]
        for pk, m in per_category.items()
        if m["payouts"]
    ]
    rows.sort(key=lambda row: -row[1])
    return Table(
        "payouts",
        _("Average amount paid out per category"),
        [_("Category"), _("Average"), _("Resolutions")],
        rows,
        "bars",
        unit=" €",
    )


def headline(filters: kpis.Filters, *, summary: kpis.Summary, **_c: Any) -> Table:
    """Every KPI as one row (the CSV of the figures at the top of the page)."""
    return Table(
        "kpis",
        _("Key figures"),
        [_("Figure"), _("Value")],
        [[label, value] for label, value, _fmt in figures(summary)],
        "table",
    )


def figures(summary: kpis.Summary) -> list[tuple[Any, Any, str]]:
    """(label, value, format) of every headline figure; format "%" or "h" or "n"."""
    c, r, med, mean = summary.cases, summary.rates, summary.medians, summary.means
    totals = summary.open["totals"]
    return [
        (_("Cases opened"), c["opened"], "n"),
        (_("Resolution rate"), r["resolution"], "%"),
        (_("First-contact resolution"), r["fcr"], "%"),
        (_("Reopen rate"), r["reopen"], "%"),
        (_("Median first response (business hours)"), _hours(med["frt_bus"]), "h"),
        (_("Median first response (calendar hours)"), _hours(med["frt_cal"]), "h"),
        (_("Mean first response (business hours)"), _hours(mean["frt_bus"]), "h"),
        (_("Median resolution (business hours)"), _hours(med["res_bus"]), "h"),
        (_("Median resolution (calendar hours)"), _hours(med["res_cal"]), "h"),
        (_("Mean resolution (business hours)"), _hours(mean["res_bus"]), "h"),
        (_("Customer satisfaction (1-5)"), r["csat"], "n"),
        (_("Survey response rate"), r["csat_response"], "%"),
        (_("Helpful answers (thumbs up)"), r["thumbs_up"], "%"),
        (_("Automation (deflection)"), r["deflection"], "%"),
        (_("Escalation rate"), r["escalation"], "%"),
        (_("Offer acceptance"), r["offer_acceptance"], "%"),
        (_("Average payout"), summary.average_payout, "€"),
        (_("SLA compliance"), r["sla"], "%"),
        (_("Legal-deadline compliance"), r["legal"], "%"),
        (_("Open now"), totals["open"], "n"),
        (_("At risk now"), totals["at_risk"], "n"),
        (_("Overdue now"), totals["overdue"], "n"),
        (
            _("Legal deadline near or missed"),
            totals["legal_at_risk"] + totals["legal_overdue"],
            "n",
        ),
        (_("Conversations started"), summary.conversations["started"], "n"),
        (_("Conversations abandoned"), summary.conversations["abandoned"], "n"),
        (_("Conversations completed"), summary.conversations["completed"], "n"),
    ]


def _people_rows(filters: kpis.Filters, dimension: str) -> list[dict[str, Any]]:
    metrics = ("opened", "resolved", "fcr", "sla_met", "sla_missed")
    cases = kpis.grouped(filters, dimension, metrics)
    csat = kpis.grouped_conversations(filters, dimension, ("csat_n", "csat_sum"))
    medians = kpis.grouped_durations(filters, dimension, "frt_bus")
    open_now = {
        row[dimension]: row
        for row in filters.grouped_by(OpenNow.objects.all(), dimension)
        .values(dimension)
        .annotate(open=Sum("open"), overdue=Sum("overdue"))
        .order_by()
    }
    keys = [k for k in {*cases, *open_now} if k != ALL]
    rows = []
    for key in keys:
        c = cases.get(key, dict.fromkeys(metrics, 0))
        v = csat.get(key, {"csat_n": 0, "csat_sum": 0})
        o = open_now.get(key, {"open": 0, "overdue": 0})
        rows.append(
            {
                "key": key,
                "opened": c["opened"],
                "resolved": c["resolved"],
                "fcr": _percent(kpis.ratio(c["fcr"], c["resolved"])),
                "sla": _percent(kpis.ratio(c["sla_met"], c["sla_met"] + c["sla_missed"])),
                "frt_bus_h": _hours(medians.get(key)),
                "csat": kpis.ratio(v["csat_sum"], v["csat_n"]),
                "open": int(o["open"] or 0),
                "overdue": int(o["overdue"] or 0),
            }
        )
    return rows


PEOPLE_COLUMNS = [
    ("opened", _("Opened")),
    ("resolved", _("Resolved")),
    ("fcr", _("First-contact resolution (%)")),
    ("sla", _("SLA compliance (%)")),
    ("frt_bus_h", _("Median first response (business hours)")),
    ("csat", _("Satisfaction (1-5)")),
    ("open", _("Open now")),
    ("overdue", _("Overdue now")),
]


def _people_table(slug: str, title: Any, first: Any, rows: list[dict], names: dict) -> Table:
    return Table(
        slug,
        title,
        [first, *(label for _key, label in PEOPLE_COLUMNS)],
        sorted(
            (
                [names.get(row["key"], _("Nobody")), *(row[k] for k, _l in PEOPLE_COLUMNS)]
                for row in rows
            ),
            key=lambda row: str(row[0]),
        ),
        "table",
    )


def agents(filters: kpis.Filters, **_context: Any) -> Table:
    rows = _people_rows(filters, "assignee")
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=[r["key"] for r in rows])}
    return _people_table("agents", _("Per agent"), _("Agent"), rows, names)


def teams(filters: kpis.Filters, **_context: Any) -> Table:
    rows = _people_rows(filters, "team")
    names = {t.pk: t.name for t in Team.objects.filter(pk__in=[r["key"] for r in rows])}
    return _people_table("teams", _("Per team"), _("Team"), rows, names)


BUILDERS: dict[str, Callable[..., Table]] = {
    "kpis": headline,
    "volume": volume,
    "backlog": backlog,
    "ages": ages,
    "response-times": response_times,
    "funnel": funnel,
    "escalations": escalations,
    "payouts": payouts,
    "agents": agents,
    "teams": teams,
}
DASHBOARD = ("volume", "backlog", "response-times", "ages", "funnel", "escalations", "payouts")
MINE = ("volume", "response-times", "ages")
