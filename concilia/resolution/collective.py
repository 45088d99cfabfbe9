"""Collective complaints: many customers complaining about the same thing (a product, a shipment
batch, a carrier's delivery day, a charge) within a window, flagged so that supervisors can act
once for all the cases, before the complaints reach social media or a regulator.

How it works:
- every triaged case leaves one `CollectiveSignal` per thing it shares (its SKUs, its carrier and
  promised day…), in the categories each kind's `CollectiveRule` watches;
- detection counts the distinct customers of the same (kind, key) within the rule's window, with
  the `collective_signal_key_seen` index, never reading the cases themselves;
- at the threshold one open `CollectiveFlag` is raised per key (a partial unique constraint keeps
  it one under concurrent triage), the cases join it once each, an event is written on each and
  the supervisors are told once; later cases of the same key join the open flag;
- the periodic sweep raises the flags two concurrent triages may both have missed, and forgets
  signals older than every window;
- a supervisor applies one settlement to every still-open case of a flag (each case in its own
  transaction, an audited override) or dismisses the flag, with a reason either way. After that
  only complaints that arrive later count towards a new flag for the same key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.cases import actions as case_actions
from concilia.cases.access import may_change
from concilia.cases.models import (
    ActorKind,
    Case,
    Category,
    EventKind,
    NotificationKind,
    Outcome,
)
from concilia.core import audit
from concilia.resolution import facts as fact_schema
from concilia.resolution.engine import Settlement, money
from concilia.resolution.models import (
    CollectiveFlag,
    CollectiveKind,
    CollectiveMember,
    CollectiveRule,
    CollectiveSignal,
    Decision,
    FlagStatus,
)
from concilia.resolution.policy import KINDS, MONEY_KINDS

logger = logging.getLogger(__name__)

KEY_LENGTH = 200
# Signals are only counted within a window; older ones are forgotten by the sweep after this.
KEEP_SIGNALS = dt.timedelta(days=30)


class FlagNotOpen(Exception):
    """The flag was already acted on or dismissed (perhaps by another supervisor just now)."""


class ReasonMissing(Exception):
    """Acting on or dismissing a flag needs a reason."""


# Rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A kind's rule as detection reads it."""

    kind: str
    min_customers: int
    window: dt.timedelta
    categories: frozenset[str]  # empty: every category
    active: bool = True

    def watches(self, category: str) -> bool:
        return self.active and (not self.categories or category in self.categories)


# What applies while an administrator has not saved a rule for a kind (the migration seeds these).
DEFAULT_RULES: dict[str, Threshold] = {
    CollectiveKind.PRODUCT: Threshold(
        CollectiveKind.PRODUCT,
        5,
        dt.timedelta(hours=48),
        frozenset({"technical_problem", "damaged_missing", "return"}),
    ),
    CollectiveKind.SHIPMENT_BATCH: Threshold(
        CollectiveKind.SHIPMENT_BATCH,
        5,
        dt.timedelta(hours=48),
        frozenset({"damaged_missing", "shipping_delay"}),
    ),
    CollectiveKind.CARRIER_DAY: Threshold(
        CollectiveKind.CARRIER_DAY,
        5,
        dt.timedelta(hours=48),
        frozenset({"shipping_delay", "damaged_missing"}),
    ),
    CollectiveKind.CHARGE: Threshold(
        CollectiveKind.CHARGE, 5, dt.timedelta(hours=48), frozenset({"billing_error"})
    ),
}


def thresholds() -> dict[str, Threshold]:
    """Each kind's rule from the database, else its default (two queries)."""
    rules = dict(DEFAULT_RULES)
    for rule in CollectiveRule.objects.prefetch_related("categories"):
        rules[rule.kind] = Threshold(
            kind=rule.kind,
            min_customers=rule.min_customers,
            window=dt.timedelta(hours=rule.window_hours),
            categories=frozenset(c.code for c in rule.categories.all()),
            active=rule.active,
        )
    return rules


# What a case shares -------------------------------------------------------------------------


@dataclass(frozen=True)
class Trait:
    """One thing a complaint may share with others: a kind and its key, with the key's parts."""

    kind: str
    key: str
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def amount(self) -> Decimal | None:
        return Decimal(self.detail["amount"]) if "amount" in self.detail else None


def _clean(text: Any) -> str:
    return " ".join(str(text or "").split())


