"""The case dossier a regulator or an ADR body asks for: a PDF that staff who may see the case
download from its helpdesk page, with the company, the rule and its source, the dates, the
customer, the complaint, the thread, the decisions, the attachments and the history.

Ana (Customer care) may see Lucía's case; Bruno (Logistics) may not.
"""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from concilia.cases import actions
from concilia.cases.attachments import check_file
from concilia.cases.models import EventKind, Jurisdiction
from concilia.core.models import AuditAction, AuditEntry
from concilia.resolution.models import Decision
from conftest import PNG_BYTES

COMPLAINT = "El envío llegó dañado y pagué 25,50 € por él. ¿Quién me lo arregla? Año nuevo, señor."


def text_of(response) -> str:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def lucia_case(open_case, teams, ana):
    case = open_case(description=COMPLAINT)
    actions.add_customer_message(
        case=case, body="Adjunto la foto.", files=[check_file("foto-daño.png", PNG_BYTES)]
    )
    actions.reply_to_customer(case=case, body="Sentimos lo ocurrido: le reembolsamos.", author=ana)
    actions.add_internal_note(case=case, body="Nota interna: cliente habitual.", author=ana)
    Decision.objects.create(
        case=case,
        outcome="escalate",
        rule="damaged_parcel",
        reason_es="Paquete dañado: pasa a atención al cliente.",
        reason_en="Damaged parcel: passed to customer care.",
    )
    Jurisdiction.objects.filter(code="ES").update(
        trader_name="Tiendas Ñandú S.L.", trader_id="B12345678"
    )
    case.refresh_from_db()
    return case


def test_an_agent_who_may_see_the_case_downloads_its_dossier(client, lucia_case, ana):
    client.force_login(ana)
    response = client.get(f"/helpdesk/dossier/{lucia_case.reference}")
    disposition = f'attachment; filename="{lucia_case.reference}.pdf"'
    assert response["Content-Disposition"] == disposition
    text = text_of(response)
    # Spanish (the case's language), with accents, ñ and € intact
    assert lucia_case.reference in text
    assert "Expediente del caso" in text or "Case dossier" in text
    for expected in (
        "Tiendas Ñandú S.L.",
        "B12345678",
        "Ley 10/2025",
        "https://www.boe.es/eli/es/l/2025/12/26/10",
        "Lucía Fernández",
        "lucia@example.com",
        "llegó dañado",
        "25,50 €",
        "Sentimos lo ocurrido: le reembolsamos.",
        "Paquete dañado: pasa a atención al cliente.",
        "foto-daño.png",
        lucia_case.attachments.get().sha256[:16],
    ):
        assert expected in text.replace("\n", " ") or expected in text, expected
    # The customer's version holds no internal note
    assert "cliente habitual" not in text
    # Who downloaded it stays in the case's history
    event = lucia_case.events.get(kind=EventKind.DOSSIER_EXPORTED)
    assert (event.actor_user, event.data) == (ana, {"language": "es", "internal": False})
    entry = AuditEntry.objects.get(action=AuditAction.EXPORT, case_reference=lucia_case.reference)
    assert entry.actor_label and entry.detail["document"] == "dossier"


def test_the_internal_version_in_english_adds_the_internal_notes(client, lucia_case, ana):
    client.force_login(ana)
    response = client.get(
        f"/helpdesk/dossier/{lucia_case.reference}", {"language": "en", "internal": "on"}
    )
    assert response["Content-Disposition"].endswith(f'{lucia_case.reference}-internal.pdf"')
    text = text_of(response)
    assert "Case dossier" in text and "Legal deadline" in text
    assert "Answer to the complaint within 15 working days" in text
    assert "Nota interna: cliente habitual." in text
    assert "Damaged parcel: passed to customer care." in text


def test_someone_who_may_not_see_the_case_gets_no_dossier(client, lucia_case, bruno):
    client.force_login(bruno)
    assert client.get(f"/helpdesk/dossier/{lucia_case.reference}").status_code == 404
    assert not lucia_case.events.filter(kind=EventKind.DOSSIER_EXPORTED).exists()
    client.logout()
    response = client.get(f"/helpdesk/dossier/{lucia_case.reference}")
    assert response.status_code == 302 and "/helpdesk/login/" in response["Location"]


def test_a_bad_language_is_explained_not_a_crash(client, lucia_case, ana):
    client.force_login(ana)
    response = client.get(
        f"/helpdesk/dossier/{lucia_case.reference}",
        {"language": "fr"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "Choose Spanish or English" in response.content.decode()


def test_text_the_font_lacks_and_control_characters_do_not_break_it(client, open_case, teams, ana):
    case = open_case(description="Emoji 😀, CJK 漢字, bell \x07 escape \x1b y tab\tfin. Ünïcödé ok")
    client.force_login(ana)
    text = text_of(client.get(f"/helpdesk/dossier/{case.reference}"))
    assert "Ünïcödé ok" in text
