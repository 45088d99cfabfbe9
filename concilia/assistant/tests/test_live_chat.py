"""The agents' live chats: the list, the chat page, taking, answering and ending a chat, and who
may do what.

Lucy asks the assistant for a person; her case goes to Customer care's queue (nobody assigned).
Ana is an agent of Customer care, Bruno an agent of Logistics (he must never see Lucy's chat), and
Olga is staff who may read cases through the API but not use the helpdesk. The pages are read
in English.
"""

from __future__ import annotations

import os
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from concilia.accounts.models import Role, Team
from concilia.assistant import actions
from concilia.assistant.models import Author, Conversation, ConversationStatus, Handover
from concilia.cases.models import AssignmentRule, Notification, Strategy
from concilia.cases.tests.conftest import person
from conftest import CHROMIUM

pytestmark = pytest.mark.django_db

CHATS = "/helpdesk/chats/"


@pytest.fixture(autouse=True)
def english(client, settings):
    """The pages in English (the site's default is Spanish), so tests read the source strings."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


@pytest.fixture
def care(notice):
    care = Team.objects.create(code="care", name_es="Atención", name_en="Care")
    AssignmentRule.objects.create(
        name="Everything else", position=9, team=care, strategy=Strategy.TEAM_QUEUE
    )
    return care


@pytest.fixture
def logistics(db):
    return Team.objects.create(code="logistics", name_es="Logística", name_en="Logistics")


@pytest.fixture
def ana(care):
    return person("ana", Role.AGENT, care)


@pytest.fixture
def bruno(logistics):
    return person("bruno", Role.AGENT, logistics, language="en")


@pytest.fixture
def olga(db, django_user_model):
    user = django_user_model.objects.create_user("olga", "olga@company.test", "pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_case"))
    return user


def ask_for_person(email: str = "lucy@example.com", name: str = "Lucy Grant") -> tuple[str, str]:
    """A customer asks the assistant for a person; returns (conversation id, token)."""
    started = actions.start_conversation(language="en", channel="page")
    conversation = started.conversation
    for turn in (
        {"choice": "accept"},
        {"text": "I want to talk to a person, please"},
        {"text": email},
        {"text": name},
    ):
        actions.post_customer_message(conversation=conversation, **turn)
    return str(conversation.public_id), started.token


@pytest.fixture
def lucy(care, ana):
    """Lucy's conversation, handed over to a person; Ana is in Customer care."""
    public_id, token = ask_for_person()
    conversation = Conversation.objects.select_related("case").get(public_id=public_id)
    assert conversation.status == ConversationStatus.HANDED_OVER
    assert conversation.case.team == care
    assert conversation.case.assignee is None
    return conversation, token


def chat_url(conversation: Conversation, suffix: str = "") -> str:
    return f"{CHATS}{conversation.public_id}/{suffix}"


def customer_reads(client, conversation: Conversation, token: str, after: int) -> dict:
    response = client.get(
        f"/api/v1/conversations/{conversation.public_id}?after={after}",
        headers={"X-Conversation-Token": token},
    )
    assert response.status_code == 200
    return response.json()


# -- the list --------------------------------------------------------------------------------


def test_the_list_shows_a_handed_over_chat_with_its_reason(client, lucy, ana):
    # Given Lucy waits for a person, and Ana was told so
    conversation, _token = lucy
    assert list(Notification.objects.filter(recipient=ana).values_list("kind", flat=True)) == [
        "handover"
    ]
    client.force_login(ana)

    # When Ana opens the live chats
    response = client.get(CHATS)

    # Then Lucy's chat is there, with the reason, nobody on it, and her language
    assert response.status_code == 200
    chats = response.context["chats"]
    assert [c["conversation"].pk for c in chats] == [conversation.pk]
    assert chats[0]["handover"].reason == "requested"
    page = response.content.decode()
    assert 'data-reason="requested"' in page
    assert "The customer asked for a person" in page
    assert "Nobody yet" in page
    assert conversation.case.reference in page
    assert f'href="{chat_url(conversation)}"' in page


