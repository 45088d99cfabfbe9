"""The analytics app's own tables: daily aggregates the dashboard reads (never the raw cases),
each case's and conversation's last contribution to them (so a refresh can take it back), the
open cases as of the last refresh, and who wants the weekly summary.

Every aggregate row is keyed by a day (in the company's time zone), a *grain* and five
dimensions. The "full" grain holds one row per combination of category, channel, team, agent and
language; the other grains are roll-ups ("all": no dimension; "category": per category with the
other dimensions summed...) so that the default dashboard and a one-dimension filter read a
handful of rows per day whatever the number of cases. A dimension that a grain sums over holds
ALL (-1 or "*"); a case without team or agent holds NONE (0).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

ALL = -1
ALL_TEXT = "*"
NONE = 0


class Grain(models.TextChoices):
    ALL = "all", _("Everything")
    CATEGORY = "category", _("Per category")
    CHANNEL = "channel", _("Per channel")
    TEAM = "team", _("Per team")
    ASSIGNEE = "assignee", _("Per agent")
    LANGUAGE = "language", _("Per language")
    FULL = "full", _("Every combination")


# The five dimensions, in key order, with the grain that keeps only that one.
DIMENSIONS = ("category", "channel", "team", "assignee", "language")
SINGLE_GRAINS = {
    "category": Grain.CATEGORY,
    "channel": Grain.CHANNEL,
    "team": Grain.TEAM,
    "assignee": Grain.ASSIGNEE,
    "language": Grain.LANGUAGE,
}

# What a case adds to the row of a day. Flows (counted on the day they happen): opened on the
# day it was created, closed/reopened on the day of each closing or reopening, first responses
# and resolutions on the day they happened, payouts on the day of the resolution. Cohort figures
# (resolved, fcr, ...) on the day the case was created: "of the cases opened on that day".
CASE_METRICS = (
    "opened",
    "closed",
    "reopened",
    "resolved",
    "fcr",
    "reopened_cases",
    "automated",
    "escalated",
    "esc_requested",
    "esc_frustration",
    "esc_not_understood",
    "esc_category",
    "esc_policy",
    "esc_amount",
    "esc_unsolved",
    "sla_met",
    "sla_missed",
    "legal_met",
    "legal_missed",
    "offers_made",
    "offers_answered",
    "offers_accepted",
    "payouts",
    "payout_cents",
    "frt_n",
    "frt_cal_s",
    "frt_bus_s",
    "res_n",
    "res_cal_s",
    "res_bus_s",
)
CONVERSATION_METRICS = (
    "started",
    "completed",
    "abandoned",
    "deflected",
    "with_case",
    "case_automated",
    "handed_over",
    "ended",
    "csat_n",
    "csat_sum",
    "csat_good",
    "thumbs_up",
    "thumbs_down",
)
# Durations whose distribution is kept in buckets (DurationDay.metric).
DURATIONS = ("frt_cal", "frt_bus", "res_cal", "res_bus")
# Open cases by age (OpenNow.age_bucket): upper bounds in days, the last one unbounded.
AGE_BUCKETS = (1, 3, 7, 14, 30)
OPEN_METRICS = (
    "open",
    "waiting_us",
    "waiting_customer",
    "at_risk",
    "overdue",
    "legal_at_risk",
    "legal_overdue",
)


class Keyed(models.Model):
    """The grain and the five dimensions (see the module's docstring)."""

    grain = models.CharField(max_length=10, choices=Grain.choices)
    category = models.IntegerField()
    channel = models.CharField(max_length=20)
    team = models.IntegerField()
    assignee = models.IntegerField()
    language = models.CharField(max_length=8)

    class Meta:
        abstract = True


def _counter() -> models.BigIntegerField:
    return models.BigIntegerField(default=0)


class CaseDay(Keyed):
    """What the cases did on one day, for one key (see CASE_METRICS)."""

    day = models.DateField()
    locals().update({name: _counter() for name in CASE_METRICS})

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "day", *DIMENSIONS], name="analytics_caseday_key"
            )
        ]
        indexes = [models.Index(fields=["grain", "day"], name="analytics_caseday_grain_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.grain}"


class ConversationDay(Keyed):
    """The assistant's conversations started on one day, for one key (CONVERSATION_METRICS)."""

    day = models.DateField()
    locals().update({name: _counter() for name in CONVERSATION_METRICS})

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "day", *DIMENSIONS], name="analytics_convday_key"
            )
        ]
        indexes = [models.Index(fields=["grain", "day"], name="analytics_convday_grain_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.grain}"


class DurationDay(Keyed):
    """How many first responses or resolutions of one day took a time in one bucket
    (analytics.buckets): medians over any range are read from these counts."""

    day = models.DateField()
    metric = models.CharField(max_length=10)
    bucket = models.SmallIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "day", *DIMENSIONS, "metric", "bucket"],
                name="analytics_durationday_key",
            )
        ]
        indexes = [models.Index(fields=["grain", "day"], name="analytics_durday_grain_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.grain} {self.metric}[{self.bucket}]"


class OpenNow(Keyed):
    """The open cases as of the last refresh, by key and age bucket (rebuilt on each refresh)."""

    age_bucket = models.SmallIntegerField()
    locals().update({name: _counter() for name in OPEN_METRICS})

    class Meta:
        indexes = [models.Index(fields=["grain"], name="analytics_opennow_grain")]

    def __str__(self) -> str:
        return f"{self.grain} age {self.age_bucket}"


class CaseFacts(models.Model):
    """A case's last contribution to the aggregates, kept so that a refresh subtracts it before
    adding the new one. Only the refresh reads it; no foreign key: the case may be gone."""

    case_id = models.BigIntegerField(primary_key=True)
    contribution = models.JSONField()

    def __str__(self) -> str:
        return f"case {self.case_id}"


class ConversationFacts(models.Model):
    """A conversation's last contribution to the aggregates (like CaseFacts)."""

    conversation_id = models.BigIntegerField(primary_key=True)
    contribution = models.JSONField()

    def __str__(self) -> str:
        return f"conversation {self.conversation_id}"


class RefreshState(models.Model):
    """Where the last refresh got to (one row): the last case event and chat message it saw."""

    last_event_id = models.BigIntegerField(default=0)
    last_message_id = models.BigIntegerField(default=0)
    last_handover_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    full_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"refreshed {self.refreshed_at}"


class SummaryOptOut(models.Model):
    """A supervisor who does not want the weekly summary email."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("weekly summary opt-out")
        verbose_name_plural = _("weekly summary opt-outs")

    def __str__(self) -> str:
        return str(self.user_id)
