"""The public complaint form, in both languages, with the rules each category sets."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from io import StringIO

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from concilia.cases.attachments import check_file
from concilia.cases.models import Attachment, Case, CaseEvent, Status
from concilia.customers.models import Consent
from concilia.intake.models import PendingUpload
from conftest import EXE_BYTES, PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db


def post(
    client: Client,
    data: dict,
    files: list | None = None,
    path: str = "/complaints/new",
    language: str = "en",
):
    payload = dict(data)
    payload.setdefault("submission_id", str(uuid.uuid4()))
    if files:
        payload["attachments"] = files
    return client.post(path, payload, HTTP_ACCEPT_LANGUAGE=language)


def test_form_follows_the_browser_language(client):
    spanish = client.get("/complaints/new", HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")
    assert spanish.status_code == 200
    assert "Cuéntanos qué ha pasado" in spanish.text
    assert "Aviso de privacidad" in spanish.text
    english = client.get("/complaints/new", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert "Tell us what happened" in english.text
    assert "Privacy notice" in english.text


def test_the_spanish_path_opens_in_spanish_and_the_language_can_be_switched(client):
    assert (
        "Cuéntanos qué ha pasado"
        in client.get("/reclamaciones/nueva", HTTP_ACCEPT_LANGUAGE="en").text
    )
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/reclamaciones/nueva"})
    assert response.status_code == 302
    assert "Tell us what happened" in client.get("/reclamaciones/nueva").text
    assert "Follow a case" in client.get("/track", HTTP_ACCEPT_LANGUAGE="es").text


def test_a_valid_complaint_gets_a_reference_and_a_confirmation(client, complaint_data, run_tasks):
    response = post(client, complaint_data(), path="/complaints/new")
    case = Case.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/complaints/submitted/{case.reference}"
    page = client.get(response["Location"])
    assert case.reference in page.text
    assert case.status == Status.NOT_STARTED
    assert (case.channel, case.kind, case.category.code, case.language) == (
        "web",
        "complaint",
        "refund",
        "en",
    )
    assert str(case.amount) == "49.90"
    assert case.deadline > case.created_at
    assert CaseEvent.objects.filter(case=case, kind="opened").count() == 1
    run_tasks()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["lucia@example.com"]
    assert case.reference in mail.outbox[0].subject
    assert "We have received your case" in mail.outbox[0].subject


def test_confirmation_email_is_in_the_customers_language(client, complaint_data, run_tasks):
    post(client, complaint_data(), path="/reclamaciones/nueva")
    run_tasks()
    assert "Hemos recibido tu caso" in mail.outbox[0].subject
    assert "Hola Lucía Fernández" in mail.outbox[0].body


def test_privacy_notice_acceptance_is_recorded_with_time_and_version(
    client, complaint_data, notice
):
    post(client, complaint_data())
    consent = Consent.objects.get()
    case = Case.objects.get()
    assert case.privacy_consent == consent
    assert consent.notice == notice and consent.notice.version == notice.version
    assert consent.customer.email == "lucia@example.com"
    assert consent.accepted_at is not None and consent.channel == "web"


def test_without_accepting_the_notice_nothing_is_filed(client, complaint_data):
    response = post(client, complaint_data(accept_privacy=None), path="/reclamaciones/nueva")
    assert response.status_code == 400
    assert "acepta el aviso de privacidad" in response.text
    assert Case.objects.count() == 0 and Consent.objects.count() == 0


@pytest.mark.parametrize(
    ("category", "missing", "required"),
    [
        ("refund", ["order_number", "purchase_date", "amount"], True),
        ("shipping_delay", ["order_number", "purchase_date"], True),
        ("billing_error", ["purchase_date", "amount"], True),
        ("other", ["order_number", "purchase_date", "amount"], False),
    ],
)
def test_required_fields_depend_on_the_category(
    client, complaint_data, category, missing, required
):
    data = complaint_data(category=category, **{field: "" for field in missing})
    response = post(client, data)
    if required:
        assert response.status_code == 400
        errors = response.context["form"].errors
        assert sorted(errors) == sorted(missing)
        assert all(e.code == "required_for_category" for f in missing for e in errors.as_data()[f])
        assert Case.objects.count() == 0
    else:
        assert response.status_code == 302
        assert Case.objects.count() == 1


def test_a_question_does_not_need_order_data_or_a_desired_resolution(client, complaint_data):
    data = complaint_data(
        kind="question", order_number="", amount="", purchase_date="", desired_resolution=""
    )
    assert post(client, data).status_code == 302
    assert Case.objects.get().kind == "question"


def test_fields_a_category_does_not_need_are_not_kept(client, complaint_data):
    response = post(client, complaint_data(category="staff_conduct"))
    assert response.status_code == 302
    case = Case.objects.get()
    assert (case.order_number, case.purchase_date, case.amount) == ("", None, None)


def test_errors_are_per_field_translated_and_lose_nothing(client, complaint_data):
    data = complaint_data(email="not-an-email", amount="-3", description="corta")
    response = post(client, data, path="/reclamaciones/nueva")
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"email", "amount", "description"}
    assert "Introduzca una dirección de correo electrónico válida." in errors["email"]
    # What the person typed is still in the page.
    assert 'value="not-an-email"' in response.text
    assert 'value="PED-10482"' in response.text
    assert "El reembolso completo." in response.text
    assert "Nada de lo que has escrito se ha perdido" in response.text


def test_attachments_survive_a_form_with_errors(client, complaint_data):
    submission_id = str(uuid.uuid4())
    photo = SimpleUploadedFile("caja-rota.png", PNG_BYTES, content_type="image/png")
    first = post(client, complaint_data(email="wrong", submission_id=submission_id), [photo])
    assert first.status_code == 400
    assert "caja-rota.png" in first.text
    assert PendingUpload.objects.count() == 1
    second = post(client, complaint_data(submission_id=submission_id))
    assert second.status_code == 302
    case = Case.objects.get()
    attachment = Attachment.objects.get(case=case)
    assert (attachment.original_name, attachment.content_type) == ("caja-rota.png", "image/png")
    assert attachment.file.read() == check_file("caja-rota.png", PNG_BYTES).content  # re-encoded
    assert PendingUpload.objects.count() == 0


def test_a_renamed_program_is_refused_with_a_reason(client, complaint_data):
    disguised = SimpleUploadedFile("factura.pdf", EXE_BYTES, content_type="application/pdf")
    invoice = SimpleUploadedFile("factura-real.pdf", PDF_BYTES, content_type="application/pdf")
    response = post(client, complaint_data(), [disguised, invoice], path="/reclamaciones/nueva")
    assert response.status_code == 400
    assert "es un programa" in response.text
    assert Case.objects.count() == 0
    # The good file was kept for the corrected form.
    assert list(PendingUpload.objects.values_list("original_name", flat=True)) == [
        "factura-real.pdf"
    ]


def test_oversized_files_are_refused(client, complaint_data, settings):
    settings.CONCILIA_MAX_ATTACHMENT_BYTES = 200
    big = SimpleUploadedFile("big.pdf", PDF_BYTES + b"x" * 500, content_type="application/pdf")
    response = post(client, complaint_data(), [big])
    assert response.status_code == 400
    assert "files may be at most 200" in response.text
    assert Case.objects.count() == 0


def test_a_double_submit_creates_one_case(client, complaint_data):
    data = complaint_data(submission_id=str(uuid.uuid4()))
    first = post(client, data)
    second = post(client, data)
    assert Case.objects.count() == 1
    assert first["Location"] == second["Location"]


def test_csrf_is_enforced(complaint_data):
    client = Client(enforce_csrf_checks=True)
    response = post(client, complaint_data())
    assert response.status_code == 403
    assert Case.objects.count() == 0


def test_anonymous_submissions_are_rate_limited_without_losing_the_text(
    client, complaint_data, settings
):
    settings.CONCILIA_ANON_SUBMISSION_RATE = "2/hour"
    for _ in range(3):  # correcting a form does not use up the budget
        assert post(client, complaint_data(email="wrong")).status_code == 400
    for _ in range(2):
        assert post(client, complaint_data()).status_code == 302
    third = post(client, complaint_data(description="Tercera reclamación que no debe perderse."))
    assert third.status_code == 429
    assert "Tercera reclamación que no debe perderse." in third.text
    assert Case.objects.count() == 2


def test_the_confirmation_page_is_only_for_whoever_submitted(client, complaint_data):
    response = post(client, complaint_data())
    assert client.get(response["Location"]).status_code == 200
    assert Client().get(response["Location"]).status_code == 404


def test_files_of_abandoned_forms_are_purged(client, complaint_data):
    photo = SimpleUploadedFile("caja.png", PNG_BYTES, content_type="image/png")
    post(client, complaint_data(email="wrong"), [photo])
    upload = PendingUpload.objects.get()
    path = upload.file.path
    call_command("purge_pending_uploads", stdout=StringIO())
    assert PendingUpload.objects.count() == 1  # still fresh
    PendingUpload.objects.update(created_at=timezone.now() - dt.timedelta(hours=25))
    out = StringIO()
    call_command("purge_pending_uploads", stdout=out)
    assert "Removed 1" in out.getvalue()
    assert PendingUpload.objects.count() == 0
    assert not os.path.exists(path)
