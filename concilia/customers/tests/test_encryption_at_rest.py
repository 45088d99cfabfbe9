"""Personal data is encrypted at rest (docs/encryption.md): the raw database file and the
attachment store hold no name, email, phone or file content in clear, yet everything reads back
and customers are still found by email, whatever its case, and by the words of their name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.db import connection
from django.urls import reverse

from concilia.cases.attachments import check_file
from concilia.cases.models import Attachment, Case
from concilia.customers.actions import identify_customer
from concilia.customers.models import Customer
from concilia.customers.tests import at_rest_scenario as scenario
from conftest import PDF_BYTES

ROOT = Path(__file__).resolve().parents[3]

# What Zoe, a customer, tells us about herself.
ZOE = ("Zoë Ashcombe-Vélez", "zoe.ashcombe@example.org", "+34 622 987 654")


def needles_of(people: list[tuple[str, str, str]]) -> list[bytes]:
    """Every personal value as it could appear on disk: UTF-8, and the email in any case."""
    found = []
    for name, email, phone in people:
        found += [name.encode(), email.encode(), email.upper().encode(), phone.encode()]
        found += [word.encode() for word in name.replace("-", " ").split() if len(word) > 3]
    return found


@pytest.mark.skipif(connection.vendor != "sqlite", reason="reads the SQLite file of a fresh home")
def test_the_raw_database_file_and_the_attachment_store_hold_no_personal_data_in_clear(tmp_path):
    # Given a deployment upgraded from a version without encryption, with customers, complaints
    # and files that came by the form, a pending upload, the chat and email, and a Telegram bot
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CONCILIA_HOME")}
    done = subprocess.run(
        [sys.executable, "-m", "concilia.customers.tests.at_rest_scenario"],
        cwd=ROOT,
        env={**env, "CONCILIA_HOME": str(home), "CONCILIA_ENCRYPTION_KEYS": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    read_back = json.loads(done.stdout.strip().splitlines()[-1])
    # When we read the database file and every file of the attachment store byte by byte
    database = b"".join(path.read_bytes() for path in home.glob("concilia.sqlite3*"))
    stored = [path.read_bytes() for path in (home / "attachments").rglob("*") if path.is_file()]
    # (the reading works: what is not personal is there in clear, and every file was found)
    assert all(reference.encode() in database for reference in read_back["references"])
    assert len(stored) == 6  # form x2, pending, chat, email, the earlier version's file
    # Then no name, email, phone, file content or bot token is there in clear
    people = [*scenario.PEOPLE, scenario.LEGACY_PERSON]
    secrets = [
        *needles_of(people),
        *scenario.FILE_MARKS,
        scenario.EMAIL_BODY_MARK.encode(),
        scenario.BOT_TOKEN.split(":")[1].encode(),
        # what the customer wrote in the chat, and the email's sender and subject
        scenario.CHAT_TEXT_MARK.encode(),
        b"Herminia",
        scenario.EMAIL_SENDER.encode(),
        scenario.EMAIL_SUBJECT_MARK.encode(),
        # the complaints' text and their messages, and any part of them
        *[mark.encode() for mark in (scenario.CASE_TEXT_MARK, scenario.MESSAGE_MARK)],
        *[
            part.encode()
            for mark in (scenario.CASE_TEXT_MARK, scenario.MESSAGE_MARK)
            for part in mark.split("-")
            if len(part) > 6
        ],
        "El pedido llegó roto".encode(),
        b"Sigo esperando",
        # what the customer wished for
        scenario.WISH_MARK.encode(),
    ]
    for secret in secrets:
        assert secret not in database, secret
        assert not any(secret in content for content in stored), secret
    # and every file is in the encrypted format, the earlier version's one too
    assert all(content.startswith(b"concilia-enc1:") for content in stored)
    # while the application reads it all back
    assert read_back["customers"] == sorted([list(person) for person in people])
    assert read_back["bot_token"] == scenario.BOT_TOKEN
    assert read_back["wishes"] == [f"Otro igual o {scenario.WISH_MARK}."]
    assert read_back["chat"] == [f"Se rompió. {scenario.CHAT_TEXT_MARK}"]
    subject = f"Consulta {scenario.EMAIL_SUBJECT_MARK}"
    assert read_back["email"] == [[scenario.EMAIL_SENDER, subject]]
    # and finds the complaints by a part of their text or of a message
    assert read_back["found"] == {
        scenario.CASE_TEXT_MARK: sorted(read_back["references"]),
        scenario.MESSAGE_MARK: sorted(read_back["references"]),
    }


def test_the_rows_as_the_database_returns_them_hold_no_personal_data(db, open_case):
    # Given Zoe's complaint with an invoice attached (on SQLite and on PostgreSQL alike)
    name, email, phone = ZOE
    case = open_case(name=name, email=email, phone=phone)
    invoice = check_file("factura.pdf", PDF_BYTES + b"% IBAN ES91 2100 0418 4502 0005 1332\n")
    from concilia.cases.actions import add_customer_message

    add_customer_message(case=case, body="Adjunto la factura.", files=[invoice])
    # When the customer rows are read with a raw SQL cursor, whatever their columns
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM customers_customer")
        rows = cursor.fetchall()
    raw = " ".join(str(value) for row in rows for value in row)
    # Then no personal value is there, and the email's index is a keyed hash
    for secret in needles_of([ZOE]):
        assert secret.decode() not in raw
    customer = Customer.objects.get()
    assert len(customer.email_index) == 64 and customer.email_index in raw
    # nor are the complaint's texts and its thread, which read back in full
    with connection.cursor() as cursor:
        cursor.execute("SELECT subject, description FROM cases_case")
        texts = [value for row in cursor.fetchall() for value in row]
        cursor.execute("SELECT body FROM cases_message")
        texts += [row[0] for row in cursor.fetchall()]
    assert texts and all(text.startswith("enc1:") for text in texts)
    case.refresh_from_db()
    for plain in (case.subject, case.description, "Adjunto la factura."):
        assert plain and all(plain not in text for text in texts)
    assert [m.body for m in case.messages.all()][-1] == "Adjunto la factura."
    assert (customer.name, customer.email, customer.phone) == (name, email, phone)
    # and the stored invoice is ciphertext that the storage opens
    attachment = Attachment.objects.get()
    on_disk = storages["attachments"].raw_content(attachment.file.name)
    assert b"IBAN" not in on_disk and on_disk.startswith(b"concilia-enc1:")
    with attachment.file.open("rb") as handle:
        assert handle.read() == invoice.content


def test_a_customer_is_found_by_email_in_any_case_and_written_once(db):
    first = identify_customer(email="Zoe.Ashcombe@Example.org", name=ZOE[0])
    again = identify_customer(email="  zoe.ashcombe@EXAMPLE.ORG ", name="Someone else")
    assert again.pk == first.pk and again.name == ZOE[0]
    assert Customer.objects.count() == 1
    assert Customer.objects.with_email("ZOE.ASHCOMBE@example.org").get().pk == first.pk
    assert not Customer.objects.with_email("zoe@example.org").exists()
    # By the words of the name, in any order, accents and case aside; every word must match
    assert list(Customer.objects.named("velez ASHCOMBE zoe")) == [first]
    assert list(Customer.objects.named("Ashcombe-Vélez")) == [first]
    assert list(Customer.objects.named("Ashcombe Ruiz")) == []
    assert list(Customer.objects.named("Ashcomb")) == []  # a word is matched whole


def test_the_encrypted_columns_cannot_be_searched_by_mistake(db):
    from django.core.exceptions import FieldError

    identify_customer(email=ZOE[1], name=ZOE[0])
    for lookup in ({"email": ZOE[1]}, {"name__icontains": "zoë"}, {"phone__startswith": "+34"}):
        with pytest.raises(FieldError, match="stored encrypted"):
            Customer.objects.filter(**lookup).exists()
    with pytest.raises(FieldError, match=r"Customer\.email is stored encrypted"):
        Case.objects.filter(customer__email=ZOE[1]).exists()
    assert Customer.objects.filter(phone__isnull=False).count() == 1


def test_the_helpdesk_finds_cases_by_whole_email_and_name_words(client, open_case, ana):
    zoe = open_case(name=ZOE[0], email=ZOE[1])
    other = open_case(name="Pablo Ruiz", email="pablo@example.com")
    client.force_login(ana)
    en = {"HTTP_ACCEPT_LANGUAGE": "en"}
    page = client.get("/helpdesk/", {"view": "all", "email": "ZOE.ashcombe@example.org"}, **en)
    assert zoe.reference in page.content.decode() and other.reference not in page.content.decode()
    page = client.get("/helpdesk/", {"view": "all", "name": "zoe"}, **en).content.decode()
    assert zoe.reference in page and other.reference not in page
    # A part of an address cannot be searched: the agent is told why
    page = client.get("/helpdesk/", {"view": "all", "email": "ashcombe"}, **en).content.decode()
    assert "Enter the customer&#x27;s whole email address" in page


def test_the_admin_searches_customers_and_cases_by_email_and_name(admin_client, open_case):
    zoe = open_case(name=ZOE[0], email=ZOE[1])
    open_case(name="Pablo Ruiz", email="pablo@example.com")
    customers = reverse("admin:customers_customer_changelist")
    page = admin_client.get(customers, {"q": "Zoe.Ashcombe@example.org"}).content.decode()
    assert ZOE[1] in page and "pablo@example.com" not in page
    page = admin_client.get(customers, {"q": "ruiz"}).content.decode()
    assert "pablo@example.com" in page and ZOE[1] not in page
    cases = reverse("admin:cases_case_changelist")
    page = admin_client.get(cases, {"q": ZOE[1].upper()}).content.decode()
    assert zoe.reference in page
    # Sorting by an encrypted column is not offered (it would sort ciphertext)
    assert admin_client.get(customers, {"o": "1"}).status_code == 200


def test_the_admin_refuses_another_customers_email_with_a_message(admin_client, open_case):
    open_case(name=ZOE[0], email=ZOE[1])
    pablo = open_case(name="Pablo Ruiz", email="pablo@example.com").customer
    url = reverse("admin:customers_customer_change", args=[pablo.pk])
    response = admin_client.post(
        url,
        {"name": "Pablo Ruiz", "email": ZOE[1].upper(), "phone": "", "language": "es"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "Another customer already has this email address." in response.content.decode()
    response = admin_client.post(
        url, {"name": "x" * 201, "email": "pablo@example.com", "phone": "", "language": "es"}
    )
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    pablo.refresh_from_db()
    assert (pablo.name, pablo.email) == ("Pablo Ruiz", "pablo@example.com")


def test_an_attachment_is_served_decrypted_with_its_real_size(client, open_case, ana, settings):
    case = open_case(name=ZOE[0], email=ZOE[1])
    from concilia.cases.actions import add_customer_message

    invoice = check_file("factura.pdf", PDF_BYTES + b"% " + b"x" * 5000 + b"\n")
    add_customer_message(case=case, body="La factura.", files=[invoice])
    attachment = Attachment.objects.get()
    client.force_login(ana)
    url = reverse("intake:attachment", args=[case.reference, attachment.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert int(response["Content-Length"]) == len(invoice.content) == attachment.size
    assert b"".join(response.streaming_content) == invoice.content
    assert storages["attachments"].size(attachment.file.name) == len(invoice.content)
    # A file stored before encryption (plain on disk) is still served as it is
    path = Path(storages["attachments"].path(attachment.file.name))
    path.write_bytes(invoice.content)
    response = client.get(url)
    assert b"".join(response.streaming_content) == invoice.content
    assert int(response["Content-Length"]) == len(invoice.content)