def traits(facts: fact_schema.Facts) -> list[Trait]:
    """What the case with these facts shares with others (a pure function of the facts)."""
    found: list[Trait] = []
    order = facts.get("order", {})
    case = facts.get("case", {})
    if order.get("found"):
        for sku in dict.fromkeys(_clean(s) for s in order.get("skus") or ()):
            if sku:
                found.append(Trait(CollectiveKind.PRODUCT, sku[:KEY_LENGTH], {"sku": sku}))
        carrier = _clean(order.get("carrier"))
        if carrier and order.get("placed_on"):
            found.append(_day_trait(CollectiveKind.SHIPMENT_BATCH, carrier, order["placed_on"]))
        if carrier and order.get("promised_on"):
            found.append(_day_trait(CollectiveKind.CARRIER_DAY, carrier, order["promised_on"]))
    if case.get("has_amount") and case.get("category"):
        amount = Decimal(str(case.get("amount"))).quantize(Decimal("0.01"))
        if amount > 0:
            currency = _clean(case.get("currency")).upper()[:3]
            found.append(
                Trait(
                    CollectiveKind.CHARGE,
                    f"{case['category']}|{amount}|{currency}",
                    {"category": case["category"], "amount": str(amount), "currency": currency},
                )
            )
    return found


def _day_trait(kind: str, carrier: str, day: str) -> Trait:
    carrier = carrier[: KEY_LENGTH - 11]
    return Trait(kind, f"{carrier}|{day}", {"carrier": carrier, "day": day})


def trait_of(kind: str, key: str) -> Trait:
    """The trait a stored key stands for (the inverse of the keys `traits` makes)."""
    if kind == CollectiveKind.PRODUCT:
        return Trait(kind, key, {"sku": key})
    if kind == CollectiveKind.CHARGE:
        category, amount, currency = [*key.split("|", 2), "", ""][:3]
        try:
            Decimal(amount)
        except InvalidOperation:
            amount = "0"
        return Trait(kind, key, {"category": category, "amount": amount, "currency": currency})
    carrier, _bar, day = key.rpartition("|")
    return Trait(kind, key, {"carrier": carrier, "day": day})


def describe(
    kind: str,
    detail: dict[str, Any],
    *,
    language: str | None = None,
    category_names: dict[str, str] | None = None,
) -> str:
    """What the complaints share, for people: "product SKU-KETTLE", "SEUR, delivery promised
    for 05/12/2026", "charges of 12,99 € (Billing error)"."""
    language = language or translation.get_language() or "es"
    with translation.override(language):
        day = detail.get("day", "")
        if day:
            with contextlib.suppress(ValueError):
                day = formats.date_format(dt.date.fromisoformat(day), "SHORT_DATE_FORMAT")
        if kind == CollectiveKind.PRODUCT:
            return _("product %(sku)s") % {"sku": detail.get("sku", "")}
        if kind == CollectiveKind.SHIPMENT_BATCH:
            return _("orders placed on %(day)s, sent with %(carrier)s") % {
                "day": day,
                "carrier": detail.get("carrier", ""),
            }
        if kind == CollectiveKind.CARRIER_DAY:
            return _("%(carrier)s, delivery promised for %(day)s") % {
                "carrier": detail.get("carrier", ""),
                "day": day,
            }
        if kind == CollectiveKind.TOPIC:
            return _("similar complaints: %(terms)s") % {"terms": detail.get("terms", "")}
        code = detail.get("category", "")
        return _("charges of %(amount)s (%(category)s)") % {
            "amount": money(
                Decimal(detail.get("amount") or "0"), detail.get("currency", ""), language
            ),
            "category": (category_names or {}).get(code, code),
        }


def describe_flag(flag: CollectiveFlag, **kwargs: Any) -> str:
    return describe(flag.kind, flag.detail, **kwargs)


# Detection ----------------------------------------------------------------------------------


