"""The admin of the helpdesk configuration: calendars, holidays, teams, staff, templates, rules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from concilia.accounts.models import Role, Team, User
from concilia.cases import assignment
from concilia.cases.models import AssignmentRule, Category, ReplyTemplate, Strategy
from concilia.core.calendar import holidays_between
from concilia.core.models import BusinessCalendar, Holiday

pytestmark = pytest.mark.django_db


def inline_management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.fixture
def calendar():
    return BusinessCalendar.objects.create(
        name="Oficina Madrid", opens=dt.time(9), closes=dt.time(18)
    )


@pytest.fixture
def team(calendar):
    return Team.objects.create(
        code="logistics", name_es="Logística", name_en="Logistics", calendar=calendar
    )


@pytest.mark.parametrize(
    "model",
    [
        "core_businesscalendar",
        "core_holiday",
        "accounts_team",
        "accounts_user",
        "cases_replytemplate",
        "cases_assignmentrule",
        "cases_category",
        "cases_case",
    ],
)
def test_lists_and_forms_open(admin_client, team, model):
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=team.calendar)
    Holiday.objects.create(date=dt.date(2026, 12, 25), name="Navidad")
    AssignmentRule.objects.create(name="Todo", team=team)
    ReplyTemplate.objects.create(
        code="hello", name_es="Hola", name_en="Hello", body_es="Hola", body_en="Hello"
    )
    assert admin_client.get(reverse(f"admin:{model}_changelist")).status_code == 200
    if model != "cases_case":  # cases are opened through the channels
        assert admin_client.get(reverse(f"admin:{model}_add")).status_code == 200


def test_calendar_with_holidays_is_saved_and_seen_at_once(admin_client):
    assert holidays_between(dt.date(2026, 12, 1), dt.date(2026, 12, 31), None) == frozenset()
    response = admin_client.post(
        reverse("admin:core_businesscalendar_add"),
        {
            "name": "Oficina Madrid",
            "time_zone": "Europe/Madrid",
            "workdays": "12345",
            "opens": "09:00",
            "closes": "18:00",
            **inline_management("holidays", total=1),
            "holidays-0-date": "2026-12-08",
            "holidays-0-name": "Inmaculada Concepción",
        },
    )
    assert response.status_code == 302
    calendar = BusinessCalendar.objects.get()
    assert calendar.holidays.get().date == dt.date(2026, 12, 8)
    # A holiday of every calendar added now is seen without waiting for the memo to expire.
    response = admin_client.post(
        reverse("admin:core_holiday_add"), {"date": "2026-12-25", "name": "Navidad"}
    )
    assert response.status_code == 302
    assert holidays_between(dt.date(2026, 12, 1), dt.date(2026, 12, 31), calendar.pk) == {
        dt.date(2026, 12, 8),
        dt.date(2026, 12, 25),
    }
    assert holidays_between(dt.date(2026, 12, 1), dt.date(2026, 12, 31), None) == {
        dt.date(2026, 12, 25)
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [("time_zone", "Europe/Atlantis"), ("closes", "08:00"), ("workdays", "12389")],
)
def test_calendar_mistakes_are_refused(admin_client, field, value):
    data = {
        "name": "Oficina",
        "time_zone": "Europe/Madrid",
        "workdays": "12345",
        "opens": "09:00",
        "closes": "18:00",
        **inline_management("holidays"),
        field: value,
    }
    response = admin_client.post(reverse("admin:core_businesscalendar_add"), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not BusinessCalendar.objects.exists()


def test_same_holiday_twice_in_a_calendar_is_refused(admin_client, calendar):
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    response = admin_client.post(
        reverse("admin:core_holiday_add"),
        {"date": "2026-12-08", "name": "Otra vez", "calendar": calendar.pk},
    )
    assert response.status_code == 200
    assert Holiday.objects.count() == 1


def test_team_members_are_chosen_on_the_team(admin_client, calendar):
    ana = User.objects.create_user("ana", first_name="Ana")
    luis = User.objects.create_user("luis", first_name="Luis")
    response = admin_client.post(
        reverse("admin:accounts_team_add"),
        {
            "code": "customer-care",
            "name_es": "Atención al cliente",
            "name_en": "Customer care",
            "calendar": calendar.pk,
            "email": "",
            "active": "on",
            "members": [ana.pk, luis.pk],
        },
    )
    assert response.status_code == 302
    team = Team.objects.get()
    assert team.group.name == "Team: customer-care"
    assert set(team.members()) == {ana, luis}

    change = reverse("admin:accounts_team_change", args=[team.pk])
    form = admin_client.get(change).context["adminform"].form
    assert set(form["members"].initial) == {ana, luis}
    listing = admin_client.get(reverse("admin:accounts_team_changelist"))
    assert listing.context["cl"].result_list[0].active_members == 2

    response = admin_client.post(
        change,
        {
            "code": "customer-care",
            "name_es": "Atención al cliente",
            "name_en": "Customer care",
            "calendar": calendar.pk,
            "email": "care@company.test",
            "active": "on",
            "members": [luis.pk],
        },
    )
    assert response.status_code == 302
    assert list(team.members()) == [luis]


def test_user_list_shows_role_and_absence(admin_client):
    agent = User.objects.create_user("agent", is_staff=True)
    agent.groups.add(Group.objects.get(name="Role: agent"))
    response = admin_client.get(reverse("admin:accounts_user_changelist"), {"q": "agent"})
    assert response.status_code == 200
    assert response.context["cl"].model_admin.role_label(agent) == Role.AGENT.label
    change = admin_client.get(reverse("admin:accounts_user_change", args=[agent.pk]))
    assert "away_until" in change.context["adminform"].form.fields


def test_reply_template_with_an_unknown_variable_is_refused(admin_client):
    data = {
        "code": "ack",
        "name_es": "Acuse",
        "name_en": "Acknowledgement",
        "body_es": "Hola, {{ customer_name }}: tu caso {{ reference }}.",
        "body_en": "Hello {{ customer_nmae }}, your case {{ reference }}.",
        "position": "0",
        "active": "on",
    }
    response = admin_client.post(reverse("admin:cases_replytemplate_add"), data)
    assert response.status_code == 200
    assert "body_en" in response.context["adminform"].form.errors
    data["body_en"] = "Hello {{ customer_name }}, your case {{ reference }}."
    response = admin_client.post(reverse("admin:cases_replytemplate_add"), data)
    assert response.status_code == 302
    assert ReplyTemplate.objects.get().code == "ack"


def test_assignment_rules_are_ordered_and_changes_seen_at_once(admin_client, team):
    later = AssignmentRule.objects.create(name="Después", position=20, team=team)
    first = AssignmentRule.objects.create(name="Primero", position=10, team=team)
    listing = admin_client.get(reverse("admin:cases_assignmentrule_changelist"))
    assert list(listing.context["cl"].result_list) == [first, later]
    assert assignment.active_rules() == (first, later)

    response = admin_client.post(
        reverse("admin:cases_assignmentrule_change", args=[later.pk]),
        {
            "name": "Después",
            "position": "5",
            "active": "on",
            "category": Category.objects.get(code="shipping_delay").pk,
            "kind": "",
            "language": "",
            "channel": "",
            "customer_email_domain": "",
            "team": team.pk,
            "strategy": Strategy.LEAST_LOADED,
        },
    )
    assert response.status_code == 302
    assert [rule.pk for rule in assignment.active_rules()] == [later.pk, first.pk]


def test_category_shows_the_helpdesk_times(admin_client):
    category = Category.objects.get(code="refund")
    response = admin_client.get(reverse("admin:cases_category_change", args=[category.pk]))
    fields = response.context["adminform"].form.fields
    assert {"first_response_days", "reopen_days"} <= set(fields)
    listing = admin_client.get(reverse("admin:cases_category_changelist"))
    assert {"first_response_days", "reopen_days"} <= set(listing.context["cl"].list_display)
