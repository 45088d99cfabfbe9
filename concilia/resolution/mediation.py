"""Mediation with more than two parties: third parties (a carrier, a marketplace seller, a
supplier) invited by a signed link state their side and send evidence; a neutral supervisor reads
every statement side by side and proposes; the proposal binds once every party accepted, and the
resolution records who did."""

from __future__ import annotations

from collections.abc import Sequence

from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.cases import actions as case_actions
from concilia.cases.attachments import CheckedFile
from concilia.cases.models import ActorKind, Case, EventKind, Status
from concilia.core.tasks import enqueue_with_change
from concilia.resolution import engine
from concilia.resolution.models import (
    CaseParty,
    Decision,
    DecisionOutcome,
    DecisionSource,
    Offer,
    OfferStatus,
    Party,
    Proposal,
    ProposalAnswer,
    ProposalStatus,
    Resolution,
    Statement,
)

_SALT = "concilia.resolution.party-link"
# A party's link works this long after its last invitation or proposal email.
LINK_DAYS = 60


class PartyLinkInvalid(Exception):
    """The link was altered, belongs to no party, or the case is no longer open to it."""


class PartyLinkExpired(Exception):
    """The link is older than LINK_DAYS."""


class ProposalNotOpen(Exception):
    """The proposal was already agreed, rejected or withdrawn."""


class AlreadyAnswered(Exception):
    """This party already answered this proposal."""


class InvalidMediation(Exception):
    """Input the mediation cannot take (an empty statement, a rejection without a reason…)."""


# Links ----------------------------------------------------------------------------------------


def party_link_token(party: CaseParty) -> str:
    """The secret in a party's link: its id signed with the site's key and the time."""
    return signing.TimestampSigner(salt=_SALT).sign(str(party.public_id))


def party_from_link(token: str) -> CaseParty:
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        public_id = signer.unsign(token, max_age=LINK_DAYS * 86400)
    except signing.SignatureExpired:
        raise PartyLinkExpired from None
    except signing.BadSignature:
        raise PartyLinkInvalid from None
    party = (
        CaseParty.objects.select_related("case__category", "case__customer")
        .filter(public_id=public_id)
        .first()
    )
    if party is None or party.revoked_at is not None:
        raise PartyLinkInvalid
    return party


# The mediator ------------------------------------------------------------------------------


@transaction.atomic
def invite_party(
    *, case: Case, role: str, name: str, email: str, language: str, actor: User
) -> CaseParty:
    """Invite a third party to state its side; it gets a signed link by email."""
    try:
        with transaction.atomic():
            party = CaseParty.objects.create(
                case=case,
                role=role,
                name=name.strip(),
                email=email.strip().lower(),
                language=language,
                invited_by=actor,
            )
    except IntegrityError:
        raise InvalidMediation(_("This address is already a party to the case.")) from None
    case_actions.record_event(
        case=case,
        kind=EventKind.PARTY_INVITED,
        actor_kind=ActorKind.STAFF,
        actor_user=actor,
        data={"party": str(party.public_id), "role": role, "name": party.name},
    )
    from concilia.resolution.tasks import send_party_email

    enqueue_with_change(send_party_email, party_id=party.pk, what="invitation")
    return party


@transaction.atomic
def add_statement(
    *, case: Case, party: CaseParty | None, body: str, files: Sequence[CheckedFile] = ()
) -> Statement:
    """A party's account (None: the customer's), with its evidence, kept for the mediator; the
    files go on an internal note, so that no party sees another's evidence."""
    body = body.strip()
    if not body and not files:
        raise InvalidMediation(_("Write your statement or attach a file."))
    author = f"{party.name} ({party.get_role_display()})" if party else _("The customer")
    with translation.override(case.language):
        note = case_actions.add_system_note(
            case=case,
            body=_("Statement by %(author)s:\n%(body)s") % {"author": author, "body": body},
            files=files,
        )
    statement = Statement.objects.create(case=case, party=party, body=body, message=note)
    if party is not None:
        CaseParty.objects.filter(pk=party.pk).update(last_seen_at=timezone.now())
    case_actions.record_event(
        case=case,
        kind=EventKind.STATEMENT_ADDED,
        actor_kind=ActorKind.INTEGRATION if party else ActorKind.CUSTOMER,
        data={"statement": statement.pk, "party": str(party.public_id) if party else None},
    )
    return statement


