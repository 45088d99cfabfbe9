"""The helpdesk in a real browser: an agent signs in, filters the queue, opens a case, answers it
from a template and closes it; the customer gets the reply by email and on the tracking page."""

from __future__ import annotations

import os

import pytest
from django.core import mail

from concilia.cases.models import ActorKind, Case, Outcome, Status
from conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def test_an_agent_answers_from_a_template_and_closes_the_case(
    seeded, page, live_server, settings, open_case, teams, ana, templates
):
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
            "QUEUES": settings.JOB_QUEUES,
        }
    }
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    case = open_case(name="Lucía Fernández", email="lucia@example.com", order_number="PED-7")
    other = open_case(name="Pablo Ruiz", email="pablo@example.com")
    mail.outbox.clear()

    page.goto(f"{live_server.url}/helpdesk/")
    assert "/helpdesk/login/" in page.url
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/helpdesk/")

    # The queue: both cases are Ana's; filtering by the customer's email leaves one.
    page.goto(f"{live_server.url}/helpdesk/?view=all")
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 2
    page.fill("#id_email", "LUCIA@example.com")
    page.locator("form[aria-label] button[type=submit]").first.click()
    page.wait_for_url("**email=LUCIA%40example.com**")
    assert rows.count() == 1
    assert other.reference not in page.content()

    page.click(f"text={case.reference}")
    page.wait_for_url(f"**/helpdesk/cases/{case.reference}")
    assert page.locator("h1 .reference").inner_text() == case.reference

    # A template fills the reply in the customer's language with her data.
    page.click("a[data-template=ack]")
    body = page.locator("#reply textarea")
    expected = f"Hola Lucía Fernández, revisamos {case.reference} (pedido PED-7)."
    assert body.input_value() == expected
    page.select_option("#reply select[name=then]", Status.CLOSED)
    page.select_option("#reply select[name=outcome]", Outcome.RESOLVED)
    page.locator("#reply button[type=submit]").click()
    page.wait_for_selector(".messages, [role=status], .success", timeout=10_000)
    assert page.locator('[data-status="closed"]').first.is_visible()

    case.refresh_from_db()
    assert (case.status, case.outcome) == (Status.CLOSED, Outcome.RESOLVED)
    reply = case.messages.get(author_kind=ActorKind.STAFF)
    assert reply.body == expected and not reply.internal
    assert [m.to for m in mail.outbox if case.reference in m.subject] == [["lucia@example.com"]]
    assert Case.objects.get(pk=other.pk).status != Status.CLOSED
