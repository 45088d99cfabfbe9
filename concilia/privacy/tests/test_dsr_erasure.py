"""Erasure end to end: Lucía's data is everywhere (web form, tracking page, agent's reply and note,
history, chat, email); once the officer erases her, nothing of it can be found (not by the
search, in the rows or in the file store), connected systems are told by a signed webhook, the
audit log still verifies, and the anonymous statistics are as before. A legal hold refuses the
erasure with its reason, and the person is told."""

from __future__ import annotations

import io
import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import translation
from django.utils.translation import gettext
from django_tasks_db.models import DBTaskResult

from concilia.assistant.models import ChatMessage, ChatUpload, Conversation
from concilia.cases import actions as case_actions
from concilia.cases import search
from concilia.cases.models import Attachment, Case, CaseEvent, Message, Outcome, TextGram
from concilia.cases.search import matching_case_ids
from concilia.core import audit
from concilia.core.models import AuditAction, AuditEntry
from concilia.customers.models import Customer, SignInLink
from concilia.integrations.mail.models import InboundEmail
from concilia.integrations.tests.receiver import Receiver
from concilia.integrations.webhooks import actions as webhooks
from concilia.integrations.webhooks import tasks as webhook_tasks
from concilia.privacy import actions
from concilia.privacy.models import DataSubjectRequest, RequestKind, RequestStatus
from concilia.privacy.tests.conftest import NEW_PHONE, PHONE, WORD

pytestmark = pytest.mark.django_db

TRACES = (WORD, "Lucía", "lucia@example.com", PHONE, NEW_PHONE, "factura.pdf", "recibo.pdf")


@pytest.fixture
def crm(settings, dora):
    """The company's CRM, a signed-webhook receiver on loopback subscribed to erasures."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    receiver = Receiver().start()
    endpoint = webhooks.create_endpoint(
        url=receiver.url, events=["customer.erased", "dsr.completed"], actor=dora
    )
    receiver.secret = endpoint.secret
    yield receiver
    receiver.stop()


def stored_files(story) -> list[str]:
    """Every file Lucía's data put in the attachments store (names, then checked to exist)."""
    names = [a.file.name for a in Attachment.objects.filter(case__customer=story.customer)]
    names += [u.file.name for u in ChatUpload.objects.filter(conversation=story.conversation)]
    names += [e.raw.name for e in InboundEmail.objects.exclude(raw="")]
    return names


def statistics(customer) -> list[tuple]:
    return list(
        Case.objects.filter(customer=customer)
        .order_by("pk")
        .values_list("reference", "category__code", "kind", "channel", "outcome", "created_at")
    )


def rows_text() -> str:
    """Lucía's rows as the database holds them, as one text (encrypted columns stay tokens)."""
    parts = []
    for model, fields in (
        (Case, ("subject", "description", "desired_resolution", "order_number")),
        (Message, ("body",)),
        (CaseEvent, ("data",)),
        (ChatMessage, ("body", "understanding")),
        (Conversation, ("state",)),
        (InboundEmail, ("from_address", "subject", "detail", "raw")),
    ):
        for row in model.objects.values_list(*fields):
            parts.append(json.dumps(row, ensure_ascii=False, default=str))
    return "\n".join(parts)


def erasure_request(story, dora):
    story.client.post("/track/my-data/", {"request": "erasure", "confirm": "on"})
    return DataSubjectRequest.objects.get(kind=RequestKind.ERASURE)


def test_an_erased_customer_leaves_nothing_but_statistics(
    lucia_story, dora, dora_client, ana, crm, run_tasks
):
    story = lucia_story
    for case in (story.web_case, story.email_case):
        case_actions.close_case(case=case, outcome=Outcome.RESOLVED, actor_user=ana)
    run_tasks()
    request = erasure_request(story, dora)
    run_tasks()  # the acknowledgement of the request
    files = stored_files(story)
    storage = Attachment._meta.get_field("file").storage
    assert len(files) == 4 and all(storage.exists(name) for name in files)
    assert set(Case.objects.filter(pk__in=matching_case_ids(WORD))) == {
        story.web_case,
        story.email_case,
    }
    before = statistics(story.customer)
    messages_before = Message.objects.filter(case__customer=story.customer).count()
    assert WORD in rows_text()
    mail.outbox.clear()

    response = dora_client.post(
        f"/helpdesk/privacy/requests/{request.pk}/erase", {"erase-confirm": "on"}, follow=True
    )
    run_tasks()

    assert "The customer&#x27;s personal data has been erased." in response.text
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.erased["cases"] == 2 and request.erased["attachments"] == 2
    assert request.details == ""
    customer = Customer.objects.get(pk=story.customer.pk)
    assert (customer.name, customer.phone) == ("—", "")
    assert customer.email == f"erased-customer-{customer.pk}@erased.invalid"
    assert not Customer.objects.with_email("lucia@example.com").exists()
    assert not SignInLink.objects.filter(customer=customer).exists()
    # Nothing of what she wrote is in a row, nor found by the search.
    text = rows_text()
    for trace in TRACES:
        assert trace not in text, trace
        if len(trace) >= 3:
            assert not Case.objects.filter(pk__in=matching_case_ids(trace)).exists(), trace
    # The text index of her cases holds the pieces of what is left (the erased texts), no other.
    for case in (story.web_case, story.email_case):
        indexed = set(TextGram.objects.filter(case=case).values_list("gram", flat=True))
        assert indexed == search.text_hashes(search.case_texts([case.pk])[case.pk])
        assert search.text_hashes([WORD]).isdisjoint(indexed)
    # Her files are gone from the store; her chat and email are emptied.
    assert not any(storage.exists(name) for name in files)
    assert not ChatUpload.objects.exists()
    assert set(ChatMessage.objects.values_list("body", flat=True)) == {""}
    email = InboundEmail.objects.get()
    assert (email.from_address, email.subject, email.raw.name) == ("", "", "")
    # Connected systems are told, signed, with ids and no personal data.
    # (A test is one transaction that never commits, so the dispatcher queued by the first event
    # is not queued again: the sweep sends what the outbox still holds, as it does in production.)
    webhook_tasks.sweep()
    run_tasks()
    erased = [r for r in crm.received if r.kind == "customer.erased"]
    assert len(erased) == 1 and erased[0].signed
    assert erased[0].body["data"]["customer"] == customer.pk
    assert erased[0].body["data"]["cases"] == [story.web_case.reference, story.email_case.reference]
    assert "lucia" not in json.dumps(erased[0].body).lower()
    assert [r.body["data"]["kind"] for r in crm.received if r.kind == "dsr.completed"] == [
        "erasure"
    ]
    # The log keeps the proof, and still verifies.
    assert AuditEntry.objects.filter(
        action=AuditAction.ERASE, object_type="customers.customer", customer_pk=customer.pk
    ).exists()
    assert AuditEntry.objects.filter(
        action=AuditAction.ERASE, case_reference=story.web_case.reference
    ).exists()
    assert audit.verify().ok
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    # The statistics are the same; the thread keeps its shape, empty.
    assert statistics(customer) == before
    assert Message.objects.filter(case__customer=customer).count() == messages_before
    assert all(c.anonymised_at for c in Case.objects.filter(customer=customer))
    # Every job of the erasure worked (files, index, emails, webhooks): none failed.
    assert not DBTaskResult.objects.filter(status="FAILED").exists()
    # She was told, at the address she had, which is not kept afterwards.
    told = [m for m in mail.outbox if m.to == ["lucia@example.com"]]
    with translation.override("es"):  # her language
        assert [m.subject for m in told] == [gettext("Your data has been erased")]
    request.refresh_from_db()
    assert request.contact_email == ""


