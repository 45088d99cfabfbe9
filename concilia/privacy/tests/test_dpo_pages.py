"""Dora, the data-protection officer, reads the audit log in the helpdesk: filtered by case,
customer, person, action and dates, a page at a time, with the chain's state; she exports what
she filtered as CSV or JSON. Nobody else may (Ana the agent gets 403)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from concilia.core import audit
from concilia.core.models import AuditEntry
from concilia.privacy import queries

pytestmark = pytest.mark.django_db

PAGE = "/helpdesk/privacy/audit/"


@pytest.fixture
def two_customers(ana_client, open_case):
    """Ana has opened Lucía's case and James's; Lucía's twice."""
    lucia = open_case()
    james = open_case(email="james@example.com", name="James Carter")
    for case in (lucia, james, lucia):
        ana_client.get(f"/helpdesk/cases/{case.reference}")
    return lucia, james


def shown(response) -> list[int]:
    return [entry.seq for entry in response.context["entries"]]


def seqs(**filters) -> list[int]:
    return list(AuditEntry.objects.filter(**filters).order_by("-seq").values_list("seq", flat=True))


def test_dora_sees_the_newest_entries_first_with_the_chain_verified(dora_client, two_customers):
    response = dora_client.get(PAGE)

    assert response.status_code == 200
    # the page's own look at the log is the newest entry (after the page was read)
    assert shown(response) == seqs()[1:]
    html = response.content.decode()
    head = AuditEntry.objects.order_by("-seq").first()  # the page's own entry included
    assert f"Chain verified up to entry {head.seq}" in html
    assert 'data-chain="ok"' in html
    assert "Firefox/128.0" in html and "203.0.113.7" in html
    assert AuditEntry.objects.order_by("-seq").first().actor_label == "dora"


def test_filters_by_case_customer_person_and_action(dora_client, two_customers, ana):
    """Each filter gives exactly the entries it names, newest first."""
    lucia, james = two_customers

    by_case = dora_client.get(PAGE, {"reference": lucia.reference.lower()})
    assert shown(by_case) == seqs(case_reference=lucia.reference)
    assert len(shown(by_case)) == 3  # opened, then viewed twice

    by_email = dora_client.get(PAGE, {"email": "JAMES@example.com"})
    assert shown(by_email) == seqs(customer_pk=james.customer_id, action__in=["create", "view"])
    assert len(shown(by_email)) == 2
    # Dora's look at James's entries is now one of them
    assert seqs(customer_pk=james.customer_id, action="list") == [seqs()[0]]

    by_person = dora_client.get(PAGE, {"actor": "an", "action": "view"})
    assert shown(by_person) == seqs(actor_id=str(ana.pk), action="view")
    assert len(shown(by_person)) == 3

    assert shown(dora_client.get(PAGE, {"email": "nobody@example.com"})) == []


def test_the_date_range_counts_whole_days_in_the_sites_time_zone(dora_client, two_customers):
    today = timezone.localdate()
    everything = seqs()
    assert shown(dora_client.get(PAGE, {"since": today, "until": today})) == everything
    assert shown(dora_client.get(PAGE, {"since": today + dt.timedelta(days=1)})) == []
    assert shown(dora_client.get(PAGE, {"until": today - dt.timedelta(days=1)})) == []


