"""Helpdesk pages beyond a single action: bulk changes from the queue, merging and linking cases,
the supervisors' load page, attachments shown to agents, and similar past cases.

The people come from conftest.py: Ana is an agent of Customer care, Bruno of Logistics, Sara
supervises Customer care.
"""

from __future__ import annotations

import datetime as dt
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from concilia.cases import actions
from concilia.cases.attachments import check_file
from concilia.cases.models import (
    Case,
    CaseLink,
    EventKind,
    Notification,
    NotificationKind,
    Outcome,
    Priority,
    Status,
)
from concilia.cases.tests.conftest import shipping
from conftest import PDF_BYTES, PNG_BYTES


def ticked(*cases):
    return [f"{case.reference}@{case.version}" for case in cases]


def messages_of(response) -> str:
    """The page's messages, in the agent's language (Ana works in Spanish)."""
    return " ".join(str(m) for m in response.context["messages"])


# --- bulk actions ------------------------------------------------------------------------


def test_bulk_close_with_an_outcome_closes_every_ticked_case(client, open_case, teams, ana):
    cases = [open_case(email=f"b{i}@example.com") for i in range(3)]
    client.force_login(ana)
    response = client.post(
        "/helpdesk/bulk",
        {
            "cases": ticked(*cases[:2]),
            "action": "close",
            "outcome": Outcome.RESOLVED,
            "next": "/helpdesk/?view=all",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/helpdesk/?view=all"
    assert "2 casos cambiados." in messages_of(response)
    for case in cases:
        case.refresh_from_db()
    assert [c.status for c in cases] == [Status.CLOSED, Status.CLOSED, cases[2].status]
    assert cases[2].status != Status.CLOSED
    assert cases[0].outcome == Outcome.RESOLVED


def test_bulk_close_without_an_outcome_changes_nothing(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        "/helpdesk/bulk", {"cases": ticked(case), "action": "close"}, follow=True
    )
    assert "No se ha cambiado nada" in messages_of(response)
    case.refresh_from_db()
    assert case.status != Status.CLOSED


def test_bulk_assign_priority_and_status(client, open_case, teams, ana, sara):
    cases = [open_case(email=f"p{i}@example.com") for i in range(2)]
    client.force_login(sara)
    client.post("/helpdesk/bulk", {"cases": ticked(*cases), "action": "assign", "assignee": ana.pk})
    for case in cases:
        case.refresh_from_db()
        assert case.assignee == ana
    assert Notification.objects.filter(recipient=ana, kind=NotificationKind.ASSIGNED).count() >= 2
    client.post(
        "/helpdesk/bulk", {"cases": ticked(*cases), "action": "priority", "priority": Priority.HIGH}
    )
    for case in cases:
        case.refresh_from_db()
    client.post(
        "/helpdesk/bulk",
        {"cases": ticked(*cases), "action": "status", "status": Status.PENDING_CUSTOMER},
    )
    for case in cases:
        case.refresh_from_db()
        assert (case.priority, case.status) == (Priority.HIGH, Status.PENDING_CUSTOMER)
        assert case.sla_paused_at is not None


def test_bulk_skips_cases_changed_since_the_list_was_loaded(client, open_case, teams, ana):
    fresh, stale = open_case(email="f@example.com"), open_case(email="s@example.com")
    seen = ticked(fresh, stale)
    # Someone else raises the priority of one case after Ana loaded her list.
    actions.set_priority(case=stale, priority=Priority.URGENT, actor=ana)
    client.force_login(ana)
    response = client.post(
        "/helpdesk/bulk",
        {"cases": seen, "action": "priority", "priority": Priority.LOW},
        follow=True,
    )
    text = messages_of(response)
    assert "1 caso cambiado." in text and stale.reference in text
    fresh.refresh_from_db(), stale.refresh_from_db()
    assert (fresh.priority, stale.priority) == (Priority.LOW, Priority.URGENT)


def test_bulk_never_touches_another_teams_case(client, open_case, teams, ana, bruno):
    theirs = shipping(open_case)  # routed to Logistics
    client.force_login(ana)
    response = client.post(
        "/helpdesk/bulk",
        {"cases": ticked(theirs), "action": "close", "outcome": Outcome.RESOLVED},
        follow=True,
    )
    assert f"No puedes cambiar estos casos: {theirs.reference}" in messages_of(response)
    theirs.refresh_from_db()
    assert theirs.status != Status.CLOSED


def test_bulk_redirect_stays_on_this_site(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        "/helpdesk/bulk",
        {
            "cases": ticked(case),
            "action": "priority",
            "priority": Priority.LOW,
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/helpdesk/"


def test_the_queue_offers_a_tick_box_per_case(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    page = client.get("/helpdesk/?view=all").content.decode()
    assert f'value="{case.reference}@{case.version}"' in page
    assert 'action="/helpdesk/bulk"' in page


# --- merge and link ----------------------------------------------------------------------


def test_merging_a_duplicate_moves_its_text_and_closes_it(client, open_case, teams, ana):
    first = open_case(description="Me cobraron dos veces el pedido A-1 en noviembre.")
    duplicate = open_case(description="Sigo sin respuesta del doble cargo del pedido A-1.")
    client.force_login(ana)
    page = client.get(f"/helpdesk/cases/{duplicate.reference}").content.decode()
    assert first.reference in page  # listed among the customer's other cases
    response = client.post(
        f"/helpdesk/cases/{duplicate.reference}/link",
        {"other": first.reference.lower(), "how": "merge"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == f"/helpdesk/cases/{first.reference}"
    page = response.content.decode()
    assert "Sigo sin respuesta del doble cargo" in page
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.outcome, duplicate.merged_into) == (
        Status.CLOSED,
        Outcome.DUPLICATE,
        first,
    )


def test_cases_of_different_customers_are_linked_but_not_merged(client, open_case, teams, ana):
    mine = open_case(email="uno@example.com")
    other = open_case(email="dos@example.com")
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{mine.reference}/link", {"other": other.reference, "how": "merge"}
    )
    assert response.status_code == 400
    assert "Solo se pueden fusionar casos del mismo cliente." in response.content.decode()
    mine.refresh_from_db()
    assert mine.status != Status.CLOSED
    client.post(
        f"/helpdesk/cases/{mine.reference}/link", {"other": other.reference, "how": "related"}
    )
    assert CaseLink.objects.filter(case=mine, other=other).exists()
    assert CaseLink.objects.filter(case=other, other=mine).exists()
    assert other.events.filter(kind=EventKind.LINKED).exists()
    page = client.get(f"/helpdesk/cases/{mine.reference}").content.decode()
    assert f'href="/helpdesk/cases/{other.reference}"' in page


def test_a_case_the_agent_cannot_see_cannot_be_linked(client, open_case, teams, ana, bruno):
    mine, theirs = open_case(), shipping(open_case, email="x@example.com")
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{mine.reference}/link", {"other": theirs.reference, "how": "related"}
    )
    assert response.status_code == 400
    assert "No hay ningún caso con esta referencia que puedas ver." in response.content.decode()
    assert not CaseLink.objects.exists()


# --- the supervisors' load page ----------------------------------------------------------


def load_cell(page: str, person: str, count: str) -> str:
    row = page.split(f'data-person="{person}"', 1)[1].split("</tr>", 1)[0]
    cell = row.split(f'data-count="{count}"', 1)[1].split("</td>", 1)[0]
    return re.sub(r"<[^>]+>", "", cell.split(">", 1)[1]).strip()


def test_supervisors_see_each_agents_open_work_and_the_unassigned(
    client, open_case, teams, ana, sara, bruno
):
    care = teams[0]
    mine = [open_case(email=f"l{i}@example.com") for i in range(3)]
    for case in mine:
        actions.assign_case(case=case, assignee=ana, actor=sara)
    actions.change_status(case=mine[0], status=Status.PENDING_CUSTOMER, actor_user=ana)
    Case.objects.filter(pk=mine[1].pk).update(deadline=timezone.now() - dt.timedelta(hours=1))
    loose = open_case(email="loose@example.com")
    actions.assign_case(case=loose, assignee=None, actor=sara)
    shipping(open_case, email="log@example.com")  # Logistics: not Sara's team
    client.force_login(sara)
    client.get("/helpdesk/load")  # the session is warm (its first request starts its idle clock)
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/helpdesk/load").content.decode()
    assert care.name in page and teams[1].name not in page
    assert load_cell(page, "ana", "open") == "3"
    assert load_cell(page, "ana", "waiting_customer") == "1"
    assert load_cell(page, "ana", "overdue") == "1"
    assert load_cell(page, "", "open") == "1"
    assert f"assignee={ana.pk}" in page
    assert "bruno" not in page
    # session, user, permissions (2), own teams, teams, people, membership, two counts, unread
    assert len(queries) <= 11


def test_agents_cannot_open_the_load_page(client, teams, ana):
    client.force_login(ana)
    assert client.get("/helpdesk/load").status_code == 403
    assert "/helpdesk/load" not in client.get("/helpdesk/").content.decode()


# --- attachments -------------------------------------------------------------------------


def test_agents_preview_images_of_their_teams_cases_only(client, open_case, teams, ana, bruno):
    case = open_case()
    actions.add_customer_message(
        case=case,
        body="Foto del paquete y factura.",
        files=[check_file("caja.png", PNG_BYTES), check_file("factura.pdf", PDF_BYTES)],
    )
    image, pdf = case.attachments.order_by("original_name")
    image_url = f"/cases/{case.reference}/attachments/{image.pk}"
    client.force_login(ana)  # an agent, not a Django "staff" user
    assert not ana.is_staff
    page = client.get(f"/helpdesk/cases/{case.reference}").content.decode()
    assert f'<img class="preview" src="{image_url}"' in page
    assert f'src="/cases/{case.reference}/attachments/{pdf.pk}"' not in page  # PDFs: a link
    served = client.get(image_url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["Content-Disposition"].startswith("inline")
    assert "default-src 'none'" in served["Content-Security-Policy"]
    client.force_login(bruno)  # Logistics: not his case
    assert client.get(image_url).status_code == 404


# --- similar past cases ------------------------------------------------------------------


def closed_with_reply(open_case, ana, *, description, reply, outcome=Outcome.RESOLVED, **extra):
    case = open_case(description=description, **extra)
    actions.reply_to_customer(
        case=case, body=reply, author=ana, status=Status.CLOSED, outcome=outcome
    )
    return case


def test_the_most_similar_resolved_cases_are_shown_with_how_they_ended(
    client, open_case, teams, ana
):
    charged = closed_with_reply(
        open_case,
        ana,
        email="a@example.com",
        description="Me cobraron dos veces el pedido con la tarjeta de crédito.",
        reply="Hemos devuelto el cargo duplicado a su tarjeta.",
        amount="59.90",
    )
    broken = closed_with_reply(
        open_case,
        ana,
        email="b@example.com",
        description="El paquete llegó roto y la caja estaba mojada.",
        reply="Le enviamos un producto nuevo.",
        outcome=Outcome.PARTIALLY_RESOLVED,
    )
    case = open_case(
        email="c@example.com",
        description="Me han cobrado dos veces en la tarjeta por el mismo pedido.",
        amount="60.00",
    )
    client.force_login(ana)
    page = client.get(f"/helpdesk/cases/{case.reference}").content.decode()
    panel = page.split('id="similar-title"', 1)[1].split("</section>", 1)[0]
    assert f'data-similar="{charged.reference}"' in panel
    assert "Hemos devuelto el cargo duplicado a su tarjeta." in panel
    with translation.override("es"):
        assert str(Outcome.RESOLVED.label) in panel
    # The parcel case shares no words or facts worth showing, and it comes after if at all.
    if broken.reference in panel:
        assert panel.index(charged.reference) < panel.index(broken.reference)


def test_similar_cases_come_only_from_cases_the_agent_may_see(client, open_case, teams, ana, bruno):
    # The same customer wrote the same words before; that case now belongs to Logistics.
    theirs = open_case(email="m@example.com", description="Mi paquete no llegó nunca.")
    actions.transfer_case(case=theirs, team=teams[1], assignee=bruno, actor=ana, note="Vuestro.")
    actions.close_case(case=theirs, outcome=Outcome.RESOLVED, actor_user=bruno)
    case = open_case(email="m@example.com", description="Mi paquete no llegó nunca.")
    client.force_login(bruno)
    assert theirs.reference in client.get(f"/helpdesk/cases/{theirs.reference}").content.decode()
    client.force_login(ana)
    page = client.get(f"/helpdesk/cases/{case.reference}").content.decode()
    assert theirs.reference not in page


# --- the queue's alert buckets, saved views and filters ----------------------------------


def refs(client, query: str) -> set[str]:
    page = client.get(f"/helpdesk/?{query}").content.decode()
    return set(re.findall(r'href="/helpdesk/cases/(RC-[0-9A-Z-]+)"', page))


def test_each_alert_bucket_lists_only_its_cases(client, open_case, teams, ana):
    now = timezone.now()
    end_of_today = timezone.make_aware(
        dt.datetime.combine(timezone.localdate(now) + dt.timedelta(days=1), dt.time(0))
    )
    overdue, today, later, closed = (open_case(email=f"a{i}@example.com") for i in range(4))
    for case, deadline in (
        (overdue, now - dt.timedelta(hours=2)),
        (today, now + (end_of_today - now) / 2),
        (later, end_of_today + dt.timedelta(days=2)),
        (closed, now - dt.timedelta(days=3)),
    ):
        Case.objects.filter(pk=case.pk).update(deadline=deadline)
    actions.close_case(case=closed, outcome=Outcome.RESOLVED, actor_user=ana)
    client.force_login(ana)
    assert refs(client, "view=all&alert=overdue") == {overdue.reference}
    assert refs(client, "view=all&alert=due_today") == {today.reference}
    assert refs(client, "view=all&alert=future") == {later.reference}
    assert refs(client, "view=overdue") == {overdue.reference}
    # Every row shows the colour of its clock.
    page = client.get("/helpdesk/?view=all&sort=deadline").content.decode()
    assert page.index(overdue.reference) < page.index(today.reference) < page.index(later.reference)
    assert 'data-clock="red"' in page


def test_saved_views_and_filters_combine(client, open_case, teams, ana, sara):
    care = teams[0]
    waiting = open_case(email="w@example.com", name="Marta Gil", kind="question")
    answered = open_case(email="r@example.com", category="refund", order_number="P-1")
    loose = open_case(email="l@example.com", description="La factura tiene un IVA mal calculado.")
    done = open_case(email="d@example.com")
    actions.assign_case(case=waiting, assignee=ana, actor=sara)
    actions.reply_to_customer(case=answered, body="¿Nos envía el ticket?", author=ana)
    actions.add_internal_note(case=answered, body="Revisar con almacén de Getafe", author=ana)
    actions.assign_case(case=loose, assignee=None, actor=sara)
    actions.set_priority(case=loose, priority=Priority.URGENT, actor=sara)
    actions.close_case(case=done, outcome=Outcome.ANSWERED, actor_user=ana)
    client.force_login(ana)
    assert refs(client, "view=team_unassigned") == {loose.reference}
    assert refs(client, "view=waiting_customer") == {answered.reference}
    assert done.reference not in refs(client, "view=waiting_us")
    assert waiting.reference in refs(client, "view=waiting_us")
    assert refs(client, "view=closed") == {done.reference}
    assert refs(client, "view=all&name=marta") == {waiting.reference}
    assert refs(client, f"view=all&reference={loose.reference[:-2].lower()}") == {loose.reference}
    assert refs(client, "view=all&kind=question") == {waiting.reference}
    assert refs(client, "view=all&category=refund") == {answered.reference}
    assert refs(client, "view=all&priority=urgent") == {loose.reference}
    assert refs(client, "view=all&assignee=none") == {loose.reference}
    assert refs(client, f"view=all&team={care.code}&status=pending_customer") == {
        answered.reference
    }
    # Free text looks in the subject, the description and every message, internal notes too.
    assert refs(client, "view=all&q=iva mal") == {loose.reference}
    assert refs(client, "view=all&q=getafe") == {answered.reference}
    assert refs(client, "view=all&q=getafe&kind=question") == set()
    # Days waiting counts from the customer's last message.
    Case.objects.filter(pk=waiting.pk).update(
        last_customer_message_at=timezone.now() - dt.timedelta(days=5)
    )
    assert waiting.reference in refs(client, "view=all&waiting_days=4")
    assert waiting.reference not in refs(client, "view=all&waiting_days=6")
    today = timezone.localdate().isoformat()
    assert done.reference in refs(client, f"view=all&status=closed&created_from={today}")
    assert refs(client, "view=all&created_to=2020-01-01") == set()
    # Priority sort puts the urgent case first.
    page = client.get("/helpdesk/?view=all&sort=priority").content.decode()
    first = re.search(r'href="/helpdesk/cases/(RC-[0-9A-Z-]+)"', page).group(1)
    assert first == loose.reference