def detect(
    *, case: Case, facts: fact_schema.Facts, now: dt.datetime | None = None
) -> list[CollectiveFlag]:
    """Record what a just-triaged case shares and raise or join the flags it makes; returns the
    open flags the case is in. Called at the end of `actions.triage_case`, inside its
    transaction; a failure here is logged and never undoes the triage (the sweep catches up)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return _detect(case, facts, now)
    except Exception:
        logger.exception("Collective detection failed for case %s", case.reference)
        return []


def _detect(case: Case, facts: fact_schema.Facts, now: dt.datetime) -> list[CollectiveFlag]:
    found = traits(facts)
    if not found:
        return []
    rules = thresholds()
    category = facts.get("case", {}).get("category", "")
    flags = []
    for trait in found:
        rule = rules.get(trait.kind)
        if rule is None or not rule.watches(category):
            continue
        CollectiveSignal.objects.get_or_create(
            case=case,
            kind=trait.kind,
            key=trait.key,
            defaults={"customer_id": case.customer_id, "seen_at": case.created_at},
        )
        flag = _consider(trait, rule, now=now, joining=case)
        if flag is not None:
            flags.append(flag)
    return flags


def _consider(
    trait: Trait, rule: Threshold, *, now: dt.datetime, joining: Case | None
) -> CollectiveFlag | None:
    """Join the key's open flag, or raise one if the threshold is reached; None if neither."""
    flag = CollectiveFlag.objects.open().filter(kind=trait.kind, key=trait.key).first()
    if flag is not None:
        if joining is not None:
            _join(flag, [joining.pk], now=now)
        return flag
    recent = _recent_signals(trait, rule, now)
    if recent.values("customer_id").distinct().count() < rule.min_customers:
        return None
    flag, created = _open_flag(trait, rule, now)
    joined = _join(flag, list(recent.values_list("case_id", flat=True)), now=now)
    if created:
        trigger = joining or (joined[-1] if joined else None)
        if trigger is not None:
            _tell_supervisors(flag, trigger)
    return flag


def _recent_signals(trait: Trait, rule: Threshold, now: dt.datetime):
    """The key's signals within the window, and after the last flag of the key was closed (what
    was acted on or dismissed is not counted again)."""
    since = now - rule.window
    last_closed = (
        CollectiveFlag.objects.filter(kind=trait.kind, key=trait.key, closed_at__isnull=False)
        .order_by("-closed_at")
        .values_list("closed_at", flat=True)
        .first()
    )
    if last_closed is not None and last_closed > since:
        since = last_closed
    return CollectiveSignal.objects.filter(kind=trait.kind, key=trait.key, seen_at__gte=since)


