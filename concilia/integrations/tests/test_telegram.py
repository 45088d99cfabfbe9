"""Telegram as a channel for the assistant, against a fake Bot API on loopback and the real
database: James complains through the bot and gets the same case the web widget would have
opened; buttons arrive as inline keyboards; his photo joins the case; Telegram's retries, its
outages and a blocked bot are handled; Ana, an agent, answers him live from the helpdesk.

Every step goes the way it goes in production: Telegram posts an update to the webhook, the
webhook answers at once, and the background jobs (run here with the real database worker) take
the turn and send the answers to the fake Bot API.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import json
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from PIL import Image

from concilia.accounts.models import Role, Team
from concilia.assistant.demo import load_demo
from concilia.assistant.models import (
    Author,
    ChatMessage,
    Conversation,
    ConversationStatus,
)
from concilia.assistant.tests.chat import Chat
from concilia.cases.models import AssignmentRule, Case, Strategy
from concilia.cases.tests.conftest import person
from concilia.core.crypto import DecryptionError
from concilia.core.models import DeadJob
from concilia.integrations.telegram import actions
from concilia.integrations.telegram.models import (
    TelegramBot,
    TelegramChat,
    TelegramConversation,
    TelegramUpdate,
)
from concilia.integrations.telegram.tasks import forget_old_updates
from concilia.integrations.telegram.views import SECRET_HEADER
from concilia.integrations.tests.fakes.telegram import TOKEN, FakeTelegram, error
from conftest import EXE_BYTES

pytestmark = pytest.mark.django_db

JAMES = 424242001
# A small real JPEG: what Telegram's photos are (stored photos are decoded and re-encoded).
_photo = io.BytesIO()
Image.new("RGB", (8, 8), "saddlebrown").save(_photo, "JPEG")
JPEG_BYTES = _photo.getvalue()
DAMAGED = "My parcel arrived damaged, the box was crushed. Order 4471"


@pytest.fixture(autouse=True)
def demo_content(db, settings):
    settings.BASE_URL = "https://concilia.example"
    settings.JOB_BACKOFF_SECONDS = 0
    load_demo()


@pytest.fixture
def fake():
    server = FakeTelegram().start()
    yield server
    server.stop()


@pytest.fixture
def bot(fake):
    return actions.save_bot(
        bot=TelegramBot(code="shop", name="Shop bot", api_url=fake.url), token=TOKEN
    )


class TelegramUser:
    """A customer in the Telegram app: what they write reaches the webhook as Telegram posts it,
    and the jobs run before they read what the bot answered."""

    def __init__(self, client, fake: FakeTelegram, bot: TelegramBot, run_tasks, chat_id: int):
        self.client, self.fake, self.bot, self.run_tasks = client, fake, bot, run_tasks
        self.chat_id = chat_id
        self.seen = 0

    def post(self, update: dict[str, Any], secret: str | None = None) -> Any:
        return self.client.post(
            reverse("telegram:webhook", kwargs={"code": self.bot.code}),
            json.dumps(update),
            content_type="application/json",
            headers={SECRET_HEADER: self.bot.webhook_secret if secret is None else secret},
        )

    def send(self, update: dict[str, Any]) -> list[str]:
        response = self.post(update)
        assert response.status_code == 200, response.content
        self.run_tasks()
        return self.read()

    def say(self, text: str) -> list[str]:
        return self.send(self.fake.text_update(self.chat_id, text))

    def press(self, label: str) -> list[str]:
        return self.send(self.fake.press(self.chat_id, label))

    def send_photo(self, content: bytes) -> list[str]:
        return self.send(self.fake.photo_update(self.chat_id, content))

    def read(self) -> list[str]:
        """The bot's messages since the last read."""
        texts = self.fake.texts(self.chat_id)
        new, self.seen = texts[self.seen :], len(texts)
        return new

    @property
    def buttons(self) -> list[str]:
        return self.fake.buttons(self.chat_id)

    @property
    def conversation(self) -> Conversation:
        return TelegramConversation.objects.get(chat__chat_id=self.chat_id).conversation


