"""The supervisors' view of their teams: each agent's open work and each team's unassigned cases.

Two grouped queries whatever the number of people or cases: one counts open cases per assignee,
one counts each team's unassigned open cases.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.utils import timezone

from concilia.accounts.models import Team, User
from concilia.cases.access import sees_everything, team_ids
from concilia.cases.models import Case, Status

WAITING_US = (Status.NOT_STARTED, Status.PENDING_AGENT)


def _counts(now: dt.datetime, end_of_today: dt.datetime) -> dict[str, Count]:
    return {
        "open": Count("id"),
        "waiting_us": Count("id", filter=Q(status__in=WAITING_US)),
        "waiting_customer": Count("id", filter=Q(status=Status.PENDING_CUSTOMER)),
        "overdue": Count("id", filter=Q(deadline__lt=now)),
        "due_today": Count("id", filter=Q(deadline__gte=now, deadline__lt=end_of_today)),
    }


@dataclass
class Row:
    person: User
    counts: dict[str, int]


@dataclass
class TeamLoad:
    team: Team
    unassigned: dict[str, int]
    people: list[Row] = field(default_factory=list)


def supervised_teams(user: User) -> list[Team]:
    teams = Team.objects.filter(active=True).select_related("calendar").order_by("code")
    return list(teams if sees_everything(user) else teams.filter(pk__in=team_ids(user)))


def team_load(user: User, now: dt.datetime | None = None) -> list[TeamLoad]:
    now = now or timezone.now()
    end_of_today = timezone.make_aware(
        dt.datetime.combine(timezone.localdate(now) + dt.timedelta(days=1), dt.time(0))
    )
    teams = supervised_teams(user)
    members: dict[int, list[User]] = {team.pk: [] for team in teams}
    people: dict[int, User] = {}
    for person in (
        # Two filter() calls: the team's group and the role's group are different groups.
        User.objects.filter(is_active=True, groups__team__in=teams)
        .filter(groups__permissions__codename="work_cases")
        .distinct()
        .order_by("first_name", "username")
    ):
        people[person.pk] = person
    for team_pk, person_pk in User.groups.through.objects.filter(
        group__team__in=teams, user__in=list(people)
    ).values_list("group__team", "user"):
        members[team_pk].append(people[person_pk])
    counts = _counts(now, end_of_today)
    open_cases = Case.objects.exclude(status=Status.CLOSED)
    per_person = {
        row.pop("assignee"): row
        for row in open_cases.filter(assignee__in=list(people))
        .values("assignee")
        .annotate(**counts)
    }
    per_team = {
        row.pop("team"): row
        for row in open_cases.filter(team__in=teams, assignee__isnull=True)
        .values("team")
        .annotate(**counts)
    }
    empty = dict.fromkeys(counts, 0)
    result = []
    for team in teams:
        load = TeamLoad(team=team, unassigned=per_team.get(team.pk, empty))
        for person in sorted(members[team.pk], key=lambda p: (p.first_name, p.username)):
            load.people.append(Row(person=person, counts=per_person.get(person.pk, empty)))
        result.append(load)
    return result