def test_the_list_puts_untaken_chats_first_longest_waiting_first_and_leaves_out_the_rest(
    client, lucy, ana, bruno
):
    # Given Lucy, then Mark, then Nora ask for a person; Ana has taken Lucy's chat; a fourth
    # customer's chat has ended
    lucy_chat, _token = lucy
    mark = Conversation.objects.get(public_id=ask_for_person("mark@example.com", "Mark Twin")[0])
    nora = Conversation.objects.get(public_id=ask_for_person("nora@example.com", "Nora Hale")[0])
    ended = Conversation.objects.get(public_id=ask_for_person("kim@example.com", "Kim Lee")[0])
    actions.take_conversation(conversation=lucy_chat, agent=ana)
    actions.end_live_chat(conversation=ended, agent=ana)
    client.force_login(ana)

    # When Ana and Bruno open the list
    mine = client.get(CHATS)
    client.force_login(bruno)
    his = client.get(CHATS)

    # Then Ana sees Mark and Nora (nobody has them, Mark waits longest), then Lucy (taken);
    # Bruno, in Logistics, sees none
    chats = mine.context["chats"]
    assert [c["conversation"].pk for c in chats] == [mark.pk, nora.pk, lucy_chat.pk]
    assert [c["waiting"] for c in chats] == [True, True, False]
    assert mine.content.decode().count("data-waiting") == 2
    assert his.context["chats"] == []
    assert "Nobody is waiting in the chat." in his.content.decode()


def test_the_list_costs_the_same_queries_whatever_the_number_of_chats(client, lucy, ana):
    # Given one chat waiting
    client.force_login(ana)
    client.get(CHATS)  # the session and the categories' memo are warm

    with CaptureQueriesContext(connection) as one:
        assert len(client.get(CHATS).context["chats"]) == 1

    # When three more customers ask for a person, one of them taken by Ana
    for n in range(3):
        ask_for_person(f"customer{n}@example.com", f"Customer Number {'abc'[n]}")
    taken = Conversation.objects.order_by("-pk").first()
    actions.take_conversation(conversation=taken, agent=ana)

    with CaptureQueriesContext(connection) as four:
        assert len(client.get(CHATS).context["chats"]) == 4

    # Then the page ran as many queries for four chats as for one: the session, the user, her
    # permissions (2), her teams, the chats with their cases, their hand-overs, the unread count,
    # and the audit log's one entry for the page (lock the chain's head, insert, move the head)
    assert len(four.captured_queries) == len(one.captured_queries) == 11


# -- the chat page -----------------------------------------------------------------------------


