"""The CRM push job: a case's opening reaches the CRM as its customer and one summary note,
only when CRM_PUSH is on, and repeating it writes nothing twice."""

from __future__ import annotations

import pytest

from concilia.core.ports import _load
from concilia.integrations.crm.tasks import push_case_event, push_case_to_crm
from concilia.integrations.tests.fakes.hubspot import TOKEN, FakeHubSpot

pytestmark = pytest.mark.django_db


@pytest.fixture
def hubspot(settings):
    server = FakeHubSpot().start()
    settings.HUBSPOT_URL = server.url
    settings.HUBSPOT_TOKEN = TOKEN
    settings.HUBSPOT_TIER_PROPERTY = ""
    settings.CUSTOMER_DIRECTORY = "concilia.integrations.crm.hubspot.HubSpotDirectory"
    _load.cache_clear()
    yield server
    _load.cache_clear()
    server.stop()


def test_an_opened_case_is_pushed_once_with_its_customer(hubspot, open_case, settings, run_tasks):
    case = open_case(category="refund", phone="+34 600 123 456")
    settings.CRM_PUSH = True

    assert push_case_event(kind="case.created", payload={"case": case.reference})
    assert push_case_event(kind="case.created", payload={"case": case.reference})
    run_tasks()

    (contact,) = hubspot.contacts.values()
    assert contact["properties"]["email"] == "lucia@example.com"
    assert contact["properties"]["firstname"] == "Lucía"
    (note,) = hubspot.notes.values()
    body = note["properties"]["hs_note_body"]
    assert body.startswith(f"[Concilia {case.reference} opened] ")
    assert f"http://testserver/helpdesk/cases/{case.reference}" in body


def test_nothing_is_pushed_unless_crm_push_is_on(hubspot, open_case, settings):
    settings.CRM_PUSH = False
    case = open_case()
    assert not push_case_event(kind="case.created", payload={"case": case.reference})
    settings.CRM_PUSH = True
    assert not push_case_event(kind="case.message_added", payload={"case": case.reference})


def test_the_job_calls_the_directory_directly(hubspot, open_case):
    case = open_case()
    note_id = push_case_to_crm.call(reference=case.reference, event="opened")
    assert note_id == push_case_to_crm.call(reference=case.reference, event="opened")
    assert len(hubspot.notes) == 1


def test_the_outbox_dispatcher_pushes_openings_and_closings_to_the_crm(
    hubspot, open_case, settings, run_tasks
):
    settings.CRM_PUSH = True
    case = open_case(category="refund")
    run_tasks()  # the dispatcher, then the push it queued
    run_tasks()
    (contact,) = hubspot.contacts.values()
    assert contact["properties"]["email"] == "lucia@example.com"
    assert [n["properties"]["hs_note_body"].split("]")[0] for n in hubspot.notes.values()] == [
        f"[Concilia {case.reference} opened"
    ]
