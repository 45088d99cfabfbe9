"""Every write of the resolution engine: policy versions, decisions on cases, offers and their
negotiation, binding resolutions and agents' overrides."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import Team, User
from concilia.cases import actions as case_actions
from concilia.cases.models import ActorKind, Case, Category, EventKind, Outcome, Status
from concilia.core import audit
from concilia.core.events import EventType, emit
from concilia.core.tasks import enqueue_with_change
from concilia.resolution import collective, engine, gathering
from concilia.resolution import facts as fact_schema
from concilia.resolution.models import (
    Decision,
    DecisionOutcome,
    DecisionSource,
    FollowUp,
    Offer,
    OfferStatus,
    Party,
    Policy,
    PolicyVersion,
    Resolution,
    VersionStatus,
)
from concilia.resolution.policy import Document, parse

# Domain errors a customer or an agent can cause; the edges turn them into translated messages.


class OfferNotOpen(Exception):
    """The offer was already answered (or withdrawn): it cannot be answered again."""


class OfferExpired(Exception):
    """The offer's time ran out before the answer."""


class InvalidAnswer(Exception):
    """An answer the offer cannot take (an option it does not have, an amount that is not one)."""


# Policies -------------------------------------------------------------------------------


def known_codes() -> tuple[set[str], set[str]]:
    return (
        set(Category.objects.values_list("code", flat=True)),
        set(Team.objects.values_list("code", flat=True)),
    )


def check_policy(source: str) -> Document:
    """The document, checked against the categories and teams that exist; PolicyInvalid if not."""
    categories, teams = known_codes()
    return parse(source, categories=categories, teams=teams)


@transaction.atomic
def save_policy_version(
    *,
    code: str,
    source: str,
    author: User | None,
    note: str = "",
    publish: bool = False,
) -> PolicyVersion:
    """Store a new version of a policy (creating the policy the first time). An invalid document
    raises PolicyInvalid and stores nothing. `publish` makes it live at once."""
    document = check_policy(source)
    policy, _created = Policy.objects.select_for_update().get_or_create(
        code=code,
        defaults={"name_es": document.name["es"], "name_en": document.name["en"]},
    )
    policy.name_es, policy.name_en = document.name["es"], document.name["en"]
    policy.save(update_fields=["name_es", "name_en"])
    last = policy.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = PolicyVersion.objects.create(
        policy=policy, number=last + 1, source=source, note=note[:300], created_by=author
    )
    if publish:
        publish_version(version=version, actor=author)
    return version


@transaction.atomic
def publish_version(*, version: PolicyVersion, actor: User | None) -> PolicyVersion:
    """Make a version live (checked again: categories or teams may have changed since it was
    written); the version live before it is retired. Cases decided before keep their version."""
    check_policy(version.source)
    policy = Policy.objects.select_for_update().get(pk=version.policy_id)
    PolicyVersion.objects.filter(policy=policy, status=VersionStatus.LIVE).exclude(
        pk=version.pk
    ).update(status=VersionStatus.RETIRED)
    version.status = VersionStatus.LIVE
    version.published_at = timezone.now()
    version.published_by = actor
    version.save(update_fields=["status", "published_at", "published_by"])
    policy.live_version = version
    policy.save(update_fields=["live_version"])
    return version


@lru_cache(maxsize=64)
def _document(version_id: int, source: str) -> Document:
    # Versions never change once saved, so a parsed document is kept per process.
    return parse(source)


def document_of(version: PolicyVersion) -> Document:
    return _document(version.pk, version.source)


def live_versions() -> list[PolicyVersion]:
    return list(
        PolicyVersion.objects.filter(status=VersionStatus.LIVE)
        .select_related("policy")
        .order_by("policy__position", "policy__code")
    )


# Deciding ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """What the live policies say about a case, before anything is written."""

    version: PolicyVersion | None
    decision: engine.Decision
    facts: fact_schema.Facts
    unavailable: frozenset[str]


def propose(case: Case, *, now: dt.datetime | None = None) -> Proposal:
    """Ask every live policy, in order, about the case; the first that decides wins."""
    facts, unavailable = gathering.gather(case, now=now)
    trace: list[engine.Step] = []
    for version in live_versions():
        decision = engine.evaluate(facts, document_of(version), unavailable=unavailable)
        if decision.outcome != DecisionOutcome.NONE:
            steps = tuple(trace) + decision.trace
            return Proposal(version, _with_trace(decision, steps), facts, unavailable)
        trace += [
            engine.Step(f"{version.policy.code}:{s.rule}", s.result, s.detail, s.values)
            for s in decision.trace
        ]
    none = engine.evaluate(facts, Document(name={}, rules=()))
    return Proposal(None, _with_trace(none, tuple(trace)), facts, unavailable)


def _with_trace(decision: engine.Decision, trace: tuple[engine.Step, ...]) -> engine.Decision:
    return engine.Decision(**{**decision.__dict__, "trace": trace})


def replay(record: Decision) -> engine.Decision:
    """The decision the same policy version gives today for the facts stored with `record`."""
    if record.policy_version is None:
        return engine.evaluate(fact_schema.from_json(record.facts), Document(name={}, rules=()))
    return engine.evaluate(
        fact_schema.from_json(record.facts),
        document_of(record.policy_version),
        unavailable=frozenset(record.unavailable),
    )


def _store(case: Case, proposal: Proposal, *, now: dt.datetime) -> Decision:
    decision = proposal.decision
    return Decision.objects.create(
        case=case,
        outcome=decision.outcome,
        policy_version=proposal.version,
        rule=decision.rule,
        detail=decision.detail_json(),
        facts=fact_schema.to_json(proposal.facts),
        unavailable=sorted(proposal.unavailable),
        trace=[s.to_json() for s in decision.trace],
        reason_es=decision.reason.get("es", ""),
        reason_en=decision.reason.get("en", ""),
        created_at=now,
    )


@transaction.atomic
def triage_case(*, case: Case, hand_over: bool = True, again: bool = False) -> Decision:
    """Decide a new case by the live policies and act on it: settle it, put an offer to the
    customer, ask for evidence, or pass it to a team with the reason.

    `hand_over=False` leaves the hand-over to the caller (the chat assistant hands over the live
    conversation itself); everything else happens here. A case whose facts could not be read is
    never settled: it waits for a person, who sees why. A case already decided keeps its
    decision (a retried job decides nothing twice) unless `again` (new evidence arrived).
    """
    if not again:
        earlier = Decision.objects.filter(case=case, source=DecisionSource.ENGINE).first()
        if earlier is not None:
            return earlier
    now = timezone.now()
    proposal = propose(case, now=now)
    record = _store(case, proposal, now=now)
    decision = proposal.decision
    case_actions.record_event(
        case=case,
        kind=EventKind.DECISION,
        actor_kind=ActorKind.SYSTEM,
        data={
            "decision": record.pk,
            "outcome": decision.outcome,
            "rule": decision.rule,
            "policy": str(proposal.version) if proposal.version else "",
        },
    )
    reason = record.reason(case.language)
    if decision.outcome == DecisionOutcome.RESOLVE:
        _agree(
            case=case,
            record=record,
            settlement=decision.options[0],
            agreed_by=Party.AUTOMATIC,
            offer=None,
            intro=reason,
        )
    elif decision.outcome == DecisionOutcome.OFFER:
        offer = Offer.objects.create(
            case=case,
            decision=record,
            options=[o.to_json() for o in decision.options],
            counter_terms=record.detail.get("counter"),
            expires_at=now + dt.timedelta(days=decision.valid_days),
            created_at=now,
        )
        _announce_offer(case, offer, intro=reason)
    elif decision.outcome == DecisionOutcome.ASK_EVIDENCE:
        case_actions.message_customer(case=case, body=reason, status=Status.PENDING_CUSTOMER)
    elif decision.outcome in (
        DecisionOutcome.ESCALATE,
        DecisionOutcome.MEDIATE,
        DecisionOutcome.WAIT,
    ):
        if decision.outcome != DecisionOutcome.WAIT:
            case_actions.message_customer(case=case, body=reason)
        if hand_over:
            team = Team.objects.filter(code=decision.team).first() if decision.team else None
            case_actions.hand_over_to_person(
                case=case,
                reason=f"policy:{decision.outcome}",
                note=explain_for_agents(record),
                team=team,
            )
        else:
            case_actions.add_system_note(case=case, body=explain_for_agents(record))
    collective.detect(case=case, facts=proposal.facts, now=now)
    audit.record(audit.DECIDE, target=record, case=case, detail={"outcome": decision.outcome})
    return record