@pytest.fixture
def james(client, fake, bot, run_tasks):
    return TelegramUser(client, fake, bot, run_tasks, JAMES)


def widget_complaint(client, run_tasks, email: str) -> tuple[Case, list[tuple[str, str]]]:
    """The damaged parcel through the web widget; returns the case and the steps taken, each a
    text typed or the label of the button pressed."""
    chat = Chat(client, "en", channel="widget")
    steps: list[tuple[str, str]] = []

    def press(value: str) -> None:
        label = {c["value"]: c["label"] for c in chat.last[-1]["choices"]}[value]
        steps.append(("press", label))
        chat.press(value)

    def say(text: str) -> None:
        steps.append(("say", text))
        chat.say(text)

    press("accept")
    say(DAMAGED)
    say(email)
    say("James Carter")
    if chat.expects == "amount":
        press("__skip")
    press("damaged")
    assert chat.expects == "file"
    steps.append(("photo", ""))
    chat.send_file("photo.jpg", JPEG_BYTES)
    press("replacement")
    press("yes")
    run_tasks()  # what follows the case (the policies' decision) runs in the background
    return Case.objects.get(reference=chat.case_reference), steps


def case_facts(case: Case) -> dict[str, Any]:
    return {
        "category": case.category.code,
        "kind": case.kind,
        "channel": case.channel,
        "language": case.language,
        "description": case.description,
        "desired_resolution": case.desired_resolution,
        "order_number": case.order_number,
        "amount": case.amount,
        "customer": case.customer.name,
        "status": case.status,
        "files": [(a.content_type, a.size) for a in case.attachments.all()],
    }


# -- a whole complaint ---------------------------------------------------------------------


def test_a_complaint_over_telegram_opens_the_same_case_as_the_widget(
    client, james, fake, run_tasks
):
    # Given the same complaint was made through the widget
    widget_case, steps = widget_complaint(client, run_tasks, "james.web@example.com")

    # When James makes it over Telegram, pressing the same buttons and sending the photo
    greeting = james.say("/start")
    assert greeting[0].startswith("Hello! I am the complaints assistant.")
    assert james.buttons == ["I accept", "I do not accept"]
    for kind, value in steps:
        if kind == "press":
            james.press(value)
        elif kind == "photo":
            james.send_photo(JPEG_BYTES)
        else:
            james.say("james.tg@example.com" if "@" in value else value)

    # Then his case has the same category and data as the widget's, and the photo
    conversation = james.conversation
    assert conversation.channel == "telegram"
    case = conversation.case
    assert case is not None and case.reference in " ".join(fake.texts(JAMES))
    assert case_facts(case) == case_facts(widget_case)
    assert case.category.code == "damaged_missing"
    assert [a.content_type for a in case.attachments.all()] == ["image/jpeg"]
    assert case.customer.email == "james.tg@example.com"
    assert DAMAGED in case.messages.values_list("body", flat=True)
    # and he read every message of the conversation, each once and in order.
    outbound = conversation.messages.exclude(author=Author.CUSTOMER).order_by("seq")
    assert fake.texts(JAMES) == [m.body for m in outbound]


def test_spanish_telegram_gets_the_assistant_in_spanish(james, fake, bot):
    james.send(fake.text_update(JAMES, "/start", language="es"))
    assert james.conversation.language == "es"
    assert james.buttons == ["Acepto", "No acepto"]


# -- buttons -------------------------------------------------------------------------------


