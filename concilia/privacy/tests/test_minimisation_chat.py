"""Data minimisation in the assistant's dialogue, on the web widget and on Telegram: when the
company decides damaged deliveries need no order number, date or amount, the assistant asks for
none of them, and the order number the customer wrote in passing is not stored in the case nor
kept in the conversation; the conversation records the notice version accepted and when."""

from __future__ import annotations

import pytest

from concilia.assistant.models import Author
from concilia.assistant.tests.chat import Chat
from concilia.cases.models import Case, Category, LegalBasis
from concilia.customers.queries import current_notice
from concilia.integrations.tests.test_telegram import (  # noqa: F401 - fixtures
    DAMAGED,
    JAMES,
    JPEG_BYTES,
    bot,
    demo_content,
    fake,
    james,
)

pytestmark = pytest.mark.django_db

# What the assistant waits for after asking for an order number, a date or an amount.
ORDER_DATA = {"order", "date", "amount"}


@pytest.fixture(autouse=True)
def no_order_data(db):
    Category.objects.filter(code="damaged_missing").update(
        field_rules={"order_number": "hidden", "purchase_date": "hidden", "amount": "hidden"}
    )


def asked(conversation) -> set[str]:
    return set(
        conversation.messages.exclude(author=Author.CUSTOMER).values_list("expects", flat=True)
    )


def assert_nothing_hidden_kept(case: Case) -> None:
    assert case.category.code == "damaged_missing"
    assert (case.order_number, case.purchase_date, case.amount) == ("", None, None)
    conversation = case.conversations.get()
    assert not ORDER_DATA & asked(conversation)
    assert not {"order_number", "purchase_date", "amount"} & set(conversation.state["fields"])
    # the conversation and the case record the notice accepted, and when
    assert conversation.consent.notice == current_notice()
    assert case.privacy_consent == conversation.consent
    assert case.legal_basis == LegalBasis.CONSENT


def test_the_widget_asks_no_order_data_and_keeps_none(client, run_tasks):
    chat = Chat(client, "en", channel="widget")
    chat.press("accept")
    chat.say(DAMAGED)  # "... Order 4471": an order number in passing
    chat.say("james.web@example.com")
    chat.say("James Carter")
    chat.press("damaged")
    chat.send_file("photo.jpg", JPEG_BYTES)
    chat.press("replacement")
    chat.press("yes")
    run_tasks()

    assert_nothing_hidden_kept(Case.objects.get(reference=chat.case_reference))


def test_telegram_asks_no_order_data_and_keeps_none(james):  # noqa: F811 - the fixture
    james.say("/start")
    james.press("I accept")
    james.say(DAMAGED)
    james.say("james.tg@example.com")
    james.say("James Carter")
    james.press("It arrived damaged")
    james.send_photo(JPEG_BYTES)
    james.press("A replacement")
    james.press("Yes, send it")

    case = james.conversation.case
    assert case is not None
    assert_nothing_hidden_kept(case)
    assert case.channel == "chat"
    assert james.conversation.channel == "telegram"
