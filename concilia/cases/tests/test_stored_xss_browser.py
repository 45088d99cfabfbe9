"""Stored XSS, in a real browser: what customers write (the web form, the chat, an email) is shown
to agents as text, never run as HTML or script.

A customer files a complaint whose name, description, wished resolution, order number and file
name are script payloads; another writes them in the chat and is handed over to a person; a third
sends them by email. Then Ana, an agent, opens the queue, the case pages, the live chat, her
notifications and the admin's pages of the case and the customer. The browser ignores the
Content-Security-Policy (which would stop inline scripts anyway), so that only escaping protects
the pages: no payload may run, none may create an element, and each must read as the text typed.
"""

from __future__ import annotations

import os

import pytest

from conftest import CHROMIUM, PNG_BYTES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

PAYLOADS = {
    "name": '<img src=x onerror="window.__xss=1">',
    "description": "<script>window.__xss=2</script> my parcel never arrived",
    "desired_resolution": '"><svg onload="window.__xss=3"> a refund',
    "order_number": "'-alert(4)-'",
    "file": '<img src=y onerror="window.__xss=5">.png',
    "chat": '<img src=z onerror="window.__xss=6"> I want a person',
    "subject": "<script>window.__xss=8</script> Broken kettle",
    "email_body": '<iframe src="javascript:window.top.__xss=9"></iframe> It leaks.',
}

# Elements a payload would create if it were not escaped.
INJECTED = (
    "img[src=x], img[src=y], img[src=z], svg[onload], iframe[src^=javascript], script:not([src])"
)


def assert_shown_as_text(page, *texts: str) -> None:
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)  # an onerror would have fired by now
    assert page.evaluate("window.__xss") is None, page.url
    injected = page.evaluate(
        f"Array.from(document.querySelectorAll({INJECTED!r})).filter("
        "e => e.textContent.includes('__xss') || !e.textContent).map(e => e.outerHTML)"
    )
    # A page's own inline scripts carry the nonce and never mention __xss.
    assert [html for html in injected if "__xss" in html or "src=" in html] == [], page.url
    body = page.inner_text("body")
    for text in texts:
        assert text in body, (page.url, text)


@pytest.fixture
def browser_page(page):
    """A page of a browser context that ignores the Content-Security-Policy."""
    context = page.context.browser.new_context(locale="en-GB", bypass_csp=True)
    yield context.new_page()
    context.close()


def _file_a_complaint(page, live_server) -> None:
    page.goto(f"{live_server.url}/complaints/new")
    page.select_option("#id_category", "refund")
    page.fill("#id_name", PAYLOADS["name"])
    page.fill("#id_email", "lucia@example.com")
    page.fill("#id_order_number", PAYLOADS["order_number"])
    page.fill("#id_purchase_date", "2026-10-01")
    page.fill("#id_amount", "49.90")
    page.fill("#id_description", PAYLOADS["description"])
    page.fill("#id_desired_resolution", PAYLOADS["desired_resolution"])
    page.set_input_files(
        "#id_attachments",
        files=[{"name": PAYLOADS["file"], "mimeType": "image/png", "buffer": PNG_BYTES}],
    )
    page.check("#id_accept_privacy")
    page.click("button[type=submit]")
    page.wait_for_selector("#reference")
    assert_shown_as_text(page)


def _chat_for_a_person():
    from concilia.assistant import actions

    started = actions.start_conversation(language="en", channel="page")
    for turn in (
        {"choice": "accept"},
        {"text": "I want to talk to a person, please"},
        {"text": "mark@example.com"},
        {"text": "Mark Jones"},  # the assistant refuses a name with markup in it
        {"text": PAYLOADS["chat"]},  # to the person, once handed over
    ):
        actions.post_customer_message(conversation=started.conversation, **turn)
    started.conversation.refresh_from_db()
    return started.conversation


def _email_a_complaint(mailbox):
    from concilia.integrations.mail.actions import store_email
    from concilia.integrations.mail.tasks import process_inbound_email

    raw = (
        "From: Bea <bea@example.org>\r\nTo: help@example.com\r\n"
        f"Subject: {PAYLOADS['subject']}\r\nMessage-ID: <xss-1@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{PAYLOADS['email_body']}\r\n"
    ).encode()
    stored = store_email(raw=raw, mailbox=mailbox)
    process_inbound_email.enqueue(email_id=stored.email.pk)  # run at once: immediate backend


def test_nothing_a_customer_writes_runs_in_the_agents_pages(
    seeded, browser_page, live_server, settings
):
    from django.contrib.auth.models import Group, Permission

    from concilia.accounts.models import User
    from concilia.cases.actions import notify_staff
    from concilia.cases.models import Case, NotificationKind
    from concilia.customers.models import email_index
    from concilia.integrations.mail.models import Mailbox

    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
            "QUEUES": settings.JOB_QUEUES,
        }
    }
    settings.CONCILIA_ANON_SUBMISSION_RATE = ""
    settings.CHAT_START_RATE = ""
    ana = User.objects.create_user("ana", "ana@company.test", "pw", is_staff=True)
    ana.groups.add(Group.objects.get(name="Role: administrator"))  # sees every case
    ana.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_case", "change_case", "view_customer", "view_conversation"]
        )
    )

    # Given three customers who wrote payloads in every field they could fill
    _file_a_complaint(browser_page, live_server)
    conversation = _chat_for_a_person()
    _email_a_complaint(Mailbox.objects.create(name="Help", slug="help", address="help@example.com"))
    web = Case.objects.get(customer__email_index=email_index("lucia@example.com"))
    chat = conversation.case
    emailed = Case.objects.exclude(pk__in=[web.pk, chat.pk]).get()
    notify_staff(recipient=ana, case=web, kind=NotificationKind.ALERT_DUE, note=PAYLOADS["name"])

    # When Ana signs in to the helpdesk
    page = browser_page
    page.goto(f"{live_server.url}/helpdesk/login/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/helpdesk/")

    # Then every page shows what they wrote as text, and runs none of it
    pages = [
        ("/helpdesk/?view=all", [PAYLOADS["name"]]),
        (f"/helpdesk/cases/{web.reference}", [PAYLOADS["name"], PAYLOADS["order_number"]]),
        (f"/helpdesk/cases/{chat.reference}", [PAYLOADS["chat"]]),
        (f"/helpdesk/cases/{emailed.reference}", ["It leaks."]),
        ("/helpdesk/chats/", []),
        (f"/helpdesk/chats/{conversation.public_id}/", [PAYLOADS["chat"]]),
        ("/helpdesk/notifications/", []),
        (f"/admin/cases/case/{web.pk}/change/", []),
        ("/admin/cases/case/", []),
        (f"/admin/customers/customer/{web.customer_id}/change/", []),
    ]
    for path, texts in pages:
        page.goto(f"{live_server.url}{path}")
        assert_shown_as_text(page, *texts)
    # The web form's description and wish, the file's name and the email's subject are there too
    page.goto(f"{live_server.url}/helpdesk/cases/{web.reference}")
    body = page.inner_text("body")
    assert "my parcel never arrived" in body and PAYLOADS["description"].split(">")[0] + ">" in body
    assert "a refund" in body
    page.goto(f"{live_server.url}/helpdesk/cases/{emailed.reference}")
    assert "Broken kettle" in page.inner_text("body")
