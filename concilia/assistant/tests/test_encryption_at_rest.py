"""The assistant's texts are encrypted at rest (docs/encryption.md): the rows of its tables, as the
database returns them, hold nothing a customer typed, yet the conversation goes on, hands over
with what it collected, and reads back whole.

Zebulon, a customer, writes to the assistant with his name, address, order and a file.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import FieldError
from django.db import connection

from concilia.assistant.demo import load_demo
from concilia.assistant.models import ChatMessage, ChatUpload, Conversation, Handover
from concilia.assistant.personal_data import anonymise_conversation
from concilia.assistant.tests.chat import Chat
from concilia.core import crypto
from concilia.core.migration_encryption import decrypt_rows, encrypt_rows
from conftest import PDF_BYTES

pytestmark = pytest.mark.django_db

NAME = "Zebulon Quarterfield-Ibáñez"
EMAIL = "zebulon.quarterfield@example.org"
COMPLAINT = "You overcharged me 30 EUR on order 4471, card ending 9917"
COMMENT = "Quick and clear, thanks Marisol"
FILE_NAME = "factura-quarterfield.pdf"
TABLES = [
    "assistant_conversation",
    "assistant_chatmessage",
    "assistant_chatupload",
    "assistant_handover",
]


@pytest.fixture(autouse=True)
def demo_content(db):
    load_demo()


def raw_rows(*tables: str) -> str:
    """Every value of every row of `tables`, as the database returns them, in one text."""
    values = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
            values += [str(value) for row in cursor.fetchall() for value in row]
    return "\n".join(values)


def personal_values() -> list[str]:
    return [
        NAME,
        "Quarterfield",
        EMAIL,
        "zebulon",
        COMPLAINT,
        "overcharged",
        "4471",
        "9917",
        COMMENT,
        "Marisol",
        FILE_NAME,
    ]


def test_a_conversation_that_hands_over_leaves_no_personal_text_in_the_rows(client):
    # Given Zebulon, who complains with his order number, sends his invoice and asks for a person
    chat = Chat(client, "en")
    chat.press("accept")
    chat.say(COMPLAINT)
    assert chat.expects == "email", chat.answer
    chat.say(EMAIL)
    chat.say(NAME)  # each turn reads the dialogue's memory the last one wrote
    chat.send_file(FILE_NAME, PDF_BYTES)
    chat.say("can I talk to a human please")
    assert chat.status == "handed_over"
    # When the assistant's rows are read with a raw SQL cursor
    raw = raw_rows(*TABLES)
    # Then nothing he wrote is there, only tokens
    for value in personal_values():
        assert value not in raw, value
    assert crypto.PREFIX in raw
    # while the application reads everything back: the hand-over's snapshot, the transcript,
    # the file's name, the memory
    handover = Handover.objects.get()
    assert handover.snapshot["fields"]["order_number"] == "4471"
    conversation = Conversation.objects.get()
    assert conversation.state["fields"]["order_number"] == "4471"
    bodies = list(ChatMessage.objects.filter(author="customer").values_list("body", flat=True))
    assert COMPLAINT in bodies and EMAIL in bodies and NAME in bodies
    assert ChatUpload.objects.get().original_name == FILE_NAME
    complaint = next(
        m for m in ChatMessage.objects.filter(author="customer") if m.body == COMPLAINT
    )
    assert complaint.understanding["language"] == "en"


def test_the_survey_comment_is_encrypted_and_anonymising_empties_the_texts(client):
    # Given a conversation answered by the assistant, rated with a comment
    chat = Chat(client, "en")
    chat.press("accept")
    chat.say("what are your opening hours?")
    chat.press("yes")
    chat.press("4")
    chat.say(COMMENT)
    conversation = Conversation.objects.get()
    assert conversation.csat_comment == COMMENT
    assert COMMENT not in raw_rows("assistant_conversation", "assistant_chatmessage")
    # When it is anonymised
    counts = anonymise_conversation(conversation)
    # Then the texts are empty ("" in the column, nothing to hide), counted once each
    messages = ChatMessage.objects.filter(conversation=conversation)
    assert counts["chat_messages"] == messages.count() > 0
    assert counts["conversations"] == 1
    assert {(m.body, m.understanding == {}) for m in messages} == {("", True)}
    conversation.refresh_from_db()
    assert (conversation.state, conversation.csat_comment) == ({}, "")
    # and anonymising again finds nothing left to empty
    assert anonymise_conversation(conversation).get("chat_messages", 0) == 0


def test_the_encrypted_memory_cannot_be_filtered_by_mistake():
    with pytest.raises(FieldError, match="stored encrypted"):
        Conversation.objects.filter(state__step="summary").exists()
    with pytest.raises(FieldError, match="stored encrypted"):
        ChatMessage.objects.filter(body__icontains="order").exists()
    assert Conversation.objects.filter(state__isnull=True).count() == 0


def test_the_migration_encrypts_rows_written_in_clear_and_going_back_restores_them(client):
    # Given a conversation whose texts an earlier version wrote in clear
    chat = Chat(client, "en")
    chat.press("accept")
    chat.say(COMPLAINT)
    memory = '{"step": "email", "fields": {"order_number": "4471"}}'
    with connection.cursor() as cursor:
        cursor.execute("UPDATE assistant_conversation SET state = %s", [memory])
        cursor.execute("UPDATE assistant_chatmessage SET understanding = '{}' WHERE seq = 1")
        cursor.execute(
            "UPDATE assistant_chatmessage SET body = %s WHERE author = 'customer'", [COMPLAINT]
        )
    editor = SimpleNamespace(connection=connection)
    table = {"text": ("body",), "json_columns": ("understanding",)}
    # When the migration's data step runs (twice: it is idempotent)
    for _ in range(2):
        encrypt_rows("assistant_chatmessage", **table)(None, editor)
        encrypt_rows("assistant_conversation", json_columns=("state",))(None, editor)
    # Then no text is in clear, and everything reads as before
    assert "4471" not in raw_rows("assistant_conversation", "assistant_chatmessage")
    assert Conversation.objects.get().state["fields"] == {"order_number": "4471"}
    customer_lines = [m.body for m in ChatMessage.objects.filter(author="customer")]
    assert customer_lines == [COMPLAINT, COMPLAINT]
    assert ChatMessage.objects.get(seq=1).understanding == {}
    # And going back writes the clear JSON and text again (an empty memory as {})
    decrypt_rows("assistant_chatmessage", text=("body",), json_columns={"understanding": "{}"})(
        None, editor
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, author, body, understanding FROM assistant_chatmessage")
        rows = {seq: (author, body, understood) for seq, author, body, understood in cursor}
    assert rows[1][2] == "{}"
    assert [body for author, body, _u in rows.values() if author == "customer"] == customer_lines
    assert not any(crypto.is_encrypted(b) or crypto.is_encrypted(u) for _a, b, u in rows.values())
