"""Keep the daily aggregates in step with the cases and conversations, incrementally.

A refresh finds what changed since the last one (case events and chat messages after the stored
watermarks, hand-overs, conversations saved since, and recent conversations whose abandonment
depends on the clock), recomputes those cases' and conversations' contributions
(analytics.facts), subtracts each one's previous contribution (kept in CaseFacts /
ConversationFacts) and adds the new one with one additive upsert per table. The open cases as
of now (OpenNow) are then rebuilt from the open cases only. A full refresh empties the tables
and walks every case and conversation the same way, so incremental and full give the same rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Case as When_
from django.db.models import Count, IntegerField, Max, Q, Value, When
from django.utils import timezone

from concilia.analytics import facts
from concilia.analytics.models import (
    AGE_BUCKETS,
    ALL,
    ALL_TEXT,
    CASE_METRICS,
    CONVERSATION_METRICS,
    DIMENSIONS,
    NONE,
    OPEN_METRICS,
    CaseDay,
    CaseFacts,
    ConversationDay,
    ConversationFacts,
    DurationDay,
    Grain,
    OpenNow,
    RefreshState,
)
from concilia.assistant.models import ChatMessage, Conversation, Handover
from concilia.cases.models import Case, CaseEvent, Status

BATCH = 2000
# A full refresh adds bigger batches at once: their rows merge before the upsert.
FULL_BATCH = 10_000
# A full refresh writes what it added up so far once it holds this many aggregate rows.
FLUSH_KEYS = 400_000
# On PostgreSQL, more rows than this are upserted through COPY and a temporary table.
COPY_FROM = 2_000
# The sweep computes the aggregates from scratch by itself only up to this many cases.
SWEEP_FULL_LIMIT = 20_000

logger = logging.getLogger(__name__)
# Conversations active this long before the last refresh are read again: their abandonment
# depends on the clock, and a thumbs up or down on an older message saves no conversation.
RECENT = dt.timedelta(days=1)

Key = tuple[Any, ...]


def expand(key: list[Any]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The rows one contribution goes to: its full key, the "all" roll-up and one per dimension."""
    yield Grain.FULL, tuple(key)
    blank = [ALL, ALL_TEXT, ALL, ALL, ALL_TEXT]
    yield Grain.ALL, tuple(blank)
    for index, name in enumerate(DIMENSIONS):
        single = list(blank)
        single[index] = key[index]
        yield Grain(name), tuple(single)


