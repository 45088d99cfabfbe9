"""Every access to and change of personal data, and every decision, leaves one audit entry saying
who did what to whose data, when and from where, naming the fields touched but never their values."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from concilia.accounts.models import ApiToken
from concilia.cases import actions
from concilia.cases.attachments import check_file
from concilia.core.models import AuditEntry
from concilia.customers.actions import request_sign_in_link
from concilia.resolution.actions import save_policy_version, triage_case
from concilia.resolution.models import Decision, Offer
from conftest import PNG_BYTES

SHOP_POLICY = Path(__file__).resolve().parents[2] / "resolution" / "policies" / "shop.yaml"

pytestmark = pytest.mark.django_db

CASE_FIELDS = [
    "description",
    "desired_resolution",
    "order_number",
    "customer.name",
    "customer.email",
    "customer.phone",
]


def last(action: str) -> AuditEntry:
    return AuditEntry.objects.filter(action=action).order_by("-seq").first()


def where(entry: AuditEntry) -> tuple[str, str, str]:
    return entry.ip_address, entry.user_agent, entry.channel


def test_an_agent_opening_a_case_page_is_recorded_with_who_what_and_where(
    ana, ana_client, open_case
):
    case = open_case()
    before = timezone.now()

    response = ana_client.get(f"/helpdesk/cases/{case.reference}")

    assert response.status_code == 200
    entry = last("view")
    assert (entry.actor_kind, entry.actor_id, entry.actor_label) == ("staff", str(ana.pk), "ana")
    assert (entry.object_type, entry.object_id) == ("cases.case", str(case.pk))
    assert (entry.case_reference, entry.customer_pk) == (case.reference, case.customer_id)
    assert entry.fields == CASE_FIELDS
    assert where(entry) == ("203.0.113.7", "Firefox/128.0 (Ana's laptop)", "web")
    assert before <= entry.at <= timezone.now()


def test_the_queue_is_one_entry_per_page_naming_the_cases_shown(ana_client, open_case):
    cases = [open_case(email=f"c{i}@example.com") for i in range(3)]
    count = AuditEntry.objects.count()

    ana_client.get("/helpdesk/?view=all")

    assert AuditEntry.objects.count() == count + 1
    entry = last("list")
    assert entry.object_type == "cases.case" and entry.object_id == ""
    assert sorted(entry.detail["shown"]) == sorted(c.reference for c in cases)
    assert entry.fields == ["customer.name", "customer.email", "customer.phone"]


def test_a_contact_change_names_the_fields_changed_never_their_values(ana, ana_client, open_case):
    case = open_case()
    ana_client.post(
        f"/helpdesk/cases/{case.reference}/contact",
        {"name": "Lucía Fernández", "phone": "+34 699 000 111", "version": case.version},
    )

    entry = last("change")
    assert (entry.actor_label, entry.object_type, entry.object_id) == (
        "ana",
        "customers.customer",
        str(case.customer_id),
    )
    assert entry.fields == ["phone"]
    assert entry.case_reference == case.reference
    stored = json.dumps([getattr(entry, f.attname) for f in AuditEntry._meta.fields], default=str)
    assert "699" not in stored and "Lucía" not in stored and "lucia@" not in stored


def test_opening_a_case_and_writing_in_it_are_recorded(ana, open_case):
    case = open_case()
    created = last("create")
    assert (created.actor_kind, created.customer_pk, created.case_reference) == (
        "customer",
        case.customer_id,
        case.reference,
    )

    actions.add_customer_message(
        case=case, body="Aquí está la foto.", files=[check_file("foto.png", PNG_BYTES)]
    )
    written = last("create")
    assert (written.object_type, written.fields) == ("cases.message", ["body", "attachments"])
    assert written.detail == {"attachments": 1}

    actions.add_internal_note(case=case, body="Llamar mañana.", author=ana)
    note = last("create")
    assert (note.actor_label, note.fields, note.channel) == ("ana", ["body"], "system")


def test_attachment_downloads_by_staff_and_by_the_customer_are_both_recorded(ana_client, open_case):
    case = open_case()
    message = actions.add_customer_message(
        case=case, body="Factura", files=[check_file("factura.png", PNG_BYTES)]
    )
    attachment = message.attachments.get()
    url = f"/cases/{case.reference}/attachments/{attachment.pk}"

    assert ana_client.get(url).status_code == 200
    staff = last("download")
    assert (staff.actor_label, staff.object_type, staff.object_id) == (
        "ana",
        "cases.attachment",
        str(attachment.pk),
    )
    assert (staff.fields, staff.case_reference) == (["file"], case.reference)

    customer = Client(REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="Lucía's phone")
    link = request_sign_in_link(customer=case.customer, next_reference=case.reference)
    assert customer.post(f"/track/sign-in/{link.token}").status_code == 302
    signed_in = last("sign_in")
    assert (signed_in.actor_kind, signed_in.actor_id, signed_in.customer_pk) == (
        "customer",
        str(case.customer_id),
        case.customer_id,
    )
    assert where(signed_in) == ("198.51.100.20", "Lucía's phone", "web")

    assert customer.get(url).status_code == 200
    own = last("download")
    assert (own.actor_kind, own.actor_label, own.ip_address) == (
        "customer",
        f"customer {case.customer_id}",
        "198.51.100.20",
    )


def test_a_refused_download_records_nothing(open_case):
    case = open_case()
    message = actions.add_customer_message(
        case=case, body="Factura", files=[check_file("factura.png", PNG_BYTES)]
    )
    url = f"/cases/{case.reference}/attachments/{message.attachments.get().pk}"
    assert Client().get(url).status_code == 404
    assert not AuditEntry.objects.filter(action="download").exists()


@pytest.fixture
def shop_policy(db):
    """The demo shop's policy, live (it names these two teams)."""
    from concilia.accounts.models import Team

    for code in ("customer-care", "logistics"):
        Team.objects.create(code=code, name_es=code, name_en=code)
    return save_policy_version(
        code="shop", source=SHOP_POLICY.read_text(), author=None, publish=True
    )


