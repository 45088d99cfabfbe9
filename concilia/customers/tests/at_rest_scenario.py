"""The life of a deployment with personal data, run in a fresh CONCILIA_HOME on SQLite as its own
process (`python -m concilia.customers.tests.at_rest_scenario`), so that a test can then read the
database file and the attachment store byte by byte (test_encryption_at_rest.py).

An earlier version's data first (a customer and a file stored before encryption existed), then
the upgrade, then customers with complaints and files through every way files arrive: the web
form's attachments, a form's pending uploads, a chat upload, a raw inbound email; a Telegram bot's
token; finally `concilia keys reencrypt --now` for the files of the earlier version. It prints, as
JSON, what the application reads back (a test compares it with what went in).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import django

# Distinctive personal data: none of it may appear in clear anywhere on disk.
PEOPLE = [
    ("Zacarías Quintanilla-Ñúñez", "zacarias.quintanilla@example.org", "+34 611 222 333"),
    ("Wilhelmina Featherstonehaugh", "w.featherstonehaugh@example.co.uk", "+44 7700 900461"),
]
LEGACY_PERSON = ("Leocadia Vetusta-Arrieta", "leocadia.vetusta@example.net", "+34 699 000 111")
LEGACY_FILE = b"RECIBO-ANTIGUO-LV-5521 firmado por Leocadia Vetusta-Arrieta"
FORM_FILE_MARK = b"FACTURA-ZQ-7731-CONTENIDO-PRIVADO"
PENDING_FILE_MARK = b"ALBARAN-PENDIENTE-4410-PRIVADO"
CHAT_FILE_MARK = b"TICKET-CHAT-8812-PRIVADO"
EMAIL_BODY_MARK = "CUERPO-CORREO-3307-PRIVADO"
EMAIL_FILE_MARK = b"ADJUNTO-CORREO-6620-PRIVADO"
CASE_TEXT_MARK = "Vajilla-Porcelana-Limoges-8841"  # in each complaint's description
MESSAGE_MARK = "Mensaje-Confidencial-Transportista-2276"  # in a message of the thread
WISH_MARK = "Deseo-Reembolso-Tarjeta-4417"  # in each complaint's desired resolution
BOT_TOKEN = "987654321:AAHsecretBotTokenPartThatMustNotLeak01"
# What a customer writes in the chat (the transcript, the dialogue's memory) and an email's
# sender and subject, as the mail channel keeps them beside the raw message.
CHAT_TEXT_MARK = "Mi-Vecina-Herminia-Pedido-6104"
EMAIL_SENDER = "remitente.correo@example.com"
EMAIL_SUBJECT_MARK = "Asunto-Reservado-5190"
FILE_MARKS = [LEGACY_FILE, FORM_FILE_MARK, PENDING_FILE_MARK, CHAT_FILE_MARK, EMAIL_FILE_MARK]


def pdf(mark: bytes) -> bytes:
    return (
        b"%PDF-1.4\n% " + mark + b"\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def inbound_email() -> bytes:
    import base64

    attachment = base64.b64encode(pdf(EMAIL_FILE_MARK)).decode()
    return (
        f"From: Remitente <{EMAIL_SENDER}>\r\n"
        "To: soporte@shop.example\r\n"
        f"Subject: Consulta {EMAIL_SUBJECT_MARK}\r\n"
        "Message-ID: <at-rest-1@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{EMAIL_BODY_MARK}\r\n"
        "--b1\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="adjunto.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{attachment}\r\n--b1--\r\n"
    ).encode()


def before_the_upgrade() -> None:
    """The data an earlier version left: a plain customer row and a plain file."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", "customers", "0002", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (name, email, phone, language, created_at, updated_at) "
            "VALUES (%s, %s, %s, 'es', '2025-01-01 00:00:00', '2025-01-01 00:00:00')",
            list(LEGACY_PERSON),
        )
    old_file = Path(settings.HOME) / "attachments" / "2025" / "01" / "ab" / "recibo.pdf"
    old_file.parent.mkdir(parents=True)
    old_file.write_bytes(LEGACY_FILE)


def after_the_upgrade() -> dict[str, object]:
    from django.core.management import call_command

    from concilia.assistant.actions import (
        post_customer_message,
        receive_upload,
        start_conversation,
    )
    from concilia.cases.actions import add_customer_message
    from concilia.cases.attachments import check_file
    from concilia.cases.models import Case, Category, Channel
    from concilia.cases.search import matching_case_ids
    from concilia.customers.models import Customer, PrivacyNotice
    from concilia.intake.actions import keep_pending_uploads, submit_complaint
    from concilia.integrations.mail.actions import store_email
    from concilia.integrations.mail.models import InboundEmail
    from concilia.integrations.telegram.actions import save_bot
    from concilia.integrations.telegram.models import TelegramBot

    call_command("migrate", verbosity=0)
    notice = PrivacyNotice.objects.current()
    references = []
    for name, email, phone in PEOPLE:
        submission = submit_complaint(
            data={
                "name": name,
                "email": email,
                "phone": phone,
                "category": Category.objects.get(code="other"),
                "kind": "complaint",
                "description": f"El pedido llegó roto: {CASE_TEXT_MARK}.",
                "desired_resolution": f"Otro igual o {WISH_MARK}.",
                "notice_version": notice,
            },
            channel=Channel.WEB,
            language="es",
            files=[check_file("factura.pdf", pdf(FORM_FILE_MARK))],
        )
        references.append(submission.case.reference)
        add_customer_message(case=submission.case, body=f"Sigo esperando. {MESSAGE_MARK}")
    keep_pending_uploads(
        submission_id=uuid.uuid4(), files=[check_file("albaran.pdf", pdf(PENDING_FILE_MARK))]
    )
    conversation = start_conversation(language="es", channel="page").conversation
    receive_upload(conversation=conversation, checked=check_file("ticket.pdf", pdf(CHAT_FILE_MARK)))
    post_customer_message(conversation=conversation, choice="accept")
    said = post_customer_message(conversation=conversation, text=f"Se rompió. {CHAT_TEXT_MARK}")
    store_email(raw=inbound_email())
    save_bot(bot=TelegramBot(code="shop", name="Shop bot"), token=BOT_TOKEN)
    call_command("keys", "reencrypt", "--now", verbosity=0)
    return {
        "references": references,
        "customers": sorted([c.name, c.email, c.phone] for c in Customer.objects.all()),
        "bot_token": TelegramBot.objects.get().api_token,
        "wishes": sorted(set(Case.objects.values_list("desired_resolution", flat=True))),
        "chat": [message.body for message in said if message.author == "customer"],
        "email": list(InboundEmail.objects.values_list("from_address", "subject")),
        # the encrypted texts are still found by any part of them, in any case
        "found": {
            mark: sorted(
                Case.objects.filter(pk__in=matching_case_ids(mark.upper()[3:])).values_list(
                    "reference", flat=True
                )
            )
            for mark in (CASE_TEXT_MARK, MESSAGE_MARK)
        },
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "concilia.settings")
    django.setup()
    before_the_upgrade()
    print(json.dumps(after_the_upgrade()))
