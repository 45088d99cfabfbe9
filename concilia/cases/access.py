"""Who may see and work which cases: one place, used by every helpdesk view and staff endpoint.

- Administrators (permission accounts.see_all_cases, or superusers) see every case.
- Agents and supervisors (accounts.work_cases) see the cases of their teams, the cases assigned
  to them, and cases no rule has routed to a team yet.
- An integration token whose user only has cases.view_case may read the same set, but not change it.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from concilia.accounts.models import Team, User
from concilia.cases.models import Case, CaseQuerySet


def sees_everything(user: Any) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("accounts.see_all_cases")))


def can_work(user: Any) -> bool:
    """May use the helpdesk at all (sign in to it, change cases)."""
    return bool(user.is_active and user.has_perm("accounts.work_cases"))


def can_supervise(user: Any) -> bool:
    return bool(user.is_active and user.has_perm("accounts.supervise_teams"))


def can_read(user: Any) -> bool:
    return can_work(user) or bool(user.is_active and user.has_perm("cases.view_case"))


def team_ids(user: User) -> frozenset[int]:
    """The teams the person belongs to (remembered on the user object for the request)."""
    cached = getattr(user, "_concilia_team_ids", None)
    if cached is None:
        cached = frozenset(
            Team.objects.filter(group__user=user, active=True).values_list("pk", flat=True)
        )
        user._concilia_team_ids = cached  # type: ignore[attr-defined]
    return cached


def visible_cases(user: Any) -> CaseQuerySet:
    if not can_read(user):
        return Case.objects.none()
    if sees_everything(user):
        return Case.objects.all()
    return Case.objects.filter(Q(team__in=team_ids(user)) | Q(assignee=user) | Q(team__isnull=True))


def may_see(user: Any, case: Case) -> bool:
    if not can_read(user):
        return False
    if sees_everything(user):
        return True
    return case.team_id is None or case.assignee_id == user.pk or case.team_id in team_ids(user)


def may_change(user: Any, case: Case) -> bool:
    return can_work(user) and may_see(user, case)


def assignable_users(user: Any) -> list[User]:
    """The people this person may give a case to: members of their teams (everyone for admins)."""
    people = User.objects.filter(is_active=True, groups__permissions__codename="work_cases")
    if not sees_everything(user):
        people = people.filter(groups__team__in=team_ids(user)) | User.objects.filter(pk=user.pk)
    return list(people.distinct().order_by("first_name", "username"))


def transfer_teams(user: Any) -> list[Team]:
    """Any active team: work can be handed to another team, which then owns it."""
    return list(Team.objects.filter(active=True))
