"""Emerging topics: clusters of similar complaints of the last days, and the spikes among them
(many more than the weeks before usually had), so that a company sees a problem early (a carrier
failing in one country, a wrong price); supervisors subscribe to an alert per new spike, and a
spike can become (or join) a collective flag.

How it works:
- each complaint of the last `window_days` is a document: its subject and description (read
  decrypted through the ORM, never filtered in SQL) plus tokens for what it shares with others
  (category, jurisdiction, and from its latest decision's facts: carrier, products, shipment
  status);
- TF-IDF (scikit-learn, fitted on those and the baseline's complaints) turns them into vectors;
  complaints join the most similar cluster whose centre is at least `similarity` close, in the
  order they arrived, else start their own;
- each cluster's usual level is counted on the `baseline_weeks` before: how many complaints as
  close to its centre arrived per period of `window_days`; a cluster of at least `min_cases` is a
  spike when its count is `min_zscore` standard deviations (at least 1) above that mean;
- `sweep` keeps each spike as a `Trend` (the same cases found again are the same trend) and tells
  the subscribers once per trend.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from sklearn.feature_extraction.text import TfidfVectorizer

from concilia.accounts.models import User
from concilia.cases import actions as case_actions
from concilia.cases.access import can_supervise
from concilia.cases.models import Case, NotificationKind
from concilia.core.models import PeriodicRun
from concilia.resolution import collective
from concilia.resolution.models import (
    CollectiveFlag,
    CollectiveKind,
    Decision,
    Trend,
    TrendSubscription,
)

logger = logging.getLogger(__name__)

# Complaints read at most, most recent first: the last days, and the baseline weeks before.
MAX_RECENT = 3000
MAX_BASELINE = 20000
# Clusters joined after the first pass at most (each costs a pass over every pair of centres).
MAX_MERGES = 100
# What the facts contribute to a complaint's document, and how it is named on the page.
FACT_NAMES = ("category", "region", "carrier", "product", "shipment")
# The sweep looks for new spikes this often (TF-IDF over weeks of complaints is not free).
SWEEP_EVERY = dt.timedelta(minutes=15)
JOB = "trends"


@dataclass(frozen=True)
class Settings:
    """How trends are found (the defaults suit a shop with tens to thousands of complaints a
    day)."""

    window_days: int = 2
    baseline_weeks: int = 4
    min_cases: int = 5
    similarity: float = 0.3
    min_zscore: float = 3.0


@dataclass
class Complaint:
    case: Case
    facts: dict[str, list[str]]

    def document(self) -> str:
        tokens = [
            f"{name}_{_token(value)}" for name, values in self.facts.items() for value in values
        ]
        # The facts count as much as a few words each: shared facts bring complaints together.
        return " ".join([self.case.subject, self.case.description, *tokens, *tokens])


@dataclass
class Cluster:
    complaints: list[Complaint]
    terms: list[str] = field(default_factory=list)
    facts: list[tuple[str, str, int]] = field(default_factory=list)
    baseline: list[int] = field(default_factory=list)  # matching complaints per earlier period
    spike: bool = False
    trend: Trend | None = None

    @property
    def count(self) -> int:
        return len(self.complaints)

    @property
    def mean(self) -> float:
        return sum(self.baseline) / len(self.baseline) if self.baseline else 0.0

    @property
    def stddev(self) -> float:
        if not self.baseline:
            return 0.0
        mean = self.mean
        return math.sqrt(sum((n - mean) ** 2 for n in self.baseline) / len(self.baseline))

    @property
    def zscore(self) -> float:
        return (self.count - self.mean) / max(self.stddev, 1.0)

    @property
    def case_ids(self) -> list[int]:
        return sorted(c.case.pk for c in self.complaints)

    @property
    def latest(self) -> Case:
        return max((c.case for c in self.complaints), key=lambda case: (case.created_at, case.pk))


def _token(value: str) -> str:
    return re.sub(r"\W+", "_", value.strip().lower()).strip("_")[:60] or "none"


def _complaints(cases: QuerySet[Case]) -> list[Complaint]:
    """The cases with their facts (three queries: cases, latest decisions' facts)."""
    cases_list = list(cases.select_related("category", "jurisdiction"))
    facts_by_case: dict[int, dict[str, Any]] = {}
    decisions = (
        Decision.objects.filter(case_id__in=[c.pk for c in cases_list])
        .order_by("case_id", "-created_at", "-pk")
        .values_list("case_id", "facts")
    )
    for case_id, facts in decisions:
        facts_by_case.setdefault(case_id, facts or {})
    return [Complaint(case, _facts_of(case, facts_by_case.get(case.pk, {}))) for case in cases_list]


def _facts_of(case: Case, facts: dict[str, Any]) -> dict[str, list[str]]:
    order = facts.get("order") or {}
    found: dict[str, list[str]] = {"category": [case.category.code]}
    if case.jurisdiction_id:
        found["region"] = [case.jurisdiction.code]
    if order.get("found"):
        if order.get("carrier"):
            found["carrier"] = [str(order["carrier"])]
        skus = [str(s) for s in order.get("skus") or () if s]
        if skus:
            found["product"] = skus[:5]
        if order.get("shipment_status"):
            found["shipment"] = [str(order["shipment_status"])]
    return found


def find(*, now: dt.datetime | None = None, settings: Settings | None = None) -> list[Cluster]:
    """The clusters of the last days, largest first, each with its usual level and whether it is
    a spike (a pure reading: nothing is written)."""
    now = now or timezone.now()
    settings = settings or Settings()
    window = dt.timedelta(days=settings.window_days)
    since = now - window
    baseline_since = since - dt.timedelta(weeks=settings.baseline_weeks)
    recent = _complaints(
        Case.objects.filter(created_at__gte=since, created_at__lte=now).order_by("-created_at")[
            :MAX_RECENT
        ]
    )
    if not recent:
        return []
    earlier = _complaints(
        Case.objects.filter(created_at__gte=baseline_since, created_at__lt=since).order_by(
            "-created_at"
        )[:MAX_BASELINE]
    )
    recent.sort(key=lambda c: (c.case.created_at, c.case.pk))
    vectorizer = TfidfVectorizer(strip_accents="unicode", sublinear_tf=True, ngram_range=(1, 2))
    vectorizer.fit([c.document() for c in recent + earlier])
    vectors = vectorizer.transform([c.document() for c in recent])
    clusters = _group(recent, vectors, settings.similarity)
    periods = max(1, (settings.baseline_weeks * 7) // settings.window_days)
    base_vectors = vectorizer.transform([c.document() for c in earlier]) if earlier else None
    words = vectorizer.get_feature_names_out()
    found = []
    for members, centre in clusters:
        cluster = Cluster(members)
        cluster.terms = _terms(centre, words)
        cluster.facts = _shared_facts(members)
        cluster.baseline = _baseline(
            centre, base_vectors, earlier, since, window, periods, settings.similarity
        )
        cluster.spike = (
            cluster.count >= settings.min_cases and cluster.zscore >= settings.min_zscore
        )
        found.append(cluster)
    found.sort(key=lambda c: (not c.spike, -c.zscore, -c.count))
    return found


def _group(complaints: list[Complaint], vectors: Any, similarity: float) -> list[tuple]:
    """Leader clustering in arrival order: each complaint joins the closest centre at least
    `similarity` close (cosine), else starts a cluster. Returns (members, unit centre) pairs."""
    members: list[list[Complaint]] = []
    sums: list[np.ndarray] = []
    centres = np.zeros((0, vectors.shape[1]))
    for index, complaint in enumerate(complaints):
        vector = vectors[index].toarray()[0]
        if len(sums):
            closeness = centres @ vector
            best = int(np.argmax(closeness))
            if closeness[best] >= similarity:
                members[best].append(complaint)
                sums[best] = sums[best] + vector
                centres[best] = _unit(sums[best])
                continue
        members.append([complaint])
        sums.append(vector)
        centres = np.vstack([centres, _unit(vector)])
    return _merge(members, sums, similarity)


def _merge(members: list[list[Complaint]], sums: list[np.ndarray], similarity: float) -> list:
    """Join clusters whose centres ended up close (a cluster's first complaints may have started
    another before the centre settled), largest into largest, until none are close."""
    merged, rounds = True, 0
    while merged and len(members) > 1 and rounds < MAX_MERGES:
        rounds += 1
        merged = False
        centres = np.array([_unit(total) for total in sums])
        closeness = centres @ centres.T
        np.fill_diagonal(closeness, -1)
        first, second = np.unravel_index(int(np.argmax(closeness)), closeness.shape)
        if closeness[first, second] >= similarity:
            keep, drop = sorted((int(first), int(second)))
            members[keep] += members.pop(drop)
            sums[keep] = sums[keep] + sums.pop(drop)
            merged = True
    return [(group, _unit(total)) for group, total in zip(members, sums, strict=True)]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


def _terms(centre: np.ndarray, words: np.ndarray, size: int = 6) -> list[str]:
    """The centre's heaviest words (fact tokens left to the facts column)."""
    order = np.argsort(-centre)
    terms: list[str] = []
    for index in order:
        if centre[index] <= 0 or len(terms) == size:
            break
        word = str(words[index])
        if any(part.startswith(f"{name}_") for part in word.split() for name in FACT_NAMES):
            continue
        if any(word in kept or kept in word for kept in terms):
            continue  # "parcel" and "parcel lost": keep the first
        terms.append(word)
    return terms


def _shared_facts(members: list[Complaint]) -> list[tuple[str, str, int]]:
    """Facts at least half of the cluster's complaints share, most shared first."""
    counts: dict[tuple[str, str], int] = {}
    for complaint in members:
        for name, values in complaint.facts.items():
            for value in set(values):
                counts[(name, value)] = counts.get((name, value), 0) + 1
    shared = [(n, v, k) for (n, v), k in counts.items() if k * 2 >= len(members) and k > 1]
    return sorted(shared, key=lambda item: (-item[2], FACT_NAMES.index(item[0]), item[1]))


def _baseline(
    centre: np.ndarray,
    vectors: Any,
    earlier: list[Complaint],
    since: dt.datetime,
    window: dt.timedelta,
    periods: int,
    similarity: float,
) -> list[int]:
    """How many earlier complaints as close to the centre arrived in each period before."""
    counts = [0] * periods
    if vectors is None:
        return counts
    closeness = vectors @ centre
    for index in np.flatnonzero(closeness >= similarity):
        age = since - earlier[index].case.created_at
        period = int(age / window)
        if 0 <= period < periods:
            counts[period] += 1
    return counts


# Keeping spikes and alerting -----------------------------------------------------------------


def same_trend(cluster: Cluster, since: dt.datetime) -> Trend | None:
    """A trend seen lately that shares at least half of the smaller one's cases."""
    ids = set(cluster.case_ids)
    for trend in Trend.objects.filter(last_detected_at__gte=since):
        shared = len(ids & set(trend.case_ids))
        if shared and shared * 2 >= min(len(ids), len(trend.case_ids)):
            return trend
    return None


@transaction.atomic
def record(cluster: Cluster, *, now: dt.datetime, settings: Settings) -> tuple[Trend, bool]:
    """Keep a spike as a trend (the one it already is, updated, or a new one); true if new."""
    window = dt.timedelta(days=settings.window_days)
    trend = same_trend(cluster, now - 2 * window)
    values = {
        "terms": cluster.terms,
        "facts": [list(item) for item in cluster.facts],
        "case_count": cluster.count,
        "baseline_mean": round(cluster.mean, 3),
        "baseline_stddev": round(cluster.stddev, 3),
        "window_days": settings.window_days,
        "last_detected_at": now,
    }
    if trend is None:
        return Trend.objects.create(
            case_ids=cluster.case_ids, first_detected_at=now, **values
        ), True
    values["case_ids"] = sorted(set(trend.case_ids) | set(cluster.case_ids))
    Trend.objects.filter(pk=trend.pk).update(**values)
    trend.refresh_from_db()
    return trend, False


def describe_facts(facts: list[list[Any]] | list[tuple[str, str, int]], total: int) -> str:
    labels = {
        "category": _("category"),
        "region": _("region"),
        "carrier": _("carrier"),
        "product": _("product"),
        "shipment": _("shipment"),
    }
    return "; ".join(
        _("%(name)s %(value)s (%(count)s of %(total)s)")
        % {"name": labels.get(name, name), "value": value, "count": count, "total": total}
        for name, value, count in facts
    )


def alert(trend: Trend, *, trigger: Case, now: dt.datetime) -> int:
    """Tell every subscriber who still supervises, once per trend (claimed by a conditional
    UPDATE, so two sweeps never both send); returns how many were told."""
    claimed = Trend.objects.filter(pk=trend.pk, alerted_at__isnull=True).update(alerted_at=now)
    if not claimed:
        return 0
    told = 0
    subscribers = User.objects.filter(trend_subscription__isnull=False, is_active=True)
    for person in subscribers.order_by("pk"):
        if not can_supervise(person):
            continue
        with translation.override(person.language):
            note = _(
                "New spike of similar complaints: %(terms)s. %(count)s in %(days)s days "
                "(usually %(mean)s). %(facts)s. See /helpdesk/trends/"
            ) % {
                "terms": ", ".join(trend.terms[:5]),
                "count": trend.case_count,
                "days": trend.window_days,
                "mean": f"{trend.baseline_mean:.1f}",
                "facts": describe_facts(trend.facts, trend.case_count),
            }
        case_actions.notify_staff(
            recipient=person, case=trigger, kind=NotificationKind.COLLECTIVE, note=note
        )
        told += 1
    return told


def detect(*, now: dt.datetime, settings: Settings | None = None) -> list[Cluster]:
    """Find the clusters, keep the spikes as trends and alert on the new ones."""
    settings = settings or Settings()
    clusters = find(now=now, settings=settings)
    for cluster in clusters:
        if not cluster.spike:
            continue
        cluster.trend, _new = record(cluster, now=now, settings=settings)
        if cluster.trend.alerted_at is None:
            alert(cluster.trend, trigger=cluster.latest, now=now)
    return clusters


def sweep(*, now: dt.datetime) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): detection once every SWEEP_EVERY in total,
    however many sweepers run; returns how many spikes it found (0 when not due)."""
    if not PeriodicRun.claim(JOB, period=SWEEP_EVERY, now=now):
        return 0
    try:
        spikes = sum(c.spike for c in detect(now=now))
    except Exception as error:
        PeriodicRun.finish(JOB, now=timezone.now(), result=repr(error), failed=True)
        raise
    PeriodicRun.finish(JOB, now=timezone.now(), result=f"{spikes} spikes")
    return spikes


# Subscriptions and flags ----------------------------------------------------------------------


def subscribe(*, user: User) -> bool:
    """Alert this supervisor of new spikes; false if they already were subscribed."""
    _subscription, created = TrendSubscription.objects.get_or_create(user=user)
    return created


def unsubscribe(*, user: User) -> bool:
    return TrendSubscription.objects.filter(user=user).delete()[0] > 0


@transaction.atomic
def flag_trend(*, trend: Trend, actor: User) -> CollectiveFlag:
    """Link the trend to a collective flag: the open flag that already holds at least half of
    its cases, else a new "same topic" flag with its cases, which supervisors then act on or
    dismiss like any other. Linking again returns the same flag."""
    trend = Trend.objects.select_for_update().get(pk=trend.pk)
    if trend.flag_id and trend.flag.is_open:
        return trend.flag
    ids = [pk for pk in trend.case_ids if Case.objects.filter(pk=pk).exists()]
    flag = _open_flag_holding(ids)
    now = timezone.now()
    if flag is None:
        flag = CollectiveFlag.objects.create(
            kind=CollectiveKind.TOPIC,
            key=f"trend-{trend.pk}",
            detail={"terms": ", ".join(trend.terms[:5]), "trend": trend.pk},
            min_customers=collective.DEFAULT_RULES[CollectiveKind.PRODUCT].min_customers,
            window_hours=trend.window_days * 24,
            first_seen_at=now,
            last_seen_at=now,
            raised_at=now,
        )
    collective._join(flag, ids, now=now)
    Trend.objects.filter(pk=trend.pk).update(flag=flag)
    logger.info("Trend %s linked to collective flag %s by %s", trend.pk, flag.pk, actor.pk)
    return flag


def _open_flag_holding(ids: list[int]) -> CollectiveFlag | None:
    best, most = None, 0
    flags = CollectiveFlag.objects.open().filter(members__case_id__in=ids).distinct()
    for flag in flags:
        held = flag.members.filter(case_id__in=ids).count()
        if held > most:
            best, most = flag, held
    return best if best is not None and most * 2 >= len(ids) else None
