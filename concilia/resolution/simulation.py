"""Policy simulation: a draft policy replayed over past cases and set against what actually
happened to them (what was paid, what people decided), before anything goes live.

A past case is judged on the facts stored with its latest engine decision (what the engine saw
then); a case never decided is read from its own rows as of the day it was opened, without asking
the shop (the order facts of such a case are "unavailable", so a rule that needs them waits).
Nothing is written. The draft is judged alone: the other live policies are not consulted.

Built for size: cases are read in chunks with `.values()`, a chunk's decisions, resolutions,
attachments and customer histories in one grouped query each, and every condition of the
document runs on one CEL context per case (about 0.3 µs a condition; a plain dict is converted
again for each condition, ~100 µs). The walk is `engine.evaluate`'s without the trace and the
reasons; tests hold the two to the same decisions.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import cel
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.cases.models import Attachment, Case, Outcome, Status
from concilia.resolution import engine, expressions
from concilia.resolution import facts as fact_schema
from concilia.resolution.actions import document_of
from concilia.resolution.models import (
    Decision,
    DecisionOutcome,
    DecisionSource,
    Party,
    PolicyVersion,
    Resolution,
)
from concilia.resolution.policy import MONEY_KINDS, Document

CHUNK = 2000
SHOWN_DIFFERENCES = 200
# Outcomes after which a person (or the customer's evidence) decides: nothing is settled.
TO_A_PERSON = frozenset({"ask_evidence", "escalate", "mediate", "wait", "none"})
OUTCOME_ORDER = ("resolve", "offer", "ask_evidence", "escalate", "mediate", "wait", "none")

Progress = Callable[[int, int], None]  # (cases done, cases in all)


@dataclass
class Money:
    """A sum over some cases, in one currency."""

    cases: int = 0
    amount: Decimal = Decimal("0")

    def add(self, amount: Decimal) -> None:
        self.cases += 1
        self.amount += amount

    @property
    def average(self) -> Decimal:
        if not self.cases:
            return Decimal("0.00")
        return (self.amount / self.cases).quantize(engine.CENT)


@dataclass(frozen=True)
class Difference:
    """A case where the draft would not do what was done."""

    reference: str
    url: str
    was: str  # what actually happened, in words
    would: str  # what the draft would do, in words
    rule: str
    outcome: str  # the draft's outcome code


@dataclass
class Report:
    policy: str
    since: dt.date
    until: dt.date | None
    considered: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    from_decisions: int = 0  # judged on the facts stored with the case's decision
    read_from_case: int = 0  # never decided: facts read from the case's rows
    without_shop_data: int = 0  # of those, cases naming an order the shop was not asked about
    would_pay: dict[str, Money] = field(default_factory=lambda: defaultdict(Money))
    would_offer: dict[str, Money] = field(default_factory=lambda: defaultdict(Money))
    paid: dict[str, Money] = field(default_factory=lambda: defaultdict(Money))
    differing: int = 0
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def resolved_automatically(self) -> int:
        return self.outcomes["resolve"]

    @property
    def escalated(self) -> int:
        return self.outcomes["escalate"] + self.outcomes["mediate"]

    @property
    def currencies(self) -> list[str]:
        return sorted(set(self.would_pay) | set(self.paid) | set(self.would_offer))

    def money_rows(self) -> list[dict[str, Any]]:
        """Per currency: what the draft would pay, offer, and what was actually paid."""
        return [
            {
                "currency": currency,
                "would_pay": self.would_pay.get(currency, Money()),
                "would_offer": self.would_offer.get(currency, Money()),
                "paid": self.paid.get(currency, Money()),
            }
            for currency in self.currencies
        ]

    def outcome_rows(self) -> list[tuple[str, str, int]]:
        return [(code, DecisionOutcome(code).label, self.outcomes[code]) for code in OUTCOME_ORDER]


# Deciding -----------------------------------------------------------------------------------


class Walker:
    """A document made ready to decide many cases: `decide` gives `engine.evaluate`'s outcome,
    rule, options and terms (without trace or reasons) for the same facts."""

    def __init__(self, document: Document):
        self.document = document
        self.shop_needs = [
            frozenset(p.partition(".")[0] for p in rule.reads if p in fact_schema.SHOP_FACTS)
            for rule in document.rules
        ]
        # Only the facts the conditions read go into the CEL context: its cost is per value.
        read: dict[str, dict[str, tuple[bool, Any]]] = {}
        for rule in document.rules:
            for path in rule.reads:
                namespace, _dot, name = path.partition(".")
                fact = fact_schema.SCHEMA[namespace][name]
                empty = _empty_value(namespace, name)
                read.setdefault(namespace, {})[name] = (fact.type == fact_schema.MONEY, empty)
        self.reads = read

    def values(self, facts: fact_schema.Facts) -> dict[str, Any]:
        """`facts.to_expression_values` of the facts the document reads, from facts as gathered
        or as stored (`facts.to_json`: money as decimal text). A fact stored before it existed
        reads as its empty value."""
        values: dict[str, Any] = {}
        for namespace, names in self.reads.items():
            given = facts.get(namespace)
            if given is None:
                continue
            plain = values[namespace] = {}
            for name, (money, empty) in names.items():
                value = given.get(name, empty)
                if money:
                    # float(Decimal) and float(text) round the same: to the nearest double
                    plain[name] = float(value) if value is not None else None
                elif isinstance(value, Decimal | dt.date):
                    plain[name] = _plain(value)
                else:
                    plain[name] = value
        return values

    def decide(
        self, facts: fact_schema.Facts, unavailable: frozenset[str] = frozenset()
    ) -> engine.Decision:
        document = self.document
        if not document.applies(facts.get("case", {}).get("category", "")):
            return engine.Decision("none")
        values = cel.Context(self.values(facts))
        for rule, needs in zip(document.rules, self.shop_needs, strict=True):
            if needs & unavailable:
                return engine.Decision("wait", rule=rule.id)
            if rule.program is not None:
                try:
                    held = expressions.run(rule.program, values)
                except Exception:  # noqa: S112 - as in the engine: a failing condition does not fire
                    continue
                if held is not True:
                    continue
            outcome = rule.outcome
            options = tuple(_settle(o, facts, document.currency) for o in outcome.options)
            if any(o.amount is not None and o.amount <= 0 for o in options):
                continue
            return engine.Decision(
                outcome.type,
                rule=rule.id,
                options=options,
                valid_days=outcome.valid_days if outcome.type == "offer" else 0,
                counter=outcome.counter,
                evidence=outcome.evidence,
                wait_days=outcome.wait_days if outcome.type == "ask_evidence" else 0,
                team=outcome.team,
            )
        return engine.Decision("none")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # compared only; amounts are computed from the Decimal
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _settle(option: Any, facts: fact_schema.Facts, currency: str) -> engine.Settlement:
    if option.amount is None:
        return engine.Settlement(kind=option.kind, percent=option.percent)
    return engine.Settlement(
        kind=option.kind, amount=engine.amount_of(option.amount, facts), currency=currency
    )


# What actually happened ---------------------------------------------------------------------


@dataclass(frozen=True)
class Given:
    """A resolution agreed on a past case."""

    kind: str
    amount: Decimal | None
    currency: str
    agreed_by: str


def differs(decision: engine.Decision, given: list[Given]) -> bool:
    """Whether the draft's outcome differs from what was done: settling otherwise (another kind
    or amount, or where nothing was given), or leaving to a person a case that was settled
    without one (automatically, or by the customer accepting an offer)."""
    if decision.outcome == "resolve":
        wanted = decision.options[0]
        return not any(
            g.kind == wanted.kind and (wanted.amount is None or g.amount == wanted.amount)
            for g in given
        )
    if decision.outcome == "offer":
        kinds = {o.kind for o in decision.options}
        return not any(g.kind in kinds for g in given)
    return any(g.agreed_by != Party.STAFF for g in given)


def _what_happened(row: dict[str, Any], given: list[Given], language: str) -> str:
    if given:
        parties = dict(Party.choices)
        return "; ".join(
            f"{engine.describe(engine.Settlement(g.kind, g.amount, g.currency), language)} "
            f"({parties.get(g.agreed_by, g.agreed_by)})"
            for g in given
        )
    if row["status"] == Status.CLOSED:
        return _("closed: %(outcome)s") % {
            "outcome": dict(Outcome.choices).get(row["outcome"], row["outcome"])
        }
    return _("still open: %(status)s") % {
        "status": dict(Status.choices).get(row["status"], row["status"])
    }


def _what_it_would_do(decision: engine.Decision, language: str) -> str:
    if decision.outcome == "resolve":
        return _("resolve: %(what)s") % {"what": engine.describe(decision.options[0], language)}
    if decision.outcome == "offer":
        with translation.override(language):
            options = _(" or ").join(engine.describe(o, language) for o in decision.options)
        return _("offer: %(options)s") % {"options": options}
    label = str(DecisionOutcome(decision.outcome).label)
    return f"{label} ({decision.team})" if decision.team else label


# Reading past cases -------------------------------------------------------------------------

CASE_FIELDS = (
    "id",
    "reference",
    "kind",
    "channel",
    "language",
    "amount",
    "currency",
    "order_number",
    "purchase_date",
    "created_at",
    "status",
    "outcome",
    "customer_id",
    "customer__created_at",
    "category__code",
)


def _window(since: dt.date, until: dt.date | None):
    """Cases opened from the start of `since` to the end of `until` (local days)."""
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(since, dt.time.min, tzinfo=zone)
    cases = Case.objects.filter(created_at__gte=start)
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
        cases = cases.filter(created_at__lt=end)
    return cases


def _chunks(cases, size: int) -> Iterator[list[dict[str, Any]]]:
    last = 0
    while True:
        rows = list(cases.filter(pk__gt=last).order_by("pk").values(*CASE_FIELDS)[:size])
        if not rows:
            return
        yield rows
        last = rows[-1]["id"]


def _latest_facts(ids: list[int]) -> dict[int, tuple[dict, list]]:
    """Each case's latest engine decision's facts and unavailable namespaces."""
    latest: dict[int, tuple[dict, list]] = {}
    rows = (
        Decision.objects.filter(case_id__in=ids, source=DecisionSource.ENGINE)
        .order_by("case_id", "-created_at", "-pk")
        .values_list("case_id", "facts", "unavailable")
    )
    for case_id, facts, unavailable in rows:
        latest.setdefault(case_id, (facts, unavailable))
    return latest


def _given(ids: list[int]) -> dict[int, list[Given]]:
    given: dict[int, list[Given]] = defaultdict(list)
    rows = (
        Resolution.objects.filter(case_id__in=ids)
        .order_by("case_id", "created_at", "pk")
        .values_list("case_id", "kind", "amount", "currency", "agreed_by")
    )
    for case_id, kind, amount, currency, agreed_by in rows:
        given[case_id].append(Given(kind, amount, currency, agreed_by))
    return given


def _empty_value(namespace: str, name: str) -> Any:
    if namespace == "order":
        return fact_schema.empty_order().get(name)
    return _EMPTY[fact_schema.SCHEMA[namespace][name].type]


_EMPTY: dict[str, Any] = {
    fact_schema.BOOL: False,
    fact_schema.INT: 0,
    fact_schema.MONEY: Decimal("0"),
    fact_schema.TEXT: "",
    fact_schema.LIST: [],
}


class _Histories:
    """The customers' other cases and resolutions, for the facts of cases never decided."""

    def __init__(self, customer_ids: Iterable[int]):
        ids = sorted(set(customer_ids))
        self.cases: dict[int, list[tuple[dt.datetime, int, dt.datetime | None]]] = defaultdict(list)
        for customer_id, created, pk, closed in (
            Case.objects.filter(customer_id__in=ids)
            .order_by("customer_id", "created_at", "pk")
            .values_list("customer_id", "created_at", "pk", "closed_at")
        ):
            self.cases[customer_id].append((created, pk, closed))
        self.created = {c: [row[0] for row in rows] for c, rows in self.cases.items()}
        self.resolutions: dict[int, list[tuple[dt.datetime, int, str, Decimal | None]]] = (
            defaultdict(list)
        )
        for customer_id, created, case_id, kind, amount in (
            Resolution.objects.filter(case__customer_id__in=ids)
            .order_by("case__customer_id", "created_at")
            .values_list("case__customer_id", "created_at", "case_id", "kind", "amount")
        ):
            self.resolutions[customer_id].append((created, case_id, kind, amount))

    def customer_facts(self, row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        """`gathering.customer_facts` as of `now` (the day the case was opened)."""
        customer = row["customer_id"]
        mine = row["id"]
        created = self.created.get(customer, [])
        upto = bisect.bisect_right(created, now)

        def since(days: int) -> int:
            start = bisect.bisect_left(created, now - dt.timedelta(days=days))
            others = upto - start
            return others - sum(1 for _c, pk, _x in self.cases[customer][start:upto] if pk == mine)

        open_then = sum(
            1
            for created_at, pk, closed in self.cases.get(customer, [])[:upto]
            if pk != mine and (closed is None or closed > now)
        )
        year = now - dt.timedelta(days=365)
        given = [
            (kind, amount)
            for created_at, case_id, kind, amount in self.resolutions.get(customer, [])
            if case_id != mine and year <= created_at <= now
        ]
        return {
            "customer_since_days": max(0, (now - row["customer__created_at"]).days),
            "complaints_90d": since(90),
            "complaints_365d": since(365),
            "open_cases": open_then,
            "resolutions_365d": len(given),
            "paid_365d": sum(
                (a or Decimal("0") for k, a in given if k in MONEY_KINDS), Decimal("0")
            ),
        }


def _attachment_types(ids: list[int]) -> dict[int, list[str]]:
    types: dict[int, list[str]] = defaultdict(list)
    for case_id, content_type in Attachment.objects.filter(case_id__in=ids).values_list(
        "case_id", "content_type"
    ):
        types[case_id].append(content_type)
    return types


def read_facts(
    row: dict[str, Any], types: list[str], histories: _Histories
) -> tuple[fact_schema.Facts, frozenset[str]]:
    """A never-decided case's facts as `gathering.gather` would have read them the day it was
    opened, without asking the shop: a case naming an order has its order facts unavailable."""
    now = row["created_at"]
    today = timezone.localdate(now)
    purchase = row["purchase_date"]
    amount = row["amount"]
    order = fact_schema.empty_order()
    facts: fact_schema.Facts = {
        "case": {
            "category": row["category__code"],
            "kind": row["kind"],
            "channel": row["channel"],
            "language": row["language"],
            "has_amount": amount is not None,
            "amount": amount if amount is not None else Decimal("0"),
            "currency": row["currency"],
            "has_order_number": bool(row["order_number"]),
            "has_purchase_date": purchase is not None,
            "days_since_purchase": (today - purchase).days if purchase else -1,
            "attachments": len(types),
            "has_photo": any(t.startswith("image/") for t in types),
            "has_document": any(t == "application/pdf" for t in types),
        },
        "customer": histories.customer_facts(row, now),
        "order": order,
        "calendar": {
            "today": today.isoformat(),
            "weekday": today.isoweekday(),
            "month": today.month,
            "days_since_purchase": (today - purchase).days if purchase else -1,
            "business_days_late": order["business_days_late"],
        },
    }
    return facts, frozenset({"order"} if row["order_number"] else ())


# The simulation -----------------------------------------------------------------------------


def _document_and_label(policy: PolicyVersion | Document) -> tuple[Document, str]:
    if isinstance(policy, PolicyVersion):
        return document_of(policy), str(policy)
    name = policy.name.get(translation.get_language() or "es") or policy.name.get("es", "")
    return policy, name or _("draft")


def count_cases(since: dt.date, until: dt.date | None = None) -> int:
    return _window(since, until).count()


def simulate(
    policy: PolicyVersion | Document,
    *,
    since: dt.date,
    until: dt.date | None = None,
    progress: Progress | None = None,
    shown: int = SHOWN_DIFFERENCES,
    chunk: int = CHUNK,
) -> Report:
    """Replay `policy` (a stored version or a parsed draft) over the cases opened from `since`
    to `until` (inclusive) and report what it would do against what was done. Writes nothing.
    `progress(done, total)` is called after each chunk; the first `shown` differing cases are
    kept with their links, all are counted."""
    steps = run(policy, since=since, until=until, shown=shown, chunk=chunk)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as end:
            return end.value
        if progress and done:
            progress(done, total)


def run(
    policy: PolicyVersion | Document,
    *,
    since: dt.date,
    until: dt.date | None = None,
    shown: int = SHOWN_DIFFERENCES,
    chunk: int = CHUNK,
) -> Generator[tuple[int, int], None, Report]:
    """`simulate` one chunk at a time: yields (cases done, cases in all), first (0, total), and
    returns the report (a page streams its progress this way)."""
    started = timezone.now()
    document, label = _document_and_label(policy)
    walker = Walker(document)
    report = Report(policy=label, since=since, until=until)
    language = translation.get_language() or settings.LANGUAGE_CODE
    cases = _window(since, until)
    total = cases.count()
    yield 0, total
    for rows in _chunks(cases, chunk):
        ids = [row["id"] for row in rows]
        stored = _latest_facts(ids)
        given = _given(ids)
        fresh = [row for row in rows if row["id"] not in stored]
        # (empty lists make no query)
        types = _attachment_types([row["id"] for row in fresh])
        histories = _Histories(row["customer_id"] for row in fresh)
        for row in rows:
            case_id = row["id"]
            if case_id in stored:
                data, unavailable = stored[case_id]
                facts = data  # as stored: the walk reads money as text (see Walker.values)
                missing = frozenset(unavailable or ())
                report.from_decisions += 1
            else:
                facts, missing = read_facts(row, types.get(case_id, []), histories)
                report.read_from_case += 1
                report.without_shop_data += bool(missing)
            decision = walker.decide(facts, missing)
            report.considered += 1
            report.outcomes[decision.outcome] += 1
            if decision.outcome == "resolve":
                option = decision.options[0]
                if option.kind in MONEY_KINDS and option.amount is not None:
                    report.would_pay[option.currency].add(option.amount)
            elif decision.outcome == "offer":
                money = [o for o in decision.options if o.amount is not None]
                if money:
                    best = max(money, key=lambda o: o.amount or Decimal("0"))
                    report.would_offer[best.currency].add(best.amount or Decimal("0"))
            done = given.get(case_id, [])
            paid: dict[str, Decimal] = {}
            for g in done:
                if g.kind in MONEY_KINDS and g.amount is not None:
                    paid[g.currency] = paid.get(g.currency, Decimal("0")) + g.amount
            for currency, amount in paid.items():
                report.paid[currency].add(amount)
            if differs(decision, done):
                report.differing += 1
                if len(report.differences) < shown:
                    report.differences.append(
                        Difference(
                            reference=row["reference"],
                            url=reverse("helpdesk:case", args=[row["reference"]]),
                            was=_what_happened(row, done, language),
                            would=_what_it_would_do(decision, language),
                            rule=decision.rule,
                            outcome=decision.outcome,
                        )
                    )
        yield report.considered, total
    report.would_pay = dict(report.would_pay)
    report.would_offer = dict(report.would_offer)
    report.paid = dict(report.paid)
    report.seconds = (timezone.now() - started).total_seconds()
    return report


def absolute(url: str) -> str:
    """A link for people reading the report outside the site (the command's output)."""
    return f"{settings.BASE_URL}{url}"


def format_report(report: Report) -> str:
    """The report as text (the command prints it)."""
    window = {"policy": report.policy, "since": report.since.isoformat()}
    lines = [
        _("Policy %(policy)s over the cases opened from %(since)s to %(until)s")
        % {**window, "until": report.until.isoformat()}
        if report.until
        else _("Policy %(policy)s over the cases opened since %(since)s") % window,
        _(
            "Cases considered: %(count)s (%(stored)s on the facts of their decision, %(read)s read "
            "from the case, %(shop)s of them without shop data)"
        )
        % {
            "count": report.considered,
            "stored": report.from_decisions,
            "read": report.read_from_case,
            "shop": report.without_shop_data,
        },
        "",
    ]
    for code, label, count in report.outcome_rows():
        lines.append(f"  {label} ({code}): {count}")
    lines.append(
        _("  Resolved automatically: %(count)s; escalated or mediated: %(escalated)s")
        % {"count": report.resolved_automatically, "escalated": report.escalated}
    )
    lines.append("")
    for row in report.money_rows():
        lines.append(
            _(
                "%(currency)s: would pay %(total)s over %(cases)s cases (average %(average)s); "
                "actually paid %(paid)s over %(paid_cases)s cases (average %(paid_average)s); "
                "would offer up to %(offered)s over %(offer_cases)s cases"
            )
            % {
                "currency": row["currency"],
                "total": row["would_pay"].amount,
                "cases": row["would_pay"].cases,
                "average": row["would_pay"].average,
                "paid": row["paid"].amount,
                "paid_cases": row["paid"].cases,
                "paid_average": row["paid"].average,
                "offered": row["would_offer"].amount,
                "offer_cases": row["would_offer"].cases,
            }
        )
    lines.append("")
    lines.append(
        _("Cases where it differs from what was done: %(count)s") % {"count": report.differing}
    )
    for difference in report.differences:
        lines.append(
            f"  {difference.reference}: {difference.was} → {difference.would}"
            + (f" [{difference.rule}]" if difference.rule else "")
            + f"  {absolute(difference.url)}"
        )
    if report.differing > len(report.differences):
        lines.append(
            _("  … and %(more)s more") % {"more": report.differing - len(report.differences)}
        )
    lines.append("")
    lines.append(_("Simulated in %(seconds).1f s") % {"seconds": report.seconds})
    return "\n".join(str(line) for line in lines)
