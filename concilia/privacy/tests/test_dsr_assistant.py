"""The assistant and requests about one's data: asked in the chat, in Spanish or English, it
answers with the tracking pages' "My data" page (where the emailed sign-in verifies who asks),
then goes on where the conversation was."""

from __future__ import annotations

import pytest

from concilia.assistant.dialogue.conversation import PRIVACY, asks_about_own_data
from concilia.assistant.tests.chat import Chat

pytestmark = pytest.mark.django_db

LINK = "http://testserver/track/my-data/"


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Quiero que borréis todos mis datos"),
        ("es", "Necesito una copia de mis datos, por el RGPD"),
        ("en", "Please delete my personal data"),
        ("en", "How do I get a copy of my data?"),
    ],
)
def test_asked_in_the_chat_it_gives_the_my_data_page(client, language, text):
    chat = Chat(client, language=language)
    chat.press("accept")

    answer = chat.say(text)

    assert LINK in answer
    assert chat.status == "active"  # and the conversation goes on


def test_a_button_can_ask_for_it_too_even_before_the_privacy_notice(client):
    chat = Chat(client, language="en")

    answer = chat._post("/messages", {"choice": PRIVACY})

    text = "\n".join(m["body"] for m in answer["messages"] if m["author"] == "assistant")
    assert LINK in text
    assert "Do you accept it?" in text  # the notice is asked again
    assert chat.choices == ["accept", "decline"]


@pytest.mark.parametrize(
    "text",
    [
        "My data plan stopped working after the update",
        "El pedido no ha llegado y mis datos de envío eran correctos",
        "I paid twice",
    ],
)
def test_complaints_that_mention_data_are_not_taken_for_requests(text):
    assert not asks_about_own_data(text)
