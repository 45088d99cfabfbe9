"""The confirmation email reaches a real SMTP server on loopback."""

from __future__ import annotations

import email
import socket
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler


class Inbox(MessageHandler):
    def __init__(self):
        super().__init__()
        self.messages: list[email.message.Message] = []

    def handle_message(self, message):
        self.messages.append(message)


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield inbox
    controller.stop()


@pytest.mark.django_db
def test_confirmation_is_delivered_over_smtp_in_the_customers_language(
    smtp_server, open_case, run_tasks
):
    case = open_case(language="es")
    run_tasks()
    for _ in range(50):
        if smtp_server.messages:
            break
        time.sleep(0.05)
    [message] = smtp_server.messages
    assert message["To"] == "lucia@example.com"
    assert message["X-Concilia-Reference"] == case.reference
    subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
    assert subject == f"Hemos recibido tu caso {case.reference}"