def test_bad_filters_are_explained_and_ignored(dora_client, two_customers):
    response = dora_client.get(
        PAGE, {"reference": "RC-2026-000001-X", "since": "2026-12-05", "until": "2026-12-01"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Some filters are not valid; they were ignored." in html
    assert "This is not a case reference" in html
    assert "The end of the range is before its start." in html


def test_pages_follow_each_other_without_gaps_or_repeats(dora_client, two_customers, monkeypatch):
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)
    seen: list[int] = []
    url = PAGE + "?action=view"
    while url:
        response = dora_client.get(url)
        seen += shown(response)
        url = response.context["older_url"] and PAGE + response.context["older_url"]
    assert seen == seqs(action="view")
    assert len(seen) == 3


def test_the_page_costs_the_same_queries_however_many_entries(dora_client, two_customers):
    def queries_for_page() -> int:
        with CaptureQueriesContext(connection) as context:
            assert dora_client.get(PAGE).status_code == 200
        return len(context.captured_queries)

    queries_for_page()  # the first visit also saves the session and checks the whole chain
    few = queries_for_page()
    for n in range(30):
        audit.record(audit.VIEW, detail={"n": n})
    assert queries_for_page() == few


def test_a_broken_chain_shows_on_the_page(dora_client, two_customers):
    from concilia.privacy.tests.test_audit_chain import drop_triggers, sql

    victim = AuditEntry.objects.order_by("seq")[1]
    drop_triggers()
    sql("UPDATE core_auditentry SET actor_label = 'eve' WHERE seq = %s", [victim.seq])

    html = dora_client.get(PAGE).content.decode()
    assert f'data-chain="broken" data-seq="{victim.seq}"' in html
    assert f"Entry {victim.seq} was changed after it was written" in html


def test_csv_export_of_the_filtered_entries(dora_client, two_customers):
    lucia, _james = two_customers
    response = dora_client.get(PAGE + "export.csv", {"reference": lucia.reference})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(row["\ufeffseq"]) for row in rows] == seqs(case_reference=lucia.reference)
    first = rows[-1]
    entry = AuditEntry.objects.get(seq=int(first["\ufeffseq"]))
    assert (first["hash"], first["prev_hash"], first["case_reference"]) == (
        entry.hash,
        entry.prev_hash,
        lucia.reference,
    )
    assert first["at"] == entry.at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def test_a_formula_in_a_user_agent_stays_text_in_the_csv(dora, dora_client):
    hostile = Client(HTTP_USER_AGENT='=HYPERLINK("http://evil.test","x")')
    hostile.force_login(dora)
    hostile.get(PAGE)  # a visit whose user agent a spreadsheet would run as a formula

    export = b"".join(dora_client.get(PAGE + "export.csv").streaming_content).decode()
    rows = list(csv.reader(io.StringIO(export)))
    column = rows[0].index("user_agent")
    # Only the hostile visit's entry (sign-ins by force_login have no user agent)
    agents = [row[column] for row in rows[1:] if "HYPERLINK" in row[column]]
    assert agents == ['\'=HYPERLINK("http://evil.test","x")']


def test_json_export_can_be_checked_hash_by_hash(dora_client, two_customers):
    response = dora_client.get(PAGE + "export.json", {"action": "view"})

    assert response.status_code == 200 and response.streaming
    exported = json.loads(b"".join(response.streaming_content))
    assert [row["seq"] for row in exported] == seqs(action="view")
    for row in exported:
        row["at"] = dt.datetime.fromisoformat(row["at"])
        assert audit.entry_hash(row) == row["hash"]


def test_an_export_is_itself_recorded_without_the_email_asked_for(dora_client, two_customers):
    _lucia, james = two_customers
    dora_client.get(PAGE + "export.json", {"email": "james@example.com", "action": "view"})

    export = AuditEntry.objects.get(action="export")
    assert (export.actor_label, export.customer_pk) == ("dora", james.customer_id)
    assert export.detail == {
        "format": "json",
        "filters": {"email": "(given)", "action": "view"},
    }
    assert "james" not in json.dumps(export.detail)


def test_an_export_with_a_bad_filter_exports_nothing_and_says_why(dora_client, two_customers):
    response = dora_client.get(PAGE + "export.csv", {"since": "yesterday"})
    assert response.status_code == 400
    assert "Nothing was exported; correct the filters: From: Enter a valid date." in (
        response.content.decode()
    )
    assert not AuditEntry.objects.filter(action="export").exists()


def test_an_unknown_export_format_is_not_found(dora_client):
    assert dora_client.get(PAGE + "export.xml").status_code == 404


def test_nobody_but_the_data_protection_officer_reads_or_exports_the_log(
    ana_client, open_case, django_user_model
):
    open_case()
    for url in (PAGE, PAGE + "export.csv", PAGE + "export.json"):
        assert ana_client.get(url).status_code == 403
    anonymous = Client().get(PAGE)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/helpdesk/login/")

    # a reader without the export permission sees the page but cannot export
    reader = django_user_model.objects.create_user("rita", password="pw")
    reader.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(reader)
    response = client.get(PAGE)
    assert response.status_code == 200 and b'data-export="csv"' not in response.content
    assert client.get(PAGE + "export.csv").status_code == 403


def test_the_helpdesk_menu_shows_the_audit_log_to_the_dpo_only(dora_client, ana_client):
    assert b'href="/helpdesk/privacy/audit/"' in dora_client.get(PAGE).content
    assert b'href="/helpdesk/privacy/audit/"' not in ana_client.get("/helpdesk/").content
