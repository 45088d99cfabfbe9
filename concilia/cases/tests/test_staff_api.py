"""The helpdesk over the REST API: the same queue, access rules, forms and actions as the pages.

The people are those of the helpdesk tests (conftest.py): Ana is an agent of Customer care, Bruno an agent of
Logistics, Sara supervises Customer care. Late deliveries go to Logistics, the rest to Customer care.
Each calls the API with a token of their own.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from concilia.accounts.models import ApiToken, User
from concilia.cases import actions, queue
from concilia.cases.api import ApiQueueForm, QueueQuery
from concilia.cases.attachments import check_file
from concilia.cases.models import (
    Case,
    EventKind,
    Message,
    Notification,
    NotificationKind,
    Outcome,
    Status,
)
from concilia.cases.tests.conftest import shipping
from concilia.core.memo import forget_all
from conftest import PNG_BYTES

API = "/api/v1"


class Caller:
    """A client that sends one person's token (or none) and reads JSON answers."""

    def __init__(self, client: Client, user: User | None, language: str = "en"):
        self.client = client
        self.headers = {"HTTP_ACCEPT_LANGUAGE": language}
        if user is not None:
            raw = ApiToken.issue(user=user, name=f"{user.username}'s CRM")[1]
            self.headers["HTTP_AUTHORIZATION"] = f"Bearer {raw}"

    def get(self, path: str, params: Any = None) -> Any:
        return self.client.get(API + path, params or {}, **self.headers)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(API + path, body, content_type="application/json", **self.headers)


def references(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["reference"] for item in response.json()["items"]]


def fields(response: Any) -> dict[str, dict[str, str]]:
    return {error["field"]: error for error in response.json()["errors"]}


@pytest.fixture
def as_ana(client, ana):
    return Caller(client, ana)


# --- who may do what ----------------------------------------------------------------------


ACTIONS = {
    "replies": {"body": "Lo miramos."},
    "notes": {"body": "Nota."},
    "status": {"status": "closed", "outcome": "resolved"},
    "assign": {"assignee": "ana"},
    "transfer": {"team": "care", "assignee": "ana", "note": "Para nosotros."},
}


def test_an_agent_gets_404_for_another_teams_case_whatever_she_tries(
    open_case, teams, as_ana, bruno
):
    # Given a late delivery, which belongs to Logistics
    theirs = shipping(open_case)
    version = theirs.version
    # When Ana (Customer care) reads it or acts on it, then it does not exist for her
    response = as_ana.get(f"/cases/{theirs.reference}")
    assert response.status_code == 404
    assert response.json() == {"detail": "There is no case with this reference.", "errors": []}
    for action, body in ACTIONS.items():
        response = as_ana.post(f"/cases/{theirs.reference}/{action}", body)
        assert response.status_code == 404, action
    assert theirs.reference not in references(as_ana.get("/cases", {"view": "all"}))
    # and nothing changed
    theirs.refresh_from_db()
    assert (theirs.version, theirs.status, theirs.team.code, theirs.assignee) == (
        version,
        Status.NOT_STARTED,
        "logistics",
        bruno,
    )
    assert not theirs.messages.exists()


def test_an_unknown_or_malformed_reference_is_404_too(teams, as_ana):
    assert as_ana.get("/cases/RC-2026-999999-X").status_code == 404
    assert as_ana.get("/cases/nonsense").status_code == 404
    assert as_ana.post("/cases/nonsense/notes", {"body": "x"}).status_code == 404


def test_a_token_without_helpdesk_permissions_gets_403_and_no_token_401(client, open_case, teams):
    case = open_case()
    shop = Caller(client, User.objects.create_user("shop"))
    anonymous = Caller(client, None)
    for caller, status in ((shop, 403), (anonymous, 401)):
        assert caller.get("/cases").status_code == status
        assert caller.get(f"/cases/{case.reference}").status_code == status
        for action, body in ACTIONS.items():
            assert caller.post(f"/cases/{case.reference}/{action}", body).status_code == status
    assert shop.get("/cases").json()["detail"] == "This token may not read cases."
    case.refresh_from_db()
    assert case.version == 1 and not case.messages.exists()


