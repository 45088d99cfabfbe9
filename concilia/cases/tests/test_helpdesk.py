"""The agents' helpdesk: routing, SLA clocks, replies from templates, transfer, concurrency, access.

The people: Ana is an agent of Customer care, Bruno an agent of Logistics, Sara supervises
Customer care. Rules send late deliveries to Logistics and everything else to Customer care.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from concilia.accounts.models import Role, User
from concilia.cases import actions, sla
from concilia.cases.models import (
    AssignmentRule,
    Case,
    EventKind,
    Message,
    Notification,
    NotificationKind,
    Outcome,
    Status,
    Strategy,
)
from concilia.cases.tests.conftest import person, shipping

# --- assignment rules ---------------------------------------------------------------------


def test_rules_route_by_category_then_balance_the_team(open_case, teams, ana, sara):
    care = teams[0]
    case = open_case()
    assert case.team == care
    # Least loaded: Ana and Sara both work cases; the one with fewer open cases gets the next.
    second = open_case(email="otro@example.com")
    assert {case.assignee, second.assignee} == {ana, sara}
    assert Notification.objects.filter(
        recipient=case.assignee, case=case, kind=NotificationKind.ASSIGNED
    ).exists()
    assert case.events.filter(kind=EventKind.ASSIGNED, data__rule="Everything else").exists()


def test_round_robin_takes_turns_and_skips_people_who_are_away(open_case, teams, bruno):
    logistics = teams[1]
    carla = person("carla", Role.AGENT, logistics)
    assert [shipping(open_case, email=f"c{i}@example.com").assignee for i in range(3)] == [
        bruno,
        carla,
        bruno,
    ]
    carla.away_until = timezone.now() + dt.timedelta(days=3)
    carla.save()
    assert [shipping(open_case, email=f"d{i}@example.com").assignee for i in range(2)] == [
        bruno,
        bruno,
    ]


def test_the_team_workers_are_read_once_and_forgotten_when_someone_leaves(open_case, teams, bruno):
    logistics = teams[1]
    carla = person("carla", Role.AGENT, logistics)
    shipping(open_case, email="warm@example.com")  # the rules and the workers are read

    def reads_of_workers(queries: list[dict[str, str]]) -> int:
        return sum('"auth_permission"' in q["sql"] for q in queries)

    with CaptureQueriesContext(connection) as cold:
        first = shipping(open_case, email="a@example.com")
        second = shipping(open_case, email="b@example.com")
    assert {first.assignee, second.assignee} == {bruno, carla}
    assert reads_of_workers(cold.captured_queries) == 0  # remembered from the first case

    carla.groups.remove(logistics.group)  # she moves to another team
    assert [shipping(open_case, email=f"e{i}@example.com").assignee for i in range(2)] == [
        bruno,
        bruno,
    ]


def test_a_rule_can_match_the_customer_domain_language_and_channel(open_case, teams, bruno):
    care, logistics = teams
    AssignmentRule.objects.create(
        name="Key account",
        position=0,
        customer_email_domain="bigclient.com",
        language="en",
        team=logistics,
        strategy=Strategy.TEAM_QUEUE,
    )
    from concilia.core.memo import forget_all

    forget_all()
    assert open_case(email="boss@bigclient.com", language="en").team == logistics
    assert open_case(email="boss@bigclient.com", language="es").team == care
    key_account = open_case(email="other@bigclient.com", language="en")
    assert key_account.assignee is None  # left in the team's queue


# --- SLA clocks ---------------------------------------------------------------------------


def at(local: str) -> dt.datetime:
    return dt.datetime.fromisoformat(local).replace(tzinfo=dt.UTC)


def test_deadline_counts_the_teams_business_days_and_holidays(open_case, teams, monkeypatch):
    # Friday 4 Dec 2026 at 16:00 Madrid; late deliveries have 5 business days; the 8th is off.
    monkeypatch.setattr(timezone, "now", lambda: at("2026-12-04T15:00:00"))
    case = shipping(open_case)
    # Mon 7, (Tue 8 holiday), Wed 9, Thu 10, Fri 11, Mon 14 → Monday 14th at 18:00 Madrid.
    assert case.deadline == at("2026-12-14T17:00:00")
    assert case.first_response_due == at("2026-12-07T17:00:00")


def test_the_clock_pauses_while_waiting_for_the_customer(open_case, teams, ana, monkeypatch):
    clock = {"now": at("2026-12-01T08:00:00")}  # Tuesday 09:00 Madrid
    monkeypatch.setattr(timezone, "now", lambda: clock["now"])
    case = open_case()
    deadline = case.deadline
    actions.reply_to_customer(case=case, body="¿Nos envía una foto?", author=ana)
    case.refresh_from_db()
    assert case.status == Status.PENDING_CUSTOMER and case.sla_paused_at is not None
    assert sla.clock(case).paused
    # The customer answers on Thursday at 09:00 Madrid: two full business days (18 h) paused.
    clock["now"] = at("2026-12-03T08:00:00")
    actions.add_customer_message(case=case, body="Aquí está la foto.")
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT and case.sla_paused_at is None
    assert case.deadline == sla.calendar_for(case).add_seconds(deadline, 18 * 3600)
    assert case.deadline > deadline


@pytest.mark.parametrize(
    ("now", "colour"),
    [("2026-12-01T09:00:00", "green"), ("2026-12-14T16:00:00", "amber"), ("2026-12-17", "red")],
)
def test_clock_colour_follows_the_share_of_time_used(open_case, teams, monkeypatch, now, colour):
    monkeypatch.setattr(timezone, "now", lambda: at("2026-12-01T08:00:00"))
    case = open_case()  # 10 business days (the 8th is off): due Wednesday 16 December 18:00, 99 h
    assert sla.clock(case, at(now) if "T" in now else at(now + "T12:00:00")).colour == colour


# --- replies, templates, notes ------------------------------------------------------------


@pytest.mark.parametrize("language", ["es", "en"])
def test_reply_from_a_template_in_the_customers_language(
    client, open_case, teams, bruno, templates, run_tasks, language
):
    case = shipping(open_case, language=language, name="Lucía")
    client.force_login(bruno)
    page = client.get(f"/helpdesk/cases/{case.reference}?template=ack")
    expected = {
        "es": f"Hola Lucía, revisamos {case.reference} (pedido A-1).",
        "en": f"Hello Lucía, we are looking at {case.reference} (A-1).",
    }[language]
    assert expected in page.content.decode()
    response = client.post(
        f"/helpdesk/cases/{case.reference}/reply",
        {"version": case.version, "body": expected, "template": "ack", "then": "pending_customer"},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.first_response_at is not None and case.status == Status.PENDING_CUSTOMER
    mail.outbox.clear()
    run_tasks()
    sent = [m for m in mail.outbox if m.to == ["lucia@example.com"] and "[RC-" in m.subject]
    assert len(sent) == 1 and expected in sent[0].body and case.reference in sent[0].subject


def test_internal_notes_never_reach_the_customer(client, open_case, teams, ana, run_tasks):
    case = open_case()
    actions.add_internal_note(case=case, body="Cliente difícil, ojo.", author=ana)
    actions.reply_to_customer(case=case, body="Estamos en ello.", author=ana)
    mail.outbox.clear()
    run_tasks()
    assert all("Cliente difícil" not in m.body for m in mail.outbox)
    public = Message.objects.filter(case=case, internal=False)
    assert not any("difícil" in message.body for message in public)  # bodies are encrypted


def test_closing_needs_an_outcome(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/status", {"version": case.version, "status": "closed"}
    )
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.status != Status.CLOSED
    response = client.post(
        f"/helpdesk/cases/{case.reference}/status",
        {"version": case.version, "status": "closed", "outcome": Outcome.RESOLVED},
    )
    case.refresh_from_db()
    assert case.status == Status.CLOSED and case.outcome == Outcome.RESOLVED


# --- transfer -----------------------------------------------------------------------------


def test_transfer_to_another_team_with_a_note_tells_the_new_owner(
    client, open_case, teams, ana, bruno, run_tasks
):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/assign",
        {
            "version": case.version,
            "team": "logistics",
            "assignee": bruno.pk,
            "note": "Es un problema del transportista.",
        },
    )
    assert response.status_code == 302, response.content
    case.refresh_from_db()
    assert (case.team.code, case.assignee) == ("logistics", bruno)
    assert case.events.filter(kind=EventKind.TRANSFERRED).exists()
    notes = case.messages.filter(internal=True)
    assert "Es un problema del transportista." in [note.body for note in notes]
    notification = Notification.objects.get(recipient=bruno, kind=NotificationKind.TRANSFERRED)
    mail.outbox.clear()
    run_tasks()
    to_bruno = [m for m in mail.outbox if m.to == ["bruno@company.test"]]
    assert len(to_bruno) == 1 and "transferred" in to_bruno[0].subject  # in Bruno's English
    notification.refresh_from_db()
    assert notification.emailed_at is not None


def test_a_transfer_without_a_note_is_refused(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/assign", {"version": case.version, "team": "logistics"}
    )
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.team.code == "care"


# --- concurrency --------------------------------------------------------------------------


def test_the_second_of_two_simultaneous_saves_is_refused_and_keeps_its_text(
    client, open_case, teams, ana, sara
):
    case = open_case()
    seen = case.version
    actions.set_priority(case=case, priority="high", actor=sara, expected_version=seen)
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/reply",
        {"version": seen, "body": "Mi respuesta larga.", "then": "pending_customer"},
    )
    assert response.status_code == 409
    assert "Mi respuesta larga." in response.content.decode()  # the agent's text is not lost
    assert "Mi respuesta larga." not in [m.body for m in Message.objects.filter(case=case)]
    case.refresh_from_db()
    assert case.priority == "high"


# --- permissions --------------------------------------------------------------------------


def test_an_agent_cannot_read_or_change_another_teams_case(client, open_case, teams, ana, bruno):
    theirs = shipping(open_case)  # Logistics
    client.force_login(ana)
    assert client.get(f"/helpdesk/cases/{theirs.reference}").status_code == 404
    response = client.post(
        f"/helpdesk/cases/{theirs.reference}/status",
        {"version": theirs.version, "status": "closed", "outcome": "resolved"},
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status != Status.CLOSED
    listed = client.get("/helpdesk/?view=all").content.decode()
    assert theirs.reference not in listed


def test_customers_and_people_without_a_role_never_reach_staff_pages(client, open_case, teams):
    case = open_case()
    for url in ("/helpdesk/", f"/helpdesk/cases/{case.reference}", "/helpdesk/notifications/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/helpdesk/login/")
    nobody = User.objects.create_user("nobody", password="pw")
    client.force_login(nobody)
    assert client.get("/helpdesk/").status_code == 403
    assert client.post(f"/helpdesk/cases/{case.reference}/note", {"body": "x"}).status_code == 403


def test_administrators_see_every_team(client, open_case, teams):
    admin = person("root", Role.ADMINISTRATOR)
    theirs = shipping(open_case)
    client.force_login(admin)
    assert client.get(f"/helpdesk/cases/{theirs.reference}").status_code == 200


# --- the queue ----------------------------------------------------------------------------


def test_queue_views_filters_and_keyset_pages(client, open_case, teams, ana, sara):
    cases = [open_case(email=f"q{i}@example.com", name=f"Cliente {i}") for i in range(7)]
    mine = [c for c in cases if c.assignee == ana]
    client.force_login(ana)
    page = client.get("/helpdesk/?view=mine").content.decode()
    assert all(c.reference in page for c in mine)
    assert all(c.reference not in page for c in cases if c.assignee != ana)
    page = client.get("/helpdesk/?view=all&email=q3@example.com").content.decode()
    assert cases[3].reference in page and cases[4].reference not in page
    # Pages of two: every case once, in deadline order, whatever the page.
    from concilia.cases import queue

    seen, after = [], ""
    while True:
        result = queue.page(ana, {"view": "all", "sort": "deadline", "after": after}, size=2)
        seen += [c.reference for c in result.cases]
        if not result.next_after:
            break
        after = result.next_after
    expected = [
        c.reference
        for c in Case.objects.filter(pk__in=[c.pk for c in cases]).order_by("deadline", "pk")
    ]
    assert seen == expected


def test_a_queue_page_costs_the_same_few_queries_whatever_its_size(client, open_case, teams, ana):
    client.force_login(ana)
    open_case(email="first@example.com")
    client.get("/helpdesk/?view=all")
    with CaptureQueriesContext(connection) as few:
        client.get("/helpdesk/?view=all")
    for i in range(12):
        open_case(email=f"n{i}@example.com")
    with CaptureQueriesContext(connection) as many:
        response = client.get("/helpdesk/?view=all")
    assert response.content.decode().count("/helpdesk/cases/RC-") >= 12
    # session, user, permissions (2), teams, the page, unread count, the filter choices (2),
    # the people a case may be given to and the bulk form's choice of them, the audit entry (3)
    assert len(many) == len(few) <= 14


def test_bad_filters_are_explained_not_a_crash(client, teams, ana):
    client.force_login(ana)
    response = client.get("/helpdesk/?created_from=2026-13-45&waiting_days=-3&after=%%%")
    assert response.status_code == 200
    assert "ignored" in response.content.decode() or "ignorado" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "created_to=9999-12-31",
        "created_from=0001-01-01",
        "assignee=99999999999999999999999",
        "sort=priority&after=WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgMV0",  # a deadline cursor
        "sort=deadline&after=WzEsIDFd",  # a priority cursor
        "after=WyJub3QgYSBkYXRlIiwgMV0",
    ],
)
def test_values_the_database_cannot_take_are_refused_not_a_crash(
    client, open_case, teams, ana, query
):
    open_case()
    client.force_login(ana)
    response = client.get(f"/helpdesk/?view=all&{query}")
    assert response.status_code == 200
    assert "errors-summary" in response.content.decode()