@transaction.atomic
def make_proposal(
    *, case: Case, mediator: User, settlement: engine.Settlement, explanation: str
) -> Proposal:
    """The mediator proposes one settlement to every party (an open offer or an earlier proposal
    is withdrawn); the customer reads it on the tracking page and by email, parties by email."""
    explanation = explanation.strip()
    if not explanation:
        raise InvalidMediation(_("Explain the proposal to the parties."))
    now = timezone.now()
    Proposal.objects.filter(case=case, status=ProposalStatus.OPEN).update(
        status=ProposalStatus.WITHDRAWN, closed_at=now
    )
    Offer.objects.filter(case=case, status=OfferStatus.OPEN).update(
        status=OfferStatus.WITHDRAWN, answered_at=now
    )
    proposal = Proposal.objects.create(
        case=case,
        mediator=mediator,
        kind=settlement.kind,
        amount=settlement.amount,
        currency=settlement.currency,
        percent=settlement.percent,
        explanation=explanation,
        created_at=now,
    )
    case_actions.record_event(
        case=case,
        kind=EventKind.PROPOSAL_MADE,
        actor_kind=ActorKind.STAFF,
        actor_user=mediator,
        data={"proposal": proposal.pk, "settlement": settlement.to_json()},
    )
    with translation.override(case.language):
        body = "\n\n".join(
            [
                explanation,
                _("Our proposal: %(what)s.") % {"what": engine.describe(settlement, case.language)},
                _("You can accept it or say no on your case's page."),
            ]
        )
    case_actions.message_customer(case=case, body=body, status=Status.PENDING_CUSTOMER)
    from concilia.resolution.tasks import send_party_email

    for party in case.parties.filter(revoked_at__isnull=True):
        enqueue_with_change(send_party_email, party_id=party.pk, what="proposal")
    return proposal


@transaction.atomic
def answer_proposal(
    *, proposal: Proposal, party: CaseParty | None, accept: bool, reason: str = ""
) -> Proposal:
    """One party (None: the customer) accepts or rejects. A rejection ends the proposal and the
    mediator is told; when every party has accepted, the settlement is binding."""
    current = Proposal.objects.select_for_update().select_related("case").get(pk=proposal.pk)
    if current.status != ProposalStatus.OPEN:
        raise ProposalNotOpen(current.get_status_display())
    reason = reason.strip()
    if not accept and not reason:
        raise InvalidMediation(_("Tell the mediator why you do not accept."))
    if current.answers.filter(party=party).exists():
        raise AlreadyAnswered
    ProposalAnswer.objects.create(proposal=current, party=party, accepted=accept, reason=reason)
    case = current.case
    who = f"{party.name} ({party.get_role_display()})" if party else "customer"
    case_actions.record_event(
        case=case,
        kind=EventKind.PROPOSAL_ANSWERED,
        actor_kind=ActorKind.INTEGRATION if party else ActorKind.CUSTOMER,
        data={"proposal": current.pk, "party": who, "accepted": accept, "reason": reason[:300]},
    )
    now = timezone.now()
    if not accept:
        current.status, current.closed_at = ProposalStatus.REJECTED, now
        current.save(update_fields=["status", "closed_at"])
        with translation.override(case.language):
            note = _("%(who)s rejected the mediation proposal: %(reason)s") % {
                "who": str(party) if party else _("The customer"),
                "reason": reason,
            }
        case_actions.hand_over_to_person(case=case, reason="proposal_rejected", note=note)
        return current
    parties = list(case.parties.filter(revoked_at__isnull=True))
    answered = {a.party_id for a in current.answers.filter(accepted=True)}
    if None not in answered or any(p.pk not in answered for p in parties):
        return current
    current.status, current.closed_at = ProposalStatus.AGREED, now
    current.save(update_fields=["status", "closed_at"])
    _bind(current, parties)
    return current


def _bind(proposal: Proposal, parties: list[CaseParty]) -> Resolution:
    from concilia.resolution.actions import _agree

    case = proposal.case
    earlier = Decision.objects.filter(case=case).first()
    agreed = ["customer", *(f"{p.name} ({p.role})" for p in parties)]
    record = Decision.objects.create(
        case=case,
        source=DecisionSource.MEDIATION,
        outcome=DecisionOutcome.RESOLVE,
        policy_version=earlier.policy_version if earlier else None,
        rule=earlier.rule if earlier else "",
        detail={"options": [proposal.settlement().to_json()], "agreed_by": agreed},
        facts=earlier.facts if earlier else {},
        trace=earlier.trace if earlier else [],
        overrides=earlier,
        actor_user=proposal.mediator,
        override_reason=proposal.explanation,
    )
    resolution = _agree(
        case=case,
        record=record,
        settlement=proposal.settlement(),
        agreed_by=Party.CUSTOMER,
        offer=None,
        actor=None,
    )
    resolution.agreed_parties = agreed
    resolution.save(update_fields=["agreed_parties"])
    return resolution
