"""The HubSpot connector against a fake CRM API v3 on loopback: customers pulled by e-mail,
pushed once (created, then updated without blanking), case summaries logged once per event."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured

from concilia.core.ports import CaseSummary, CustomerProfile
from concilia.integrations.crm.hubspot import NOTE_TO_CONTACT, HubSpotDirectory
from concilia.integrations.resilience import ConnectorUnavailable
from concilia.integrations.tests.fakes.hubspot import TOKEN, FakeHubSpot


@pytest.fixture
def hubspot():
    server = FakeHubSpot().start()
    yield server
    server.stop()


@pytest.fixture
def crm(hubspot):
    return HubSpotDirectory(url=hubspot.url, token=TOKEN, tier_property="customer_tier")


def test_a_customer_is_pulled_by_email_with_name_phone_and_tier(hubspot, crm):
    hubspot.add_contact(
        email="lucia@example.com",
        firstname="Lucía",
        lastname="Fernández",
        phone="+34600123456",
        customer_tier="gold",
    )
    assert crm.pull_customer(email="Lucia@example.com") == CustomerProfile(
        email="lucia@example.com", name="Lucía Fernández", phone="+34600123456", tier="gold"
    )
    assert crm.pull_customer(email="james@example.com") is None
    assert hubspot.received[-1].body["filterGroups"][0]["filters"][0]["operator"] == "EQ"


def test_pushing_a_customer_creates_once_then_updates_without_blanking(hubspot, crm):
    first = crm.push_customer(CustomerProfile(email="lucia@example.com", name="Lucía Fernández"))
    again = crm.push_customer(CustomerProfile(email="lucia@example.com", phone="+34600123456"))

    assert first == again
    (contact,) = hubspot.contacts.values()
    assert contact["properties"] == {
        "email": "lucia@example.com",
        "firstname": "Lucía",
        "lastname": "Fernández",
        "phone": "+34600123456",
    }


def test_a_case_summary_is_one_note_per_event_on_the_contact(hubspot, crm):
    summary = CaseSummary(
        reference="RC-2026-000042-7",
        customer_email="lucia@example.com",
        event="opened",
        category="refund",
        status="not_started",
        opened_at=dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
    )
    note_id = crm.push_case_summary(summary)
    assert crm.push_case_summary(summary) == note_id
    closed = crm.push_case_summary(
        CaseSummary(**{**summary.__dict__, "event": "closed", "outcome": "resolved"})
    )

    assert closed != note_id and len(hubspot.notes) == 2
    note = hubspot.notes[note_id]
    assert note["properties"]["hs_note_body"].startswith("[Concilia RC-2026-000042-7 opened] ")
    assert note["properties"]["hs_timestamp"] == "2026-03-02T10:00:00.000Z"
    (contact,) = hubspot.contacts.values()
    assert note["associations"] == [
        {
            "to": {"id": contact["id"]},
            "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": NOTE_TO_CONTACT}
            ],
        }
    ]


def test_a_wrong_token_is_an_outage_and_no_token_is_refused_at_start_up(hubspot, settings):
    with pytest.raises(ConnectorUnavailable, match="HTTP 401"):
        HubSpotDirectory(url=hubspot.url, token="pat-wrong").pull_customer(email="a@example.com")
    settings.HUBSPOT_TOKEN = ""
    with pytest.raises(ImproperlyConfigured, match="CONCILIA_HUBSPOT_TOKEN"):
        HubSpotDirectory(url=hubspot.url)


def test_a_slow_crm_times_out(hubspot, settings):
    settings.CONNECTOR_TIMEOUT = 0.1
    hubspot.delay = 0.5
    with pytest.raises(ConnectorUnavailable, match="timed out"):
        HubSpotDirectory(url=hubspot.url, token=TOKEN).pull_customer(email="a@example.com")
