"""The chat in a real browser: the widget on another site's page, a whole complaint on /chat/ that
survives a reload, a person answering live, and all of it without a console error (the CSP)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from concilia.assistant import actions
from concilia.assistant.models import Conversation, ConversationStatus, KnowledgeArticle
from concilia.cases.models import Attachment
from conftest import CHROMIUM, EXE_BYTES, PNG_BYTES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

HOST_PAGE = Path(__file__).with_name("widget_host.html")

LAST_ASSISTANT = """() => {
  const all = document.querySelectorAll('#chat-log .chat-msg--assistant');
  const m = all[all.length - 1];
  return {seq: Number(m.dataset.seq), expects: m.dataset.expects,
          choices: [...m.querySelectorAll('.chat-choices button')].map(b => b.dataset.value)};
}"""


@pytest.fixture
def problems(page) -> list[str]:
    """Console errors (a script or frame the CSP refused) and uncaught exceptions, in any frame."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: found.append(str(error)))
    return found


@pytest.fixture
def shop_site(live_server) -> Iterator[str]:
    """Another site (another loopback origin) whose page has only the widget's script tag."""
    html = HOST_PAGE.read_text(encoding="utf-8").replace("__CONCILIA__", live_server.url).encode()

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def settled(frame, after: int) -> dict[str, Any]:
    """Wait until the chat shows something after message `after` and nothing is in flight."""
    frame.wait_for_function(
        "after => { const c = document.getElementById('chat');"
        " return c.dataset.busy === 'false' && Number(c.dataset.lastSeq) > after; }",
        arg=after,
        timeout=10_000,
    )
    return frame.evaluate(LAST_ASSISTANT)


def last_seq(frame) -> int:
    return int(frame.locator("#chat").get_attribute("data-last-seq"))


def write(frame, text: str) -> dict[str, Any]:
    before = last_seq(frame)
    frame.fill("#chat-input", text)
    frame.press("#chat-input", "Enter")
    return settled(frame, before)


def press(frame, value: str) -> dict[str, Any]:
    before = last_seq(frame)
    frame.click(f'#chat-log .chat-choices button[data-value="{value}"]')
    assert frame.evaluate("document.activeElement.id") == "chat-input"
    return settled(frame, before)


def log_text(frame) -> str:
    return frame.locator("#chat-log").inner_text()


def test_the_widget_on_another_site_opens_with_the_keyboard_and_the_customer_gets_an_answer(
    page, problems, live_server, shop_site, settings
):
    settings.WIDGET_ORIGINS = [shop_site]
    KnowledgeArticle.objects.create(
        question_es="¿Cuál es vuestro horario?",
        question_en="What are your opening hours?",
        answer_es="Abrimos de lunes a viernes, de 9 a 18.",
        answer_en="We are open Monday to Friday, from 9 to 18.",
    )
    page.goto(shop_site)
    launcher = page.locator("button[aria-controls=concilia-panel]")
    launcher.wait_for()
    assert launcher.get_attribute("aria-expanded") == "false"

    # The launcher is the page's first stop for the keyboard; Enter opens the panel.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('[data-concilia-widget]')")
    page.keyboard.press("Enter")
    assert launcher.get_attribute("aria-expanded") == "true"
    frame = page.locator("#concilia-panel iframe").element_handle().content_frame()
    settled(frame, 0)
    assert re.search(r"^http://localhost:\d+/chat/embed/\?lang=en$", frame.url)
    assert frame.evaluate("document.documentElement.lang") == "en"

    press(frame, "accept")
    # A frequent question: the answer can be rated, and the rating is kept.
    answer = write(frame, "What are your opening hours?")
    assert "Monday to Friday" in log_text(frame)
    rated = frame.locator("#chat-log .chat-msg[data-expects=rating]")
    rated.get_by_role("button", name="Helpful", exact=True).click()
    rated.locator(".chat-rated").wait_for()
    assert rated.locator("[aria-pressed=true]").inner_text() == "Helpful"
    assert Conversation.objects.get().messages.get(expects="rating").rating == 1
    assert KnowledgeArticle.objects.get().helpful_count == 1
    press(frame, "no")
    answer = write(frame, "my parcel arrived damaged, order 4471")
    assert answer["expects"] == "email"
    assert "Damaged" in log_text(frame)
    conversation = Conversation.objects.get()
    assert conversation.channel == "widget"
    assert conversation.messages.filter(author="customer").count() == 4

    # Escape inside the frame closes the panel and gives the focus back to the launcher.
    frame.press("#chat-input", "Escape")
    page.locator("#concilia-panel").wait_for(state="hidden")
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.evaluate(
        "document.querySelector('[data-concilia-widget]').shadowRoot.activeElement.id"
    ) == ("concilia-launcher")
    assert problems == []


