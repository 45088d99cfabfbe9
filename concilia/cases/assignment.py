"""Assignment rules: the first active rule matching a new case names its team, then an agent of
that team is chosen round-robin or by the fewest open cases, skipping people who are away."""

from __future__ import annotations

import datetime as dt
from typing import Any

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


@remember_for(seconds=10)
def _workers(group_id: int) -> tuple[tuple[int, dt.datetime | None], ...]:
    """Each active member of a team who works cases, with the end of their absence, by id.

    Read on every new case, so remembered for a few seconds (User.save forgets it at once in
    the process that saved; other processes see a change within that time)."""
    return tuple(
        User.objects.filter(groups=group_id, is_active=True)
        .filter(Q(groups__permissions__codename="work_cases") | Q(is_superuser=True))
        .values_list("pk", "away_until")
        .distinct()
        .order_by("pk")
    )


def available_agent_ids(team: Team) -> list[int]:
    """Ids of the team members who work cases and are not away, in a stable order."""
    now = timezone.now()
    return [pk for pk, away in _workers(team.group_id) if away is None or away <= now]


def forget_workers(**_signal: Any) -> None:
    """A person, a role or a team changed in this process: read the workers again."""
    _workers.forget()  # type: ignore[attr-defined]


def available_agents(team: Team) -> list[User]:
    """Team members who work cases and are not away, in a stable order."""
    return list(User.objects.filter(pk__in=available_agent_ids(team)).order_by("pk"))


def _round_robin(team: Team, agents: list[int]) -> int:
    # The team row is locked so that two simultaneous cases do not go to the same person; the
    # audit chain's head is taken first, the order every transaction follows (audit.lock_chain).
    audit.lock_chain()
    locked = Team.objects.select_for_update().get(pk=team.pk)
    after = locked.last_assigned_id or 0
    chosen = next((agent for agent in agents if agent > after), agents[0])
    Team.objects.filter(pk=team.pk).update(last_assigned=chosen)
    return chosen


def _least_loaded(agents: list[int]) -> int:
    load = dict(
        Case.objects.exclude(status=Status.CLOSED)
        .filter(assignee__in=agents)
        .values_list("assignee")
        .annotate(open_cases=Count("id"))
    )
    return min(agents, key=lambda agent: (load.get(agent, 0), agent))


def route(case: Case) -> AssignmentRule | None:
    """Set the team and assignee of an unsaved new case from the rules; returns the rule used."""
    for rule in active_rules():
        if not rule.matches(case):
            continue
        case.team = rule.team
        if rule.strategy != Strategy.TEAM_QUEUE:
            agents = available_agent_ids(rule.team)
            if agents:
                case.assignee_id = (
                    _round_robin(rule.team, agents)
                    if rule.strategy == Strategy.ROUND_ROBIN
                    else _least_loaded(agents)
                )
        return rule
    return None