@pytest.fixture
def late_parcel(open_case, shop_policy):
    """Lucía's order 1234 is late in transit: the shop's policy offers her a credit."""
    return open_case(
        category="shipping_delay",
        order_number="1234",
        purchase_date=timezone.localdate() - dt.timedelta(days=10),
    )


def test_a_policy_decision_and_the_offer_the_customer_accepts_are_recorded(late_parcel):
    record = triage_case(case=late_parcel)

    decided = last("decide")
    assert (decided.actor_kind, decided.object_type, decided.object_id) == (
        "system",
        "resolution.decision",
        str(record.pk),
    )
    assert (decided.detail, decided.case_reference) == ({"outcome": "offer"}, late_parcel.reference)

    customer = Client(REMOTE_ADDR="198.51.100.20")
    link = request_sign_in_link(customer=late_parcel.customer)
    customer.post(f"/track/sign-in/{link.token}")
    offer = Offer.objects.get(case=late_parcel)
    response = customer.post(
        f"/track/cases/{late_parcel.reference}/offer",
        {"offer": str(offer.public_id), "answer": "accept", "option": 0},
    )
    assert response.status_code == 302

    agreed = last("agree")
    assert (agreed.actor_kind, agreed.customer_pk, agreed.ip_address) == (
        "customer",
        late_parcel.customer_id,
        "198.51.100.20",
    )
    assert (agreed.object_type, agreed.detail["kind"], agreed.detail["agreed_by"]) == (
        "resolution.resolution",
        "credit",
        "customer",
    )


def test_an_agents_override_is_recorded_as_theirs(ana, ana_client, late_parcel):
    triage_case(case=late_parcel)
    decision = Decision.objects.get(case=late_parcel)

    ana_client.post(
        f"/helpdesk/decisions/{late_parcel.reference}/override",
        {"decision": decision.pk, "kind": "refund", "amount": "15.50", "reason": "Loyal."},
    )

    override = last("override")
    assert (override.actor_label, override.object_type, where(override)[0]) == (
        "ana",
        "resolution.decision",
        "203.0.113.7",
    )
    assert override.object_id == str(Decision.objects.get(overrides=decision).pk)
    assert last("agree").actor_label == "ana"


def test_reading_cases_through_the_api_names_the_token(ana, open_case):
    case = open_case()
    token, raw = ApiToken.issue(user=ana, name="CRM")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", REMOTE_ADDR="192.0.2.50")

    assert api.get(f"/api/v1/cases/{case.reference}").status_code == 200
    viewed = last("view")
    assert (viewed.actor_kind, viewed.actor_id) == ("token", str(token.pk))
    assert viewed.actor_label == f"ana · CRM ({token.prefix}…)"
    assert (viewed.channel, viewed.ip_address, viewed.case_reference) == (
        "api",
        "192.0.2.50",
        case.reference,
    )

    assert api.get("/api/v1/cases?view=all").status_code == 200
    assert last("list").detail["shown"] == [case.reference]

    response = api.post(
        f"/api/v1/cases/{case.reference}/notes",
        {"body": "Llamada hecha."},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert (last("create").actor_kind, last("create").actor_label) == ("token", viewed.actor_label)


def test_a_merge_is_recorded_on_the_duplicate_naming_where_it_went(ana, open_case):
    first, second = open_case(), open_case()
    actions.merge_cases(duplicate=second, into=first, actor=ana)
    merged = last("merge")
    assert (merged.case_reference, merged.detail, merged.actor_label) == (
        second.reference,
        {"into": first.reference},
        "ana",
    )


def test_audit_knows_where_the_customers_session_keeps_them():
    from concilia.core import audit
    from concilia.customers import auth

    assert audit.CUSTOMER_SESSION_KEY == auth.SESSION_KEY