def _announce_offer(case: Case, offer: Offer, *, intro: str) -> None:
    language = case.language
    with translation.override(language):
        lines = [intro, ""]
        for number, option in enumerate(offer.settlements(), 1):
            lines.append(f"{number}. {engine.describe(option, language)}")
        lines += [
            "",
            _(
                "You can accept or choose an option, propose another amount or say no on your "
                "case's page. This offer is open until %(date)s."
            )
            % {"date": timezone.localtime(offer.expires_at).strftime("%d/%m/%Y %H:%M")},
        ]
        body = "\n".join(str(line) for line in lines)
    case_actions.message_customer(case=case, body=body, status=Status.PENDING_CUSTOMER)
    case_actions.record_event(
        case=case,
        kind=EventKind.OFFER_MADE,
        actor_kind=ActorKind.SYSTEM,
        data={"offer": str(offer.public_id), "options": offer.options, "round": offer.round},
    )
    emit(
        EventType.OFFER_MADE,
        subject=case.reference,
        payload={
            "case": case.reference,
            "offer": str(offer.public_id),
            "round": offer.round,
            "options": offer.options,
            "expires_at": offer.expires_at.isoformat(),
        },
    )


def explain_for_agents(record: Decision) -> str:
    """The full trace, for the agent who takes the case over (in the case's language, as the
    assistant's hand-over notes are)."""
    with translation.override(record.case.language):
        return _explanation(record)


def _explanation(record: Decision) -> str:
    lines = [
        _("Policy decision: %(outcome)s (rule %(rule)s, %(policy)s).")
        % {
            "outcome": record.get_outcome_display(),
            "rule": record.rule or "—",
            "policy": str(record.policy_version) if record.policy_version else _("no policy"),
        },
        _("Reason given to the customer: %(reason)s")
        % {"reason": record.reason(record.case.language)},
    ]
    if record.unavailable:
        lines.append(
            _("Could not be read: %(what)s. Nothing was settled automatically.")
            % {"what": ", ".join(record.unavailable)}
        )
    for step in record.trace:
        values = ", ".join(f"{k} = {v}" for k, v in step.get("values", {}).items())
        lines.append(
            f"- {step['rule']}: {step['result']}"
            + (f" ({step['detail']})" if step.get("detail") else "")
            + (f" [{values}]" if values else "")
        )
    return "\n".join(str(line) for line in lines)


def evidence_received(*, case: Case) -> bool:
    """The customer sent files to a case whose policy asked for evidence: decide it again (in
    the background, after commit). True when a new decision was queued."""
    latest = Decision.objects.filter(case=case, source=DecisionSource.ENGINE).first()
    if latest is None or latest.outcome != DecisionOutcome.ASK_EVIDENCE:
        return False
    from concilia.resolution.tasks import decide_again

    enqueue_with_change(decide_again, case_id=case.pk, after_decision=latest.pk)
    return True


# Settling ---------------------------------------------------------------------------------


def _discount_code() -> str:
    return "SORRY-" + secrets.token_hex(4).upper()


