"""Assignment rules: the first active rule matching a new case names its team, then an agent of
that team is chosen round-robin or by the fewest open cases, skipping people who are away."""

from __future__ import annotations

from django.db.models import Count, Q
from django.utils import timezone

from concilia.accounts.models import Team, User
from concilia.cases.models import AssignmentRule, Case, Status, Strategy
from concilia.core import audit
from concilia.core.memo import remember_for


@remember_for(seconds=10)
def active_rules() -> tuple[AssignmentRule, ...]:
    return tuple(
        AssignmentRule.objects.filter(active=True, team__active=True)
        .select_related("team__calendar")
        .order_by("position", "pk")
    )


def available_agents(team: Team) -> list[User]:
    """Team members who work cases and are not away, in a stable order."""
    now = timezone.now()
    return list(
        team.members()
        .filter(
            Q(groups__permissions__codename="work_cases") | Q(is_superuser=True),
        )
        .filter(Q(away_until__isnull=True) | Q(away_until__lte=now))
        .distinct()
        .order_by("pk")
    )


def _round_robin(team: Team, agents: list[User]) -> User:
    # The team row is locked so that two simultaneous cases do not go to the same person; the
    # audit chain's head is taken first, the order every transaction follows (audit.lock_chain).
    audit.lock_chain()
    locked = Team.objects.select_for_update().get(pk=team.pk)
    after = locked.last_assigned_id or 0
    chosen = next((agent for agent in agents if agent.pk > after), agents[0])
    Team.objects.filter(pk=team.pk).update(last_assigned=chosen)
    return chosen


def _least_loaded(agents: list[User]) -> User:
    load = dict(
        Case.objects.exclude(status=Status.CLOSED)
        .filter(assignee__in=agents)
        .values_list("assignee")
        .annotate(open_cases=Count("id"))
    )
    return min(agents, key=lambda agent: (load.get(agent.pk, 0), agent.pk))


def route(case: Case) -> AssignmentRule | None:
    """Set the team and assignee of an unsaved new case from the rules; returns the rule used."""
    for rule in active_rules():
        if not rule.matches(case):
            continue
        case.team = rule.team
        if rule.strategy != Strategy.TEAM_QUEUE:
            agents = available_agents(rule.team)
            if agents:
                case.assignee = (
                    _round_robin(rule.team, agents)
                    if rule.strategy == Strategy.ROUND_ROBIN
                    else _least_loaded(agents)
                )
        return rule
    return None