def test_choices_arrive_as_an_inline_keyboard_and_a_press_answers_them(james, fake):
    james.say("/start")
    keyboard = fake.sent_to(JAMES)[-1]["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [["I accept"], ["I do not accept"]]

    answer = james.press("I accept")

    assert answer == ["Thank you. Tell me, in your own words, what happened."]
    assert "consent" in james.conversation.state
    assert [a.get("text") for a in fake.answered] == [None]  # the button stops loading
    # The press is in the transcript as the button's words.
    assert james.conversation.messages.filter(author=Author.CUSTOMER).get().body == "I accept"


def test_a_button_of_an_earlier_question_changes_nothing(james, fake):
    james.say("/start")
    old_press = fake.press(JAMES, "I do not accept")
    james.press("I accept")
    before = james.conversation.last_seq

    assert james.send(old_press) == []

    assert james.conversation.last_seq == before
    assert "consent" in james.conversation.state
    assert fake.answered[-1]["text"] == (
        "This button belongs to an earlier question; please use the last one."
    )


# -- files ---------------------------------------------------------------------------------


def test_a_file_before_the_privacy_notice_is_accepted_is_refused_with_the_reason(james, fake):
    james.say("/start")
    refused = james.send_photo(JPEG_BYTES)
    assert refused == ["Please accept the privacy notice before sending files."]
    assert not james.conversation.uploads.exists()


def test_a_program_sent_as_a_document_is_refused_with_the_reason(james, fake):
    james.say("/start")
    james.press("I accept")
    refused = james.send(fake.document_update(JAMES, "invoice.pdf", EXE_BYTES, "application/pdf"))
    assert refused == [
        "“invoice.pdf” is a program (Windows executable), not a photo or a document. "
        "Accepted files: JPEG, PNG, GIF, WebP, HEIC, PDF."
    ]
    assert not james.conversation.uploads.exists()


# -- the webhook ---------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "not-the-secret"])
def test_a_wrong_secret_token_is_refused_and_nothing_happens(james, fake, secret):
    response = james.post(fake.text_update(JAMES, "/start"), secret=secret)
    assert response.status_code == 403
    james.run_tasks()
    assert not TelegramUpdate.objects.exists()
    assert not Conversation.objects.exists()
    assert fake.received == []


def test_an_update_telegram_sends_again_is_handled_once(james, fake):
    james.say("/start")
    update = fake.press(JAMES, "I accept")

    assert james.post(update).json() == {"ok": True, "duplicate": False}
    assert james.post(update).json() == {"ok": True, "duplicate": True}
    james.run_tasks()
    assert james.post(update).json() == {"ok": True, "duplicate": True}
    james.run_tasks()

    customer_lines = james.conversation.messages.filter(author=Author.CUSTOMER)
    assert list(customer_lines.values_list("body", flat=True)) == ["I accept"]
    assert james.read() == ["Thank you. Tell me, in your own words, what happened."]
    # What was received is dropped once handled; its update_id stays to answer a retry.
    assert [u.payload for u in TelegramUpdate.objects.all()] == [{}, {}]


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "[]",
        '"update"',
        '{"update_id": "first"}',
        '{"message": {"text": "hi"}}',
        '{"update_id": 5, "message": {"message_id": 1, "chat": {"type": "private"}}}',
        '{"update_id": -1}',
    ],
)
def test_a_malformed_update_is_a_400_not_a_500(client, bot, body):
    response = client.post(
        reverse("telegram:webhook", kwargs={"code": "shop"}),
        body,
        content_type="application/json",
        headers={SECRET_HEADER: bot.webhook_secret, "Accept-Language": "en"},
    )
    assert response.status_code == 400
    assert response.json() == {"ok": False, "description": "The body is not a Telegram update."}
    assert not TelegramUpdate.objects.exists()


def test_an_unknown_or_inactive_bot_has_no_webhook(client, bot):
    bot.active = False
    bot.save(update_fields=["active"])
    for code in ("shop", "other"):
        response = client.post(
            reverse("telegram:webhook", kwargs={"code": code}),
            "{}",
            content_type="application/json",
            headers={SECRET_HEADER: bot.webhook_secret},
        )
        assert response.status_code == 404


# -- Telegram away -------------------------------------------------------------------------