def _agree(
    *,
    case: Case,
    record: Decision,
    settlement: engine.Settlement,
    agreed_by: str,
    offer: Offer | None,
    intro: str = "",
    actor: User | None = None,
) -> Resolution:
    """Write the binding resolution, close the case in the customer's favour, confirm it in
    writing and start the follow-up (the refund, the return label) after commit."""
    resolution = Resolution.objects.create(
        case=case,
        decision=record,
        offer=offer,
        kind=settlement.kind,
        amount=settlement.amount,
        currency=settlement.currency if settlement.amount is not None else "",
        percent=settlement.percent,
        discount_code=_discount_code() if settlement.kind == "discount_code" else "",
        agreed_by=agreed_by,
        agreed_by_user=actor,
        follow_up=FollowUp.PENDING if settlement.kind != "discount_code" else FollowUp.NONE,
    )
    case_actions.record_event(
        case=case,
        kind=EventKind.RESOLUTION_AGREED,
        actor_kind=ActorKind.STAFF
        if actor
        else (ActorKind.CUSTOMER if agreed_by == Party.CUSTOMER else ActorKind.SYSTEM),
        actor_user=actor,
        data={
            "resolution": resolution.pk,
            "kind": resolution.kind,
            "amount": str(resolution.amount) if resolution.amount is not None else None,
            "currency": resolution.currency,
            "policy": str(record.policy_version) if record.policy_version else "",
            "rule": record.rule,
        },
    )
    agreed = {
        "case": case.reference,
        "offer": str(offer.public_id) if offer is not None else None,
        "kind": resolution.kind,
        "amount": str(resolution.amount) if resolution.amount is not None else None,
        "currency": resolution.currency,
        "percent": str(resolution.percent) if resolution.percent is not None else None,
        "agreed_by": agreed_by,
    }
    if offer is not None:
        emit(EventType.OFFER_ACCEPTED, subject=case.reference, payload=agreed)
    emit(EventType.RESOLUTION_AGREED, subject=case.reference, payload=agreed)
    case_actions.message_customer(
        case=case,
        body=confirmation_text(resolution, intro=intro),
        status=Status.CLOSED,
        outcome=Outcome.RESOLVED,
    )
    if resolution.follow_up == FollowUp.PENDING:
        from concilia.resolution.tasks import carry_out_resolution

        enqueue_with_change(carry_out_resolution, resolution_id=resolution.pk)
    audit.record(audit.AGREE, target=resolution, case=case, actor=actor, detail=agreed)
    return resolution


def confirmation_text(resolution: Resolution, *, intro: str = "") -> str:
    language = resolution.case.language
    with translation.override(language):
        what = engine.describe(resolution.settlement(), language)
        lines = [intro] if intro else []
        lines.append(
            _("Agreed: %(what)s (case %(reference)s, %(date)s).")
            % {
                "what": what,
                "reference": resolution.case.reference,
                "date": timezone.localtime(resolution.created_at).strftime("%d/%m/%Y"),
            }
        )
        if resolution.discount_code:
            lines.append(_("Your discount code: %(code)s") % {"code": resolution.discount_code})
        elif resolution.kind in ("refund", "partial_refund"):
            lines.append(
                _(
                    "The refund goes back to the payment method you used; banks take up to 10 days to show it."
                )
            )
        elif resolution.kind == "credit":
            lines.append(_("The credit is added to your account for your next purchase."))
        elif resolution.kind == "return_label":
            lines.append(_("You will receive the return label by email."))
        elif resolution.kind == "replacement":
            lines.append(_("We will send the replacement and tell you its tracking number."))
        return "\n".join(str(line) for line in lines)


# The customer answers an offer -------------------------------------------------------------


def _open_offer(offer: Offer, now: dt.datetime) -> Offer:
    current = Offer.objects.select_for_update().select_related("case", "decision").get(pk=offer.pk)
    if current.status != OfferStatus.OPEN:
        raise OfferNotOpen(current.get_status_display())
    if current.expires_at <= now:
        raise OfferExpired(current.expires_at.isoformat())
    return current


def _close_offer(offer: Offer, status: str, now: dt.datetime, **fields) -> None:
    offer.status = status
    offer.answered_at = now
    for name, value in fields.items():
        setattr(offer, name, value)
    offer.save(update_fields=["status", "answered_at", *fields])
    case_actions.record_event(
        case=offer.case,
        kind=EventKind.OFFER_ANSWERED,
        actor_kind=ActorKind.CUSTOMER,
        data={
            "offer": str(offer.public_id),
            "answer": status,
            **{k: (str(v) if isinstance(v, Decimal) else v) for k, v in fields.items()},
        },
    )


@transaction.atomic
def accept_offer(*, offer: Offer, option: int = 0) -> Resolution:
    """The customer accepts the offer, or one of its options (0-based): a binding resolution."""
    now = timezone.now()
    current = _open_offer(offer, now)
    settlements = current.settlements()
    if not 0 <= option < len(settlements):
        raise InvalidAnswer(_("This offer has no option %(number)s.") % {"number": option + 1})
    _close_offer(current, OfferStatus.ACCEPTED, now, chosen_option=option)
    return _agree(
        case=current.case,
        record=current.decision,
        settlement=settlements[option],
        agreed_by=Party.CUSTOMER,
        offer=current,
    )


