"""Mediation with more than two parties: a supervisor invites the carrier by a signed link; the
carrier states its side with evidence; the supervisor reads every side and proposes; the proposal
binds when the customer and the carrier accept, and the resolution records who agreed."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from concilia.accounts.models import Role
from concilia.cases.models import Status
from concilia.cases.tests.conftest import person
from concilia.intake.tests.test_tracking import sign_in
from concilia.resolution import mediation
from concilia.resolution.models import CaseParty, Proposal, ProposalStatus, Resolution
from conftest import PNG_BYTES

pytestmark = pytest.mark.django_db


@pytest.fixture
def dispute(open_case):
    """Lucía says her parcel never arrived; the shop says the carrier delivered it."""
    return open_case(
        category="damaged_missing",
        order_number="1239",
        description="El paquete nunca llegó, aunque figura como entregado.",
        language="es",
    )


@pytest.fixture
def sara(teams) -> Client:
    """Sara supervises customer care: she mediates."""
    client = Client()
    client.force_login(person("sara", Role.SUPERVISOR, teams["customer-care"], language="en"))
    return client


def invite_carrier(sara: Client, case, run_tasks) -> str:
    response = sara.post(
        f"/helpdesk/mediation/{case.reference}/",
        {
            "action": "invite",
            "role": "carrier",
            "name": "SEUR",
            "email": "claims@seur.test",
            "language": "en",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    run_tasks()
    invitation = [m for m in mail.outbox if m.to == ["claims@seur.test"]][-1]
    return re.search(r"http://\S+/parties/\S+/", invitation.body).group(0)


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_the_carrier_gets_a_link_and_sees_only_what_it_needs(sara, dispute, run_tasks):
    link = invite_carrier(sara, dispute, run_tasks)
    page = Client().get(path_of(link))
    assert page.status_code == 200
    html = page.content.decode()
    assert dispute.reference in html and "El paquete nunca llegó" in html
    assert "1239" in html  # the order number it needs
    assert dispute.customer.email not in html and dispute.customer.name not in html


def test_the_carriers_statement_and_evidence_reach_the_mediator_but_not_the_customer(
    sara, dispute, run_tasks, client
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    link = invite_carrier(sara, dispute, run_tasks)
    carrier = Client()
    response = carrier.post(
        path_of(link),
        {
            "form": "statement",
            "body": "Delivered on Monday, signed by a neighbour.",
            "attachments": [SimpleUploadedFile("proof.png", PNG_BYTES)],
        },
    )
    assert response.status_code == 302
    (note,) = [
        m for m in dispute.messages.filter(internal=True) if "signed by a neighbour" in m.body
    ]
    assert note.attachments.get().original_name == "proof.png"
    side_by_side = sara.get(f"/helpdesk/mediation/{dispute.reference}/", HTTP_ACCEPT_LANGUAGE="en")
    html = side_by_side.content.decode()
    assert "SEUR (Carrier)" in html and "signed by a neighbour" in html
    assert "El paquete nunca llegó" in html
    sign_in(client, dispute, run_tasks)
    tracking = client.get(f"/track/cases/{dispute.reference}").content.decode()
    assert "signed by a neighbour" not in tracking and "proof.png" not in tracking


def test_an_empty_statement_is_refused_and_nothing_is_stored(sara, dispute, run_tasks):
    link = invite_carrier(sara, dispute, run_tasks)
    response = Client().post(path_of(link), {"form": "statement", "body": " "})
    assert response.status_code == 400
    assert not dispute.statements.exists()


def test_an_altered_or_expired_link_is_refused(sara, dispute, run_tasks, monkeypatch):
    link = invite_carrier(sara, dispute, run_tasks)
    assert Client().get(path_of(link)[:-3] + "xx/").status_code == 410
    monkeypatch.setattr(mediation, "LINK_DAYS", -1)
    response = Client().get(path_of(link))
    assert response.status_code == 410
    assert "expired" in response.content.decode() or "caducado" in response.content.decode()


def test_a_proposal_binds_when_every_party_accepts_and_records_who(
    sara, dispute, run_tasks, client
):
    link = invite_carrier(sara, dispute, run_tasks)
    response = sara.post(
        f"/helpdesk/mediation/{dispute.reference}/",
        {
            "action": "propose",
            "kind": "refund",
            "amount": "39.90",
            "explanation": "The signature does not match; the carrier refunds the parcel.",
        },
    )
    assert response.status_code == 302
    proposal = Proposal.objects.get()
    run_tasks()
    assert any("A proposal to settle the case" in m.subject for m in mail.outbox)
    # the carrier accepts on its page
    response = Client().post(path_of(link), {"form": "answer", "answer": "accept"})
    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.OPEN  # the customer has not answered yet
    # the customer accepts on the tracking page
    sign_in(client, dispute, run_tasks)
    html = client.get(f"/track/cases/{dispute.reference}").content.decode()
    assert "The signature does not match" in html
    client.post(
        f"/track/cases/{dispute.reference}/proposal", {"proposal": proposal.pk, "answer": "accept"}
    )
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.AGREED
    resolution = Resolution.objects.get(case=dispute)
    assert (resolution.kind, str(resolution.amount)) == ("refund", "39.90")
    assert resolution.agreed_parties == ["customer", "SEUR (carrier)"]
    assert resolution.decision.source == "mediation"
    assert resolution.decision.actor_user.username == "sara"
    dispute.refresh_from_db()
    assert dispute.status == Status.CLOSED


def test_a_party_saying_no_ends_the_proposal_and_tells_the_mediator(sara, dispute, run_tasks):
    link = invite_carrier(sara, dispute, run_tasks)
    sara.post(
        f"/helpdesk/mediation/{dispute.reference}/",
        {"action": "propose", "kind": "replacement", "explanation": "A new one is sent."},
    )
    carrier = Client()
    refused = carrier.post(path_of(link), {"form": "answer", "answer": "reject", "reason": ""})
    assert refused.status_code == 400
    assert Proposal.objects.get().status == ProposalStatus.OPEN
    carrier.post(
        path_of(link), {"form": "answer", "answer": "reject", "reason": "We delivered it."}
    )
    assert Proposal.objects.get().status == ProposalStatus.REJECTED
    dispute.refresh_from_db()
    assert dispute.status == Status.PENDING_AGENT
    notes = dispute.messages.filter(internal=True)
    assert any("We delivered it." in note.body for note in notes)
    assert not Resolution.objects.exists()
    # its link now shows no open proposal to answer
    assert "The mediator's proposal" not in carrier.get(path_of(link)).content.decode()


def test_answering_twice_is_refused(sara, dispute, run_tasks):
    link = invite_carrier(sara, dispute, run_tasks)
    sara.post(
        f"/helpdesk/mediation/{dispute.reference}/",
        {"action": "propose", "kind": "refund", "amount": "10", "explanation": "Half each."},
    )
    party = CaseParty.objects.get()
    proposal = Proposal.objects.get()
    mediation.answer_proposal(proposal=proposal, party=party, accept=True)
    with pytest.raises(mediation.AlreadyAnswered):
        mediation.answer_proposal(proposal=proposal, party=party, accept=True)
    assert Client().post(path_of(link), {"form": "answer", "answer": "accept"}).status_code == 302
    assert proposal.answers.count() == 1


def test_inviting_the_same_address_twice_is_refused(sara, dispute, run_tasks):
    invite_carrier(sara, dispute, run_tasks)
    response = sara.post(
        f"/helpdesk/mediation/{dispute.reference}/",
        {
            "action": "invite",
            "role": "carrier",
            "name": "SEUR",
            "email": "CLAIMS@seur.test",
            "language": "en",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "already a party to the case" in response.content.decode()
    assert CaseParty.objects.count() == 1


def test_an_agent_cannot_mediate(dispute, teams):
    agent = Client()
    agent.force_login(person("ana", Role.AGENT, teams["customer-care"]))
    assert agent.get(f"/helpdesk/mediation/{dispute.reference}/").status_code == 403