@dataclass
class Delta:
    """Changes to add to the aggregate tables (negative to take a contribution back)."""

    counts: dict[str, dict[Key, dict[str, int]]]
    durations: dict[Key, int]

    @classmethod
    def empty(cls) -> Delta:
        return cls(counts={"case": {}, "conv": {}}, durations={})

    def size(self) -> int:
        return sum(len(rows) for rows in self.counts.values()) + len(self.durations)

    def add(self, table: str, contribution: dict[str, Any] | None, sign: int) -> None:
        if not contribution:
            return
        rows = self.counts[table]
        for grain, key in expand(contribution["k"]):
            for day, metrics in contribution["c"].items():
                row = rows.setdefault((grain, day, *key), defaultdict(int))
                for metric, n in metrics.items():
                    row[metric] += sign * n
            for day, buckets in contribution.get("h", {}).items():
                for metric, bucket in buckets.items():
                    full = (grain, day, *key, metric, bucket)
                    self.durations[full] = self.durations.get(full, 0) + sign


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of `size` items (itertools.batched arrives with Python 3.12)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _upsert(table: str, key_columns: list[str], columns: list[str], rows: list[list]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET c = c + excluded.c (SQLite and PostgreSQL).

    Rows must have distinct keys. On PostgreSQL a large batch is copied into a temporary table
    first and merged by one statement: row-by-row upserts cost a round trip each."""
    if not rows:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in key_columns + columns)
    updates = ", ".join(f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}" for c in columns)
    conflict = f"ON CONFLICT ({', '.join(quote(c) for c in key_columns)}) DO UPDATE SET {updates}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) > COPY_FROM:
            stage = f"{table}_stage"
            cursor.execute(
                f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "  # noqa: S608 - names are ours
                f"SELECT {names} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {conflict}"  # noqa: S608
            )
            cursor.execute(f"DROP TABLE {stage}")
            return
        marks = ", ".join(["%s"] * (len(key_columns) + len(columns)))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"  # noqa: S608
        for chunk in batched(rows, 500):
            cursor.executemany(sql, chunk)


KEY_COLUMNS = ["grain", "day", *DIMENSIONS]


def apply(delta: Delta) -> None:
    """Add a delta to the tables, then drop the rows it left at zero. Rows are written in key
    order (grain, then day), so that a day's roll-ups share pages."""
    for table, model, metrics in (
        ("case", CaseDay, CASE_METRICS),
        ("conv", ConversationDay, CONVERSATION_METRICS),
    ):
        rows = [
            [*key, *(values.get(m, 0) for m in metrics)]
            for key, values in sorted(delta.counts[table].items())
            if any(values.values())
        ]
        _upsert(model._meta.db_table, KEY_COLUMNS, list(metrics), rows)
        days = {row[1] for row in rows}
        if days:
            model.objects.filter(day__in=days, **{m: 0 for m in metrics}).delete()
    rows = [[*key, n] for key, n in sorted(delta.durations.items()) if n]
    _upsert(DurationDay._meta.db_table, [*KEY_COLUMNS, "metric", "bucket"], ["count"], rows)
    if rows:
        DurationDay.objects.filter(day__in={row[1] for row in rows}, count=0).delete()


def flush_full_grain(delta: Delta) -> None:
    """During a full refresh, write the rows of every combination (the bulk of a big delta) and
    keep the roll-ups, a few rows per day, to write once at the end, together: the dashboard
    reads them, and on PostgreSQL rows written together stay together on disk."""
    full = Delta.empty()
    for table, rows in delta.counts.items():
        keys = [key for key in rows if key[0] == Grain.FULL]
        full.counts[table] = {key: rows.pop(key) for key in keys}
    keys = [key for key in delta.durations if key[0] == Grain.FULL]
    full.durations = {key: delta.durations.pop(key) for key in keys}
    apply(full)


def _refresh_batch(
    ids: list[int],
    table: str,
    facts_model: type[CaseFacts] | type[ConversationFacts],
    compute: Callable[[list[int]], dict[int, dict[str, Any]]],
    *,
    known: bool,
    delta: Delta | None = None,
) -> None:
    """Replace the contributions of these ids: take the old ones back, add the new ones.

    With `delta` (a full refresh) the changes are added to it and written later, in one go."""
    id_field = "case_id" if facts_model is CaseFacts else "conversation_id"
    old = (
        dict(facts_model.objects.filter(pk__in=ids).values_list(id_field, "contribution"))
        if known
        else {}
    )
    new = compute(ids)
    pending = delta if delta is not None else Delta.empty()
    for pk in ids:
        if old.get(pk) != new.get(pk):
            pending.add(table, old.get(pk), -1)
            pending.add(table, new.get(pk), +1)
    if delta is None:
        apply(pending)
    gone = [pk for pk in old if pk not in new]
    if gone:
        facts_model.objects.filter(pk__in=gone).delete()
    changed = [pk for pk in new if old.get(pk) != new[pk]]
    if known:
        facts_model.objects.filter(pk__in=changed).delete()
    facts_model.objects.bulk_create(
        [facts_model(pk, new[pk]) for pk in changed],  # type: ignore[misc]
        batch_size=500,
    )


def _batches(ids: Iterable[int], size: int = BATCH) -> Iterator[list[int]]:
    yield from batched(sorted(ids), size)


@dataclass
class RefreshReport:
    cases: int = 0
    conversations: int = 0
    full: bool = False

    def __str__(self) -> str:
        kind = "full" if self.full else "incremental"
        return f"{kind}: {self.cases} cases, {self.conversations} conversations"


def refresh(
    *, full: bool = False, now: dt.datetime | None = None, progress: Callable | None = None
) -> RefreshReport:
    """Bring the aggregates up to date (everything again with `full`); one refresh at a time."""
    now = now or timezone.now()
    with transaction.atomic():
        RefreshState.objects.get_or_create(pk=1)
        state = RefreshState.objects.select_for_update().get(pk=1)
        last_event = CaseEvent.objects.aggregate(m=Max("pk"))["m"] or 0
        last_message = ChatMessage.objects.aggregate(m=Max("pk"))["m"] or 0
        last_handover = Handover.objects.aggregate(m=Max("pk"))["m"] or 0
        full = full or state.refreshed_at is None
        if full:
            for model in (CaseDay, ConversationDay, DurationDay, CaseFacts, ConversationFacts):
                model.objects.all().delete()
            case_ids: Iterable[int] = Case.objects.values_list("pk", flat=True).iterator()
            conversation_ids: Iterable[int] = Conversation.objects.values_list(
                "pk", flat=True
            ).iterator()
        else:
            case_ids, conversation_ids = _touched(state, now, last_event, last_message)
        report = RefreshReport(full=full)
        calendars = facts.Calendars()
        touched = set(case_ids)
        report.cases = len(touched)
        # A full refresh adds many batches up before writing (the tables start empty, and each
        # aggregate row is then written once or a few times instead of once per batch).
        pending = Delta.empty() if full else None
        for batch in _batches(touched, FULL_BATCH if full else BATCH):
            _refresh_batch(
                batch,
                "case",
                CaseFacts,
                lambda ids: facts.case_contributions(ids, calendars=calendars, now=now),
                known=not full,
                delta=pending,
            )
            if pending is not None and pending.size() > FLUSH_KEYS:
                flush_full_grain(pending)
            if progress:
                progress(len(batch))
        conversations = set(conversation_ids)
        if not full and touched:
            conversations |= set(
                Conversation.objects.filter(case_id__in=touched).values_list("pk", flat=True)
            )
        report.conversations = len(conversations)
        for batch in _batches(conversations, FULL_BATCH if full else BATCH):
            _refresh_batch(
                batch,
                "conv",
                ConversationFacts,
                lambda ids: facts.conversation_contributions(ids, now=now),
                known=not full,
                delta=pending,
            )
            if pending is not None and pending.size() > FLUSH_KEYS:
                flush_full_grain(pending)
        if pending is not None:
            apply(pending)
        rebuild_open_now(now)
        state.last_event_id = last_event
        state.last_message_id = last_message
        state.last_handover_id = last_handover
        state.refreshed_at = now
        if full:
            state.full_at = now
        state.save()
    return report


def _touched(
    state: RefreshState, now: dt.datetime, last_event: int, last_message: int
) -> tuple[set[int], set[int]]:
    cases = set(
        CaseEvent.objects.filter(pk__gt=state.last_event_id, pk__lte=last_event)
        .values_list("case_id", flat=True)
        .distinct()
    )
    since = (state.refreshed_at or now) - dt.timedelta(minutes=5)
    # Counted from the last refresh, so that a long pause between refreshes misses nothing.
    recent = min(state.refreshed_at or now, now) - RECENT
    conversations = set(
        ChatMessage.objects.filter(pk__gt=state.last_message_id, pk__lte=last_message)
        .values_list("conversation_id", flat=True)
        .distinct()
    )
    conversations |= set(
        Handover.objects.filter(pk__gt=state.last_handover_id).values_list(
            "conversation_id", flat=True
        )
    )
    conversations |= set(
        Conversation.objects.filter(
            Q(updated_at__gte=since) | Q(created_at__gte=recent) | Q(last_customer_at__gte=recent)
        ).values_list("pk", flat=True)
    )
    return cases, conversations


def _age_bucket(now: dt.datetime) -> When_:
    whens = [
        When(created_at__gt=now - dt.timedelta(days=days), then=Value(index))
        for index, days in enumerate(AGE_BUCKETS)
    ]
    return When_(*whens, default=Value(len(AGE_BUCKETS)), output_field=IntegerField())


def open_counts(now: dt.datetime) -> dict[str, Count]:
    running = Q(sla_paused_at__isnull=True)
    return {
        "open": Count("pk"),
        "waiting_us": Count("pk", filter=Q(status__in=(Status.NOT_STARTED, Status.PENDING_AGENT))),
        "waiting_customer": Count("pk", filter=Q(status=Status.PENDING_CUSTOMER)),
        "at_risk": Count(
            "pk",
            filter=running
            & Q(deadline__gte=now)
            & (Q(sla_alerted="at_risk") | Q(sla_alerted="", sla_alert_due_at__lte=now)),
        ),
        "overdue": Count("pk", filter=running & Q(deadline__lt=now)),
        "legal_at_risk": Count(
            "pk",
            filter=Q(legal_deadline__gte=now)
            & (Q(legal_alerted="at_risk") | Q(legal_alerted="", legal_alert_due_at__lte=now)),
        ),
        "legal_overdue": Count("pk", filter=Q(legal_deadline__lt=now)),
    }


def rebuild_open_now(now: dt.datetime) -> None:
    """The open cases by key and age, as of now: one grouped query over the open cases."""
    grouped = (
        Case.objects.exclude(status=Status.CLOSED)
        .annotate(age=_age_bucket(now))
        .values("category_id", "channel", "team_id", "assignee_id", "language", "age")
        .annotate(**open_counts(now))
        .order_by()
    )
    rows: dict[Key, dict[str, int]] = {}
    for group in grouped:
        key = [
            group["category_id"],
            group["channel"],
            group["team_id"] or NONE,
            group["assignee_id"] or NONE,
            group["language"],
        ]
        for grain, expanded in expand(key):
            row = rows.setdefault((grain, group["age"], *expanded), defaultdict(int))
            for metric in OPEN_METRICS:
                row[metric] += group[metric]
    OpenNow.objects.all().delete()
    OpenNow.objects.bulk_create(
        [
            OpenNow(
                grain=grain,
                age_bucket=age,
                **dict(zip(DIMENSIONS, key, strict=True)),
                **values,
            )
            for (grain, age, *key), values in rows.items()
        ],
        batch_size=1000,
    )


def sweep(*, now: dt.datetime) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): an incremental refresh; returns the number
    of cases and conversations it looked at again.

    The very first refresh is a full one; on an installation with many cases already that is
    long (minutes per 100,000 cases), so the sweep leaves it to `concilia analytics refresh
    --full` rather than hold up the other periodic jobs."""
    never = not RefreshState.objects.filter(refreshed_at__isnull=False).exists()
    if never and Case.objects.count() > SWEEP_FULL_LIMIT:
        logger.warning(
            "Analytics: more than %s cases and no aggregates yet: run "
            "`concilia analytics refresh --full` once.",
            SWEEP_FULL_LIMIT,
        )
        return 0
    report = refresh(now=now)
    return report.cases + report.conversations
