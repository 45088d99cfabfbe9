"""The demo story in a real browser: a customer of the demo shop complains in the chat that a
parcel is late, is offered store credit by the shop's policy (decided in the background: the
offer appears in the chat a moment after the case's reference), accepts it with a click, and gets
the agreement in the chat and in writing by email."""

from __future__ import annotations

import os

import pytest
from django.core import mail
from django.core.management import call_command

from concilia.assistant.models import Conversation
from concilia.assistant.tests.test_widget_browser import (
    last_seq,
    log_text,
    press,
    settled,
    write,
)
from concilia.cases.models import Status
from concilia.resolution.models import Offer, OfferStatus, Resolution
from conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def test_late_parcel_credit_offered_in_chat_accepted_and_confirmed(page, live_server, run_tasks):
    call_command("demo", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{live_server.url}/chat/?lang=en")
    frame = page.main_frame
    settled(frame, 0)
    press(frame, "accept")
    asked = write(frame, "My parcel is late, it has not arrived yet. Order 1234")
    for _ in range(12):
        if asked["choices"] and asked["choices"][0].startswith("accept:"):
            break
        if asked["expects"] == "email":
            asked = write(frame, "olivia@example.com")
        elif asked["expects"] == "name":
            asked = write(frame, "Olivia Brown")
        elif asked["choices"] == ["yes", "no"]:
            asked = press(frame, "yes")
        elif asked["expects"] == "wait":
            # The case is registered; the customer is asked for a moment while the policy
            # decides, and the chat shows its answer as soon as the job has run.
            assert "RC-" in log_text(frame) and "One moment" in log_text(frame)
            assert frame.locator(".chat-typing").is_visible()
            shown = last_seq(frame)
            run_tasks()
            asked = settled(frame, shown)
        elif asked["choices"]:
            asked = press(frame, next(c for c in asked["choices"] if not c.startswith("__")))
        else:
            asked = write(frame, "Last week")
    assert asked["choices"] == ["accept:0", "accept:1", "counter", "reject"], log_text(frame)
    # (The demo's own cases are decided by the same run of the jobs: only the chat's is looked at.)
    case = Conversation.objects.get().case
    offer = Offer.objects.get(case=case)
    credit = offer.options[0]["amount"]
    text = log_text(frame)
    assert "We offer you store credit of" in text
    assert f"€{credit}" in text
    # The buttons say what each one does.
    label = frame.locator('#chat-log .chat-choices button[data-value="accept:0"]').inner_text()
    assert label == f"I accept store credit of €{credit}"

    press(frame, "accept:0")
    assert f"Agreed: store credit of €{credit}" in log_text(frame)
    offer.refresh_from_db()
    assert offer.status == OfferStatus.ACCEPTED
    resolution = Resolution.objects.get(case=case)
    assert str(resolution.amount) == credit
    case.refresh_from_db()
    assert case.status == Status.CLOSED

    run_tasks()  # the emails and the credit in the shop
    resolution.refresh_from_db()
    assert resolution.follow_up == "done"
    confirmation = [m for m in mail.outbox if f"Agreed: store credit of €{credit}" in m.body]
    assert [m.to for m in confirmation] == [["olivia@example.com"]]
    assert problems == []