def _open_flag(trait: Trait, rule: Threshold, now: dt.datetime) -> tuple[CollectiveFlag, bool]:
    """The key's open flag, created if there is none: the partial unique constraint makes a
    concurrent creator wait for the first and then find its flag."""
    try:
        with transaction.atomic():
            flag = CollectiveFlag.objects.create(
                kind=trait.kind,
                key=trait.key,
                detail=trait.detail,
                amount=trait.amount,
                currency=trait.detail.get("currency", ""),
                min_customers=rule.min_customers,
                window_hours=int(rule.window.total_seconds() // 3600),
                first_seen_at=now,
                last_seen_at=now,
                raised_at=now,
            )
            return flag, True
    except IntegrityError:
        return CollectiveFlag.objects.open().get(kind=trait.kind, key=trait.key), False


def _join(flag: CollectiveFlag, case_ids: Iterable[int], *, now: dt.datetime) -> list[Case]:
    """Add cases to the flag (each once), write an event on each newcomer and refresh the
    flag's counts; returns the newcomers. The flag's row is locked so counts stay exact."""
    audit.lock_chain()  # the head before the flag, as everyone: the reverse order deadlocked
    CollectiveFlag.objects.select_for_update().filter(pk=flag.pk).first()
    ids = set(case_ids)
    already = set(
        CollectiveMember.objects.filter(flag=flag, case_id__in=ids).values_list(
            "case_id", flat=True
        )
    )
    newcomers = sorted(ids - already)
    if not newcomers:
        return []
    CollectiveMember.objects.bulk_create(
        [CollectiveMember(flag=flag, case_id=pk, joined_at=now) for pk in newcomers],
        ignore_conflicts=True,
    )
    cases = list(Case.objects.filter(pk__in=newcomers).order_by("created_at", "pk"))
    for case in cases:
        case_actions.record_event(
            case=case,
            kind=EventKind.LINKED,
            actor_kind=ActorKind.SYSTEM,
            data={
                "collective": flag.pk,
                "kind": flag.kind,
                "key": flag.key,
                "raised": flag.raised_at == now,
            },
        )
    counts = CollectiveMember.objects.filter(flag=flag).aggregate(
        cases=Count("pk"),
        customers=Count("case__customer", distinct=True),
        first=Min("case__created_at"),
        last=Max("case__created_at"),
    )
    CollectiveFlag.objects.filter(pk=flag.pk).update(
        case_count=counts["cases"],
        customers=counts["customers"],
        first_seen_at=counts["first"],
        last_seen_at=counts["last"],
    )
    flag.case_count, flag.customers = counts["cases"], counts["customers"]
    flag.first_seen_at, flag.last_seen_at = counts["first"], counts["last"]
    return cases


def supervisors_for(flag: CollectiveFlag) -> list[User]:
    """Who is told of a new flag: the supervisors of the teams of its cases and those who see
    every case; when that is nobody, every supervisor."""
    may_supervise = User.objects.filter(
        Q(is_superuser=True)
        | Q(
            groups__permissions__codename="supervise_teams",
            groups__permissions__content_type__app_label="accounts",
        )
        | Q(
            user_permissions__codename="supervise_teams",
            user_permissions__content_type__app_label="accounts",
        )
    )
    sees_all = User.objects.filter(
        Q(is_superuser=True)
        | Q(
            groups__permissions__codename="see_all_cases",
            groups__permissions__content_type__app_label="accounts",
        )
        | Q(
            user_permissions__codename="see_all_cases",
            user_permissions__content_type__app_label="accounts",
        )
    )
    teams = flag.members.filter(case__team__isnull=False).values("case__team__group")
    supervisors = User.objects.filter(is_active=True, pk__in=may_supervise.values("pk"))
    chosen = list(
        supervisors.filter(Q(groups__in=teams) | Q(pk__in=sees_all.values("pk")))
        .distinct()
        .order_by("pk")
    )
    return chosen or list(supervisors.distinct().order_by("pk"))


def _tell_supervisors(flag: CollectiveFlag, trigger: Case) -> None:
    for person in supervisors_for(flag):
        with translation.override(person.language):
            note = _(
                "%(what)s: %(customers)s customers (%(kind)s). See /helpdesk/collective/%(pk)s"
            ) % {
                "what": describe_flag(flag, language=person.language),
                "customers": flag.customers,
                "kind": flag.get_kind_display(),
                "pk": flag.pk,
            }
        # cases offers no public notification action yet; this is the one every sweep uses.
        case_actions.notify_staff(
            recipient=person, case=trigger, kind=NotificationKind.COLLECTIVE, note=note
        )


# The periodic sweep ------------------------------------------------------------------------


def sweep(*, now: dt.datetime | None = None) -> int:
    """Raise the flags that concurrent triages may have missed (each seeing the other's case
    uncommitted) and forget old signals; returns how many flags were raised. For
    settings.SWEEP_JOBS."""
    now = now or timezone.now()
    raised = 0
    rules = thresholds()
    for rule in rules.values():
        if not rule.active:
            continue
        candidates = (
            CollectiveSignal.objects.filter(kind=rule.kind, seen_at__gte=now - rule.window)
            .values("key")
            .annotate(customers=Count("customer_id", distinct=True))
            .filter(customers__gte=rule.min_customers)
            .values_list("key", flat=True)
        )
        keys = set(candidates[:1000])
        keys -= set(
            CollectiveFlag.objects.open()
            .filter(kind=rule.kind, key__in=keys)
            .values_list("key", flat=True)
        )
        for key in sorted(keys):
            try:
                with transaction.atomic():
                    before = CollectiveFlag.objects.open().filter(kind=rule.kind, key=key).exists()
                    flag = _consider(trait_of(rule.kind, key), rule, now=now, joining=None)
                    raised += flag is not None and not before
            except Exception:
                logger.exception("Collective sweep: %s %s failed", rule.kind, key)
    longest = max((r.window for r in rules.values()), default=dt.timedelta(0))
    old = CollectiveSignal.objects.filter(seen_at__lt=now - max(KEEP_SIGNALS, longest))
    old.filter(pk__in=list(old.values_list("pk", flat=True)[:5000])).delete()
    return raised


# Acting on a flag ---------------------------------------------------------------------------


# Why a linked case was not settled (stored as codes, worded in the reader's language).
CLOSED, NOT_YOURS, NO_DECISION, REFUSED, FAILED = (
    "closed",
    "not_yours",
    "no_decision",
    "refused",
    "failed",
)


def why_not_settled(item: dict[str, str]) -> str:
    """An entry of `CollectiveFlag.not_settled` for people, in the active language."""
    texts = {
        CLOSED: _("already closed (%(detail)s)"),
        NOT_YOURS: _("not a case of your teams"),
        NO_DECISION: _("it has no decision to override"),
        REFUSED: _("refused: %(detail)s"),
        FAILED: _("it could not be settled (%(detail)s)"),
    }
    detail = item.get("detail", "")
    if item.get("why") == CLOSED:
        with contextlib.suppress(ValueError):
            detail = str(Outcome(detail).label)
    return texts.get(item.get("why", ""), "%(detail)s") % {"detail": detail}


@dataclass
class ActReport:
    """What applying one settlement to a flag's cases did."""

    settled: list[str] = field(default_factory=list)  # references
    # {"reference", "why" (a code above), "detail"}
    not_settled: list[dict[str, str]] = field(default_factory=list)


def _claim(
    flag: CollectiveFlag, *, status: str, actor: User, reason: str, now: dt.datetime, **fields: Any
) -> None:
    claimed = CollectiveFlag.objects.filter(pk=flag.pk, status=FlagStatus.OPEN).update(
        status=status, closed_at=now, closed_by=actor, close_reason=reason[:2000], **fields
    )
    if not claimed:
        raise FlagNotOpen(flag.pk)


class InvalidSettlement(Exception):
    """A settlement that cannot be given as it is (a refund without an amount…)."""


def check_settlement(settlement: Settlement) -> None:
    """InvalidSettlement unless the settlement is one a policy could give."""
    if settlement.kind not in KINDS:
        raise InvalidSettlement(_("Choose what to give."))
    if settlement.kind in MONEY_KINDS:
        if settlement.amount is None or settlement.amount <= 0:
            raise InvalidSettlement(_("A refund or a credit needs an amount above zero."))
        if len(settlement.currency) != 3:
            raise InvalidSettlement(_("Give the amount's currency, e.g. EUR."))
    elif settlement.amount is not None:
        raise InvalidSettlement(_("Only refunds and credits have an amount."))
    if settlement.kind == "discount_code" and not (
        settlement.percent is not None and 0 < settlement.percent <= 100
    ):
        raise InvalidSettlement(_("A discount code needs a percentage between 1 and 100."))


def act_on_flag(
    *, flag: CollectiveFlag, actor: User, settlement: Settlement, reason: str
) -> ActReport:
    """Settle every still-open case of the flag on one settlement, each as an audited override
    of its latest decision in its own transaction, with the supervisor's reason; a case that
    cannot be settled (closed, not the supervisor's, no decision, an error) is reported with
    why. The flag is claimed first, so two supervisors never both apply."""
    reason = reason.strip()
    if not reason:
        raise ReasonMissing
    check_settlement(settlement)
    now = timezone.now()
    _claim(
        flag,
        status=FlagStatus.ACTED,
        actor=actor,
        reason=reason,
        now=now,
        applied_kind=settlement.kind,
        applied_amount=settlement.amount,
        applied_currency=settlement.currency,
        applied_percent=settlement.percent,
    )
    report = ActReport()
    members = flag.members.select_related("case").order_by("joined_at", "pk")
    audit = _("Collective complaint #%(pk)s: %(reason)s") % {"pk": flag.pk, "reason": reason}
    for member in members:
        case = member.case
        try:
            why, detail = _settle_one(case, actor=actor, settlement=settlement, reason=audit)
        except Exception as error:  # one case failing must not stop the others
            logger.exception("Collective flag %s: case %s not settled", flag.pk, case.reference)
            why, detail = FAILED, type(error).__name__
        if why:
            report.not_settled.append({"reference": case.reference, "why": why, "detail": detail})
        else:
            report.settled.append(case.reference)
    CollectiveFlag.objects.filter(pk=flag.pk).update(
        settled=len(report.settled), not_settled=report.not_settled
    )
    flag.refresh_from_db()
    return report


@transaction.atomic
def _settle_one(case: Case, *, actor: User, settlement: Settlement, reason: str) -> tuple[str, str]:
    """Settle one case: ("", "") when done, else why not (a code and a detail)."""
    from concilia.resolution import actions  # actions calls this module at triage

    current = Case.objects.select_for_update().get(pk=case.pk)
    if not current.is_open:
        return CLOSED, current.outcome
    if not may_change(actor, current):
        return NOT_YOURS, ""
    decision = Decision.objects.filter(case=current).order_by("-created_at", "-pk").first()
    if decision is None:
        return NO_DECISION, ""
    try:
        actions.override_decision(
            decision=decision, actor=actor, reason=reason, settlement=settlement
        )
    except actions.InvalidAnswer as error:
        transaction.set_rollback(True)
        return REFUSED, str(error)
    return "", ""


@transaction.atomic
def dismiss_flag(*, flag: CollectiveFlag, actor: User, reason: str) -> CollectiveFlag:
    """The complaints are not one problem after all (or were handled elsewhere): the flag is
    closed with the reason, its cases go on as they were."""
    reason = reason.strip()
    if not reason:
        raise ReasonMissing
    _claim(flag, status=FlagStatus.DISMISSED, actor=actor, reason=reason, now=timezone.now())
    flag.refresh_from_db()
    return flag


def category_names() -> dict[str, str]:
    return {c.code: c.name for c in Category.objects.all()}