@transaction.atomic
def reject_offer(*, offer: Offer, reason: str, hand_over: bool = True) -> Offer:
    """The customer says no, with their reason: a person takes the case from there
    (`hand_over=False`: the caller hands over, as the chat does with its live conversation)."""
    now = timezone.now()
    current = _open_offer(offer, now)
    reason = reason.strip()
    if not reason:
        raise InvalidAnswer(_("Tell us why the offer does not suit you."))
    _close_offer(current, OfferStatus.REJECTED, now, rejection_reason=reason[:2000])
    case = current.case
    with translation.override(case.language):
        note = (
            _("The customer rejected the offer: %(reason)s") % {"reason": reason}
            + "\n\n"
            + explain_for_agents(current.decision)
        )
    if hand_over:
        case_actions.add_customer_message(case=case, body=reason)
        case_actions.hand_over_to_person(case=case, reason="offer_rejected", note=note)
    else:
        case_actions.add_system_note(case=case, body=note)
    return current


def parse_amount(text: str | Decimal) -> Decimal:
    """An amount the customer typed ("45", "45,50", "45.50 €", "1.234,50"); InvalidAnswer if it
    is not a positive sum of money with at most two decimals."""
    if isinstance(text, Decimal):
        value = text
    else:
        cleaned = re.sub(r"\s|€|\$|£|EUR|USD|GBP", "", str(text), flags=re.IGNORECASE)
        if re.fullmatch(r"\d{1,3}(\.\d{3})+(,\d{1,2})?", cleaned):  # 1.234,50
            cleaned = cleaned.replace(".", "").replace(",", ".")
        elif re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d{1,2})?", cleaned):  # 1,234.50
            cleaned = cleaned.replace(",", "")
        elif re.fullmatch(r"\d{1,10}([.,]\d{1,2})?", cleaned):
            cleaned = cleaned.replace(",", ".")
        else:
            raise InvalidAnswer(_("Write the amount as a number, for example 45 or 45.50."))
        value = Decimal(cleaned)
    if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise InvalidAnswer(
            _("Write the amount as a number above zero, with at most two decimals.")
        )
    if value > Decimal("9999999999"):
        raise InvalidAnswer(_("That amount is too large."))
    return value.quantize(engine.CENT)


@dataclass(frozen=True)
class CounterResult:
    """What happened to a counter-proposal: accepted (a resolution), a new offer, or a person."""

    resolution: Resolution | None = None
    offer: Offer | None = None
    handed_over: bool = False
    message: str = ""  # what the customer was told (the better offer's lead, or why a person)


@transaction.atomic
def counter_offer(*, offer: Offer, amount: str | Decimal, hand_over: bool = True) -> CounterResult:
    """The customer proposes another amount. Within the policy's limit (up to a percentage above
    the best option, never above its cap) it is accepted at once; beyond it, a new offer at the
    limit while rounds remain, then a person decides."""
    value = parse_amount(amount)
    now = timezone.now()
    current = _open_offer(offer, now)
    settlements = current.settlements()
    money = [s for s in settlements if s.amount is not None]
    if not money:
        raise InvalidAnswer(_("This offer cannot be answered with an amount."))
    best = max(money, key=lambda s: s.amount or Decimal("0"))
    best_amount = best.amount or Decimal("0")
    terms = current.counter_terms
    case = current.case
    limit = best_amount
    if terms is not None:
        limit = best_amount * (1 + Decimal(terms["up_to_percent"]) / 100)
        if terms.get("cap") is not None:
            limit = min(limit, Decimal(terms["cap"]))
        limit = max(best_amount, limit.quantize(engine.CENT))
    if terms is not None and value <= limit:
        _close_offer(current, OfferStatus.ACCEPTED, now, counter_amount=value)
        settlement = engine.Settlement(kind=best.kind, amount=value, currency=best.currency)
        resolution = _agree(
            case=case,
            record=current.decision,
            settlement=settlement,
            agreed_by=Party.CUSTOMER,
            offer=current,
        )
        return CounterResult(resolution=resolution)
    more_rounds = terms is not None and current.round < int(terms.get("rounds", 1))
    _close_offer(
        current,
        OfferStatus.COUNTERED if more_rounds else OfferStatus.ESCALATED,
        now,
        counter_amount=value,
    )
    if more_rounds and terms is not None:
        following = Offer.objects.create(
            case=case,
            decision=current.decision,
            options=[engine.Settlement(best.kind, limit, best.currency).to_json()],
            counter_terms={**terms, "up_to_percent": "0", "cap": str(limit)},
            round=current.round + 1,
            expires_at=max(current.expires_at, now + dt.timedelta(days=2)),
            previous=current,
            created_at=now,
        )
        with translation.override(case.language):
            intro = _("We cannot reach %(asked)s, but we can improve our offer to %(limit)s.") % {
                "asked": engine.money(value, best.currency, case.language),
                "limit": engine.money(limit, best.currency, case.language),
            }
        _announce_offer(case, following, intro=intro)
        return CounterResult(offer=following, message=intro)
    with translation.override(case.language):
        told = _(
            "You asked for %(asked)s. That is beyond what we can agree automatically, so a "
            "person from our team will review it and answer you."
        ) % {"asked": engine.money(value, best.currency, case.language)}
    case_actions.message_customer(case=case, body=told)
    with translation.override(case.language):
        note = (
            _("The customer counter-proposed %(amount)s (round %(round)s).")
            % {"amount": value, "round": current.round}
            + "\n\n"
            + explain_for_agents(current.decision)
        )
    if hand_over:
        case_actions.hand_over_to_person(case=case, reason="counter_offer", note=note)
    else:
        case_actions.add_system_note(case=case, body=note)
    return CounterResult(handed_over=True, message=told)