def test_an_outage_delays_the_messages_which_then_arrive_once(james, fake):
    # Given Telegram fails (a 500), then asks us to slow down (429, retry after 30 s)
    fake.failures["sendMessage"] = [
        error(500, "Internal Server Error"),
        error(429, "Too Many Requests: retry after 30", retry_after=30),
    ]
    before = timezone.now()

    # When James starts the chat
    assert james.say("/start") == []

    # Then nothing has reached him yet, and the sending waits exactly as long as Telegram asked
    waiting = DBTaskResult.objects.get(status="READY")
    assert waiting.task_path.endswith("push_messages")
    assert waiting.run_after >= before + dt.timedelta(seconds=30)
    assert not DeadJob.objects.exists()

    # When the time has come, Telegram is back: every message arrives once, in order
    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=timezone.now())
    james.run_tasks()
    delivered = james.read()
    assert delivered == [m.body for m in james.conversation.messages.order_by("seq")]
    assert james.buttons == ["I accept", "I do not accept"]
    sends = [r for r in fake.received if r.path.endswith("/sendMessage")]
    assert len(sends) == len(delivered) + 2  # the two refused attempts


def test_a_long_outage_ends_as_a_dead_job_an_administrator_can_retry(james, fake, settings):
    settings.JOB_ATTEMPTS = 2
    fake.failures["sendMessage"] = [error(502, "Bad Gateway")] * 2
    james.say("/start")
    dead = DeadJob.objects.get()
    assert dead.task_path == "concilia.integrations.telegram.tasks.push_messages"
    assert TOKEN not in dead.error  # the token is in every URL; it never lands in a log

    from concilia.core.jobs import retry_dead_job

    retry_dead_job(dead_job=dead)
    james.run_tasks()
    assert james.read()[0].startswith("Hello!")


def test_a_customer_who_blocked_the_bot_is_recorded_and_not_retried(james, fake):
    james.say("/start")
    james.press("I accept")
    # James blocks the bot before the assistant's next answer is sent.
    fake.blocked.add(JAMES)
    seen = james.conversation.last_seq
    assert james.say("I want to talk to a person, please") == []
    missed = james.conversation.messages.filter(seq__gt=seen).exclude(author=Author.CUSTOMER)
    assert missed.exists()

    chat = TelegramChat.objects.get(chat_id=JAMES)
    assert chat.blocked_at is not None
    assert chat.last_error == "sendMessage: Forbidden: bot was blocked by the user"
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert not DeadJob.objects.exists()

    # When he lets the bot back in, what he missed arrives.
    assert james.send(fake.blocked_update(JAMES, status="member")) == [m.body for m in missed]
    chat.refresh_from_db()
    assert chat.blocked_at is None


# -- a person ------------------------------------------------------------------------------


@pytest.fixture
def ana(notice):
    care = Team.objects.create(code="care", name_es="Atención", name_en="Care")
    AssignmentRule.objects.create(
        name="Everything else", position=9, team=care, strategy=Strategy.TEAM_QUEUE
    )
    return person("ana", Role.AGENT, care, language="en")


def test_an_agents_live_chat_reply_reaches_the_telegram_user(client, james, fake, ana):
    # Given James asked for a person over Telegram
    james.say("/start")
    james.press("I accept")
    james.say("I want to talk to a person, please")
    james.say("james@example.com")
    handed_over = james.say("James Carter")
    assert "I am passing you to a person" in " ".join(handed_over)
    conversation = james.conversation
    assert conversation.status == ConversationStatus.HANDED_OVER

    # When Ana answers in the live chat
    client.force_login(ana)
    response = client.post(
        reverse("livechat:reply", args=[conversation.public_id]),
        {"body": "Hello James, I am looking at your order now."},
    )
    assert response.status_code == 302
    james.run_tasks()

    # Then James reads that she joined and her answer, once
    assert james.read() == [
        "Ana has joined the conversation.",
        "Ana: Hello James, I am looking at your order now.",
    ]

    # and his answer reaches her chat and the case.
    james.say("Thank you, it is order 4471")
    last = conversation.messages.order_by("-seq").first()
    assert (last.author, last.body) == (Author.CUSTOMER, "Thank you, it is order 4471")
    assert "Thank you, it is order 4471" in conversation.case.messages.values_list(
        "body", flat=True
    )

    # When she ends the chat, James is asked for the survey with buttons 1-5.
    client.post(reverse("livechat:end", args=[conversation.public_id]))
    james.run_tasks()
    assert "How satisfied are you" in james.read()[-1]
    assert james.buttons == ["1", "2", "3", "4", "5"]
    assert len(fake.sent_to(JAMES)[-1]["reply_markup"]["inline_keyboard"]) == 1
    james.press("5")
    assert Conversation.objects.get(pk=conversation.pk).csat_score == 5

    # A message after the end starts a new conversation.
    james.say("No, thanks")
    greeting = james.say("Hello again")
    assert TelegramConversation.objects.filter(chat__chat_id=JAMES).count() == 2
    assert greeting[-1].endswith("Do you accept it?")


