"""`concilia demo` loads a working helpdesk before its sample complaints, and only once."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from concilia.accounts.models import Role, Team, User
from concilia.cases.models import AssignmentRule, Case, ReplyTemplate, Status, Strategy
from concilia.cases.templating import VARIABLE
from concilia.core.models import BusinessCalendar, Holiday
from concilia.intake.management.commands.demo import HISTORY, SAMPLES

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_demo_sets_up_the_helpdesk_and_is_idempotent():
    first = run_demo()
    assert "Demo company loaded." in first
    assert "API token for the demo integration (shown once): cnc_" in first
    for login in ("admin", "supervisor", "agent", "agent2"):
        assert f"{login} / concilia-demo" in first

    calendar = BusinessCalendar.objects.get(name="Oficina Madrid")
    assert (calendar.time_zone, calendar.workdays) == ("Europe/Madrid", "12345")
    assert (calendar.opens, calendar.closes) == (dt.time(9), dt.time(18))
    assert set(calendar.holidays.values_list("date", flat=True)) == {
        dt.date(2026, 12, 8),
        dt.date(2026, 12, 25),
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 6),
    }

    care, logistics = Team.objects.get(code="customer-care"), Team.objects.get(code="logistics")
    assert (care.name_es, care.name_en) == ("Atención al cliente", "Customer care")
    assert (logistics.name_es, logistics.name_en) == ("Logística", "Logistics")
    assert care.calendar == logistics.calendar == calendar
    assert {u.username for u in care.members()} == {"agent", "supervisor"}
    assert {u.username for u in logistics.members()} == {"agent2", "supervisor"}

    roles = {u.username: u.role for u in User.objects.all()}
    assert roles == {
        "admin": Role.ADMINISTRATOR,
        "supervisor": Role.SUPERVISOR,
        "agent": Role.AGENT,
        "agent2": Role.AGENT,
        "shop-integration": "",
    }
    assert User.objects.get(username="admin").groups.filter(name="Role: administrator").exists()

    templates = ReplyTemplate.objects.all()
    assert len(templates) == 4
    used = set()
    for template in templates:
        template.full_clean()  # only known variables
        used |= set(VARIABLE.findall(template.body_es)) | set(VARIABLE.findall(template.body_en))
        assert VARIABLE.findall(template.body_es) == VARIABLE.findall(template.body_en)
    assert used == {"customer_name", "reference", "deadline", "order_number", "agent_name"}

    # The rules existed before the samples arrived: delivery problems went to logistics, the
    # rest to customer care, each case to a member of its team.
    rules = list(AssignmentRule.objects.filter(active=True).order_by("position", "pk"))
    assert [r.strategy for r in rules if r.team == logistics] == [Strategy.ROUND_ROBIN] * 2
    assert rules[-1].category is None and rules[-1].team == care
    assert rules[-1].strategy == Strategy.LEAST_LOADED
    cases = list(Case.objects.select_related("category", "team", "assignee"))
    assert len(cases) == len(SAMPLES) + len(HISTORY)
    for case in cases:
        delivery = case.category.code in {"shipping_delay", "damaged_missing"}
        assert case.team == (logistics if delivery else care), case.category.code
        assert case.assignee in case.team.members(), case.category.code
    assert {c.assignee.username for c in cases if c.team == logistics} == {"agent2", "supervisor"}
    # The history: worked to an end, each with the answer the customer received.
    closed = [c for c in cases if c.status == Status.CLOSED and c.outcome != "answered"]
    assert len(closed) == len(HISTORY)
    for case in closed:
        assert case.messages.filter(author_kind="staff", internal=False).exists()

    second = run_demo()
    assert "Demo company already loaded." in second
    assert "API token" not in second
    assert Case.objects.count() == len(SAMPLES) + len(HISTORY)
    assert BusinessCalendar.objects.count() == 1
    assert Holiday.objects.count() == 4
    assert Team.objects.count() == 2
    assert ReplyTemplate.objects.count() == 4
    assert AssignmentRule.objects.count() == 3