def test_the_case_link_opens_the_conversation_with_reason_summary_and_transcript(client, lucy, ana):
    # Given Lucy's chat
    conversation, _token = lucy
    client.force_login(ana)

    # When Ana follows the link from the case page
    case_page = client.get(f"/helpdesk/cases/{conversation.case.reference}").content.decode()
    link = f"/helpdesk/chats/case/{conversation.case.reference}/"
    assert f'href="{link}"' in case_page
    response = client.get(link)

    # Then she lands on the live chat with the reason, the summary, every message and the buttons
    assert response.status_code == 302
    assert response.url == chat_url(conversation)
    page = client.get(response.url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-handover-reason="requested"' in html
    assert ("Reason", "The customer asked for a person") in page.context["summary"]
    assert ("Category", "Other") in page.context["summary"]
    seqs = [line["message"].seq for line in page.context["transcript"]]
    assert seqs == list(range(1, conversation.last_seq + 1))
    assert "I want to talk to a person, please" in html
    assert "Take this chat" in html
    assert "End chat" in html
    assert f'href="/helpdesk/cases/{conversation.case.reference}"' in html
    assert f'data-poll="{chat_url(conversation)}messages"' in html
    assert "/static/concilia/livechat.js" in html
    assert "<script>" not in html


def test_taking_a_chat_makes_it_the_agents(client, lucy, ana):
    # Given Lucy's chat, not taken
    conversation, token = lucy
    before = conversation.last_seq
    client.force_login(ana)

    # When Ana takes it
    response = client.post(chat_url(conversation, "take"))

    # Then the case is hers, the hand-over records her, and Lucy reads that Ana joined
    assert response.status_code == 302
    assert response.url == chat_url(conversation)
    conversation.refresh_from_db()
    conversation.case.refresh_from_db()
    assert conversation.case.assignee == ana
    handover = Handover.objects.get(conversation=conversation)
    assert handover.taken_by == ana
    assert handover.taken_at is not None
    new = customer_reads(client, conversation, token, before)["messages"]
    assert [(m["author"], m["body"]) for m in new] == [
        ("system", "Ana has joined the conversation.")
    ]
    assert client.get(CHATS).context["chats"][0]["handover"].taken_by == ana


def test_the_agents_reply_reaches_the_customer_and_the_case_without_an_email(
    client, lucy, ana, run_tasks
):
    # Given Ana has taken Lucy's chat, and the earlier emails (confirmation) are out
    conversation, token = lucy
    actions.take_conversation(conversation=conversation, agent=ana)
    run_tasks()
    mail.outbox = []
    client.force_login(ana)
    after = Conversation.objects.get(pk=conversation.pk).last_seq

    # When Ana answers in the chat, as the page's script does
    response = client.post(
        chat_url(conversation, "reply"),
        {"body": "Hello Lucy, I am looking at it now.", "after": after},
        headers={"Accept": "application/json"},
    )
    run_tasks()

    # Then the answer is back for the page, Lucy reads it, the case keeps it, and no email left
    assert response.status_code == 201
    assert {k: v for k, v in response.json().items() if k != "messages"} == {
        "status": "handed_over",
        "status_label": "With a person",
        "taken_by": "Ana",
        "taken_by_me": True,
    }
    assert [
        (m["seq"], m["author"], m["author_label"], m["body"]) for m in response.json()["messages"]
    ] == [(after + 1, "agent", "Ana", "Hello Lucy, I am looking at it now.")]
    read = customer_reads(client, conversation, token, after)
    assert [(m["author"], m["body"]) for m in read["messages"]] == [
        ("agent", "Hello Lucy, I am looking at it now.")
    ]
    assert read["status"] == "handed_over"
    last = conversation.case.messages.order_by("-created_at", "-pk").first()
    assert (last.author_user, last.body, last.internal) == (
        ana,
        "Hello Lucy, I am looking at it now.",
        False,
    )
    assert mail.outbox == []


def test_the_form_fallback_replies_and_takes_an_untaken_chat(client, lucy, ana):
    # Given Lucy's chat, not taken yet
    conversation, token = lucy
    before = conversation.last_seq
    client.force_login(ana)

    # When Ana sends an answer with the plain form (no script)
    response = client.post(chat_url(conversation, "reply"), {"body": "Hi Lucy!"})

    # Then the page comes back, and Lucy reads that Ana joined, then her answer
    assert response.status_code == 302
    assert response.url == chat_url(conversation) + "#reply"
    read = customer_reads(client, conversation, token, before)
    assert [(m["author"], m["body"]) for m in read["messages"]] == [
        ("system", "Ana has joined the conversation."),
        ("agent", "Hi Lucy!"),
    ]
    assert Handover.objects.get(conversation=conversation).taken_by == ana


def test_an_empty_reply_is_refused_with_the_form(client, lucy, ana):
    conversation, _token = lucy
    client.force_login(ana)

    response = client.post(chat_url(conversation, "reply"), {"body": "   "})
    as_json = client.post(
        chat_url(conversation, "reply"), {"body": ""}, headers={"Accept": "application/json"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {"body": ["This field is required."]}
    assert as_json.status_code == 400
    assert as_json.json() == {"error": "This field is required."}
    assert Conversation.objects.get(pk=conversation.pk).last_seq == conversation.last_seq


def test_the_customers_next_message_is_in_the_agents_poll(client, lucy, ana):
    # Given Ana has the chat open, having seen everything so far
    conversation, _token = lucy
    client.force_login(ana)
    seen = client.get(chat_url(conversation)).context["last_seq"]

    # When Lucy writes again
    actions.post_customer_message(conversation=conversation, text="It is order <b>4471</b>.")
    poll = client.get(chat_url(conversation, "messages") + f"?after={seen}")

    # Then the poll brings exactly her message (as text), and nothing when asked again after it
    assert poll.status_code == 200
    data = poll.json()
    assert data["status"] == "handed_over"
    assert data["last_seq"] == seen + 1
    assert [(m["seq"], m["author"], m["author_label"], m["body"]) for m in data["messages"]] == [
        (seen + 1, "customer", "Customer", "It is order <b>4471</b>.")
    ]
    again = client.get(chat_url(conversation, "messages") + f"?after={seen + 1}").json()
    assert again["messages"] == []
    assert client.get(chat_url(conversation, "messages") + "?after=x").json()["last_seq"] == (
        seen + 1
    )


def test_ending_the_chat_closes_it_and_asks_the_customer_for_the_survey(client, lucy, ana):
    # Given Ana is in Lucy's chat
    conversation, token = lucy
    actions.take_conversation(conversation=conversation, agent=ana)
    before = Conversation.objects.get(pk=conversation.pk).last_seq
    client.force_login(ana)

    # When she ends it
    response = client.post(chat_url(conversation, "end"))

    # Then the chat is closed, Lucy is asked for the survey, and the chat leaves the list
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.CLOSED
    assert conversation.ended_at is not None
    read = customer_reads(client, conversation, token, before)
    assert read["status"] == "closed"
    assert [(m["author"], m["body"], m["expects"]) for m in read["messages"]] == [
        (
            "assistant",
            "The person has ended the chat. Thank you for your patience. How satisfied are you "
            "with this conversation, from 1 (not at all) to 5 (very)?",
            "choice",
        )
    ]
    assert [c["value"] for c in read["messages"][0]["choices"]] == ["1", "2", "3", "4", "5"]
    assert client.get(CHATS).context["chats"] == []
    page = client.get(chat_url(conversation)).content.decode()
    assert "The chat has ended." in page
    assert "End chat" not in page


def test_replying_or_ending_after_the_end_explains_instead_of_failing(client, lucy, ana):
    # Given Lucy's chat has ended
    conversation, _token = lucy
    actions.end_live_chat(conversation=conversation, agent=ana)
    last_seq = Conversation.objects.get(pk=conversation.pk).last_seq
    client.force_login(ana)

    # When Ana still answers, with the script and without it, or ends or takes it again
    as_json = client.post(
        chat_url(conversation, "reply"), {"body": "Hello?"}, headers={"Accept": "application/json"}
    )
    as_form = client.post(chat_url(conversation, "reply"), {"body": "Hello?"}, follow=True)
    end = client.post(chat_url(conversation, "end"), follow=True)
    take = client.post(chat_url(conversation, "take"), follow=True)

    # Then each is told that the chat has ended, and nothing was added
    ended = "This chat has ended, so nothing was sent. You can still answer from the case."
    assert as_json.status_code == 409
    assert as_json.json() == {
        "error": ended,
        "status": "closed",
        "status_label": "Ended",
        "taken_by": "",
        "taken_by_me": False,
    }
    for response in (as_form, end, take):
        assert response.status_code == 200
        assert [str(m) for m in response.context["messages"]] == [ended]
    assert Conversation.objects.get(pk=conversation.pk).last_seq == last_seq


def test_a_chat_the_assistant_still_has_cannot_be_answered_from_the_live_chat(client, lucy, ana):
    # Given a chat with a case that the assistant still has (it was never handed to a person)
    conversation, _token = lucy
    Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.ACTIVE)
    client.force_login(ana)

    # When Ana opens it and answers anyway
    page = client.get(chat_url(conversation))
    answer = client.post(chat_url(conversation, "reply"), {"body": "Hello?"}, follow=True)

    # Then the page offers no answer box but the case, and the answer is refused with a reason
    assert page.status_code == 200
    html = page.content.decode()
    assert "The assistant still has this chat; a person answers once it is handed over." in html
    assert 'name="body"' not in html
    assert "Take this chat" not in html
    assert answer.status_code == 200
    assert [str(m) for m in answer.context["messages"]] == [
        "The assistant still has this chat (it was not handed to a person), so nothing was sent. "
        "You can answer from the case."
    ]
    assert Conversation.objects.get(pk=conversation.pk).last_seq == conversation.last_seq
    assert client.get(CHATS).context["chats"] == []


# -- who may do what -----------------------------------------------------------------------


def every_url(conversation: Conversation) -> list[tuple[str, str]]:
    return [
        ("get", CHATS),
        ("get", f"{CHATS}case/{conversation.case.reference}/"),
        ("get", chat_url(conversation)),
        ("get", chat_url(conversation, "messages")),
        ("post", chat_url(conversation, "take")),
        ("post", chat_url(conversation, "reply")),
        ("post", chat_url(conversation, "end")),
    ]


def test_anonymous_visitors_go_to_the_helpdesk_sign_in(client, lucy):
    conversation, _token = lucy
    for method, url in every_url(conversation):
        response = getattr(client, method)(url, {"body": "x"} if method == "post" else None)
        assert response.status_code == 302, url
        assert response.url.startswith("/helpdesk/login/?next="), url


def test_staff_without_helpdesk_rights_are_refused(client, lucy, olga):
    conversation, _token = lucy
    client.force_login(olga)
    for method, url in every_url(conversation):
        response = getattr(client, method)(url, {"body": "x"} if method == "post" else None)
        assert response.status_code == 403, url


def test_an_agent_of_another_team_cannot_find_the_chat(client, lucy, bruno):
    # Given Lucy's chat belongs to Customer care, and Bruno is in Logistics
    conversation, _token = lucy
    client.force_login(bruno)

    # Then every page of the chat is "not found" for him, and nothing changed
    for method, url in every_url(conversation)[1:]:
        response = getattr(client, method)(url, {"body": "x"} if method == "post" else None)
        assert response.status_code == 404, url
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.HANDED_OVER
    assert Handover.objects.get(conversation=conversation).taken_by is None
    assert not conversation.messages.filter(author__in=[Author.AGENT, Author.SYSTEM]).exists()


def test_an_unknown_chat_or_case_is_not_found(client, lucy, ana):
    client.force_login(ana)
    assert client.get(f"{CHATS}{uuid.uuid4()}/").status_code == 404
    assert client.get(f"{CHATS}case/RC-2026-999999-X/").status_code == 404


def test_the_case_page_of_a_web_case_has_no_live_chat_link(client, ana, care, open_case):
    case = open_case()
    client.force_login(ana)
    page = client.get(f"/helpdesk/cases/{case.reference}").content.decode()
    assert "Open the live chat" not in page
    assert 'href="/helpdesk/chats/"' in page


# -- in a real browser -------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed")
def test_in_the_browser_the_agent_sees_the_customer_within_two_seconds_and_answers_live(
    seeded, page, live_server, care, ana
):
    # Given Lucy waits for a person and Ana has her chat open (signed in, in English)
    public_id, _token = ask_for_person()
    conversation = Conversation.objects.get(public_id=public_id)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.context.add_cookies([{"name": "django_language", "value": "en", "url": live_server.url}])
    page.goto(f"{live_server.url}{chat_url(conversation)}")
    assert "/helpdesk/login/" in page.url
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw")
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{chat_url(conversation)}")
    transcript = page.locator("[data-transcript] > li")
    shown = transcript.count()
    assert shown == conversation.last_seq

    # When Lucy writes, her words (not markup) are on Ana's screen within two seconds
    actions.post_customer_message(conversation=conversation, text="Are you there? <b>hi</b>")
    last = page.locator(f'[data-transcript] > li[data-seq="{shown + 1}"]')
    last.wait_for(timeout=2000)
    assert last.get_attribute("data-author") == "customer"
    assert last.locator("p").inner_text() == "Are you there? <b>hi</b>"

    # And Ana answers with Enter, without the page reloading
    page.evaluate("window.stayedOnThePage = true")
    page.fill("#id_body", "Yes, I am here.")
    page.press("#id_body", "Enter")
    page.locator(f'[data-transcript] > li[data-seq="{shown + 3}"]').wait_for(timeout=5000)
    assert page.evaluate("window.stayedOnThePage") is True
    assert page.input_value("#id_body") == ""
    authors = [
        (item.get_attribute("data-author"), item.locator("p").inner_text())
        for item in transcript.all()[shown + 1 :]
    ]
    assert authors == [
        ("system", "Ana has joined the conversation."),
        ("agent", "Yes, I am here."),
    ]
    assert page.locator("[data-taken-by]").inner_text() == "Ana"
    assert not page.locator("[data-take]").is_visible()
    assert problems == []
    read = Conversation.objects.get(pk=conversation.pk).messages.filter(seq__gt=shown + 1)
    assert [(m.author, m.body) for m in read] == [
        ("system", "Ana has joined the conversation."),
        ("agent", "Yes, I am here."),
    ]
