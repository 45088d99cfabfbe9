"""Reading personal data leaves an audit entry on the pages beyond the case page: the agents' live
chats (the list, a chat, its new messages, taking it and writing in it), a customer reading their
own cases and chat, and a token reading a complaint through the API.

Lucy asked the assistant for a person (the live chat tests' story); Ana of Customer care answers.
Lucía (conftest's `open_case`) reads her case on the tracking pages.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from concilia.accounts.models import ApiToken
from concilia.assistant.models import Conversation
from concilia.assistant.tests import test_live_chat
from concilia.core import audit
from concilia.core.models import AuditEntry

pytestmark = pytest.mark.django_db

ANA_WHERE = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Firefox/128.0 (Ana's laptop)"}
TRANSCRIPT = ["transcript", "customer.name", "customer.email"]

# The live chat tests' people: Customer care (with its queue rule), Ana in it, Lucy's chat.
care = test_live_chat.care
lucy = test_live_chat.lucy


@pytest.fixture
def ana(care):
    return test_live_chat.person("ana", test_live_chat.Role.AGENT, care)


def new_entries(since: int, action: str | None = None) -> list[AuditEntry]:
    found = AuditEntry.objects.filter(seq__gt=since).order_by("seq")
    return list(found.filter(action=action) if action else found)


def last_seq() -> int:
    return AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def who_where(entry: AuditEntry) -> tuple[str, str, str, str]:
    return entry.actor_kind, entry.actor_label, entry.ip_address, entry.channel


def test_an_agent_listing_opening_taking_and_answering_a_live_chat_is_recorded(lucy, ana):
    conversation, _token = lucy
    case = conversation.case
    client = Client(**ANA_WHERE)
    client.force_login(ana)
    start = last_seq()

    assert client.get("/helpdesk/chats/").status_code == 200
    assert client.get(f"/helpdesk/chats/{conversation.public_id}/").status_code == 200
    client.post(f"/helpdesk/chats/{conversation.public_id}/take")
    after = Conversation.objects.get(pk=conversation.pk).last_seq
    client.post(f"/helpdesk/chats/{conversation.public_id}/reply", {"body": "Hola Lucy"})
    polled = client.get(f"/helpdesk/chats/{conversation.public_id}/messages?after={after}")
    nothing_new = client.get(
        f"/helpdesk/chats/{conversation.public_id}/messages?after={polled.json()['last_seq']}"
    )

    assert nothing_new.json()["messages"] == []
    listed, opened, taken, written, case_reply, poll = new_entries(start)
    assert {who_where(e) for e in (listed, opened, taken, written, case_reply, poll)} == {
        ("staff", "ana", "203.0.113.7", "web")
    }
    assert (listed.action, listed.object_type, listed.detail) == (
        "list",
        "assistant.conversation",
        {"shown": [conversation.pk]},
    )
    assert (opened.action, opened.object_id, opened.case_reference, opened.customer_pk) == (
        "view",
        str(conversation.pk),
        case.reference,
        case.customer_id,
    )
    assert opened.fields == TRANSCRIPT
    assert (taken.action, taken.object_id, taken.detail) == (
        "change",
        str(conversation.pk),
        {"taken": True},
    )
    assert (written.action, written.object_type, written.fields) == (
        "create",
        "cases.message",
        ["body"],
    )  # the case's copy of the reply is written first
    assert (case_reply.action, case_reply.object_type, case_reply.fields) == (
        "create",
        "assistant.chatmessage",
        ["body"],
    )
    assert (poll.action, poll.detail) == ("view", {"after": after, "messages": 1})
    assert audit.verify().ok


def test_a_customer_reading_their_chat_transcript_is_recorded_once_not_per_poll(lucy):
    conversation, token = lucy
    customer = Client(REMOTE_ADDR="198.51.100.20")
    start = last_seq()

    whole = customer.get(
        f"/api/v1/conversations/{conversation.public_id}?after=0",
        headers={"X-Conversation-Token": token},
    )
    customer.get(
        f"/api/v1/conversations/{conversation.public_id}?after={whole.json()['last_seq']}",
        headers={"X-Conversation-Token": token},
    )

    [read] = new_entries(start)
    assert (read.action, read.object_id, read.fields) == (
        "view",
        str(conversation.pk),
        ["transcript"],
    )
    assert (read.actor_kind, read.actor_id, read.customer_pk) == (
        "customer",
        str(conversation.customer_id),
        conversation.customer_id,
    )
    assert (read.ip_address, read.channel) == ("198.51.100.20", "api")


def test_a_customer_reading_their_cases_on_the_tracking_pages_is_recorded(
    open_case, customer_client
):
    case = open_case()
    client = customer_client(case)
    start = last_seq()

    assert client.get("/track/cases").status_code == 200
    assert client.get(f"/track/cases/{case.reference}").status_code == 200

    listed, viewed = new_entries(start)
    for entry in (listed, viewed):
        assert (entry.actor_kind, entry.actor_id, entry.customer_pk) == (
            "customer",
            str(case.customer_id),
            case.customer_id,
        )
        assert (entry.channel, entry.ip_address) == ("web", "127.0.0.1")  # the test client's
    assert (listed.action, listed.detail) == ("list", {"shown": [case.reference]})
    assert (viewed.action, viewed.object_type, viewed.case_reference) == (
        "view",
        "cases.case",
        case.reference,
    )
    assert "description" in viewed.fields
    assert audit.verify().ok


def test_a_token_reading_a_complaint_through_the_api_is_recorded(ana, open_case):
    case = open_case()
    ana.user_permissions.add(Permission.objects.get(codename="view_case"))
    token, raw = ApiToken.issue(user=ana, name="CRM")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.50")
    start = last_seq()

    assert api.get(f"/api/v1/complaints/{case.reference}").status_code == 200

    [read] = new_entries(start)
    assert (read.action, read.actor_kind, read.actor_id) == ("view", "token", str(token.pk))
    assert (read.case_reference, read.ip_address, read.channel) == (
        case.reference,
        "192.0.2.50",
        "api",
    )
