"""The generic REST CRM against a fake in-house CRM on loopback: customers pulled through the
mapping, pushed once (created, updated without blanking, or upserted), one case summary per
case and event, a bad mapping refused with every problem named (also by `concilia check`),
and a slow or failing CRM that never holds a case up."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from concilia.core.ports import CaseSummary, CustomerProfile, _load
from concilia.integrations import resilience
from concilia.integrations.crm.hubspot import summary_text
from concilia.integrations.crm.rest import GenericRestDirectory, check_crm_rest
from concilia.integrations.crm.tasks import push_case
from concilia.integrations.resilience import CircuitBreaker, ConnectorUnavailable
from concilia.integrations.tests.fakes.rest_crm import TOKEN, FakeRestCrm

PROFILE = {"first": "{first_name}", "last": "{last_name}"}


def crm_mapping(base_url: str) -> dict:
    """The in-house CRM: look-up, then update or create; case summaries as activities."""
    return {
        "base_url": base_url + "/v1",
        "auth_scheme": "Token",
        "customer_url": "/contacts?q={email}",
        "customer_root": "data",
        "customer_fields": {
            "id": "id",
            "email": "email",
            "first_name": "profile.first",
            "last_name": "profile.last",
            "phone": "phone",
            "tier": "segment",
        },
        "push_customer": {
            "create": {
                "url": "/contacts",
                "body": {"email": "{email}", "profile": PROFILE, "phone": "{phone}"},
                "id": "data.id",
            },
            "update": {
                "method": "PATCH",
                "url": "/contacts/{id}",
                "body": {"profile": PROFILE, "phone": "{phone}"},
            },
        },
        "push_case": {
            "url": "/contacts/{customer_id}/activities",
            "body": {
                "type": "complaint",
                "title": "{reference} {event}",
                "category": "{category}",
                "status": "{status}",
                "outcome": "{outcome}",
                "opened_at": "{opened_at}",
                "closed_at": "{closed_at}",
                "link": "{url}",
                "text": "{text}",
            },
            "id": "data.id",
        },
    }


@pytest.fixture
def fake(settings):
    settings.CONNECTOR_BREAKER_THRESHOLD = 2
    settings.CONNECTOR_BREAKER_COOL_DOWN = 30
    server = FakeRestCrm().start()
    yield server
    server.stop()


@pytest.fixture
def crm(fake):
    return GenericRestDirectory(crm_mapping(fake.url), token=TOKEN)


SUMMARY = CaseSummary(
    reference="RC-2026-000042-7",
    customer_email="lucia@example.com",
    event="opened",
    category="refund",
    status="not_started",
    opened_at=dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
    url="https://concilia.example/helpdesk/cases/RC-2026-000042-7",
)


# --- pull ---------------------------------------------------------------------------------


def test_a_customer_is_pulled_through_the_mapping(fake, crm):
    # The CRM's search is fuzzy: it also finds Lucía's old address at another domain.
    fake.add_contact(email="lucia@example.com.old", profile={"first": "Old"})
    fake.add_contact(
        email="lucia@example.com",
        profile={"first": "Lucía", "last": "Fernández"},
        phone="+34600123456",
        segment="gold",
    )

    assert crm.pull_customer(email=" LUCIA@example.com ") == CustomerProfile(
        email="lucia@example.com", name="Lucía Fernández", phone="+34600123456", tier="gold"
    )
    assert fake.received[-1].query == {"q": "LUCIA@example.com"}
    assert fake.received[-1].headers["authorization"] == f"Token {TOKEN}"
    assert crm.pull_customer(email="james@example.com") is None


def test_a_record_that_does_not_fit_the_mapping_is_unavailable_not_wrong(fake, crm):
    fake.add_contact(mail="lucia@example.com")  # the CRM renamed its field
    with pytest.raises(ConnectorUnavailable, match=r"does not fit the mapping: email \(email\)"):
        crm.pull_customer(email="lucia@example.com")


# --- push ---------------------------------------------------------------------------------


def test_a_customer_is_created_once_then_updated_without_blanking(fake, crm):
    first = crm.push_customer(CustomerProfile(email="lucia@example.com", name="Lucía Fernández"))
    again = crm.push_customer(CustomerProfile(email="lucia@example.com", phone="+34600123456"))
    unchanged = crm.push_customer(CustomerProfile(email="lucia@example.com", name="Lucía"))

    assert first == again == unchanged
    assert list(fake.contacts.values()) == [
        {
            "id": first,
            "email": "lucia@example.com",
            "profile": {"first": "Lucía", "last": "Fernández"},
            "phone": "+34600123456",
        }
    ]
    writes = [(r.method, r.path, r.body) for r in fake.received if r.method != "GET"]
    assert writes == [
        (
            "POST",
            "/v1/contacts",
            {"email": "lucia@example.com", "profile": {"first": "Lucía", "last": "Fernández"}},
        ),
        ("PATCH", f"/v1/contacts/{first}", {"phone": "+34600123456"}),
    ]  # "Lucía" alone is the first name the CRM knows: nothing new, no request


def test_an_upsert_crm_gets_one_request_per_push(fake):
    config = crm_mapping(fake.url)
    config["push_customer"] = {
        "method": "PUT",
        "url": "/contacts/by-email/{email}",
        "body": {"profile": PROFILE, "phone": "{phone}"},
        "id": "data.id",
    }
    crm = GenericRestDirectory(config, token=TOKEN)

    created = crm.push_customer(CustomerProfile(email="james@example.com", name="James Carter"))
    updated = crm.push_customer(CustomerProfile(email="james@example.com", phone="+447700900123"))

    assert created == updated
    assert [(r.method, r.path) for r in fake.received] == [
        ("PUT", "/v1/contacts/by-email/james%40example.com"),
        ("PUT", "/v1/contacts/by-email/james%40example.com"),
    ]
    assert fake.contacts[created]["profile"] == {"first": "James", "last": "Carter"}
    assert fake.contacts[created]["phone"] == "+447700900123"


def test_a_case_summary_is_one_activity_per_case_and_event(fake, crm):
    activity = crm.push_case_summary(SUMMARY)
    assert crm.push_case_summary(SUMMARY) == activity  # a repeated job writes nothing new
    closed = crm.push_case_summary(
        CaseSummary(
            **{
                **SUMMARY.__dict__,
                "event": "closed",
                "status": "closed",
                "outcome": "resolved",
                "closed_at": dt.datetime(2026, 3, 5, 9, 30, tzinfo=dt.UTC),
            }
        )
    )

    assert closed != activity and len(fake.activities) == 2
    (contact,) = fake.contacts.values()  # the customer was created to hang the activity on
    assert contact["email"] == "lucia@example.com"
    opened = fake.activities[activity]
    assert opened == {
        "id": activity,
        "contact": contact["id"],
        "type": "complaint",
        "title": "RC-2026-000042-7 opened",
        "category": "refund",
        "status": "not_started",
        "opened_at": "2026-03-02T10:00:00.000Z",
        "link": "https://concilia.example/helpdesk/cases/RC-2026-000042-7",
        "text": summary_text(SUMMARY),  # the same line the HubSpot note reads
    }  # no outcome and no closed_at yet: empty values are left out
    assert fake.activities[closed]["closed_at"] == "2026-03-05T09:30:00.000Z"
    keys = [r.headers["idempotency-key"] for r in fake.received if r.path.endswith("activities")]
    assert keys == [
        "RC-2026-000042-7:opened",
        "RC-2026-000042-7:opened",
        "RC-2026-000042-7:closed",
    ]


# --- configuration ------------------------------------------------------------------------


def bad_mapping() -> dict:
    bad = crm_mapping("ftp://crm")
    bad["customer_url"] = "/contacts?q={mail}"
    del bad["customer_fields"]["email"]
    bad["customer_fields"]["segment"] = "segment"
    bad["push_customer"]["update"]["method"] = "DELETE"
    bad["push_case"]["body"]["secret"] = "{token}"
    bad["push_case"]["url"] = "/contacts/{customer_id/activities"
    bad["timeouts"] = 5
    return bad


EXPECTED_PROBLEMS = (
    "unknown keys: timeouts",
    "base_url must be an http(s) URL, not 'ftp://crm/v1'",
    "customer_url uses mail; it may use email",
    "customer_fields.segment is not a field",
    "customer_fields.email is required",
    "push_customer.update.method must be POST, PUT, PATCH",
    "push_case.body.secret uses token",
    "push_case.url: expected '}' before end of string in '/contacts/{customer_id/activities'",
)


def test_a_bad_mapping_is_refused_with_every_problem_named():
    with pytest.raises(ImproperlyConfigured) as error:
        GenericRestDirectory(bad_mapping(), token=TOKEN)
    message = str(error.value)
    assert message.startswith("The REST CRM connector (CRM_REST) is misconfigured:")
    for expected in EXPECTED_PROBLEMS:
        assert expected in message
    with pytest.raises(ImproperlyConfigured, match="CONCILIA_CRM_REST"):
        GenericRestDirectory({}, token=TOKEN)


def test_the_system_check_names_the_problems_only_when_the_rest_crm_is_configured(settings):
    settings.CRM_REST = bad_mapping()
    settings.CUSTOMER_DIRECTORY = "concilia.core.ports.NoCustomerDirectory"
    assert check_crm_rest() == []

    settings.CUSTOMER_DIRECTORY = "concilia.integrations.crm.rest.GenericRestDirectory"
    errors = check_crm_rest()
    assert {e.id for e in errors} == {"integrations.E001"}
    assert len(errors) == len(EXPECTED_PROBLEMS)

    settings.CRM_REST = crm_mapping("https://crm.example")
    assert check_crm_rest() == []


def test_concilia_check_refuses_to_start_with_a_bad_mapping(tmp_path):
    env = {
        **os.environ,
        "CONCILIA_HOME": str(tmp_path),
        "CONCILIA_CUSTOMER_DIRECTORY": "concilia.integrations.crm.rest.GenericRestDirectory",
        "CONCILIA_CRM_REST": json.dumps(bad_mapping()),
        "DJANGO_SETTINGS_MODULE": "concilia.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "concilia", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "integrations.E001" in result.stderr
    assert "CRM_REST: customer_url uses mail; it may use email." in result.stderr


# --- failures -----------------------------------------------------------------------------


def test_a_slow_crm_times_out_quickly(fake):
    config = {**crm_mapping(fake.url), "timeout": 0.2}
    fake.delay = 1.0
    started = time.monotonic()
    with pytest.raises(ConnectorUnavailable, match="timed out"):
        GenericRestDirectory(config, token=TOKEN).pull_customer(email="lucia@example.com")
    assert time.monotonic() - started < 0.9


def test_an_outage_opens_the_circuit_and_later_calls_do_not_wait(fake, crm, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(resilience.time, "time", lambda: clock[0])
    fake.down = True
    for _ in range(2):
        with pytest.raises(ConnectorUnavailable, match="HTTP 503"):
            crm.push_case_summary(SUMMARY)
    assert CircuitBreaker("crm-rest").state == "open"
    with pytest.raises(ConnectorUnavailable, match="circuit open"):
        crm.pull_customer(email="lucia@example.com")
    assert len(fake.received) == 2

    clock[0] += 31  # after the cool-down a trial call goes through and closes the circuit
    fake.down = False
    assert crm.pull_customer(email="lucia@example.com") is None
    assert CircuitBreaker("crm-rest").state == "closed"


def test_a_wrong_token_is_an_outage(fake):
    with pytest.raises(ConnectorUnavailable, match="HTTP 401"):
        GenericRestDirectory(crm_mapping(fake.url), token="wrong").pull_customer(
            email="lucia@example.com"
        )


@pytest.fixture
def configured(fake, settings):
    """Concilia is set up with the REST CRM as its directory, pushing cases to it."""
    settings.CRM_REST = {**crm_mapping(fake.url), "timeout": 0.2}
    settings.CRM_REST_TOKEN = TOKEN
    settings.CUSTOMER_DIRECTORY = "concilia.integrations.crm.rest.GenericRestDirectory"
    settings.CRM_PUSH = True
    _load.cache_clear()
    yield fake
    _load.cache_clear()


@pytest.mark.django_db
def test_a_crm_that_is_down_or_slow_does_not_hold_a_case_up(configured, open_case, run_tasks):
    configured.delay = 1.0  # slower than the connector's timeout
    started = time.monotonic()
    case = open_case(category="refund")
    assert time.monotonic() - started < 1.0  # opening the case never waits for the CRM
    run_tasks()  # the dispatcher, then the push: it times out, and nothing else is affected
    run_tasks()

    case.refresh_from_db()
    assert case.reference.startswith("RC-")
    assert case.status == "not_started"
    assert configured.received  # the push was tried
    assert configured.activities == {}

    configured.delay = 0  # the CRM is back: the push (run again) arrives once
    activity = push_case(reference=case.reference, event="opened")
    assert push_case(reference=case.reference, event="opened") == activity
    assert configured.activities[activity]["title"] == f"{case.reference} opened"
    (contact,) = configured.contacts.values()
    assert contact["profile"] == {"first": "Lucía", "last": "Fernández"}
