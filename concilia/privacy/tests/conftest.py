"""People of the privacy tests.

Ana is an agent of Customer care; Dora is the data-protection officer, who works no cases but reads
and exports the audit log and handles data-subject requests. Lucía (conftest's `open_case`) is the
customer whose data they touch; `lucia_story` puts her data everywhere Concilia keeps any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from concilia.accounts.models import ROLE_GROUPS, Role, Team, User

DPO_GROUP = "Role: data-protection officer"

# Where Ana works from: the audit entries must say so.
ANA_WHERE = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Firefox/128.0 (Ana's laptop)"}


@pytest.fixture
def care(db):
    return Team.objects.create(code="care", name_es="Atención", name_en="Care")


@pytest.fixture
def ana(care):
    user = User.objects.create_user("ana", "ana@company.test", "pw", first_name="Ana")
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.AGENT][0]), care.group)
    return user


@pytest.fixture
def dora(db):
    user = User.objects.create_user("dora", "dora@company.test", "pw", first_name="Dora")
    user.groups.add(Group.objects.get(name=DPO_GROUP))
    return user


@pytest.fixture
def ana_client(ana):
    client = Client(**ANA_WHERE)
    client.force_login(ana)
    return client


@pytest.fixture
def dora_client(dora):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(dora)
    return client


# Data-subject requests --------------------------------------------------------------------


@pytest.fixture
def customer_client(run_tasks):
    """A browser-less customer signed in on the tracking pages through the link emailed to
    them (which is how their identity is verified by email), reading English."""
    from concilia.intake.tests.test_tracking import sign_in

    def sign_in_as(case) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        sign_in(client, case, run_tasks)
        return client

    return sign_in_as


# A word only Lucía ever wrote (its trigrams, such as "zqw", appear in no other text), her phone.
WORD = "Zqwerbax"
PHONE = "+34 600 123 456"
NEW_PHONE = "+34 611 222 333"
EMAIL_TEXT = f"Hola, sigo esperando por la tostadora {WORD}. Lucía Fernández, {PHONE}."


@dataclass
class Story:
    """Lucía everywhere: a web complaint with an invoice, her reply with a receipt on the
    tracking page, Ana's answer and internal note, a phone number corrected in the case's
    history, a chat with the assistant with a photo, and an email that opened a second case."""

    web_case: Any
    email_case: Any
    conversation: Any
    customer: Any
    client: Client  # Lucía, signed in on the tracking pages
    raw_email: bytes
    files: dict[str, bytes]  # the name each file was sent with: its bytes


@pytest.fixture
def lucia_story(complaint_data, customer_client, ana, run_tasks) -> Story:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from concilia.assistant import actions as chat
    from concilia.cases import actions as case_actions
    from concilia.cases.attachments import check_file
    from concilia.cases.models import Case, Channel
    from concilia.integrations.mail.models import Mailbox
    from concilia.integrations.tests.test_mail_inbound import email_from
    from concilia.integrations.tests.test_mail_webhook import _post
    from conftest import PDF_BYTES

    invoice, receipt, photo = PDF_BYTES + b"% invoice\n", PDF_BYTES + b"% receipt\n", PDF_BYTES
    Client().post(
        "/complaints/new",
        {
            **complaint_data(
                description=f"La tostadora {WORD} echa chispas y nadie me contesta.",
                desired_resolution=f"Que me devuelvan la {WORD}.",
            ),
            "attachments": [SimpleUploadedFile("factura.pdf", invoice)],
        },
    )
    web_case = Case.objects.get(channel=Channel.WEB)
    client = customer_client(web_case)
    client.post(
        f"/track/cases/{web_case.reference}",
        {
            "body": f"Adjunto el recibo de la {WORD}.",
            "attachments": [SimpleUploadedFile("recibo.pdf", receipt)],
        },
    )
    case_actions.reply_to_customer(
        case=web_case, body=f"Hola Lucía, revisamos lo de la {WORD}.", author=ana, status=None
    )
    case_actions.add_internal_note(case=web_case, body=f"Lucía llamó por la {WORD}.", author=ana)
    case_actions.update_contact(case=web_case, name="Lucía Fernández", phone=NEW_PHONE, actor=ana)
    started = chat.start_conversation(language="es", channel="page", customer=web_case.customer)
    conversation = started.conversation
    chat.post_customer_message(conversation=conversation, choice="accept")
    chat.post_customer_message(conversation=conversation, text=f"Mi {WORD} sigue rota")
    chat.receive_upload(conversation=conversation, checked=check_file("foto.pdf", photo))
    mailbox = Mailbox.objects.create(name="Web", slug="web", address="help@example.com")
    raw_email = email_from(
        sender="Lucía Fernández <lucia@example.com>", subject=f"{WORD} otra vez", text=EMAIL_TEXT
    )
    assert _post(mailbox, raw_email).status_code == 202
    run_tasks()
    email_case = Case.objects.get(channel=Channel.EMAIL)
    assert email_case.customer_id == web_case.customer_id
    web_case.refresh_from_db()
    return Story(
        web_case=web_case,
        email_case=email_case,
        conversation=conversation,
        customer=web_case.customer,
        client=client,
        raw_email=raw_email,
        files={"factura.pdf": invoice, "recibo.pdf": receipt, "foto.pdf": photo},
    )