def test_an_open_complaint_holds_the_erasure_with_its_reason(lucia_story, dora, run_tasks):
    story = lucia_story
    request = erasure_request(story, dora)
    DataSubjectRequest.objects.filter(pk=request.pk).update(language="en")
    run_tasks()
    mail.outbox.clear()

    result = actions.erase(request=request, actor=dora)

    assert not result.done
    request.refresh_from_db()
    assert request.status == RequestStatus.ON_HOLD
    assert f"Case {story.web_case.reference} is an open complaint" in request.hold_reason
    assert f"Case {story.email_case.reference} is an open complaint" in request.hold_reason
    assert Customer.objects.with_email("lucia@example.com").exists()  # nothing was erased
    assert Case.objects.filter(pk__in=matching_case_ids(WORD)).count() == 2
    assert AuditEntry.objects.filter(
        action=AuditAction.DECIDE, object_type="privacy.datasubjectrequest"
    ).exists()
    run_tasks()
    told = [m for m in mail.outbox if m.to == ["lucia@example.com"]]
    assert len(told) == 1 and story.web_case.reference in told[0].body
    page = story.client.get("/track/my-data/")
    assert 'data-status="on_hold"' in page.text


def test_a_manual_hold_blocks_until_released(lucia_story, dora, dora_client, ana, run_tasks):
    story = lucia_story
    for case in (story.web_case, story.email_case):
        case_actions.close_case(case=case, outcome=Outcome.REJECTED, actor_user=ana)
    request = erasure_request(story, dora)
    url = f"/helpdesk/privacy/requests/{request.pk}/"

    dora_client.post(url + "hold", {"hold-reason": "Claim filed at court no. 3, case 118/2027."})
    refused = dora_client.post(url + "erase", {"erase-confirm": "on"}, follow=True)

    assert "Legal hold: Claim filed at court no. 3, case 118/2027." in refused.text
    request.refresh_from_db()
    assert request.status == RequestStatus.ON_HOLD
    assert Customer.objects.with_email("lucia@example.com").exists()
    hold = story.customer.legal_holds.get()

    dora_client.post(url + "release", {"release-note": "Claim withdrawn.", "hold": hold.pk})
    dora_client.post(url + "erase", {"erase-confirm": "on"})

    request.refresh_from_db()
    hold.refresh_from_db()
    assert hold.released_at is not None and hold.release_note == "Claim withdrawn."
    assert request.status == RequestStatus.COMPLETED
    assert not Customer.objects.with_email("lucia@example.com").exists()


def test_mediation_and_unsettled_agreements_are_open_disputes(open_case, dora, ana):
    from concilia.privacy.holds import holds_on
    from concilia.resolution.models import CaseParty, Decision, Resolution

    mediated = open_case()
    settled = open_case(kind="question")
    CaseParty.objects.create(
        case=mediated,
        role="carrier",
        name="Transportes Rápidos",
        email="ops@rapidos.example",
        language="es",
        invited_by=ana,
    )
    decision = Decision.objects.create(case=settled, outcome="offer")
    Resolution.objects.create(
        case=settled, decision=decision, kind="refund", agreed_by="customer", follow_up="pending"
    )
    case_actions.close_case(case=settled, outcome=Outcome.RESOLVED, actor_user=ana)

    kinds = [(hold.kind, hold.reference) for hold in holds_on(mediated.customer)]

    assert kinds == [("mediation", mediated.reference), ("settlement", settled.reference)]


def test_erasing_needs_the_confirmation_box(lucia_story, dora, dora_client):
    request = erasure_request(lucia_story, dora)

    response = dora_client.post(f"/helpdesk/privacy/requests/{request.pk}/erase", {})

    assert response.status_code == 400
    assert "Tick the box to confirm the erasure." in response.text
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN
