"""The integrations keep personal data and secrets encrypted at rest (docs/encryption.md): the
rows, as the database returns them, hold no sender, subject, Telegram message, IMAP password or
signing secret, yet mail is read with the password, the sender is still known (the per-address
loop limit, a customer's erasure), webhooks are signed and Telegram updates are checked."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid
from types import SimpleNamespace

import pytest
from django.db import connection

from concilia.core import crypto
from concilia.core.migration_encryption import encrypt_rows
from concilia.integrations.mail.actions import receive_email
from concilia.integrations.mail.imap import read_mailbox
from concilia.integrations.mail.models import InboundEmail, Outcome
from concilia.integrations.telegram.models import TelegramBot, TelegramUpdate
from concilia.integrations.tests.test_mail_inbound import dovecot, mailbox  # noqa: F401
from concilia.integrations.tests.test_webhooks_api import (  # noqa: F401
    call,
    receiver,
    registered,
    token,
    wendy,
)
from concilia.integrations.webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

SENDER = ("Zenobia Quirke-Albañil", "zenobia.quirke@example.org")
SUBJECT = "Factura ZQ-5512 cobrada dos veces"


def raw_rows(table: str) -> str:
    """Every value of every row of `table`, as the database returns them, in one text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our own table names
        return "\n".join(str(value) for row in cursor.fetchall() for value in row)


def email(sender: str = f"{SENDER[0]} <{SENDER[1]}>", subject: str = SUBJECT) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "soporte@shop.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content("Me habéis cobrado dos veces la misma factura. Devolvedme un cargo.")
    return message.as_bytes()


def test_mail_read_with_the_encrypted_password_keeps_no_sender_or_subject_in_clear(
    dovecot,  # noqa: F811
    mailbox,  # noqa: F811
):
    # Given Zenobia's email in the support mailbox, whose IMAP password is stored encrypted
    assert dovecot.password not in raw_rows("integrations_mailbox")
    assert mailbox.inbound_secret not in raw_rows("integrations_mailbox")
    dovecot.deliver(mailbox.address, email())
    # When Concilia logs in with it and reads the mailbox
    result = read_mailbox(mailbox)
    # Then the email became a case, and its row holds neither her address nor the subject
    assert result.read == 1
    stored = InboundEmail.objects.get()
    assert stored.outcome == Outcome.NEW_CASE and stored.case.customer.email == SENDER[1]
    raw = raw_rows("integrations_inboundemail")
    for value in (SENDER[1], "zenobia", "Quirke", SUBJECT, "ZQ-5512"):
        assert value not in raw, value
    # while it reads back, and is found by its sender whatever the address's case
    assert (stored.from_address, stored.subject) == (SENDER[1], SUBJECT)
    assert list(InboundEmail.objects.with_sender(" ZENOBIA.Quirke@Example.org")) == [stored]
    assert not InboundEmail.objects.with_sender("quirke@example.org").exists()


def test_the_loop_limit_still_counts_emails_per_sender(settings):
    # Given a limit of two emails an hour from one address
    settings.CONCILIA_MAIL_LOOP_LIMIT = 2
    # When a robot sends three, each with a new subject, and a person sends one
    robot = [receive_email(raw=email("robot@example.net", f"Auto {n}")).outcome for n in range(3)]
    person = receive_email(raw=email()).outcome
    # Then its third stops, found by the sender's keyed hash; the person's opens a case
    assert robot == [Outcome.NEW_CASE, Outcome.NEW_CASE, Outcome.LOOP]
    assert person == Outcome.NEW_CASE
    assert "robot@example.net" not in raw_rows("integrations_inboundemail")


def test_an_endpoints_signing_secret_is_encrypted_and_still_signs(
    client,
    token,  # noqa: F811
    registered,  # noqa: F811
    receiver,  # noqa: F811
    run_tasks,
):
    # Given Wendy's endpoint, whose secret she read once
    secret = registered["secret"]
    # Then its row holds a token, not the secret
    assert secret not in raw_rows("integrations_endpoint")
    assert Endpoint.objects.get().secret == secret
    # and a ping is signed with it (the receiver checks the signature with the secret it knows)
    assert call(client, token, "post", f"/endpoints/{registered['id']}/ping").status_code == 202
    run_tasks()
    (ping,) = receiver.received
    assert ping.signed
    # After a rotation the new secret is stored encrypted too
    new = call(client, token, "post", f"/endpoints/{registered['id']}/rotate-secret").json()
    assert new["secret"] not in raw_rows("integrations_endpoint")
    assert Endpoint.objects.get().secret == new["secret"]


