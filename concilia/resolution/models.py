"""Policies and their versions, the decisions taken on cases, offers under negotiation and the
binding resolutions they become."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from concilia.cases.models import Case
from concilia.core.fields import (
    BlindIndexField,
    EncryptedCharField,
    EncryptedEmailField,
    EncryptedTextField,
    with_blind_indexes,
)
from concilia.core.i18n import in_language


class Policy(models.Model):
    """A named set of rules (e.g. "Deliveries"); what it says lives in its versions."""

    code = models.SlugField(_("code"), max_length=60, unique=True)
    name_es = models.CharField(_("name (Spanish)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    position = models.PositiveSmallIntegerField(
        _("position"), default=0, help_text=_("Live policies are checked in this order.")
    )
    live_version = models.OneToOneField(
        "PolicyVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("live version"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "code"]
        verbose_name = _("policy")
        verbose_name_plural = _("policies")

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return in_language(self.name_es, self.name_en)


class VersionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    LIVE = "live", _("Live")
    RETIRED = "retired", _("Retired")


class PolicyVersion(models.Model):
    """One version of a policy's text, never edited once saved: a change is a new version."""

    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    source = models.TextField(_("policy (YAML)"))
    status = models.CharField(
        _("status"), max_length=10, choices=VersionStatus.choices, default=VersionStatus.DRAFT
    )
    note = models.CharField(_("what changed"), max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True)

    class Meta:
        ordering = ["policy", "-number"]
        verbose_name = _("policy version")
        verbose_name_plural = _("policy versions")
        constraints = [
            models.UniqueConstraint(fields=["policy", "number"], name="policy_version_once"),
            models.UniqueConstraint(
                fields=["policy"], condition=Q(status="live"), name="policy_one_live_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy.code} v{self.number}"

    @cached_property
    def document(self):  # -> policy.Document; checked against nothing but itself
        from concilia.resolution.policy import parse

        return parse(self.source)


class DecisionOutcome(models.TextChoices):
    RESOLVE = "resolve", _("Resolved now")
    OFFER = "offer", _("Offer made")
    ASK_EVIDENCE = "ask_evidence", _("Evidence asked for")
    ESCALATE = "escalate", _("Escalated to a team")
    MEDIATE = "mediate", _("Mediation")
    WAIT = "wait", _("Waiting for data")
    NONE = "none", _("No policy applies")


class DecisionSource(models.TextChoices):
    ENGINE = "engine", _("Policy engine")
    OVERRIDE = "override", _("Agent's override")
    MEDIATION = "mediation", _("Mediation agreed by every party")


class Decision(models.Model):
    """What was decided on a case, by which version of which policy, on which facts, and why.

    Replaying `facts` against `policy_version` gives the same decision (see `actions.replay`)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="decisions")
    source = models.CharField(
        max_length=10, choices=DecisionSource.choices, default=DecisionSource.ENGINE
    )
    outcome = models.CharField(_("outcome"), max_length=20, choices=DecisionOutcome.choices)
    policy_version = models.ForeignKey(
        PolicyVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="decisions"
    )
    rule = models.CharField(_("rule"), max_length=60, blank=True)
    # Options with amounts, terms of the offer, evidence asked, team (engine.Decision.detail_json)
    detail = models.JSONField(default=dict)
    facts = models.JSONField(default=dict)
    unavailable = models.JSONField(default=list)  # fact namespaces that could not be read
    trace = models.JSONField(default=list)
    reason_es = models.TextField(blank=True)
    reason_en = models.TextField(blank=True)
    overrides = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="overridden_by"
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    override_reason = models.TextField(_("reason for the override"), blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("decision")
        verbose_name_plural = _("decisions")
        constraints = [
            models.CheckConstraint(
                condition=Q(source="engine")
                | (Q(actor_user__isnull=False) & ~Q(override_reason="")),
                name="decision_override_has_reason",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.outcome} {self.rule}"

    def reason(self, language: str) -> str:
        return in_language(self.reason_es, self.reason_en, language)


class OfferStatus(models.TextChoices):
    OPEN = "open", _("Waiting for the customer")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")
    COUNTERED = "countered", _("Counter-proposal answered with a new offer")
    ESCALATED = "escalated", _("Passed to a person")
    EXPIRED = "expired", _("Expired")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Offer(models.Model):
    """Options put to the customer, open until they answer or it expires."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="offers")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="offers")
    # [{"kind": "credit", "amount": "12.00", "currency": "EUR", "percent": null}, ...]
    options = models.JSONField()
    # {"up_to_percent": "20", "cap": "36", "rounds": 2} or null: counter-proposals go to a person
    counter_terms = models.JSONField(null=True, blank=True)
    round = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        _("status"), max_length=12, choices=OfferStatus.choices, default=OfferStatus.OPEN
    )
    expires_at = models.DateTimeField(_("expires"))
    created_at = models.DateTimeField(default=timezone.now)
    answered_at = models.DateTimeField(null=True, blank=True)
    chosen_option = models.PositiveSmallIntegerField(null=True, blank=True)
    counter_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    rejection_reason = models.TextField(blank=True)
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(status="open"), name="offer_one_open_per_case"
            )
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="open"), name="offer_open_expiry"
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.status} {self.expires_at:%Y-%m-%d}"

    @property
    def is_open(self) -> bool:
        return self.status == OfferStatus.OPEN and self.expires_at > timezone.now()

    def settlements(self):  # -> list[engine.Settlement]
        from concilia.resolution.engine import Settlement

        return [Settlement.from_json(o) for o in self.options]


