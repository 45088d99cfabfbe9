"""Shared people and teams of the helpdesk tests.

Ana is an agent of Customer care, Bruno an agent of Logistics, Sara supervises Customer care.
Rules send late deliveries to Logistics and everything else to Customer care.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from concilia.accounts.models import ROLE_GROUPS, Role, Team, User
from concilia.cases.models import AssignmentRule, Category, ReplyTemplate, Strategy
from concilia.core.models import BusinessCalendar, Holiday


def person(username: str, role: Role, *teams: Team, language: str = "es") -> User:
    user = User.objects.create_user(
        username, f"{username}@company.test", "pw", first_name=username.title(), language=language
    )
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[role][0]), *(t.group for t in teams))
    return user


@pytest.fixture
def office(db):
    calendar = BusinessCalendar.objects.create(
        name="Madrid", time_zone="Europe/Madrid", opens=dt.time(9), closes=dt.time(18)
    )
    Holiday.objects.create(date=dt.date(2026, 12, 8), name="Inmaculada", calendar=calendar)
    return calendar


@pytest.fixture
def teams(office):
    care = Team.objects.create(code="care", name_es="Atención", name_en="Care", calendar=office)
    logistics = Team.objects.create(
        code="logistics", name_es="Logística", name_en="Logistics", calendar=office
    )
    AssignmentRule.objects.create(
        name="Late parcels",
        position=1,
        category=Category.objects.get(code="shipping_delay"),
        team=logistics,
        strategy=Strategy.ROUND_ROBIN,
    )
    AssignmentRule.objects.create(
        name="Everything else", position=9, team=care, strategy=Strategy.LEAST_LOADED
    )
    return care, logistics


@pytest.fixture
def ana(teams):
    return person("ana", Role.AGENT, teams[0])


@pytest.fixture
def bruno(teams):
    return person("bruno", Role.AGENT, teams[1], language="en")


@pytest.fixture
def sara(teams):
    return person("sara", Role.SUPERVISOR, teams[0])


def shipping(open_case, **extra):
    return open_case(
        category="shipping_delay",
        order_number="A-1",
        purchase_date=dt.date(2026, 11, 1),
        **extra,
    )


@pytest.fixture
def templates(db):
    return ReplyTemplate.objects.create(
        code="ack",
        name_es="Acuse",
        name_en="Acknowledgement",
        body_es="Hola {{ customer_name }}, revisamos {{ reference }} (pedido {{ order_number }}).",
        body_en="Hello {{ customer_name }}, we are looking at {{ reference }} ({{ order_number }}).",
    )
