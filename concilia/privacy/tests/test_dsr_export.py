"""A copy of a customer's data: asked for on the tracking page, built in the background as a zip
(data.json with every app's part, the files as they were sent, a README), downloaded by the
customer only, recorded in the audit log, deleted once its download date has passed."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile

import pytest
from django.core import mail
from django.utils import timezone

from concilia.core.models import AuditAction, AuditEntry
from concilia.privacy import tasks
from concilia.privacy.models import DataSubjectRequest, RequestKind, RequestStatus
from concilia.privacy.tests.conftest import NEW_PHONE, WORD

pytestmark = pytest.mark.django_db

MY_DATA = "/track/my-data/"


def download_link(page: str) -> str:
    match = re.search(r'href="(/track/my-data/export/[0-9a-f-]+)"', page)
    assert match, page
    return match.group(1)


def test_the_customer_downloads_a_zip_of_all_their_data(lucia_story, run_tasks, dora_client):
    client = lucia_story.client
    mail.outbox.clear()

    client.post(MY_DATA, {"request": "access"})
    run_tasks()

    request = DataSubjectRequest.objects.get(kind=RequestKind.ACCESS)
    assert request.status == RequestStatus.COMPLETED and request.export_available
    ready = [m for m in mail.outbox if m.to == ["lucia@example.com"]][-1]
    assert "http://testserver/track/my-data/" in ready.body
    response = client.get(download_link(client.get(MY_DATA).text))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    data = json.loads(archive.read("data.json"))

    assert data["format"] == "concilia-personal-data"
    assert data["customer"]["email"] == "lucia@example.com"
    assert data["customer"]["phone"] == NEW_PHONE
    assert data["consents"][0]["privacy_notice"]
    web, by_email = data["cases"]
    assert web["reference"] == lucia_story.web_case.reference
    assert WORD in web["description"]
    bodies = [message["body"] for message in web["messages"]]
    assert f"Adjunto el recibo de la {WORD}." in bodies
    assert f"Hola Lucía, revisamos lo de la {WORD}." in bodies
    assert not any("llamó" in body for body in bodies)  # the internal note is not exported
    assert by_email["channel"] == "email" and WORD in by_email["subject"]
    chat = data["conversations"][0]
    assert f"Mi {WORD} sigue rota" in [message["body"] for message in chat["messages"]]
    assert data["emails"][0]["subject"] == f"{WORD} otra vez"
    assert [r["request"] for r in data["data_requests"]] == ["access"]
    assert any(entry["action"] == "sign_in" for entry in data["access_log"])
    # Every file is there, byte for byte, and listed with its fingerprint.
    names = archive.namelist()
    for sent_as, content in lucia_story.files.items():
        inside = [name for name in names if name.endswith("-" + sent_as)]
        assert len(inside) == 1, (sent_as, names)
        assert archive.read(inside[0]) == content
    email_file = data["emails"][0]["file"]
    assert archive.read(email_file) == lucia_story.raw_email
    for listed in data["files"]:
        assert hashlib.sha256(archive.read(listed["path"])).hexdigest() == listed["sha256"]
    assert "README.txt" in names
    exported = AuditEntry.objects.filter(action=AuditAction.EXPORT, customer_pk=request.customer_id)
    assert exported.count() == 1
    assert AuditEntry.objects.filter(
        action=AuditAction.DOWNLOAD, object_type="privacy.datasubjectrequest"
    ).exists()
    # The officer may download it too (to send it by post), and sees it on the request.
    page = dora_client.get(f"/helpdesk/privacy/requests/{request.pk}/")
    assert "data-export" in page.text
    assert dora_client.get(f"/helpdesk/privacy/requests/{request.pk}/export.zip").status_code == 200


def test_nobody_else_downloads_it_and_it_expires(
    lucia_story, run_tasks, open_case, customer_client
):
    lucia_story.client.post(MY_DATA, {"request": "access"})
    run_tasks()
    link = download_link(lucia_story.client.get(MY_DATA).text)
    request = DataSubjectRequest.objects.get()
    stored = request.export_file.name
    storage = request.export_file.storage
    assert storage.exists(stored)
    james = customer_client(open_case(email="james@example.com", name="James Carter"))

    assert james.get(link).status_code == 404
    assert lucia_story.client.get("/track/my-data/export/not-an-id").status_code == 404

    # The download date passes: the sweep deletes the zip.
    DataSubjectRequest.objects.update(export_expires_at=timezone.now() - dt.timedelta(minutes=1))
    tasks.sweep(now=timezone.now())
    run_tasks()
    assert not storage.exists(stored)
    assert lucia_story.client.get(link).status_code == 404
    page = lucia_story.client.get(MY_DATA).text
    assert "/track/my-data/export/" not in page


def test_the_officer_builds_an_expired_export_again(lucia_story, run_tasks, dora_client):
    lucia_story.client.post(MY_DATA, {"request": "access"})
    run_tasks()
    request = DataSubjectRequest.objects.get()
    DataSubjectRequest.objects.update(export_expires_at=timezone.now() - dt.timedelta(minutes=1))
    tasks.sweep(now=timezone.now())

    dora_client.post(f"/helpdesk/privacy/requests/{request.pk}/export")
    run_tasks()

    request.refresh_from_db()
    assert request.export_available and request.status == RequestStatus.COMPLETED
    zipped = lucia_story.client.get(download_link(lucia_story.client.get(MY_DATA).text))
    archive = zipfile.ZipFile(io.BytesIO(b"".join(zipped.streaming_content)))
    assert json.loads(archive.read("data.json"))["customer"]["email"] == "lucia@example.com"


def test_a_second_request_while_the_copy_is_there_points_to_it(lucia_story, run_tasks):
    lucia_story.client.post(MY_DATA, {"request": "access"})
    run_tasks()

    again = lucia_story.client.post(MY_DATA, {"request": "access"}, follow=True)

    assert "Your copy is ready: download it below." in again.text
    assert DataSubjectRequest.objects.count() == 1
