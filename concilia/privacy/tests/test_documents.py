"""Dora, the data-protection officer, and Root, an administrator, download the record of
processing activities and the impact assessment draft from the helpdesk's privacy menu, in
Spanish or English, as Markdown or PDF; both say what this installation really does (its
company, categories, retention, recipients, measures). Ana the agent gets 403."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import translation
from pypdf import PdfReader

from concilia.accounts.models import User
from concilia.cases.models import Category
from concilia.integrations.webhooks.models import Endpoint
from concilia.privacy import documents, retention
from concilia.privacy.models import Controller, RetentionRules

pytestmark = pytest.mark.django_db

PAGE = "/helpdesk/privacy/documents/"


@pytest.fixture
def company(db):
    """The company filled its details in the admin, and keeps questions one year only."""
    Controller.objects.create(
        name="Muebles Lucía S.L.",
        tax_id="B12345678",
        address="Calle Mayor 1, 28013 Madrid",
        email="privacidad@muebles.example",
        dpo_name="Dora Díaz",
        dpo_email="dpo@muebles.example",
    )
    RetentionRules.objects.create(conversation_days=15)
    Category.objects.filter(code="other").update(retention_days=365)
    Category.objects.filter(code="refund").update(
        field_rules={
            "order_number": "required",
            "purchase_date": "optional",
            "amount": "hidden",
            "phone": "hidden",
        }
    )


@pytest.fixture
def root(db):
    user = User.objects.create_user("root", "root@company.test", "pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Role: administrator"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def markdown(client: Client, kind: str, language: str = "en") -> str:
    response = client.get(f"{PAGE}{kind}.{language}.md")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    return response.content.decode()


def test_the_record_of_processing_says_what_this_installation_does(dora_client, company, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "smtp.mailprovider.example"
    Endpoint.objects.create(url="https://crm.muebles.example/hooks", events=["case.created"])

    text = markdown(dora_client, "record")

    assert text.startswith("# Record of processing activities: complaint handling\n")
    # the company, from the admin
    assert "| **Controller** | Muebles Lucía S.L. |" in text
    assert "| **Data-protection officer** | Dora Díaz · dpo@muebles.example |" in text
    # purposes and bases
    assert "Receiving, handling and answering complaints" in text
    assert "Legal obligation to handle consumer complaints (art. 6.1.c" in text
    # declared personal data, encrypted ones said so
    assert "| **Customer** | name (encrypted), email (encrypted), phone (encrypted)." in text
    # what each category asks and keeps
    assert (
        "| **Refund** | name and email, the description of the problem; required: order number; "
        "optional: purchase date; never asked: amount, phone. Kept 5 years after closing, then "
        "anonymised. |"
    ) in text
    assert "| **Other** | " in text and "Kept 1 year after closing" in text
    assert "Deleted 15 days after their last message." in text
    # recipients as configured
    assert "Outgoing email through smtp.mailprovider.example" in text
    assert "crm.muebles.example: events with the case's reference" in text
    # measures
    assert "| **Encryption at rest** | Customers' name, email and phone" in text
    assert "| **Audit log** | Every access" in text


def test_missing_company_details_are_marked_for_the_company(dora_client):
    text = markdown(dora_client, "record")

    assert "| **Controller** | (to be completed by the company) |" in text
    assert "The company has stated none." in text


def test_the_impact_assessment_draft_leaves_the_sign_off_to_the_company(root, company, open_case):
    open_case()

    text = markdown(root, "assessment")

    assert text.startswith("# Data-protection impact assessment (draft): complaint handling\n")
    for heading in (
        "## 1. Description of the processing",
        "## 2. Necessity and proportionality",
        "## 3. Risks to the rights and freedoms of the people concerned",
        "## 4. Measures to address the risks",
        "## 5. Advice and sign-off",
    ):
        assert heading in text
    assert "| **Consent to the privacy notice** | 1 case |" in text
    assert (
        "| **Advice of the data-protection officer** | (to be completed by the company) |" in text
    )


def test_spanish_documents_use_the_spanish_names(dora_client, company):
    response = dora_client.get(f"{PAGE}record.es.md")

    text = response.content.decode()
    assert "| **Reembolso** |" in text
    assert response["Content-Disposition"].endswith('.es.md"')


def test_the_pdf_holds_the_same_content(dora_client, company):
    response = dora_client.get(f"{PAGE}assessment.en.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Data-protection impact assessment (draft)" in text
    assert "Muebles Lucía S.L." in text
    assert "Advice and sign-off" in text


def test_the_page_lists_the_documents_and_the_retention_runs(dora_client, company, old_closed):
    retention.run()

    response = dora_client.get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/helpdesk/privacy/documents/record.es.pdf"' in html
    assert 'href="/helpdesk/privacy/documents/assessment.en.md"' in html
    assert "Other: 1 cases anonymised" in html


@pytest.fixture
def old_closed(open_case, ana):
    import datetime as dt

    from django.utils import timezone

    from concilia.cases.actions import close_case
    from concilia.cases.models import Case

    case = open_case(category="other")
    close_case(case=case, outcome="resolved", actor_user=ana)
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - dt.timedelta(days=400))
    return case


def test_only_the_dpo_and_administrators_may_download(ana_client, client, dora_client, root):
    for path in (PAGE, f"{PAGE}record.en.md", f"{PAGE}assessment.es.pdf"):
        assert ana_client.get(path).status_code == 403
        assert client.get(path).status_code == 302  # to the helpdesk's sign-in
        assert dora_client.get(path).status_code == 200
        assert root.get(path).status_code == 200


def test_unknown_documents_languages_and_formats_are_404(dora_client):
    for path in ("minutes.en.md", "record.fr.md", "record.en.docx"):
        assert dora_client.get(f"{PAGE}{path}").status_code == 404


def test_the_menu_links_the_page_for_the_dpo_only(dora_client, ana_client):
    assert 'href="/helpdesk/privacy/documents/"' in dora_client.get(PAGE).content.decode()
    assert (
        'href="/helpdesk/privacy/documents/"'
        in dora_client.get("/helpdesk/privacy/audit/").content.decode()
    )
    assert (
        'href="/helpdesk/privacy/documents/"' not in ana_client.get("/helpdesk/").content.decode()
    )


def test_every_declared_model_is_in_the_record(db):
    from concilia.privacy import hooks

    record = documents.as_markdown(documents.build(documents.RECORD, language="en"))

    with translation.override("en"):
        names = [str(item.model_class._meta.verbose_name).capitalize() for item in hooks.declared()]
    assert names
    for name in names:
        assert f"| **{name}** |" in record


def test_connectors_configured_are_named_among_the_recipients(db, settings):
    settings.ORDER_LOOKUP = "concilia.integrations.commerce.woocommerce.WooCommerceShop"
    settings.WOOCOMMERCE_URL = "https://tienda.muebles.example"
    settings.CUSTOMER_DIRECTORY = "concilia.integrations.crm.hubspot.HubSpotDirectory"
    settings.CRM_PUSH = True

    with translation.override("en"):
        rows = dict(documents.recipients())
        transfers = documents.transfers()
    assert rows["The shop (order system)"] == (
        "WooCommerceShop (tienda.muebles.example): order number and customer's email, to find "
        "the order."
    )
    assert rows["CRM (processor)"] == (
        "HubSpotDirectory (api.hubapi.com): the customer's contact data and summaries of their "
        "cases."
    )
    assert any("HubSpot, Inc. (United States)" in line for line in transfers)
