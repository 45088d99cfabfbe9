"""Following a case: a one-time sign-in link by email, then status, deadline, thread and replies."""

from __future__ import annotations

import datetime as dt
import re
from uuid import uuid4

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from concilia.cases.actions import change_status
from concilia.cases.models import Attachment, Case, Message, Status
from concilia.customers.models import SignInLink
from conftest import PDF_BYTES

pytestmark = pytest.mark.django_db


def ask_for_link(client: Client, reference: str, email: str):
    return client.post(
        "/track", {"reference": reference, "email": email}, HTTP_ACCEPT_LANGUAGE="en"
    )


def link_from_last_email() -> str:
    match = re.search(r"http://testserver(/track/sign-in/[\w.]+)", mail.outbox[-1].body)
    assert match, mail.outbox[-1].body
    return match.group(1)


def sign_in(client: Client, case: Case, run_tasks) -> None:
    ask_for_link(client, case.reference, case.customer.email)
    run_tasks()
    response = client.post(link_from_last_email())
    assert response.status_code == 302


def test_the_customer_follows_a_case_with_a_one_time_link(client, open_case, run_tasks):
    case = open_case()
    run_tasks()
    mail.outbox.clear()
    response = ask_for_link(client, case.reference.lower(), "LUCIA@example.com ")
    assert response.status_code == 200
    assert "Check your email" in response.text
    run_tasks()
    assert mail.outbox[0].to == ["lucia@example.com"]
    link = link_from_last_email()
    # Opening the link (or a mail scanner fetching it) does not use it up.
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 200
    response = client.post(link)
    assert response["Location"] == f"/track/cases/{case.reference}"
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert case.reference in page.text
    assert "Not started" in page.text
    assert timezone.localtime(case.deadline).strftime("%Y") in page.text
    assert "Algo salió mal con mi pedido." in page.text


