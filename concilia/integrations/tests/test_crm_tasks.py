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


def test_the_job_calls_the_directory_directly(hubspot, open_case, run_tasks):
    case = open_case()
    run_tasks()
    push_case_to_crm.enqueue(reference=case.reference, event="opened")
    push_case_to_crm.enqueue(reference=case.reference, event="opened")
    run_tasks()
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


def test_a_push_while_the_crm_is_down_is_tried_again_later(hubspot, open_case, settings, run_tasks):
    """The job fails while HubSpot is down; its retry (with backoff) delivers once it is back."""
    from django.core.cache import cache
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from concilia.integrations.tests.mailserver import free_port

    case = open_case(category="refund")
    run_tasks()
    settings.CRM_PUSH = True
    settings.HUBSPOT_URL = f"http://127.0.0.1:{free_port()}"  # nobody answers there
    _load.cache_clear()
    push_case_event(kind="case.created", payload={"case": case.reference})
    run_tasks()
    assert not hubspot.contacts
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.run_after > timezone.now()  # backoff

    settings.HUBSPOT_URL = hubspot.url
    _load.cache_clear()
    cache.clear()  # the circuit breaker's cool-down has passed
    DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())
    run_tasks()
    assert len(hubspot.notes) == 1