# -- the administrator ---------------------------------------------------------------------


def test_an_administrator_adds_a_bot_and_registers_its_webhook(admin_client, fake):
    response = admin_client.post(
        reverse("admin:integrations_telegrambot_add"),
        {
            "name": "Shop bot",
            "code": "shop",
            "token": TOKEN,
            "api_url": fake.url,
            "language": "es",
            "active": "on",
        },
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 302, response.content.decode()
    bot = TelegramBot.objects.get()
    # The token is kept encrypted, and only the bot's id is readable.
    stored = stored_token(bot)
    assert stored.startswith("enc1:") and TOKEN.split(":")[1] not in stored
    assert bot.api_token == TOKEN
    assert bot.bot_id == TOKEN.split(":")[0]

    response = admin_client.post(
        reverse("admin:integrations_telegrambot_changelist"),
        {"action": "register", "_selected_action": [bot.pk]},
        follow=True,
        headers={"Accept-Language": "en"},
    )

    address = "https://concilia.example/integrations/telegram/shop/webhook"
    assert f"Shop bot now sends its updates to {address}." in response.content.decode()
    assert fake.webhook["url"] == address
    assert fake.webhook["secret_token"] == bot.webhook_secret
    assert fake.webhook["allowed_updates"] == ["message", "callback_query", "my_chat_member"]
    bot.refresh_from_db()
    assert bot.webhook_url == address


def test_a_webhook_telegram_refuses_is_reported(admin_client, bot, settings):
    settings.BASE_URL = "http://localhost:8000"
    response = admin_client.post(
        reverse("admin:integrations_telegrambot_changelist"),
        {"action": "register", "_selected_action": [bot.pk]},
        follow=True,
        headers={"Accept-Language": "en"},
    )
    assert "Telegram refused the webhook of Shop bot: setWebhook: Bad Request: bad webhook" in (
        response.content.decode()
    )
    bot.refresh_from_db()
    assert bot.webhook_registered_at is None


def test_a_token_that_is_not_one_is_refused_in_the_admin(admin_client, fake):
    response = admin_client.post(
        reverse("admin:integrations_telegrambot_add"),
        {"name": "Shop bot", "code": "shop", "token": "hello", "api_url": fake.url},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 200
    assert "This is not a bot token" in response.content.decode()
    assert not TelegramBot.objects.exists()


def test_a_long_message_goes_in_pieces_and_a_chat_message_is_sent_once(james, fake):
    james.say("/start")
    conversation = james.conversation
    long_text = ("A line of the answer. " * 30 + "\n") * 12
    ChatMessage.objects.create(
        conversation=conversation, seq=conversation.last_seq + 1, author="system", body=long_text
    )
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=conversation.last_seq + 1)
    from concilia.integrations.telegram.tasks import push_messages

    james.read()
    push_messages.enqueue(conversation_id=conversation.pk)
    push_messages.enqueue(conversation_id=conversation.pk)
    james.run_tasks()
    pieces = james.read()
    assert len(pieces) == 2 and all(len(p) <= 4000 for p in pieces)
    assert long_text.startswith(pieces[0])  # cut at a line's end
    assert " ".join(pieces).split() == long_text.split()


def test_a_sticker_gets_told_what_the_bot_reads(james, fake):
    james.say("/start")
    sticker = fake.text_update(JAMES, "")
    sticker["message"].pop("text")
    sticker["message"]["sticker"] = {"file_id": "sticker-1", "width": 512, "height": 512}
    assert james.send(sticker) == ["I can read text messages, photos and documents."]
    assert not james.conversation.messages.filter(author=Author.CUSTOMER).exists()


def test_handled_updates_are_forgotten_once_telegram_cannot_send_them_again(james):
    james.say("/start")
    assert forget_old_updates() == 0
    assert forget_old_updates(now=timezone.now() + dt.timedelta(days=3)) == 1
    assert not TelegramUpdate.objects.exists()


# -- the token at rest ---------------------------------------------------------------------


def stored_token(bot: TelegramBot) -> str:
    """The token's column as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_token FROM integrations_telegrambot WHERE id = %s", [bot.pk])
        return cursor.fetchone()[0]


# What the hand-made sealing of earlier versions stored for TOKEN (fakes.telegram) under
# LEGACY_SECRET_KEY, before tokens were encrypted by concilia.core.crypto.
LEGACY_SECRET_KEY = "legacy-secret-key-" + "k" * 40
LEGACY_SEALED = (
    "s1:4QqQzb9YGT3BkYMjceNmoEROu0BEl0vkhGOJUnglCDJKdeD0VzdtsqyC0MsSp9uwpoKG4GbjS-TICQJTtvx6zkLVDjF"
    "qi0dJ68KaREGJMIKU1Y67gmLgiPtYMl1rxUDrug=="
)


def test_a_token_sealed_by_an_earlier_version_is_encrypted_again_by_the_migration(
    settings, bot, caplog
):
    migration = importlib.import_module(
        "concilia.integrations.migrations.0004_telegram_token_encrypted"
    )
    editor = SimpleNamespace(connection=connection)
    # Given a bot whose token was sealed the old way, with a SECRET_KEY now kept as a fallback
    settings.SECRET_KEY = "a-newer-secret-key-" + "n" * 40
    settings.SECRET_KEY_FALLBACKS = [LEGACY_SECRET_KEY]
    broken = TelegramBot.objects.create(code="old", name="Old bot", bot_id="1", api_token="x")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_telegrambot SET api_token = %s WHERE id = %s",
            [LEGACY_SEALED, bot.pk],
        )
        # and another whose sealed token was damaged
        cursor.execute(
            "UPDATE integrations_telegrambot SET api_token = %s WHERE id = %s",
            [LEGACY_SEALED[:-8] + "AAAAAA==", broken.pk],
        )
    # When the migration runs
    migration.encrypt_tokens(None, editor)
    # Then the token reads as before, now encrypted with the deployment's keys
    bot.refresh_from_db()
    assert bot.api_token == TOKEN
    assert stored_token(bot).startswith("enc1:")
    # and the damaged one is left for an administrator to enter again, with a warning
    assert stored_token(broken) == LEGACY_SEALED[:-8] + "AAAAAA=="
    assert "enter it again" in caplog.text
    # Going back seals it the old way again, which the old code (kept in the migration) opens
    migration.seal_tokens_again(None, editor)
    assert stored_token(bot).startswith("s1:")
    assert migration.open_legacy(stored_token(bot)) == TOKEN


def test_a_changed_token_does_not_open(bot):
    stored = stored_token(bot)
    tampered = stored[:-6] + ("A" if stored[-6] != "A" else "B") + stored[-5:]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_telegrambot SET api_token = %s WHERE id = %s", [tampered, bot.pk]
        )
    with pytest.raises(DecryptionError):
        TelegramBot.objects.get(pk=bot.pk)