def test_a_bots_webhook_secret_and_an_update_not_yet_handled_are_encrypted():
    bot = TelegramBot(code="shop", name="Shop bot")
    bot.set_token("987654321:AAHsecretBotTokenPartThatMustNotLeak01")
    bot.save()
    update = {"update_id": 7, "message": {"chat": {"id": 55501}, "text": "Pedido 88231 roto"}}
    TelegramUpdate.objects.create(bot=bot, update_id=7, payload=update)
    assert bot.webhook_secret not in raw_rows("integrations_telegrambot")
    assert "88231" not in raw_rows("integrations_telegramupdate")
    assert TelegramUpdate.objects.get().payload == update


def test_the_migration_encrypts_mail_written_in_clear_and_indexes_its_sender():
    # Given an email and a mailbox password an earlier version stored in clear
    receive_email(raw=email())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_inboundemail SET from_address = %s, subject = %s, from_index = ''",
            [SENDER[1], SUBJECT],
        )
    # When the migration's data step runs
    editor = SimpleNamespace(connection=connection)
    columns = ("from_address", "subject", "detail")
    index = {"from_index": ("from_address", "email")}
    encrypt_rows("integrations_inboundemail", text=columns, indexes=index)(None, editor)
    # Then nothing is in clear, it reads as before and its sender is found again
    raw = raw_rows("integrations_inboundemail")
    assert SENDER[1] not in raw and SUBJECT not in raw and crypto.PREFIX in raw
    stored = InboundEmail.objects.with_sender(SENDER[1]).get()
    assert (stored.from_address, stored.subject) == (SENDER[1], SUBJECT)


def test_a_key_rotation_writes_the_chat_the_mail_and_the_secrets_again(settings, tmp_path):
    from concilia.assistant.models import ChatMessage, Conversation
    from concilia.core import rekeying
    from concilia.integrations.mail.models import Mailbox

    # Given keys in a key file, and a chat, an email and secrets written with the first key
    settings.HOME = tmp_path
    settings.ENCRYPTION_KEYS = []
    memory = {"step": "email", "fields": {"order_number": "4471"}}
    conversation = Conversation.objects.create(language="es", token_digest="x", state=memory)
    ChatMessage.objects.create(
        conversation=conversation, seq=1, author="customer", body=SUBJECT, understanding=memory
    )
    receive_email(raw=email())
    Mailbox.objects.create(name="Support", slug="support", address="s@shop.example", password="pw1")
    Endpoint.objects.create(url="https://warehouse.example/hook", events=["case.created"])
    mine = {
        "assistant.Conversation.state",
        "assistant.ChatMessage.body",
        "assistant.ChatMessage.understanding",
        "integrations.InboundEmail.from_address",
        "integrations.InboundEmail.subject",
        "integrations.Mailbox.password",
        "integrations.Endpoint.secret",
        "integrations.TelegramUpdate.payload",
    }
    columns = {column.label: column for column in rekeying.encrypted_columns()}
    assert mine <= set(columns)
    first = crypto.keyring().current
    # When a new key is put first and the re-encryption runs
    rekeying.add_key_to_file()
    new = crypto.keyring().current
    assert rekeying.reencrypt() is None
    # Then every value of these columns is written with the new key, and reads the same
    for label in mine - {"integrations.TelegramUpdate.payload"}:
        assert set(columns[label].count_by_key()) == {new}, label
    assert new != first
    assert Conversation.objects.get().state == memory
    assert ChatMessage.objects.get().understanding == memory
    assert InboundEmail.objects.with_sender(SENDER[1]).get().subject == SUBJECT
    assert Mailbox.objects.get().password == "pw1"


def test_the_admin_finds_emails_by_their_whole_sender_address(admin_client):
    receive_email(raw=email())
    receive_email(raw=email("robot@example.net", "Auto"))
    url = "/admin/integrations/inboundemail/"
    page = admin_client.get(url, {"q": SENDER[1].upper()}).content.decode()
    assert SUBJECT in page and "robot@example.net" not in page
    # a part of an address finds nothing (it is known by its keyed hash only), without an error
    response = admin_client.get(url, {"q": "zenobia"})
    assert response.status_code == 200 and SUBJECT not in response.content.decode()