def test_a_read_only_integration_may_read_but_not_change(client, open_case):
    # Given a case no rule routed to a team, and an integration that may only view cases
    case = open_case()
    assert case.team is None
    crm = User.objects.create_user("crm")
    crm.user_permissions.add(Permission.objects.get(codename="view_case"))
    caller = Caller(client, crm)
    # Then it reads the case, but each change is refused
    response = caller.get(f"/cases/{case.reference}")
    assert response.status_code == 200 and response.json()["may_change"] is False
    for action, body in ACTIONS.items():
        response = caller.post(f"/cases/{case.reference}/{action}", body)
        assert response.status_code == 403, action
    assert response.json()["detail"] == "This token may read cases but not change them."


# --- the queue ----------------------------------------------------------------------------


def test_queue_filters_are_those_of_the_helpdesk_page(open_case, teams, ana, sara, as_ana):
    # Given care cases for several customers, shared between Ana and Sara
    cases = [open_case(email=f"q{i}@example.com", name=f"Cliente {i}") for i in range(6)]
    mine = {c.reference for c in cases if c.assignee == ana}
    assert mine and len(mine) < len(cases)
    # When Ana asks for her view, then she gets exactly her open cases
    assert set(references(as_ana.get("/cases", {"view": "mine"}))) == mine
    assert set(references(as_ana.get("/cases"))) == mine  # mine is the default, as on the page
    # by email, whole and in any case (addresses are encrypted: a part of one is refused)
    only = as_ana.get("/cases", {"view": "all", "email": "Q3@Example.com"})
    assert references(only) == [cases[3].reference]
    partial = as_ana.get("/cases", {"view": "all", "email": "example.com"})
    assert partial.status_code == 422
    assert partial.json()["errors"][0]["code"] == "partial_email"
    # by whole words of the name, accents and case aside
    assert references(as_ana.get("/cases", {"view": "all", "name": "cliente 3"})) == [
        cases[3].reference
    ]
    assert len(references(as_ana.get("/cases", {"view": "all", "name": "CLIENTE"}))) == 6
    assert references(as_ana.get("/cases", {"view": "all", "name": "Client"})) == []
    # by several statuses (the parameter repeated)
    actions.change_status(case=cases[0], status=Status.PENDING_CUSTOMER, actor_user=ana)
    actions.close_case(case=cases[1], outcome=Outcome.RESOLVED, actor_user=ana)
    waiting = as_ana.get("/cases", {"view": "all", "status": ["pending_customer", "closed"]})
    assert set(references(waiting)) == {cases[0].reference, cases[1].reference}
    # overdue alerts
    Case.objects.filter(pk=cases[2].pk).update(deadline=timezone.now() - dt.timedelta(hours=1))
    overdue = as_ana.get("/cases", {"view": "all", "alert": "overdue"})
    assert references(overdue) == [cases[2].reference]
    assert overdue.json()["items"][0]["clock"] == "red"
    # free text, found in the thread too
    actions.add_customer_message(case=cases[4], body="El paquete llegó aplastado.")
    assert references(as_ana.get("/cases", {"view": "all", "q": "aplastado"})) == [
        cases[4].reference
    ]


def test_a_queue_item_carries_what_a_crm_shows(open_case, teams, ana, as_ana):
    case = open_case(name="Lucía Fernández")
    item = as_ana.get("/cases", {"view": "all"}).json()["items"][0]
    case.refresh_from_db()
    assert item == {
        "reference": case.reference,
        "subject": case.subject,
        "customer": {"name": "Lucía Fernández", "email": "lucia@example.com"},
        "category": "other",
        "kind": "complaint",
        "channel": "web",
        "status": "not_started",
        "outcome": "",
        "priority": "normal",
        "language": "es",
        "team": "care",
        "assignee": "ana",
        "deadline": item["deadline"],
        "first_response_due": item["first_response_due"],
        "next_alert_at": None,
        "created_at": item["created_at"],
        "last_activity_at": item["last_activity_at"],
        "version": case.version,
        "clock": "green",
        "clock_paused": False,
        "jurisdiction": "ES",
        "legal_deadline": item["legal_deadline"],
        "legal_clock": "green",
    }
    assert dt.datetime.fromisoformat(item["deadline"]) == case.deadline
    assert dt.datetime.fromisoformat(item["legal_deadline"]) == case.legal_deadline
    assert dt.datetime.fromisoformat(item["first_response_due"]) == case.first_response_due


