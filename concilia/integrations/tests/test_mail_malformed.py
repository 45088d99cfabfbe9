"""The reliability test of the email channel: a mailbox full of what real mail servers deliver
(broken MIME, wrong and unknown encodings, huge attachments, no sender, binary noise, a mail
loop) is read without crashing, without losing a message and without answering a loop."""

from __future__ import annotations

import base64

import pytest
from django.core import mail

from concilia.cases.models import Attachment, Case
from concilia.integrations.mail.imap import read_mailbox
from concilia.integrations.mail.models import InboundEmail, Mailbox, Outcome, Security
from concilia.integrations.tests.mailserver import start_dovecot
from conftest import PNG_BYTES

pytestmark = pytest.mark.django_db


@pytest.fixture
def dovecot():
    server = start_dovecot()
    yield server
    server.stop()


def _nasty_mail(big: bytes) -> dict[str, bytes]:
    png = base64.encodebytes(PNG_BYTES)
    return {
        "boundary never closed": (
            b"From: ana@example.org\r\nSubject: Factura mal\r\nMessage-ID: <m1@x>\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="zzz"\r\n\r\n'
            b"--zzz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Me cobraron de m\xc3\xa1s en la factura.\r\n--zzz\r\nContent-Type: image/png;"
            b' name="a.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + png
        ),
        "unknown charset": (
            b"From: bea@example.org\r\nSubject: Paquete roto\r\nMessage-ID: <m2@x>\r\n"
            b"Content-Type: text/plain; charset=x-unknown-klingon\r\n\r\n"
            b"El paquete lleg\xf3 roto y falta una pieza.\r\n"
        ),
        "latin-1 declared as utf-8, 8-bit headers": (
            b"From: =?utf-8?q?Carlos_N=C3=BA=C3=B1ez?= <carlos@example.org>\r\n"
            b"Subject: Devoluci\xf3n no recibida\r\nMessage-ID: <m3@x>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"Devolv\xed el pedido y no me han reembolsado.\r\n"
        ),
        "broken base64 and quoted-printable": (
            b"From: dani@example.org\r\nSubject: Reembolso\r\nMessage-ID: <m4@x>\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nQuiero mi reembolso =E2=82=AC=\r\n"
            b"=ZZ 40\r\n--b\r\nContent-Type: application/pdf; name=r.pdf\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@\r\n--b--\r\n"
        ),
        "html only, with script": (
            b"From: eva@example.org\r\nSubject: Cobro doble\r\nMessage-ID: <m5@x>\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            b"<html><head><style>p{}</style><script>alert(1)</script></head><body>"
            b"<p>Me cobrasteis dos veces</p><p>el pedido 5521</p></body></html>\r\n"
        ),
        "no sender at all": (b"Subject: ???\r\nMessage-ID: <m6@x>\r\n\r\nSin remitente.\r\n"),
        "binary noise": bytes(range(256)) * 8,
        "huge attachment": big,
        "no Message-ID, header folded badly": (
            b"From: fer@example.org\r\nSubject: Una queja\r\n  continued\r\n\tagain\r\n"
            b"Content-Type: text/plain\r\n\r\nEl t\xc3\xa9cnico no vino.\r\n"
        ),
    }


def _huge(size: int) -> bytes:
    body = base64.encodebytes(b"\xff" * size)
    return (
        b"From: gema@example.org\r\nSubject: Foto del golpe\r\nMessage-ID: <m8@x>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="q"\r\n\r\n'
        b"--q\r\nContent-Type: text/plain\r\n\r\nLa caja lleg\xc3\xb3 aplastada.\r\n"
        b"--q\r\nContent-Type: image/jpeg; name=golpe.jpg\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\n" + body + b"--q--\r\n"
    )


def test_a_mailbox_of_malformed_huge_and_looping_mail_loses_nothing(dovecot, run_tasks, settings):
    settings.CONCILIA_MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
    settings.CONCILIA_MAIL_MAX_BYTES = 8 * 1024 * 1024
    settings.CONCILIA_MAIL_LOOP_LIMIT = 5
    mailbox = Mailbox.objects.create(
        name="Support",
        slug="support",
        address="help@example.com",
        host="127.0.0.1",
        port=dovecot.port,
        security=Security.NONE,
        username="help@example.com",
        password=dovecot.password,
    )
    nasty = _nasty_mail(_huge(3 * 1024 * 1024))
    over_the_limit = _huge(9 * 1024 * 1024).replace(b"<m8@x>", b"<m9@x>")
    # A loop: an autoresponder writing 12 times in a row with a new subject each time.
    loop = [
        f"From: robot@example.net\r\nSubject: Ticket #{n} received\r\nMessage-ID: <r{n}@x>\r\n"
        f"\r\nYour message has been received.\r\n".encode()
        for n in range(12)
    ]
    dovecot.deliver(mailbox.address, *nasty.values(), over_the_limit, *loop)
    arrived = len(nasty) + 1 + len(loop)

    result = read_mailbox(mailbox)
    run_tasks()

    # Nothing lost: every message that arrived has its row, and every row but the oversized
    # one has its raw message.
    assert result.read + result.too_large == arrived
    assert InboundEmail.objects.count() == arrived
    assert InboundEmail.objects.exclude(outcome=Outcome.TOO_LARGE).filter(raw="").count() == 0
    assert not InboundEmail.objects.filter(outcome__in=(Outcome.FAILED, Outcome.RECEIVED))
    outcomes = dict(InboundEmail.objects.values_list("header_id", "outcome"))
    assert outcomes["<m9@x>"] == Outcome.TOO_LARGE
    assert outcomes["<m6@x>"] == Outcome.UNREADABLE
    assert dovecot.count(mailbox.address, "UNSEEN") == 1  # the oversized one stays for a person
    # The person-written ones became cases with readable text.
    descriptions = " ".join(Case.objects.values_list("description", flat=True))
    for words in (
        "cobraron de más",
        "llegó roto",
        "no me han reembolsado",
        "Me cobrasteis dos veces",
        "El técnico no vino",
        "aplastada",
    ):
        assert words in descriptions
    assert "alert(1)" not in descriptions
    assert Attachment.objects.filter(original_name="a.png").exists()
    # The loop was stopped: at most the limit of cases and confirmations for the robot.
    robot = InboundEmail.objects.with_sender("robot@example.net")
    assert robot.filter(outcome=Outcome.NEW_CASE).count() == 5
    assert robot.filter(outcome=Outcome.LOOP).count() == 7
    assert len([m for m in mail.outbox if m.to == ["robot@example.net"]]) == 5
    # Reading again is calm: nothing new, nothing twice.
    assert read_mailbox(mailbox).read == 0
    assert InboundEmail.objects.count() == arrived
