"""What one case or one conversation contributes to the daily aggregates, computed from the
stored history of a batch of them (a handful of queries per batch, whatever its size).

A contribution is JSON: {"k": [category, channel, team, agent, language], "c": {day: {metric:
n}}, "h": {day: {duration: bucket}}}. Days are ISO dates in the company's time zone
(settings.TIME_ZONE). docs/analytics.md defines every metric.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q

from concilia.accounts.models import Team
from concilia.analytics.buckets import bucket_of
from concilia.analytics.models import NONE
from concilia.assistant.models import ChatMessage, Conversation, ConversationStatus, Handover
from concilia.cases.models import ActorKind, Case, CaseEvent, Category, EventKind, Status
from concilia.core.calendar import WorkingCalendar, default_calendar
from concilia.resolution.models import Decision, DecisionOutcome, Offer, OfferStatus, Resolution

Contribution = dict[str, Any]

# A conversation left this long without a word from the customer (and with nothing to show for
# it) counts as abandoned.
ABANDONED_AFTER = dt.timedelta(minutes=30)
# Offers the customer (or time) answered: the denominator of the acceptance rate.
ANSWERED_OFFERS = (
    OfferStatus.ACCEPTED,
    OfferStatus.REJECTED,
    OfferStatus.COUNTERED,
    OfferStatus.ESCALATED,
    OfferStatus.EXPIRED,
)
_EVENT_KINDS = (
    EventKind.STATUS_CHANGED,
    EventKind.REPLY_SENT,
    EventKind.SLA_BREACHED,
    EventKind.LEGAL_BREACHED,
    EventKind.HANDED_OVER,
    EventKind.MESSAGE_ADDED,
)


def company_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_of(instant: dt.datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).date().isoformat()


class Calendars:
    """Each team's working calendar, read once per refresh."""

    def __init__(self) -> None:
        self._default = default_calendar()
        self._teams = {
            team.pk: team.working_calendar() for team in Team.objects.select_related("calendar")
        }

    def of(self, team_id: int | None) -> WorkingCalendar:
        return self._teams.get(team_id, self._default) if team_id else self._default


class _Builder:
    """Collects one contribution."""

    def __init__(self, key: list[Any]):
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.durations: dict[str, dict[str, int]] = defaultdict(dict)
        self.key = key

    def add(self, day: str, metric: str, n: int = 1) -> None:
        if n:
            self.counts[day][metric] += n

    def duration(self, day: str, name: str, seconds: float) -> None:
        self.durations[day][name] = bucket_of(seconds)
        self.add(day, f"{name}_s", round(seconds))

    def result(self) -> Contribution:
        return {
            "k": self.key,
            "c": {day: dict(metrics) for day, metrics in self.counts.items()},
            "h": dict(self.durations),
        }


