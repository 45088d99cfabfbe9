"""The email channel against a real IMAP server (Dovecot on loopback): new mail opens a case,
replies join their case's thread with their files, and automatic mail opens nothing."""

from __future__ import annotations

import itertools
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from aiosmtpd.controller import Controller
from django.core import mail

from concilia.cases.actions import reply_to_customer
from concilia.cases.models import Attachment, Case, Channel, Message, Status
from concilia.cases.tests.test_email_smtp import Inbox
from concilia.integrations.mail.imap import read_mailbox
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome, Security
from concilia.integrations.mail.tasks import sweep
from concilia.integrations.tests.mailserver import free_port, start_dovecot
from conftest import PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db(transaction=False)

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot():
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot, db):
    user = f"support{next(_numbers)}@example.com"
    return Mailbox.objects.create(
        name="Support",
        slug=f"support-{user.partition('@')[0]}",
        address=user,
        host="127.0.0.1",
        port=dovecot.port,
        security=Security.NONE,
        username=user,
        password=dovecot.password,
    )


def email_from(
    sender: str = "Marta Gil <marta@example.org>",
    subject: str = "Me cobraron dos veces",
    text: str = "Hola, me habéis cobrado dos veces el pedido 4417 en la tarjeta. Quiero que me devolváis el cargo duplicado.",
    to: str = "support@example.com",
    files: tuple[tuple[str, str, bytes], ...] = (),
    **headers: str,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    for name, content_type, content in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def test_a_new_email_opens_a_case_with_its_category_customer_and_files(dovecot, mailbox, run_tasks):
    dovecot.deliver(
        mailbox.address,
        email_from(files=(("extracto.pdf", "application/pdf", PDF_BYTES),)),
    )

    result = read_mailbox(mailbox)

    assert result.read == 1
    case = Case.objects.get()
    assert case.channel == Channel.EMAIL
    assert case.category.code == "billing_error"
    assert case.language == "es"
    assert case.customer.email == "marta@example.org"
    assert case.customer.name == "Marta Gil"
    assert "cobrado dos veces" in case.description
    assert [a.original_name for a in case.attachments.all()] == ["extracto.pdf"]
    email = InboundEmail.objects.get()
    assert (email.outcome, email.case) == (Outcome.NEW_CASE, case)
    # The confirmation starts the case's thread and asks autoresponders not to answer.
    run_tasks()
    (confirmation,) = [m for m in mail.outbox if m.to == ["marta@example.org"]]
    assert case.reference in confirmation.subject
    assert confirmation.extra_headers["Message-ID"] == f"<case.{case.reference}@testserver>"
    assert confirmation.extra_headers["Auto-Submitted"] == "auto-generated"
    assert confirmation.alternatives[0][1] == "text/html"
    # The message is marked read, and reading again finds nothing new.
    assert dovecot.count(mailbox.address, "UNSEEN") == 0
    assert read_mailbox(mailbox).read == 0
    assert Case.objects.count() == 1


def test_a_reply_joins_its_case_by_headers_without_the_quoted_text(
    dovecot, mailbox, open_case, agent, run_tasks
):
    case = open_case(language="es")
    reply_to_customer(case=case, author=agent, body="¿Puede enviarnos una foto del paquete?")
    run_tasks()
    (ours,) = [m for m in mail.outbox if "Answer" in m.subject or "Respuesta" in m.subject]
    our_id = ours.extra_headers["Message-ID"]
    quoted = "\n".join("> " + line for line in ours.body.splitlines())
    answer = email_from(
        sender="Lucía <lucia@example.com>",
        subject="Re: " + ours.subject.replace(case.reference, "caso"),
        text=f"Aquí está la foto.\n\nEl lun, 1 dic 2026, Concilia escribió:\n{quoted}",
        files=(("paquete.png", "image/png", PNG_BYTES),),
        In_Reply_To=our_id,
        References=f"<case.{case.reference}@testserver> {our_id}",
    )
    dovecot.deliver(mailbox.address, answer)

    read_mailbox(mailbox)

    case.refresh_from_db()
    last = Message.objects.filter(case=case).order_by("pk").last()
    assert last.author_kind == "customer"
    assert last.body == "Aquí está la foto."
    assert [a.original_name for a in last.attachments.all()] == ["paquete.png"]
    assert case.status == Status.PENDING_AGENT
    assert Case.objects.count() == 1
    assert InboundEmail.objects.get().outcome == Outcome.REPLY


def test_a_reference_in_the_subject_joins_the_case_only_from_the_customers_address(
    dovecot, mailbox, open_case
):
    case = open_case(language="es")
    dovecot.deliver(
        mailbox.address,
        email_from(sender="lucia@example.com", subject=f"Sobre mi caso {case.reference.lower()}"),
        email_from(sender="someone@else.example", subject=f"Caso {case.reference}"),
        # A mistyped reference (wrong check character) is not a reference.
        email_from(sender="lucia@example.com", subject=f"Caso {case.reference[:-1]}Z"),
    )

    read_mailbox(mailbox)

    outcomes = list(InboundEmail.objects.order_by("uid").values_list("outcome", flat=True))
    assert outcomes == [Outcome.REPLY, Outcome.NOTE, Outcome.NEW_CASE]
    from_customer, from_other = Message.objects.filter(case=case).order_by("pk")[:2]
    assert (from_customer.author_kind, from_customer.internal) == ("customer", False)
    assert from_other.internal and "someone@else.example" in from_other.body
    assert Case.objects.count() == 2


def test_automatic_replies_and_our_own_mail_open_nothing_and_send_nothing(
    dovecot, mailbox, run_tasks
):
    dovecot.deliver(
        mailbox.address,
        email_from(subject="Out of office", Auto_Submitted="auto-replied"),
        email_from(subject="Respuesta automática: vacaciones"),
        email_from(subject="Fuera", X_Autoreply="yes"),
        email_from(subject="Newsletter", Precedence="bulk"),
        email_from(sender=f"Support <{mailbox.address}>", subject="Our own"),
        email_from(subject="Forwarded back", X_Concilia_Loop="testserver"),
    )

    assert read_mailbox(mailbox).read == 6
    run_tasks()

    assert Case.objects.count() == 0
    assert mail.outbox == []
    assert sorted(InboundEmail.objects.values_list("outcome", flat=True)) == sorted(
        [Outcome.AUTO_REPLY] * 4 + [Outcome.LOOP] * 2
    )


def test_a_bounce_of_our_email_becomes_a_note_on_its_case(dovecot, mailbox, open_case):
    case = open_case(language="es")
    returned = EmailMessage()
    returned["From"] = "Concilia <no-reply@concilia.localhost>"
    returned["To"] = "lucia@example.com"
    returned["Subject"] = f"Hemos recibido tu caso {case.reference}"
    returned["Message-ID"] = f"<case.{case.reference}@testserver>"
    returned.set_content("...")
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.com>"
    report["To"] = mailbox.address
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Message-ID"] = make_msgid()
    report.set_content("This is the mail system. The address was rejected: 550 5.1.1 unknown.")
    report.add_attachment(returned)
    report.replace_header("Content-Type", "multipart/report; report-type=delivery-status")
    dovecot.deliver(mailbox.address, report.as_bytes())

    read_mailbox(mailbox)

    email = InboundEmail.objects.get()
    assert (email.outcome, email.case) == (Outcome.BOUNCE, case)
    note = Message.objects.filter(case=case, internal=True).last()
    assert "no se ha podido entregar un correo al cliente" in note.body.lower()
    assert Case.objects.count() == 1


def test_a_mail_loop_with_an_autoresponder_that_says_nothing_stops(
    dovecot, mailbox, run_tasks, settings
):
    """An autoresponder without any automatic headers answers every email with a new subject:
    after the hourly limit its mail is kept but opens nothing and is not answered."""
    settings.CONCILIA_MAIL_LOOP_LIMIT = 3
    dovecot.deliver(mailbox.address, email_from(sender="robot@example.net", subject="Queja"))
    for round_ in range(8):
        read_mailbox(mailbox)
        run_tasks()
        answers = [m for m in mail.outbox if m.to == ["robot@example.net"]]
        mail.outbox.clear()
        for answer in answers:  # the robot answers each of ours with a fresh email
            dovecot.deliver(
                mailbox.address,
                email_from(
                    sender="robot@example.net", subject=f"Thanks #{round_}: {answer.subject[-8:]}"
                ),
            )
        if not answers:
            break

    assert Case.objects.count() == 3
    assert InboundEmail.objects.filter(outcome=Outcome.LOOP).count() == 1
    assert InboundEmail.objects.count() == 4  # everything that arrived is kept


def test_an_email_that_fails_is_kept_and_tried_again_by_the_sweep(
    dovecot, mailbox, monkeypatch, run_tasks
):
    from django.utils import timezone

    import concilia.integrations.mail.actions as actions

    original = actions._new_case

    def broken(email, parsed):
        raise RuntimeError("the shop's database is down")

    monkeypatch.setattr(actions, "_new_case", broken)
    dovecot.deliver(mailbox.address, email_from(), email_from(subject="Otro", sender="b@x.org"))
    read_mailbox(mailbox)
    assert set(InboundEmail.objects.values_list("outcome", flat=True)) == {Outcome.FAILED}
    assert Case.objects.count() == 0
    mailbox.refresh_from_db()
    assert mailbox.last_uid == 2  # reading went on; the failed ones wait in the database

    monkeypatch.setattr(actions, "_new_case", original)
    later = timezone.now() + timezone.timedelta(minutes=3)
    assert sweep(now=later) >= 2
    run_tasks()

    assert set(InboundEmail.objects.values_list("outcome", flat=True)) == {Outcome.NEW_CASE}
    assert Case.objects.count() == 2


def test_a_mailbox_that_cannot_be_reached_records_why(mailbox, run_tasks):
    from concilia.integrations.mail.tasks import read_mailbox as read_job

    Mailbox.objects.filter(pk=mailbox.pk).update(port=free_port())
    read_job.enqueue(mailbox_id=mailbox.pk)
    run_tasks()

    mailbox.refresh_from_db()
    assert "ConnectionRefused" in mailbox.last_error
    assert mailbox.polling_until is None


def test_one_reader_at_a_time(dovecot, mailbox):
    from django.utils import timezone

    Mailbox.objects.filter(pk=mailbox.pk).update(
        polling_until=timezone.now() + timezone.timedelta(minutes=1)
    )
    dovecot.deliver(mailbox.address, email_from())

    assert read_mailbox(mailbox).skipped
    assert InboundEmail.objects.count() == 0


def test_attachments_that_are_not_allowed_are_listed_in_a_note_and_the_original_kept(
    dovecot, mailbox, settings, admin_client
):
    settings.CONCILIA_MAX_ATTACHMENT_BYTES = 1000
    big = PNG_BYTES + b"\0" * 5000
    raw = email_from(
        files=(
            ("grande.png", "image/png", big),
            ("programa.exe", "application/octet-stream", b"MZ\x90\x00" + b"\0" * 64),
            ("foto.png", "image/png", PNG_BYTES),
        )
    )
    dovecot.deliver(mailbox.address, raw)

    read_mailbox(mailbox)

    case = Case.objects.get()
    assert list(Attachment.objects.values_list("original_name", flat=True)) == ["foto.png"]
    note = Message.objects.get(case=case, internal=True)
    assert "grande.png" in note.body and "programa.exe" in note.body
    email = InboundEmail.objects.get()
    response = admin_client.get(f"/admin/integrations/inboundemail/{email.pk}/raw/")
    assert response.status_code == 200
    # Byte for byte what the server holds (IMAP stores lines ending in CRLF).
    assert b"".join(response.streaming_content).replace(b"\r\n", b"\n") == raw


def test_round_trip_over_real_smtp_and_imap(
    dovecot, mailbox, open_case, agent, run_tasks, settings
):
    """The agent's answer leaves over SMTP (a real server on loopback) with the thread headers;
    the customer's mail program answers it; the answer comes back over IMAP into the case."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.CONCILIA_REPLY_TO_EMAIL = mailbox.address
    try:
        case = open_case(language="en")
        reply_to_customer(case=case, author=agent, body="Could you send the invoice?")
        run_tasks()
        for _ in range(100):
            if len(inbox.messages) >= 2:
                break
            time.sleep(0.05)
    finally:
        controller.stop()
    (sent,) = [m for m in inbox.messages if "Could you send" in m.as_string()]
    assert sent["Reply-To"] == mailbox.address
    assert sent["In-Reply-To"] == f"<case.{case.reference}@testserver>"
    assert "Auto-Submitted" not in sent  # a person's answer, which deserves a person's reply
    answer = EmailMessage()
    answer["From"] = "lucia@example.com"
    answer["To"] = sent["Reply-To"]
    answer["Subject"] = "Re: " + sent["Subject"]
    answer["In-Reply-To"] = sent["Message-ID"]
    answer["References"] = f"{sent['References']} {sent['Message-ID']}"
    answer.set_content("Here it is.\n\nOn Mon, 1 Dec 2026, Concilia wrote:\n> Could you send...")
    answer.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="inv.pdf")
    dovecot.deliver(mailbox.address, answer.as_bytes())

    read_mailbox(mailbox)

    last = Message.objects.filter(case=case).order_by("pk").last()
    assert (last.author_kind, last.body) == ("customer", "Here it is.")
    assert [a.original_name for a in last.attachments.all()] == ["inv.pdf"]


def test_the_read_command_reads_every_active_mailbox(dovecot, mailbox, capsys):
    from django.core.management import call_command

    dovecot.deliver(mailbox.address, email_from(), email_from(sender="x@example.org"))

    call_command("mail", "read")

    assert "2" in capsys.readouterr().out
    assert Case.objects.count() == 2
