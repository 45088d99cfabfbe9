"""Questions the assistant could not answer: counted as customers ask them in the chat, grouped
with similar ones, and gone from the list once an article answers them."""

from __future__ import annotations

import re

import pytest

from concilia.assistant.demo import load_demo
from concilia.assistant.models import Conversation, KnowledgeArticle
from concilia.assistant.tests.chat import Chat
from concilia.core.memo import forget_all
from concilia.feedback import actions
from concilia.feedback.models import (
    QuestionStatus,
    UnansweredAsk,
    UnansweredQuestion,
    UnansweredReason,
)
from concilia.feedback.queries import grouped, unanswered

pytestmark = pytest.mark.django_db

ASKED = ["Do you sell gift cards?", "do you sell gift cards", "Do you sell GIFT  cards??"]


@pytest.fixture(autouse=True)
def demo_content(db):
    load_demo()


def ask(client, text: str) -> Chat:
    chat = Chat(client, "en")
    chat.press("accept")
    chat.say(text)
    return chat


def rows(page: str) -> dict[str, int]:
    """The list's questions and how many times each group was asked."""
    found = re.findall(
        r'<tr data-question="\d+">\s*<td>([^<]+).*?data-count="asked">(\d+)<',
        page,
        flags=re.S,
    )
    return {text.strip(): int(count) for text, count in found}


def test_a_question_asked_three_times_counts_three_until_an_article_answers_it(
    client, supervisor_client
):
    for text in ASKED:
        ask(client, text)

    question = UnansweredQuestion.objects.get()
    assert question.text == "do you sell gift cards"
    assert sorted(question.asks.values_list("text", flat=True)) == sorted(t.strip() for t in ASKED)
    assert set(question.asks.values_list("reason", flat=True)) == {UnansweredReason.NO_ANSWER}
    page = supervisor_client.get(
        "/helpdesk/feedback/unanswered/", headers={"accept-language": "en"}
    ).content.decode()
    assert rows(page) == {"do you sell gift cards": 3}
    assert "/admin/assistant/knowledgearticle/add/?question_en=do+you+sell+gift+cards" in page

    # An administrator writes the answer.
    article = KnowledgeArticle.objects.create(
        question_es="¿Vendéis tarjetas regalo?",
        question_en="Do you sell gift cards?",
        answer_es="Sí, en tienda.",
        answer_en="Yes, in our shops.",
    )
    forget_all()  # as the admin's save does

    page = supervisor_client.get("/helpdesk/feedback/unanswered/").content.decode()
    assert rows(page) == {}
    question.refresh_from_db()
    assert (question.status, question.article) == (QuestionStatus.ANSWERED, article)
    answered = supervisor_client.get(
        "/helpdesk/feedback/unanswered/?status=answered", headers={"accept-language": "en"}
    ).content.decode()
    assert rows(answered) == {"do you sell gift cards": 3}
    assert "Answered by" in answered
    # The assistant now answers it, and nothing more is counted.
    chat = ask(client, "do you sell gift cards?")
    assert "Yes, in our shops." in chat.answer
    assert UnansweredAsk.objects.count() == 3


def test_similar_questions_are_one_group_led_by_the_most_asked(db):
    conversation = Conversation.objects.create(token_digest="x", language="en")
    for text in (
        "How do I change my delivery address?",
        "how do i change my delivery address",
        "How can I change the delivery address",
        "Can I pay with bitcoin?",
    ):
        actions.record_unanswered(
            conversation=conversation, text=text, reason=UnansweredReason.NO_ANSWER
        )

    groups = grouped(unanswered())

    assert [(g.lead.text, g.count, len(g.questions)) for g in groups] == [
        ("how do i change my delivery address", 3, 2),
        ("can i pay with bitcoin", 1, 1),
    ]


def test_a_dismissed_question_leaves_the_open_list(supervisor_client, db):
    conversation = Conversation.objects.create(token_digest="x", language="en")
    actions.record_unanswered(conversation=conversation, text="asdf?", reason="no_answer")
    question = UnansweredQuestion.objects.get()
    response = supervisor_client.post(f"/helpdesk/feedback/unanswered/{question.pk}/dismiss")
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.status == QuestionStatus.DISMISSED
    assert rows(supervisor_client.get("/helpdesk/feedback/unanswered/").content.decode()) == {}


def test_erasing_the_customer_deletes_what_they_asked(db):
    from concilia.feedback import personal_data

    conversation = Conversation.objects.create(token_digest="x", language="en")
    other = Conversation.objects.create(token_digest="y", language="en")
    actions.record_unanswered(
        conversation=conversation, text="where is my parcel 12?", reason="no_answer"
    )
    actions.record_unanswered(conversation=other, text="can I pay later?", reason="no_answer")
    from concilia.customers.models import Customer

    customer = Customer.objects.create(email="lucia@example.com", name="Lucía")
    conversation.customer = customer
    conversation.save(update_fields=["customer"])

    counts = personal_data.erase_customer(customer, reason="request")

    assert counts == {"unanswered_asks": 1, "unanswered_questions": 1}
    assert list(UnansweredQuestion.objects.values_list("text", flat=True)) == ["can i pay later"]