class Party(models.TextChoices):
    CUSTOMER = "customer", _("The customer")
    STAFF = "staff", _("An agent")
    AUTOMATIC = "automatic", _("Automatically, by policy")


class FollowUp(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    NONE = "none", _("Nothing to do")


class Resolution(models.Model):
    """The binding record of what the company gives: what, how much, when, under which policy
    version and on which facts, and who agreed."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="resolutions")
    decision = models.ForeignKey(Decision, on_delete=models.PROTECT, related_name="resolutions")
    offer = models.OneToOneField(
        Offer, on_delete=models.PROTECT, null=True, blank=True, related_name="resolution"
    )
    kind = models.CharField(_("what"), max_length=20)
    amount = models.DecimalField(
        _("amount"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    discount_code = models.CharField(max_length=40, blank=True)
    agreed_by = models.CharField(_("agreed by"), max_length=10, choices=Party.choices)
    agreed_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Everyone who agreed, when more than the customer did (a mediation with third parties).
    agreed_parties = models.JSONField(_("agreed by every party"), default=list, blank=True)
    follow_up = models.CharField(max_length=10, choices=FollowUp.choices, default=FollowUp.PENDING)
    follow_up_detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("resolution")
        verbose_name_plural = _("resolutions")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=Decimal("0")),
                name="resolution_amount_not_negative",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.amount or ''}"

    def settlement(self):  # -> engine.Settlement
        from concilia.resolution.engine import Settlement

        return Settlement(
            kind=self.kind, amount=self.amount, currency=self.currency, percent=self.percent
        )


# Collective complaints ----------------------------------------------------------------------


class CollectiveKind(models.TextChoices):
    PRODUCT = "product", _("Same product")
    SHIPMENT_BATCH = "shipment_batch", _("Same shipment batch")
    CARRIER_DAY = "carrier_day", _("Same carrier and delivery day")
    CHARGE = "charge", _("Same charge")
    # Similar complaints found by the trends view (resolution.trends), flagged by a supervisor.
    TOPIC = "topic", _("Same topic")


class CollectiveRule(models.Model):
    """When complaints that share something become one collective complaint: how many distinct
    customers within how many hours, and in which categories (none chosen: every category).
    One row per kind; administrators tune them, `collective.DEFAULT_RULES` applies without one."""

    kind = models.CharField(
        _("what is shared"), max_length=20, choices=CollectiveKind.choices, unique=True
    )
    active = models.BooleanField(_("active"), default=True)
    min_customers = models.PositiveSmallIntegerField(
        _("minimum distinct customers"),
        default=5,
        help_text=_("A flag is raised when this many different customers complain."),
    )
    window_hours = models.PositiveSmallIntegerField(
        _("window (hours)"), default=48, help_text=_("…within this many hours of each other.")
    )
    categories = models.ManyToManyField(
        "cases.Category",
        blank=True,
        related_name="+",
        verbose_name=_("categories"),
        help_text=_("Only complaints of these categories count; none chosen: every category."),
    )

    class Meta:
        ordering = ["kind"]
        verbose_name = _("collective complaint rule")
        verbose_name_plural = _("collective complaint rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(min_customers__gte=2) & Q(window_hours__gte=1),
                name="collective_rule_sensible",
            )
        ]

    def __str__(self) -> str:
        return str(self.get_kind_display())


class CollectiveSignal(models.Model):
    """One thing a triaged case shares with others (its product, its carrier's day…): what
    detection counts, by (kind, key) and time, without reading the cases themselves."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    customer_id = models.BigIntegerField()  # the case's customer, copied for distinct counts
    kind = models.CharField(max_length=20, choices=CollectiveKind.choices)
    key = models.CharField(max_length=200)
    seen_at = models.DateTimeField()  # when the complaint arrived (the case's creation)

    class Meta:
        verbose_name = _("collective signal")
        verbose_name_plural = _("collective signals")
        constraints = [
            models.UniqueConstraint(fields=["case", "kind", "key"], name="collective_signal_once")
        ]
        indexes = [
            models.Index(fields=["kind", "key", "seen_at"], name="collective_signal_key_seen"),
            models.Index(fields=["seen_at"], name="collective_signal_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.key}"


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACTED = "acted", _("Acted on")
    DISMISSED = "dismissed", _("Dismissed")


class CollectiveFlagQuerySet(models.QuerySet["CollectiveFlag"]):
    def open(self) -> CollectiveFlagQuerySet:
        return self.filter(status=FlagStatus.OPEN)

    def open_first(self) -> CollectiveFlagQuerySet:
        """Open flags first, then the latest seen."""
        first = models.Case(
            models.When(status=FlagStatus.OPEN, then=models.Value(0)),
            default=models.Value(1),
            output_field=models.IntegerField(),
        )
        return self.order_by(first, "-last_seen_at", "-pk")


class CollectiveFlag(models.Model):
    """Many customers complaining about the same thing within a window: supervisors see it and
    may act once for all its cases (one settlement for every open case) or dismiss it."""

    kind = models.CharField(_("what is shared"), max_length=20, choices=CollectiveKind.choices)
    key = models.CharField(_("key"), max_length=200)
    # The parts of the key, for people: {"sku": ...}, {"carrier": ..., "day": ...},
    # {"category": ..., "amount": "12.99", "currency": "EUR"}.
    detail = models.JSONField(default=dict)
    amount = models.DecimalField(
        _("amount"), max_digits=12, decimal_places=2, null=True, blank=True
    )  # the shared charge (kind "charge")
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=FlagStatus.choices, default=FlagStatus.OPEN
    )
    # The rule as it was when the flag was raised.
    min_customers = models.PositiveSmallIntegerField(_("minimum distinct customers"))
    window_hours = models.PositiveSmallIntegerField(_("window (hours)"))
    customers = models.PositiveIntegerField(_("distinct customers"), default=0)
    cases = models.ManyToManyField(
        Case, through="CollectiveMember", related_name="collective_flags", verbose_name=_("cases")
    )
    case_count = models.PositiveIntegerField(_("cases"), default=0)
    first_seen_at = models.DateTimeField(_("first seen"))
    last_seen_at = models.DateTimeField(_("last seen"))
    raised_at = models.DateTimeField(_("raised"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acted on by"),
    )
    close_reason = models.TextField(_("reason"), blank=True)
    # What was applied to every open case (status "acted") and how it went.
    applied_kind = models.CharField(_("settlement"), max_length=20, blank=True)
    applied_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    applied_currency = models.CharField(max_length=3, blank=True)
    applied_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    settled = models.PositiveIntegerField(_("cases settled"), default=0)
    # [{"reference": "...", "why": "..."}]: the linked cases the settlement was not applied to.
    not_settled = models.JSONField(default=list, blank=True)

    objects = CollectiveFlagQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        verbose_name = _("collective complaint")
        verbose_name_plural = _("collective complaints")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"], condition=Q(status="open"), name="collective_one_open_flag"
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True)
                | (~Q(status="open") & Q(closed_at__isnull=False) & ~Q(close_reason="")),
                name="collective_closed_with_reason",
            ),
            models.CheckConstraint(
                condition=Q(applied_amount__isnull=True) | Q(applied_amount__gte=Decimal("0")),
                name="collective_applied_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "key", "-closed_at"], name="collective_flag_key"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.key}"

    @property
    def is_open(self) -> bool:
        return self.status == FlagStatus.OPEN

    def applied(self):  # -> engine.Settlement | None
        from concilia.resolution.engine import Settlement

        if not self.applied_kind:
            return None
        return Settlement(
            kind=self.applied_kind,
            amount=self.applied_amount,
            currency=self.applied_currency,
            percent=self.applied_percent,
        )


class CollectiveMember(models.Model):
    """A case in a collective complaint, and when it joined; a case joins a flag once."""

    flag = models.ForeignKey(CollectiveFlag, on_delete=models.CASCADE, related_name="members")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["joined_at", "pk"]
        verbose_name = _("case of a collective complaint")
        verbose_name_plural = _("cases of collective complaints")
        constraints = [
            models.UniqueConstraint(fields=["flag", "case"], name="collective_member_once")
        ]
        indexes = [models.Index(fields=["case"], name="collective_member_case")]

    def __str__(self) -> str:
        return f"{self.flag_id} {self.case_id}"


# Mediation: more than two parties -----------------------------------------------------------


class PartyRole(models.TextChoices):
    CARRIER = "carrier", _("Carrier")
    SELLER = "seller", _("Marketplace seller")
    SUPPLIER = "supplier", _("Supplier")
    OTHER = "other", _("Other party")


class CaseParty(models.Model):
    """A third party invited to a case (a carrier, a seller, a supplier) by a signed link: it
    states its side, sends evidence and accepts or rejects the mediator's proposal.

    Its name and email are encrypted (concilia.core.fields); the email is found, and kept once
    per case, through `email_index`."""

    PERSONAL_FIELDS = ("name", "email")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="parties")
    role = models.CharField(_("role"), max_length=20, choices=PartyRole.choices)
    name = EncryptedCharField(_("name"), max_length=200)
    email = EncryptedEmailField(_("email"))
    email_index = BlindIndexField(source="email", purpose="email")
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    invited_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # A party removed from the case: its link stops working.
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["invited_at", "pk"]
        verbose_name = _("party")
        verbose_name_plural = _("parties")
        constraints = [
            models.UniqueConstraint(fields=["case", "email_index"], name="party_once_per_case")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_role_display()})"

    def save(self, *args: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
        super().save(*args, update_fields=with_blind_indexes(CaseParty, update_fields), **kwargs)


class Statement(models.Model):
    """One party's account of what happened, as the mediator reads it side by side."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="statements")
    # None: the customer's own statement.
    party = models.ForeignKey(
        CaseParty, on_delete=models.CASCADE, null=True, blank=True, related_name="statements"
    )
    body = EncryptedTextField(_("statement"))
    # The internal note in the case's thread that carries its files (staff only).
    message = models.ForeignKey(
        "cases.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = _("statement")
        verbose_name_plural = _("statements")

    def __str__(self) -> str:
        return f"{self.case_id} {self.party_id or 'customer'} {self.created_at:%Y-%m-%d}"


class ProposalStatus(models.TextChoices):
    OPEN = "open", _("Waiting for the parties")
    AGREED = "agreed", _("Agreed by every party")
    REJECTED = "rejected", _("Rejected")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Proposal(models.Model):
    """The mediator's proposal to every party of a case; binding once all of them accept."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="proposals")
    mediator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("what"), max_length=20)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    explanation = EncryptedTextField(_("explanation for the parties"))
    status = models.CharField(
        max_length=10, choices=ProposalStatus.choices, default=ProposalStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("mediation proposal")
        verbose_name_plural = _("mediation proposals")
        constraints = [
            models.UniqueConstraint(
                fields=["case"], condition=Q(status="open"), name="proposal_one_open_per_case"
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.status}"

    def settlement(self):  # -> engine.Settlement
        from concilia.resolution.engine import Settlement

        return Settlement(
            kind=self.kind, amount=self.amount, currency=self.currency, percent=self.percent
        )


class ProposalAnswer(models.Model):
    """One party's yes or no to a proposal (party None: the customer)."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="answers")
    party = models.ForeignKey(
        CaseParty, on_delete=models.CASCADE, null=True, blank=True, related_name="answers"
    )
    accepted = models.BooleanField()
    reason = EncryptedTextField(blank=True)
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["answered_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["proposal", "party"], name="proposal_answer_once_per_party"
            ),
            models.UniqueConstraint(
                fields=["proposal"],
                condition=Q(party__isnull=True),
                name="proposal_answer_once_by_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.proposal_id} {self.party_id or 'customer'} {self.accepted}"


class Trend(models.Model):
    """A spike of similar complaints found by `resolution.trends`: more of them in the last days
    than the weeks before usually had. Kept so that its subscribers are alerted once, however
    often detection finds it again, and so that it can be linked to a collective flag."""

    # The words and shared facts that describe it, as detection found them last.
    terms = models.JSONField(_("words"), default=list)
    facts = models.JSONField(_("shared facts"), default=list)  # [[name, value, count], ...]
    case_ids = models.JSONField(default=list)
    case_count = models.PositiveIntegerField(_("cases"))
    baseline_mean = models.FloatField(_("usual level"))
    baseline_stddev = models.FloatField(_("usual spread"))
    window_days = models.PositiveSmallIntegerField(_("days"))
    first_detected_at = models.DateTimeField(_("first detected"), default=timezone.now)
    last_detected_at = models.DateTimeField(_("last detected"), default=timezone.now)
    # Set once, when its subscribers were told (a conditional UPDATE claims it).
    alerted_at = models.DateTimeField(_("alerted"), null=True, blank=True)
    flag = models.ForeignKey(
        CollectiveFlag,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="trends",
        verbose_name=_("collective complaint"),
    )

    class Meta:
        ordering = ["-last_detected_at", "-pk"]
        verbose_name = _("trend")
        verbose_name_plural = _("trends")
        indexes = [models.Index(fields=["-last_detected_at"], name="trend_recent")]

    def __str__(self) -> str:
        return ", ".join(self.terms[:5])


class TrendSubscription(models.Model):
    """A supervisor who wants an alert (in the helpdesk and by email) when a new spike of
    similar complaints appears."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trend_subscription"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("trend alert subscription")
        verbose_name_plural = _("trend alert subscriptions")

    def __str__(self) -> str:
        return str(self.user)