def test_a_used_link_is_refused(client, open_case, run_tasks):
    case = open_case()
    ask_for_link(client, case.reference, case.customer.email)
    run_tasks()
    link = link_from_last_email()
    assert client.post(link).status_code == 302
    stranger = Client()
    again = stranger.post(link, HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 410
    assert "already been used" in again.text
    assert stranger.get(f"/track/cases/{case.reference}").status_code == 302  # back to /track


def test_an_expired_link_is_refused(client, open_case, run_tasks):
    case = open_case()
    ask_for_link(client, case.reference, case.customer.email)
    run_tasks()
    link = link_from_last_email()
    SignInLink.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = client.post(link, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 410
    assert "ha caducado" in response.text
    assert client.get(f"/track/cases/{case.reference}").status_code == 302


def test_a_forged_link_is_refused(client, open_case, run_tasks):
    case = open_case()
    ask_for_link(client, case.reference, case.customer.email)
    run_tasks()
    link = link_from_last_email()
    forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    assert client.post(forged).status_code == 410
    assert client.post("/track/sign-in/not-a-token").status_code == 410
    assert SignInLink.objects.get().used_at is None


def test_a_wrong_email_gets_the_same_answer_and_no_email(client, open_case, run_tasks):
    case = open_case()
    run_tasks()
    mail.outbox.clear()
    right = ask_for_link(client, case.reference, "lucia@example.com")
    wrong = ask_for_link(client, case.reference, "mallory@example.com")
    assert wrong.status_code == right.status_code == 200

    def without_csrf(text: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="\w+"', "", text)

    assert without_csrf(wrong.text.replace("mallory", "lucia")) == without_csrf(right.text)
    run_tasks()
    assert [m.to for m in mail.outbox] == [["lucia@example.com"]]


def test_a_mistyped_reference_is_caught_by_its_check_character(client, open_case):
    case = open_case()
    typo = case.reference[:-1] + ("A" if case.reference[-1] != "A" else "B")
    response = ask_for_link(client, typo, case.customer.email)
    assert response.status_code == 400
    assert "check it for typos" in response.text
    assert SignInLink.objects.count() == 0


def test_one_customer_can_never_open_another_customers_case(open_case, run_tasks):
    lucia_case = open_case()
    james_case = open_case(email="james@example.com", name="James Carter")
    james = Client()
    sign_in(james, james_case, run_tasks)
    assert james.get(f"/track/cases/{james_case.reference}").status_code == 200
    assert james.get(f"/track/cases/{lucia_case.reference}").status_code == 404
    assert james.post(f"/track/cases/{lucia_case.reference}", {"body": "hola"}).status_code == 404
    assert james.get(f"/complaints/submitted/{lucia_case.reference}").status_code == 404
    # Asking for a link to Lucía's case with his own email sends nothing.
    mail.outbox.clear()
    ask_for_link(james, lucia_case.reference, "james@example.com")
    run_tasks()
    assert mail.outbox == []
    assert Message.objects.filter(case=lucia_case).count() == 0


def test_nobody_sees_a_case_without_a_link_or_a_staff_login(open_case, agent):
    case = open_case()
    anonymous = Client()
    assert anonymous.get(f"/track/cases/{case.reference}").status_code == 302
    assert anonymous.get("/track/cases").status_code == 302
    assert anonymous.get(f"/complaints/submitted/{case.reference}").status_code == 404


def test_attachments_are_served_only_to_the_owner_and_staff(client, open_case, run_tasks, agent):
    case = open_case()
    sign_in(client, case, run_tasks)
    upload = SimpleUploadedFile("factura.pdf", PDF_BYTES, content_type="application/pdf")
    response = client.post(
        f"/track/cases/{case.reference}", {"body": "Adjunto la factura.", "attachments": [upload]}
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get(case=case)
    url = f"/cases/{case.reference}/attachments/{attachment.pk}"
    served = client.get(url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == PDF_BYTES
    assert served["Content-Type"] == "application/pdf"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert Client().get(url).status_code == 404
    other = Client()
    other_case = open_case(email="james@example.com", name="James")
    sign_in(other, other_case, run_tasks)
    assert other.get(url).status_code == 404
    staff = Client()
    staff.force_login(agent)
    assert staff.get(url).status_code == 200


def test_a_reply_joins_the_thread_and_puts_the_case_back_with_us(client, open_case, run_tasks):
    case = open_case()
    change_status(case=case, status=Status.PENDING_CUSTOMER)
    sign_in(client, case, run_tasks)
    response = client.post(f"/track/cases/{case.reference}", {"body": "Aquí está el ticket."})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.PENDING_AGENT
    assert Message.objects.get(case=case).body == "Aquí está el ticket."
    assert "Aquí está el ticket." in client.get(f"/track/cases/{case.reference}").text


def test_internal_notes_never_reach_the_customer(client, open_case, run_tasks):
    case = open_case()
    Message.objects.create(
        case=case, author_kind="staff", body="Cliente conflictivo", internal=True
    )
    Message.objects.create(case=case, author_kind="staff", body="Le escribimos mañana")
    sign_in(client, case, run_tasks)
    page = client.get(f"/track/cases/{case.reference}").text
    assert "Le escribimos mañana" in page
    assert "Cliente conflictivo" not in page


def test_a_signed_in_customer_sees_all_their_cases_and_a_prefilled_form(
    client, open_case, run_tasks, django_assert_max_num_queries
):
    first = open_case(phone="+34 611 222 333")
    second = open_case(category="refund", order_number="PED-1", purchase_date=dt.date(2026, 1, 2))
    others = open_case(email="james@example.com", name="James Carter")
    for _ in range(5):
        open_case()
    sign_in(client, first, run_tasks)
    with django_assert_max_num_queries(6):
        page = client.get("/track/cases").text
    assert first.reference in page and second.reference in page
    assert others.reference not in page
    assert page.count("/track/cases/RC-") == 7
    form = client.get("/complaints/new").text
    assert 'value="lucia@example.com"' in form
    assert 'value="Lucía Fernández"' in form


def test_signing_out_ends_the_session(client, open_case, run_tasks):
    case = open_case()
    sign_in(client, case, run_tasks)
    assert client.post("/track/sign-out").status_code == 302
    assert client.get(f"/track/cases/{case.reference}").status_code == 302


def test_only_the_signed_in_customer_may_change_their_contact_data(
    client, open_case, run_tasks, complaint_data
):
    case = open_case(phone="+34 611 222 333")
    impostor = Client()
    response = impostor.post(
        "/complaints/new",
        complaint_data(name="Someone Else", phone="+34 699 000 000", submission_id=str(uuid4())),
    )
    assert response.status_code == 302
    case.customer.refresh_from_db()
    assert (case.customer.name, case.customer.phone) == ("Lucía Fernández", "+34 611 222 333")

    sign_in(client, case, run_tasks)
    response = client.post(
        "/complaints/new",
        complaint_data(phone="+34 655 444 333", submission_id=str(uuid4())),
    )
    assert response.status_code == 302
    case.customer.refresh_from_db()
    assert case.customer.phone == "+34 655 444 333"
    assert Case.objects.filter(customer=case.customer).count() == 3


def test_sign_in_links_are_rate_limited_per_address_and_per_email(open_case, run_tasks, settings):
    # Given a limit of two links an hour
    settings.CONCILIA_SIGN_IN_RATE = "2/hour"
    case = open_case()
    run_tasks()
    mail.outbox.clear()
    # When someone asks three times for the same case, then the third is refused, saying why
    asker = Client()
    answers = [ask_for_link(asker, case.reference, "lucia@example.com") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Too many requests" in answers[2].text
    run_tasks()
    assert len(mail.outbox) == 2
    # When another address asks for the same email, then it is refused too: the email's own limit
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert ask_for_link(other, case.reference, "lucia@example.com").status_code == 429