def _pauses(events: list[tuple], now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The spans the case waited for the customer (its clocks stopped)."""
    spans, started = [], None
    for kind, _actor, data, at in events:
        if kind != EventKind.STATUS_CHANGED:
            continue
        if data.get("to") == Status.PENDING_CUSTOMER and started is None:
            started = at
        elif data.get("from") == Status.PENDING_CUSTOMER and started is not None:
            spans.append((started, at))
            started = None
    if started is not None:
        spans.append((started, now))
    return spans


def _business(
    calendar: WorkingCalendar,
    start: dt.datetime,
    end: dt.datetime,
    pauses: list[tuple[dt.datetime, dt.datetime]],
) -> float:
    """Business seconds from start to end, less the business time paused in between."""
    total = calendar.seconds_between(start, end)
    for paused_from, paused_to in pauses:
        total -= calendar.seconds_between(max(paused_from, start), min(paused_to, end))
    return max(total, 0.0)


def _by_case(rows: Iterable[tuple]) -> dict[int, list[tuple]]:
    grouped: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row[1:])
    return grouped


def case_contributions(
    case_ids: list[int], *, calendars: Calendars, now: dt.datetime
) -> dict[int, Contribution]:
    """The contribution of each case that still exists (missing ids are simply absent)."""
    zone = company_zone()
    cases = Case.objects.filter(pk__in=case_ids).values(
        "pk",
        "category_id",
        "channel",
        "team_id",
        "assignee_id",
        "language",
        "status",
        "created_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "deadline",
        "legal_deadline",
    )
    events = _by_case(
        CaseEvent.objects.filter(case_id__in=case_ids)
        .filter(Q(kind__in=_EVENT_KINDS) | Q(actor_kind=ActorKind.STAFF))
        .order_by("created_at", "pk")
        .values_list("case_id", "kind", "actor_kind", "data", "created_at")
    )
    handovers = _by_case(
        Handover.objects.filter(case_id__in=case_ids)
        .order_by("created_at", "pk")
        .values_list("case_id", "reason")
    )
    escalated_by_policy = set(
        Decision.objects.filter(case_id__in=case_ids, outcome=DecisionOutcome.ESCALATE).values_list(
            "case_id", flat=True
        )
    )
    offers = _by_case(Offer.objects.filter(case_id__in=case_ids).values_list("case_id", "status"))
    payouts = _by_case(
        Resolution.objects.filter(case_id__in=case_ids, amount__isnull=False).values_list(
            "case_id", "amount", "created_at"
        )
    )
    result = {}
    for case in cases:
        pk = case["pk"]
        result[pk] = _case_contribution(
            case,
            events.get(pk, []),
            [reason for (reason,) in handovers.get(pk, [])],
            pk in escalated_by_policy,
            [status for (status,) in offers.get(pk, [])],
            payouts.get(pk, []),
            calendars.of(case["team_id"]),
            zone,
            now,
        )
    return result


def _case_contribution(
    case: dict[str, Any],
    events: list[tuple],
    handover_reasons: list[str],
    escalated_by_policy: bool,
    offer_statuses: list[str],
    payouts: list[tuple],
    calendar: WorkingCalendar,
    zone: ZoneInfo,
    now: dt.datetime,
) -> Contribution:
    built = _Builder(
        [
            case["category_id"],
            case["channel"],
            case["team_id"] or NONE,
            case["assignee_id"] or NONE,
            case["language"],
        ]
    )
    created = case["created_at"]
    cohort = day_of(created, zone)
    built.add(cohort, "opened")
    reopenings = 0
    replies = 0
    came_back = False  # the customer wrote again after our first reply
    staff_touched = False
    sla_breached = legal_breached = False
    for kind, actor, data, at in events:
        staff_touched |= actor == ActorKind.STAFF
        if kind == EventKind.STATUS_CHANGED:
            if data.get("to") == Status.CLOSED:
                built.add(day_of(at, zone), "closed")
            elif data.get("from") == Status.CLOSED:
                built.add(day_of(at, zone), "reopened")
                reopenings += 1
        elif kind == EventKind.REPLY_SENT:
            replies += 1
        elif kind == EventKind.MESSAGE_ADDED and actor == ActorKind.CUSTOMER:
            came_back |= replies > 0
        elif kind == EventKind.SLA_BREACHED:
            sla_breached = True
        elif kind == EventKind.LEGAL_BREACHED:
            legal_breached = True
    closed = case["status"] == Status.CLOSED
    pauses = _pauses(events, now)
    if case["first_response_at"] is not None:
        at = case["first_response_at"]
        day = day_of(at, zone)
        built.add(day, "frt_n")
        built.duration(day, "frt_cal", max((at - created).total_seconds(), 0.0))
        built.duration(day, "frt_bus", _business(calendar, created, at, pauses))
    if case["resolved_at"] is not None:
        at = case["resolved_at"]
        day = day_of(at, zone)
        built.add(day, "res_n")
        built.duration(day, "res_cal", max((at - created).total_seconds(), 0.0))
        built.duration(day, "res_bus", _business(calendar, created, at, pauses))
    if closed:
        built.add(cohort, "resolved")
        built.add(cohort, "reopened_cases", int(reopenings > 0))
        built.add(cohort, "fcr", int(reopenings == 0 and replies <= 1 and not came_back))
        built.add(cohort, "automated", int(not staff_touched and not handover_reasons))
        late = case["closed_at"] is not None and case["closed_at"] > case["deadline"]
        sla_breached |= late
        legal_deadline = case["legal_deadline"]
        legal_breached |= legal_deadline is not None and case["closed_at"] > legal_deadline
    if handover_reasons or escalated_by_policy:
        built.add(cohort, "escalated")
        reason = handover_reasons[0] if handover_reasons else "policy"
        built.add(cohort, f"esc_{reason}")
    if sla_breached:
        built.add(cohort, "sla_missed")
    elif closed:
        built.add(cohort, "sla_met")
    if legal_breached:
        built.add(cohort, "legal_missed")
    elif closed and case["legal_deadline"] is not None:
        built.add(cohort, "legal_met")
    built.add(cohort, "offers_made", len(offer_statuses))
    built.add(cohort, "offers_answered", sum(s in ANSWERED_OFFERS for s in offer_statuses))
    built.add(cohort, "offers_accepted", sum(s == OfferStatus.ACCEPTED for s in offer_statuses))
    for amount, at in payouts:
        day = day_of(at, zone)
        built.add(day, "payouts")
        built.add(day, "payout_cents", round(amount * 100))
    return built.result()


def conversation_contributions(
    conversation_ids: list[int], *, now: dt.datetime
) -> dict[int, Contribution]:
    """The contribution of each conversation that still exists."""
    zone = company_zone()
    conversations = list(
        Conversation.objects.filter(pk__in=conversation_ids).values(
            "pk",
            "language",
            "status",
            "category_code",
            "case_id",
            "resolved_by_assistant",
            "csat_score",
            "created_at",
            "last_customer_at",
        )
    )
    categories = dict(Category.objects.values_list("code", "pk"))
    case_ids = {c["case_id"] for c in conversations if c["case_id"]}
    cases = {
        row["pk"]: row
        for row in Case.objects.filter(pk__in=case_ids).values(
            "pk", "category_id", "team_id", "assignee_id", "status"
        )
    }
    staff_cases = set(
        CaseEvent.objects.filter(case_id__in=case_ids, actor_kind=ActorKind.STAFF)
        .values_list("case_id", flat=True)
        .distinct()
    )
    handed_over = set(
        Handover.objects.filter(conversation_id__in=conversation_ids).values_list(
            "conversation_id", flat=True
        )
    )
    thumbs = {
        row["conversation_id"]: row
        for row in ChatMessage.objects.filter(
            conversation_id__in=conversation_ids, rating__isnull=False
        )
        .values("conversation_id")
        .annotate(up=Count("pk", filter=Q(rating=1)), down=Count("pk", filter=Q(rating=-1)))
    }
    result = {}
    for conv in conversations:
        case = cases.get(conv["case_id"])
        category = (
            case["category_id"] if case else categories.get(conv["category_code"] or "", NONE)
        )
        built = _Builder(
            [
                category,
                "chat",
                (case["team_id"] or NONE) if case else NONE,
                (case["assignee_id"] or NONE) if case else NONE,
                conv["language"],
            ]
        )
        day = day_of(conv["created_at"], zone)
        handover = conv["pk"] in handed_over
        deflected = conv["resolved_by_assistant"] and case is None
        last = conv["last_customer_at"] or conv["created_at"]
        idle = conv["status"] == ConversationStatus.CLOSED or now - last >= ABANDONED_AFTER
        built.add(day, "started")
        built.add(day, "with_case", int(case is not None))
        built.add(day, "deflected", int(deflected))
        built.add(day, "completed", int(case is not None or deflected))
        built.add(day, "abandoned", int(case is None and not deflected and not handover and idle))
        built.add(day, "handed_over", int(handover))
        built.add(
            day,
            "case_automated",
            int(
                case is not None
                and case["status"] == Status.CLOSED
                and case["pk"] not in staff_cases
                and not handover
            ),
        )
        built.add(day, "ended", int(conv["status"] == ConversationStatus.CLOSED))
        if conv["csat_score"] is not None:
            built.add(day, "csat_n")
            built.add(day, "csat_sum", conv["csat_score"])
            built.add(day, "csat_good", int(conv["csat_score"] >= 4))
        rated = thumbs.get(conv["pk"])
        if rated:
            built.add(day, "thumbs_up", rated["up"])
            built.add(day, "thumbs_down", rated["down"])
        result[conv["pk"]] = built.result()
    return result
