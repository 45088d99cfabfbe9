"""Mediation's personal data is encrypted at rest (issue 7, docs/encryption.md): the rows of a
mediation hold no third party's name or email, no statement, proposal or answer reason in clear,
yet the mediator, the parties and the customer read them back, and a party is still kept once per
case by its email (through the keyed hash), whatever its case."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test import Client

from concilia.customers.models import email_index
from concilia.resolution import mediation
from concilia.resolution.models import CaseParty, Proposal, ProposalAnswer, Statement
from concilia.resolution.tests.test_mediation import dispute, invite_carrier, path_of, sara  # noqa: F401

pytestmark = pytest.mark.django_db

STATEMENT = "Delivered to Mrs Ortega at the door, signature attached."
EXPLANATION = "The signature does not match; the carrier refunds the parcel."
REASON = "Our driver Marcelino Quintanilla swears he handed it over."


def raw(table: str, *columns: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608 - our names
        return cursor.fetchall()


def test_a_mediations_rows_hold_nothing_in_clear_and_read_back(sara, dispute, run_tasks):  # noqa: F811
    # Given a carrier invited, its statement, a proposal and the carrier's refusal with a reason
    link = invite_carrier(sara, dispute, run_tasks)
    carrier = Client()
    assert carrier.post(path_of(link), {"form": "statement", "body": STATEMENT}).status_code == 302
    sara.post(
        f"/helpdesk/mediation/{dispute.reference}/",
        {"action": "propose", "kind": "refund", "amount": "39.90", "explanation": EXPLANATION},
    )
    answer = {"form": "answer", "answer": "reject", "reason": REASON}
    assert carrier.post(path_of(link), answer).status_code == 302
    # Then the stored rows are tokens
    stored = [
        *raw("resolution_caseparty", "name", "email", "email_index"),
        *raw("resolution_statement", "body"),
        *raw("resolution_proposal", "explanation"),
        *raw("resolution_proposalanswer", "reason"),
    ]
    text = repr(stored)
    for needle in (
        "SEUR",
        "claims@seur.test",
        "CLAIMS@SEUR.TEST",
        "Ortega",
        "signature",
        "Marcelino",
    ):
        assert needle not in text, needle
    [(name, email, index)] = raw("resolution_caseparty", "name", "email", "email_index")
    assert name.startswith("enc1:") and email.startswith("enc1:") and len(index) == 64
    # And everything reads back through the models
    party = CaseParty.objects.get()
    assert (party.name, party.email) == ("SEUR", "claims@seur.test")
    assert Statement.objects.get(party=party).body == STATEMENT
    assert Proposal.objects.get().explanation == EXPLANATION
    assert ProposalAnswer.objects.get(party=party).reason == REASON
    page = sara.get(f"/helpdesk/mediation/{dispute.reference}/").content.decode()
    assert "Delivered to Mrs Ortega at the door" in page


def test_a_party_is_kept_once_per_case_by_its_encrypted_email(sara, dispute, run_tasks):  # noqa: F811
    invite_carrier(sara, dispute, run_tasks)
    with pytest.raises(mediation.InvalidMediation):
        mediation.invite_party(
            case=dispute,
            role="carrier",
            name="Seur again",
            email=" Claims@SEUR.test ",
            language="es",
            actor=CaseParty.objects.get().invited_by,
        )
    assert CaseParty.objects.count() == 1


def test_the_migration_encrypts_rows_written_in_clear_and_going_back_restores_them(
    sara,  # noqa: F811
    dispute,  # noqa: F811
    run_tasks,
):
    migration = importlib.import_module("concilia.resolution.migrations.0005_encrypt_mediation")
    # Given a party and its statement that an earlier version wrote in clear, without an index
    link = invite_carrier(sara, dispute, run_tasks)
    Client().post(path_of(link), {"form": "statement", "body": STATEMENT})
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE resolution_caseparty SET name = 'SEUR', email = 'claims@seur.test', "
            "email_index = 'stale'"
        )
        cursor.execute("UPDATE resolution_statement SET body = %s", [STATEMENT])
    editor = SimpleNamespace(connection=connection)
    # When the migration's data step runs (twice: it is idempotent)
    for _ in range(2):
        migration.encrypt(None, editor)
    # Then nothing is in clear, the email is indexed again, and everything reads as before
    text = repr(raw("resolution_caseparty", "name", "email") + raw("resolution_statement", "body"))
    assert "SEUR" not in text and "seur.test" not in text and "Ortega" not in text
    party = CaseParty.objects.get(email_index=email_index("claims@seur.test"))
    assert (party.name, party.email) == ("SEUR", "claims@seur.test")
    assert Statement.objects.get().body == STATEMENT
    # And going back writes them in clear again
    migration.decrypt(None, editor)
    assert raw("resolution_caseparty", "name", "email") == [("SEUR", "claims@seur.test")]
    assert raw("resolution_statement", "body") == [(STATEMENT,)]