@pytest.mark.parametrize("sort", ["deadline", "priority", "age", "activity"])
def test_the_next_cursor_walks_every_page_once(open_case, teams, ana, as_ana, sort):
    cases = [open_case(email=f"p{i}@example.com") for i in range(7)]
    actions.set_priority(case=cases[3], priority="urgent", actor=ana)
    actions.set_priority(case=cases[5], priority="low", actor=ana)
    seen, after, pages = [], None, 0
    while True:
        params = {"view": "all", "sort": sort, "limit": 2, **({"after": after} if after else {})}
        body = as_ana.get("/cases", params).json()
        seen += [item["reference"] for item in body["items"]]
        pages += 1
        after = body["next"]
        if after is None:
            break
    expected = [c.reference for c in queue.page(ana, {"view": "all", "sort": sort}, size=50).cases]
    assert seen == expected and len(set(seen)) == 7 and pages == 4


def test_bad_filters_answer_422_naming_each_field(teams, as_ana):
    params = {
        "view": "everything",
        "status": ["open", "closed"],
        "waiting_days": "-3",
        "created_from": "2026-13-45",
        "after": "%%%",
        "limit": "0",
    }
    response = as_ana.get("/cases", params)
    assert response.status_code == 422
    errors = fields(response)
    assert set(errors) == {"view", "status", "waiting_days", "created_from", "after", "limit"}
    assert errors["status"]["code"] == "invalid_choice"
    assert errors["waiting_days"]["code"] == "min_value"
    assert errors["after"]["message"].startswith("This page cursor is not valid")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"assignee": "99999999999999999999999"}, "assignee"),
        ({"created_to": "9999-12-31"}, "created_to"),
        ({"created_from": "0001-01-01"}, "created_from"),
        ({"sort": "priority", "after": "WzAsIDEwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDBd"}, "after"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_values_the_database_cannot_take_are_422_not_500(open_case, teams, as_ana, params, field):
    open_case()
    response = as_ana.get("/cases", {"view": "all", **params})
    assert response.status_code == 422 and set(fields(response)) == {field}


def test_a_cursor_of_another_sort_is_refused_not_a_crash(open_case, teams, as_ana):
    for i in range(3):
        open_case(email=f"s{i}@example.com")
    after = as_ana.get("/cases", {"view": "all", "sort": "priority", "limit": 1}).json()["next"]
    response = as_ana.get("/cases", {"view": "all", "sort": "deadline", "after": after})
    assert response.status_code == 422 and set(fields(response)) == {"after"}


def test_the_queue_endpoint_documents_the_queue_forms_parameter_names(client, db):
    assert set(QueueQuery.model_fields) == set(ApiQueueForm.base_fields)
    assert set(ApiQueueForm.base_fields) == {*queue.QueueForm.base_fields, "limit"}
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    documented = {p["name"] for p in paths[f"{API}/cases"]["get"]["parameters"]}
    assert documented == {*queue.QueueForm.base_fields, "limit"}
    assert {"/replies", "/notes", "/status", "/assign", "/transfer"} == {
        path.removeprefix(f"{API}/cases/{{reference}}")
        for path in paths
        if path.startswith(f"{API}/cases/{{reference}}/")
    }


def test_a_queue_page_costs_the_same_few_queries_whatever_its_size(open_case, teams, ana, as_ana):
    def measure() -> tuple[int, int]:
        forget_all()  # a cold request: token, permissions and holidays are read again
        with CaptureQueriesContext(connection) as queries:
            response = as_ana.get("/cases", {"view": "all", "limit": 50})
        return len(queries), len(response.json()["items"])

    open_case()
    few, one = measure()
    for i in range(12):
        open_case(email=f"n{i}@example.com")
    many, thirteen = measure()
    assert (one, thirteen) == (1, 13)
    # token (with its user), permissions (2), teams, the page, the team calendar's holidays, the
    # audit entry (3: the chain's head, the entry, the head moved); the token's first use also
    # records last_used_at (then at most once a minute)
    assert many == few - 1 <= 9


# --- reading a case -----------------------------------------------------------------------


def test_a_case_comes_with_its_whole_thread_in_order(open_case, teams, ana, as_ana):
    case = open_case(order_number="PED-1", amount="49.90")
    actions.add_customer_message(
        case=case, body="Adjunto la foto.", files=[check_file("foto.png", PNG_BYTES)]
    )
    actions.reply_to_customer(case=case, body="Gracias, lo revisamos.", author=ana)
    actions.add_internal_note(case=case, body="Parece un golpe en transporte.", author=ana)

    response = as_ana.get(f"/cases/{case.reference.lower()}")

    assert response.status_code == 200
    body = response.json()
    case.refresh_from_db()
    assert (body["reference"], body["version"], body["status"]) == (
        case.reference,
        case.version,
        "pending_customer",
    )
    assert body["customer"] == {
        "name": "Lucía Fernández",
        "email": "lucia@example.com",
        "phone": "",
        "language": "es",
    }
    assert (body["order_number"], body["amount"], body["currency"]) == ("PED-1", "49.90", "EUR")
    assert body["description"] == "Algo salió mal con mi pedido."
    assert body["first_response_at"] is not None and body["may_change"] is True
    assert body["clock_paused"] is True
    messages = [(e["type"], e["actor"], e["body"]) for e in body["thread"] if e["type"] != "event"]
    assert messages == [
        ("message", None, "Adjunto la foto."),
        ("message", "ana", "Gracias, lo revisamos."),
        ("note", "ana", "Parece un golpe en transporte."),
    ]
    note = next(e for e in body["thread"] if e["type"] == "note")
    assert note["internal"] is True
    events = [e["event"] for e in body["thread"] if e["type"] == "event"]
    assert events[0] == EventKind.OPENED and EventKind.NOTE_ADDED in events
    # every entry in the order it happened
    moments = [e["created_at"] for e in body["thread"]]
    assert moments == sorted(moments, key=dt.datetime.fromisoformat)
    photo = body["thread"][next(i for i, e in enumerate(body["thread"]) if e["type"] == "message")]
    assert [a["filename"] for a in photo["attachments"]] == ["foto.png"]
    assert body["attachments"] == [
        {
            "id": photo["attachments"][0]["id"],
            "filename": "foto.png",
            "content_type": "image/png",
            "size": len(PNG_BYTES),
            "uploaded_by": "customer",
            "created_at": photo["attachments"][0]["created_at"],
            "message": photo["id"],
        }
    ]


# --- acting on a case ---------------------------------------------------------------------


def test_a_reply_reaches_the_customer(open_case, teams, ana, as_ana, run_tasks):
    case = open_case()
    run_tasks()  # the acknowledgement of the new case goes out first
    mail.outbox.clear()
    response = as_ana.post(
        f"/cases/{case.reference}/replies", {"body": "Le devolvemos el importe.", "version": 1}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending_customer"
    assert response.json()["version"] == 2
    (message,) = [
        m for m in Message.objects.filter(case=case) if m.body == "Le devolvemos el importe."
    ]
    assert (message.author_user, message.internal) == (ana, False)
    run_tasks()
    sent = [m for m in mail.outbox if m.to == ["lucia@example.com"]]
    assert len(sent) == 1 and "Le devolvemos el importe." in sent[0].body
    assert case.reference in sent[0].subject


def test_a_reply_from_a_template_is_filled_in_for_the_case(open_case, teams, as_ana, templates):
    case = open_case(name="Lucía", order_number="A-7")
    response = as_ana.post(
        f"/cases/{case.reference}/replies", {"template": "ack", "status": "pending_agent"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending_agent"
    message = Message.objects.get(case=case, author_user__username="ana")
    assert message.body == f"Hola Lucía, revisamos {case.reference} (pedido A-7)."
    assert case.events.get(kind=EventKind.REPLY_SENT).data["template"] == "ack"


def test_a_reply_that_closes_needs_an_outcome(open_case, teams, as_ana):
    case = open_case()
    response = as_ana.post(
        f"/cases/{case.reference}/replies", {"body": "Hecho.", "status": "closed"}
    )
    assert response.status_code == 422 and set(fields(response)) == {"outcome"}
    assert not case.messages.exists()
    response = as_ana.post(
        f"/cases/{case.reference}/replies",
        {"body": "Hecho.", "status": "closed", "outcome": "answered"},
    )
    assert (response.json()["status"], response.json()["outcome"]) == ("closed", "answered")


def test_a_note_stays_internal(open_case, teams, ana, as_ana, run_tasks):
    case = open_case()
    response = as_ana.post(f"/cases/{case.reference}/notes", {"body": "Cliente difícil."})
    assert response.status_code == 200 and response.json()["version"] == 2
    (note,) = [m for m in Message.objects.filter(case=case) if m.body == "Cliente difícil."]
    assert note.internal
    mail.outbox.clear()
    run_tasks()
    assert all("Cliente difícil" not in m.body for m in mail.outbox)
    assert as_ana.post(f"/cases/{case.reference}/notes", {"body": " "}).status_code == 422


def test_status_changes_and_closing_needs_an_outcome(open_case, teams, as_ana):
    case = open_case()
    response = as_ana.post(f"/cases/{case.reference}/status", {"status": "pending_agent"})
    assert response.status_code == 200 and response.json()["status"] == "pending_agent"
    response = as_ana.post(f"/cases/{case.reference}/status", {"status": "closed"})
    assert response.status_code == 422
    assert fields(response)["outcome"]["message"] == "Say how the case ends before closing it."
    response = as_ana.post(
        f"/cases/{case.reference}/status", {"status": "closed", "outcome": "rejected"}
    )
    body = response.json()
    assert (body["status"], body["outcome"], body["clock"]) == ("closed", "rejected", "grey")
    case.refresh_from_db()
    assert case.closed_at is not None
    assert as_ana.post(f"/cases/{case.reference}/status", {"status": "gone"}).status_code == 422


def test_assign_tells_the_new_owner_and_keeps_to_the_agents_teams(
    open_case, teams, ana, sara, bruno, as_ana, run_tasks
):
    case = open_case()
    run_tasks()
    mail.outbox.clear()
    response = as_ana.post(f"/cases/{case.reference}/assign", {"assignee": "sara"})
    assert response.status_code == 200 and response.json()["assignee"] == "sara"
    assert Notification.objects.filter(
        recipient=sara, case=case, kind=NotificationKind.ASSIGNED
    ).exists()
    run_tasks()
    assert [m.to for m in mail.outbox] == [["sara@company.test"]]
    # Bruno is in another team: giving him the case is a transfer, not an assignment
    response = as_ana.post(f"/cases/{case.reference}/assign", {"assignee": "bruno"})
    assert response.status_code == 422
    assert fields(response)["assignee"]["message"] == (
        "Choose someone from your teams, or pick a team."
    )
    response = as_ana.post(f"/cases/{case.reference}/assign", {"assignee": "nobody"})
    assert response.status_code == 422 and fields(response)["assignee"]["code"] == "invalid_choice"
    response = as_ana.post(f"/cases/{case.reference}/assign", {"assignee": None})
    assert response.status_code == 200 and response.json()["assignee"] is None
    # the key must be sent: leaving it out does not unassign by accident
    assert as_ana.post(f"/cases/{case.reference}/assign", {}).status_code == 422


def test_transfer_hands_the_case_to_another_team_with_a_note(
    open_case, teams, ana, bruno, as_ana, run_tasks
):
    case = open_case()
    run_tasks()
    mail.outbox.clear()
    response = as_ana.post(f"/cases/{case.reference}/transfer", {"team": "logistics"})
    assert response.status_code == 422 and set(fields(response)) == {"note"}
    response = as_ana.post(
        f"/cases/{case.reference}/transfer", {"team": "marketing", "note": "¿Vuestro?"}
    )
    assert response.status_code == 422 and set(fields(response)) == {"team"}

    response = as_ana.post(
        f"/cases/{case.reference}/transfer",
        {"team": "logistics", "assignee": "bruno", "note": "Es del transportista."},
    )

    assert response.status_code == 200, response.content
    assert (response.json()["team"], response.json()["assignee"]) == ("logistics", "bruno")
    assert case.events.filter(kind=EventKind.TRANSFERRED).exists()
    notes = case.messages.filter(internal=True)
    assert "Es del transportista." in [note.body for note in notes]
    assert Notification.objects.filter(recipient=bruno, kind=NotificationKind.TRANSFERRED).exists()
    run_tasks()
    assert [m.to for m in mail.outbox] == [["bruno@company.test"]]
    # it is Logistics' case now: Ana no longer sees it
    assert as_ana.get(f"/cases/{case.reference}").status_code == 404


def test_a_stale_version_is_refused_with_409_and_nothing_saved(open_case, teams, sara, as_ana):
    case = open_case()
    seen = case.version
    actions.set_priority(case=case, priority="high", actor=sara, expected_version=seen)
    for action, body in ACTIONS.items():
        response = as_ana.post(f"/cases/{case.reference}/{action}", {**body, "version": seen})
        assert response.status_code == 409, action
    assert response.json()["detail"].startswith("Someone else changed this case")
    assert fields(response)["version"] == {
        "field": "version",
        "code": "stale",
        "message": "The case is now at version 2.",
    }
    case.refresh_from_db()
    assert (case.version, case.status, case.team.code) == (2, Status.NOT_STARTED, "care")
    assert not case.messages.exists()
    # with the current version the same change goes through
    response = as_ana.post(f"/cases/{case.reference}/notes", {"body": "Visto.", "version": 2})
    assert response.status_code == 200 and response.json()["version"] == 3


def test_bad_bodies_are_422_never_500(open_case, teams, as_ana):
    case = open_case()
    url = f"/cases/{case.reference}"
    assert as_ana.post(f"{url}/notes", {"body": "x", "version": "old"}).status_code == 422
    assert as_ana.post(f"{url}/notes", {"body": "x", "version": 0}).status_code == 422
    assert as_ana.post(f"{url}/replies", {"body": ["x"]}).status_code == 422
    assert as_ana.post(f"{url}/replies", {"body": "x", "template": "nope"}).status_code == 422
    assert as_ana.post(f"{url}/transfer", {"team": "", "note": "x"}).status_code == 422
    response = as_ana.client.post(
        f"{API}{url}/notes", "{not json", content_type="application/json", **as_ana.headers
    )
    assert response.status_code == 400


def test_errors_speak_spanish_when_asked(client, open_case, teams, ana):
    case = open_case()
    as_ana = Caller(client, ana, language="es")
    response = as_ana.post(f"/cases/{case.reference}/status", {"status": "closed"})
    assert response.status_code == 422
    assert response.json()["detail"] == "La solicitud contiene errores."
    assert (
        fields(response)["outcome"]["message"] == "Indica cómo termina el caso antes de cerrarlo."
    )
    response = as_ana.get("/cases", {"assignee": "alguien"})
    assert fields(response)["assignee"]["message"] == "Elige a una persona de la lista."
    response = as_ana.get("/cases/RC-2026-999999-X")
    assert response.json()["detail"] == "No hay ningún caso con esta referencia."
