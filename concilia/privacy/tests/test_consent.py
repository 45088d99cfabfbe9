"""Privacy notices are versioned and never rewritten: Lucía's case keeps the version she accepted
and when, after the company publishes a new one; a published notice cannot be edited (the admin
shows it read-only) and a change is a new version. A case opened by email has no consent click:
its legal basis is recorded and shown instead."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from django.utils import timezone
from pypdf import PdfReader

from concilia.cases.actions import open_case
from concilia.cases.models import Category, Channel, LegalBasis
from concilia.customers.actions import identify_customer
from concilia.customers.models import PrivacyNotice, PublishedNoticeChanged

pytestmark = pytest.mark.django_db


def test_a_published_notice_cannot_be_rewritten(notice):
    notice.body_en = "We may now sell your data."

    with pytest.raises(PublishedNoticeChanged):
        notice.save()

    assert PrivacyNotice.objects.get(pk=notice.pk).body_en != "We may now sell your data."


def test_a_notice_scheduled_for_later_may_still_be_corrected(db):
    later = PrivacyNotice.objects.create(
        version="2027-1",
        body_es="Texto",
        body_en="Text",
        published_at=timezone.now() + dt.timedelta(days=7),
    )
    later.body_en = "Text, corrected"
    later.save()

    assert PrivacyNotice.objects.get(pk=later.pk).body_en == "Text, corrected"


def test_a_new_version_leaves_earlier_cases_with_the_version_they_accepted(open_case, notice):
    first = open_case()
    new = PrivacyNotice.objects.create(version="2027-1", body_es="Nuevo", body_en="New")

    second = open_case(email="james@example.com", name="James Carter", notice_version=new)

    assert PrivacyNotice.objects.current() == new
    assert first.privacy_consent.notice == notice
    assert second.privacy_consent.notice == new
    assert first.privacy_consent.accepted_at <= second.privacy_consent.accepted_at
    assert first.legal_basis == second.legal_basis == LegalBasis.CONSENT


def test_the_admin_shows_a_published_notice_read_only(admin_client, notice):
    page = admin_client.get(f"/admin/customers/privacynotice/{notice.pk}/change/")
    assert page.status_code == 200
    assert 'name="body_en"' not in page.content.decode()

    admin_client.post(
        f"/admin/customers/privacynotice/{notice.pk}/change/", {"body_en": "Rewritten"}
    )

    assert PrivacyNotice.objects.get(pk=notice.pk).body_en == notice.body_en
    assert (
        admin_client.get(f"/admin/customers/privacynotice/{notice.pk}/delete/").status_code == 403
    )


def test_the_case_page_shows_the_notice_accepted(ana_client, open_case, notice):
    case = open_case()

    html = ana_client.get(f"/helpdesk/cases/{case.reference}", HTTP_ACCEPT_LANGUAGE="en")

    text = html.content.decode()
    assert 'data-legal-basis="consent"' in text
    assert f"Consent to the privacy notice · privacy notice {notice.version} accepted" in text


@pytest.fixture
def email_case(db):
    marta = identify_customer(email="marta@example.org", name="Marta Gil")
    return open_case(
        customer=marta,
        category=Category.objects.get(code="other"),
        channel=Channel.EMAIL,
        language="es",
        description="Me cobraron dos veces.",
    )


def test_an_email_case_shows_its_legal_basis_instead_of_a_consent(ana_client, email_case):
    assert email_case.legal_basis == LegalBasis.LEGITIMATE_INTEREST
    assert email_case.privacy_consent is None

    text = ana_client.get(
        f"/helpdesk/cases/{email_case.reference}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()

    assert 'data-legal-basis="legitimate_interest"' in text
    assert "Legitimate interest in answering the customer" in text
    assert "no privacy notice was accepted on this channel" in text


def test_the_dossier_states_the_legal_basis(email_case, ana):
    from concilia.cases import dossier

    pdf = dossier.build(email_case, language="en", internal=False)

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Legitimate interest in answering the customer" in text


def test_the_chat_records_the_version_and_time_before_the_customer_is_known(client, notice):
    from concilia.assistant.models import Conversation
    from concilia.assistant.tests.chat import Chat

    chat = Chat(Client(), "en")
    chat.press("accept")

    state = Conversation.objects.get(public_id=chat.id).state
    assert state["consent"]["notice"] == notice.version
    assert dt.datetime.fromisoformat(state["consent"]["at"]) <= timezone.now()