@transaction.atomic
def expire_offers(*, now: dt.datetime | None = None) -> int:
    """Open offers past their time expire; their cases go back to a person. Returns how many."""
    now = now or timezone.now()
    expired = 0
    due = Offer.objects.filter(status=OfferStatus.OPEN, expires_at__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due[:500]):
        claimed = Offer.objects.filter(pk=pk, status=OfferStatus.OPEN).update(
            status=OfferStatus.EXPIRED, answered_at=now
        )
        if not claimed:
            continue
        offer = Offer.objects.select_related("case", "decision").get(pk=pk)
        case_actions.record_event(
            case=offer.case,
            kind=EventKind.OFFER_EXPIRED,
            actor_kind=ActorKind.SYSTEM,
            data={"offer": str(offer.public_id)},
        )
        if offer.case.is_open:
            with translation.override(offer.case.language):
                note = _("The offer expired without an answer from the customer.")
            case_actions.hand_over_to_person(
                case=offer.case,
                reason="offer_expired",
                note=note + "\n\n" + explain_for_agents(offer.decision),
            )
        expired += 1
    return expired


# Agents --------------------------------------------------------------------------------


@transaction.atomic
def override_decision(
    *,
    decision: Decision,
    actor: User,
    reason: str,
    settlement: engine.Settlement | None = None,
) -> Decision:
    """An agent replaces an automated decision, with a mandatory reason (audited). With a
    `settlement` the case is settled on it; without, the automated outcome is simply set aside
    (its open offer withdrawn) and the case stays with the agent."""
    reason = reason.strip()
    if not reason:
        raise InvalidAnswer(_("Say why you override the decision."))
    case = decision.case
    now = timezone.now()
    Offer.objects.filter(case=case, status=OfferStatus.OPEN).update(
        status=OfferStatus.WITHDRAWN, answered_at=now
    )
    record = Decision.objects.create(
        case=case,
        source=DecisionSource.OVERRIDE,
        outcome=DecisionOutcome.RESOLVE if settlement else DecisionOutcome.ESCALATE,
        policy_version=decision.policy_version,
        rule=decision.rule,
        detail={"options": [settlement.to_json()] if settlement else []},
        facts=decision.facts,
        unavailable=decision.unavailable,
        trace=decision.trace,
        overrides=decision,
        actor_user=actor,
        override_reason=reason[:2000],
        created_at=now,
    )
    case_actions.record_event(
        case=case,
        kind=EventKind.DECISION_OVERRIDDEN,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={
            "decision": decision.pk,
            "override": record.pk,
            "was": decision.outcome,
            "settlement": settlement.to_json() if settlement else None,
            "reason": reason[:300],
        },
    )
    if settlement is not None:
        _agree(
            case=case,
            record=record,
            settlement=settlement,
            agreed_by=Party.STAFF,
            offer=None,
            actor=actor,
        )
    audit.record(audit.OVERRIDE, target=record, case=case, actor=actor)
    return record