def test_a_whole_complaint_on_the_chat_page_then_a_reload_continues_it(
    page, problems, live_server, tmp_path, run_tasks
):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}/chat/?lang=en")
    frame = page.main_frame
    settled(frame, 0)
    assert page.locator("h1").inner_text() == "Complaints assistant"
    # A phone's width: nothing sticks out sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    press(frame, "accept")
    asked = write(frame, "my parcel arrived damaged, order 4471")
    photo = tmp_path / "parcel.png"
    photo.write_bytes(PNG_BYTES)
    program = tmp_path / "photo.png"
    program.write_bytes(EXE_BYTES)
    tried_a_program = False
    for _ in range(12):
        if "RC-" in log_text(frame):
            break
        if asked["expects"] == "email":
            asked = write(frame, "james@example.com")
        elif asked["expects"] == "name":
            asked = write(frame, "James Carter")
        elif asked["expects"] == "amount":
            asked = write(frame, "39.90")
        elif asked["expects"] == "file":
            before = last_seq(frame)
            if not tried_a_program:
                # A program dressed as a photo: the API's reason is shown in the chat.
                tried_a_program = True
                with page.expect_file_chooser() as chooser:
                    page.click("[data-chat-file]")
                chooser.value.set_files(str(program))
                page.locator(".chat-notice--error").wait_for()
                assert last_seq(frame) == before
            with page.expect_file_chooser() as chooser:
                page.click("[data-chat-file]")
            chooser.value.set_files(str(photo))
            asked = settled(frame, before)
            assert "parcel.png" in log_text(frame)
        elif asked["choices"]:
            wanted = [c for c in asked["choices"] if not c.startswith("__")]
            asked = press(frame, wanted[0])
        else:
            asked = write(frame, "Yesterday")

    # What follows the case (here: no policy, so a person) appears once the job has run.
    assert asked["expects"] == "wait"
    run_tasks()
    asked = settled(frame, last_seq(frame))
    assert asked["choices"] == ["1", "2", "3", "4", "5"]
    assert "A person from our team will answer by" in log_text(frame)
    assert not frame.locator(".chat-typing").is_visible()

    conversation = Conversation.objects.select_related("case").get()
    reference = conversation.case.reference
    assert reference.startswith("RC-")
    assert reference in log_text(frame)
    assert tried_a_program
    assert Attachment.objects.filter(case=conversation.case).count() == 1
    shown = page.locator("#chat-log .chat-msg").count()
    assert shown == conversation.last_seq

    # Coming back later: the same conversation, not a new one.
    page.reload()
    settled(frame, 0)
    assert page.locator("#chat-log .chat-msg").count() == shown
    assert reference in log_text(frame)
    assert Conversation.objects.count() == 1
    # The survey's buttons are there to answer.
    assert page.locator("#chat-log .chat-choices button").count() == len(
        conversation.messages.order_by("-seq").first().choices
    )
    assert [p for p in problems if "status of 422" not in p] == []


def test_a_person_answers_live_in_the_page(page, problems, live_server, django_user_model):
    lucia = django_user_model.objects.create_user("lucia", "lucia@company.test", "pw")
    page.goto(f"{live_server.url}/chat/?lang=en")
    frame = page.main_frame
    settled(frame, 0)

    before = last_seq(frame)
    page.click("[data-chat-human]")
    assert frame.evaluate("document.activeElement.id") == "chat-input"
    settled(frame, before)
    press(frame, "accept")
    write(frame, "laura@example.com")
    write(frame, "Laura Gomez")
    page.locator("#chat[data-status=handed_over]").wait_for()
    assert page.locator("#chat-state").is_visible()
    conversation = Conversation.objects.get()
    assert conversation.status == ConversationStatus.HANDED_OVER

    # What the customer writes is shown as text, never as markup.
    write(frame, "<b>still</b> here")
    assert "<b>still</b> here" in log_text(frame)
    assert page.locator("#chat-log b").count() == 0

    # Lucía takes the chat and answers; the page shows both within two seconds, unreloaded.
    actions.take_conversation(conversation=conversation, agent=lucia)
    actions.agent_reply(conversation=conversation, agent=lucia, body="Hello Laura, I am Lucía.")
    reply = page.locator("#chat-log .chat-msg--agent", has_text="Hello Laura, I am Lucía.")
    reply.wait_for(timeout=2_000)
    assert "lucia" in page.locator("#chat-log .chat-msg--system").last.inner_text().lower()
    assert problems == []
