"""Legal deadlines: each case carries the deadline of its jurisdiction's law, counted in that
jurisdiction's working days, shown in the helpdesk and the API, and warned of before and at it.

Ana is an agent of Customer care, Sara its supervisor, Bruno an agent of Logistics.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.utils import timezone

from concilia.accounts.models import ApiToken
from concilia.cases import actions, legal
from concilia.cases.jurisdictions import LegalRule, Origin, RuleKind
from concilia.cases.models import (
    Case,
    Category,
    EventKind,
    Jurisdiction,
    Notification,
    NotificationKind,
)
from concilia.cases.sweep import sweep
from concilia.core.memo import forget_all
from concilia.core.models import BusinessCalendar, Holiday

MADRID = ZoneInfo("Europe/Madrid")
SANTIAGO = ZoneInfo("America/Santiago")


def terms(code: str) -> legal.LegalTerms:
    found = legal.terms_of(Jurisdiction.objects.get(code=code).pk)
    assert found is not None
    return found


def end_of(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=zone)


# --- counting in each jurisdiction's working days ----------------------------------------------


def test_spain_counts_15_working_days_over_christmas_and_new_year(db):
    # Given a complaint received in Madrid on Thursday 10 December 2026
    received = dt.datetime(2026, 12, 10, 11, 30, tzinfo=MADRID)
    # Then its 15 working days skip the weekends, Christmas Day and New Year's Day
    assert terms("ES").deadline(received) == end_of(dt.date(2027, 1, 4), MADRID)


def test_spain_counts_the_immaculate_conception_and_the_following_weekend(db):
    received = dt.datetime(2026, 12, 2, 9, 0, tzinfo=MADRID)  # Wednesday
    # 3, 4, 7, (8 holiday), 9 … 24 December: the 15th working day is Thursday the 24th
    assert terms("ES").deadline(received) == end_of(dt.date(2026, 12, 24), MADRID)


def test_chile_counts_10_working_days_over_the_fiestas_patrias(db):
    # Given a complaint received in Santiago on Monday 14 September 2026
    received = dt.datetime(2026, 9, 14, 10, 0, tzinfo=SANTIAGO)
    # Then 18 (Independence Day) and 19 September (Army Day, a Saturday) do not count
    assert terms("CL").deadline(received) == end_of(dt.date(2026, 9, 29), SANTIAGO)


def test_a_complaint_received_late_in_the_evening_counts_from_the_local_day(db):
    # 23:30 in Santiago on Friday 4 December is already Saturday in UTC: the local day counts
    received = dt.datetime(2026, 12, 4, 23, 30, tzinfo=SANTIAGO)
    # 7, (8: Immaculate Conception), 9 … 18, 21 December: the 10th working day is Monday the 21st
    assert terms("CL").deadline(received) == end_of(dt.date(2026, 12, 21), SANTIAGO)


def test_the_eu_adr_rule_counts_calendar_days(db):
    received = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    deadline = terms("EU-ADR").deadline(received)
    assert deadline == end_of(dt.date(2026, 5, 31), ZoneInfo("Europe/Brussels"))


def test_a_jurisdiction_without_a_legal_deadline_counts_none(db):
    assert terms("MX").deadline(timezone.now()) is None


def test_a_regional_holiday_of_the_jurisdiction_calendar_counts_but_company_closures_do_not(db):
    # Given Spain with a calendar whose own holiday is 11 December, and a company-wide closure
    calendar = BusinessCalendar.objects.create(name="Madrid (legal)", time_zone="Europe/Madrid")
    Holiday.objects.create(date=dt.date(2026, 12, 11), name="Local", calendar=calendar)
    Holiday.objects.create(date=dt.date(2026, 12, 14), name="Company closure")
    Jurisdiction.objects.filter(code="ES").update(calendar=calendar)
    forget_all()
    received = dt.datetime(2026, 12, 10, 11, 30, tzinfo=MADRID)
    # Then the local holiday moves the deadline one working day on; the closure does not
    assert terms("ES").deadline(received) == end_of(dt.date(2027, 1, 5), MADRID)


# --- cases carry the legal deadline ------------------------------------------------------------


def test_a_new_case_gets_the_default_jurisdiction_and_its_legal_deadline(open_case):
    case = open_case()
    assert case.jurisdiction.code == "ES"
    assert case.legal_deadline == terms("ES").deadline(case.created_at)
    assert case.legal_deadline != case.deadline  # next to the internal SLA, not instead of it
    assert case.legal_alert_due_at is not None and case.legal_alert_due_at < case.legal_deadline


def test_a_category_can_name_another_jurisdiction(open_case):
    Category.objects.filter(code="other").update(jurisdiction=Jurisdiction.objects.get(code="CL"))
    case = open_case()
    assert case.jurisdiction.code == "CL"
    assert case.legal_deadline == terms("CL").deadline(case.created_at)


def test_a_jurisdiction_added_by_an_administrator_is_used(client, open_case, django_user_model):
    # Given an administrator adds Uruguay with 5 working days in the admin
    root = django_user_model.objects.create_superuser("root", "root@company.test", "pw")
    client.force_login(root)
    rule = {
        "code": "response",
        "kind": "response",
        "position": "0",
        "title_es": "Respuesta en 5 días hábiles",
        "title_en": "Answer within 5 working days",
        "days": "5",
        "day_count": "working",
        "counted_from": "receipt",
        "source_law": "Ley 17.250",
        "source_url": "https://www.impo.com.uy/bases/leyes/17250-2000",
    }
    response = client.post(
        "/admin/cases/jurisdiction/add/",
        {
            "code": "UY",
            "name_es": "Uruguay",
            "name_en": "Uruguay",
            "active": "on",
            "holiday_country": "UY",
            "time_zone": "America/Montevideo",
            "warn_days": "2",
            "rules-TOTAL_FORMS": "1",
            "rules-INITIAL_FORMS": "0",
            "rules-MIN_NUM_FORMS": "0",
            "rules-MAX_NUM_FORMS": "1000",
            **{f"rules-0-{name}": value for name, value in rule.items()},
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    uruguay = Jurisdiction.objects.get(code="UY")
    assert uruguay.origin == Origin.ADMIN and uruguay.rules.get().origin == Origin.ADMIN
    # And its category uses it
    Category.objects.filter(code="other").update(jurisdiction=uruguay)
    # When a case is opened in that category
    case = open_case()
    # Then it carries Uruguay's deadline, counted in Uruguay's working days
    assert case.jurisdiction == uruguay
    montevideo = ZoneInfo("America/Montevideo")
    expected = legal.LegalCalendar(
        time_zone="America/Montevideo", country="UY", calendar_id=None
    ).deadline(case.created_at, 5)
    assert case.legal_deadline == expected
    assert expected.astimezone(montevideo).time() == dt.time(23, 59, 59)
    # And loading the shipped file again leaves the administrators' rows alone
    Jurisdiction.objects.filter(code="CL").update(warn_days=5, origin=Origin.ADMIN)
    call_command_output("legal", "load", "--update")
    assert Jurisdiction.objects.get(code="CL").warn_days == 5
    assert Jurisdiction.objects.filter(code="UY").exists()


def test_loading_restores_a_deleted_shipped_jurisdiction_and_keeps_one_default(db):
    Jurisdiction.objects.filter(code="PE").delete()
    out = call_command_output("legal", "load")
    assert "created: PE" in out
    assert Jurisdiction.objects.filter(is_default=True).count() == 1
    rule = LegalRule.objects.get(jurisdiction__code="PE", kind=RuleKind.RESPONSE)
    assert (rule.days, rule.day_count, rule.origin) == (15, "working", Origin.FILE)
    assert rule.source_law and rule.source_url.startswith("https://")


def call_command_output(*args: str) -> str:
    import io

    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_every_shipped_rule_cites_its_source(db):
    for rule in LegalRule.objects.filter(origin=Origin.FILE):
        assert rule.source_law, rule
        assert rule.source_url.startswith(("https://", "http://")), rule
    spain = LegalRule.objects.get(jurisdiction__code="ES", kind=RuleKind.RESPONSE)
    assert (spain.days, spain.day_count) == (15, "working")
    assert "Ley 10/2025" in spain.source_law
    assert spain.source_url == "https://www.boe.es/eli/es/l/2025/12/26/10"
    duties = set(
        LegalRule.objects.filter(jurisdiction__code="ES", kind=RuleKind.DUTY).values_list(
            "code", flat=True
        )
    )
    assert duties == {"tracking_code", "person_on_request", "customer_language"}
    chile = LegalRule.objects.get(jurisdiction__code="CL", kind=RuleKind.RESPONSE)
    assert (chile.days, chile.source_article) == (10, "Artículo 56")


def test_a_rule_whose_citation_was_not_confirmed_says_so_in_its_note(db):
    # Chile's article 56 was read; Spain's article for the 15 days was not found
    chile = LegalRule.objects.get(jurisdiction__code="CL", code="response")
    spain = LegalRule.objects.get(jurisdiction__code="ES", code="response")
    assert not chile.note.startswith(legal.NOT_VERIFIED) and "suseso.cl" in chile.note
    assert spain.note.startswith(legal.NOT_VERIFIED)
    assert spain.source_article == ""  # no article rather than a wrong one
    peru = LegalRule.objects.get(jurisdiction__code="PE", code="response")
    assert peru.source_article == "Artículo 24 del Código; artículos 3 y 6 del Reglamento"
    assert "Ley 31435" in peru.source_law
    adr_reply = LegalRule.objects.get(jurisdiction__code="EU-ADR", code="trader_reply_to_adr")
    assert (adr_reply.kind, adr_reply.days, adr_reply.day_count) == (RuleKind.OTHER, 20, "working")
    # What the file marks is what the database says, rule by rule
    for entry in legal.read_file():
        for rule in entry["rules"]:
            stored = LegalRule.objects.get(jurisdiction__code=entry["code"], code=rule["code"])
            assert stored.note.startswith(legal.NOT_VERIFIED) == (rule["verified"] is False)


def test_staff_change_the_jurisdiction_and_the_deadline_is_counted_again(
    client, open_case, teams, ana
):
    case = open_case()
    received = dt.datetime(2026, 9, 14, 10, 0, tzinfo=SANTIAGO)
    Case.objects.filter(pk=case.pk).update(created_at=received)
    case.refresh_from_db()
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/jurisdiction",
        {"version": case.version, "jurisdiction": "CL"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.jurisdiction.code == "CL"
    assert case.legal_deadline == end_of(dt.date(2026, 9, 29), SANTIAGO)
    event = case.events.get(kind=EventKind.JURISDICTION_CHANGED)
    assert (event.data["from"], event.data["to"], event.actor_user) == ("ES", "CL", ana)
    # None: no legal deadline any more
    client.post(
        f"/helpdesk/cases/{case.reference}/jurisdiction",
        {"version": case.version, "jurisdiction": ""},
    )
    case.refresh_from_db()
    assert (case.jurisdiction, case.legal_deadline, case.legal_alert_due_at) == (None, None, None)


def test_an_unknown_jurisdiction_is_refused_with_a_message(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    response = client.post(
        f"/helpdesk/cases/{case.reference}/jurisdiction",
        {"version": case.version, "jurisdiction": "XX"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    case.refresh_from_db()
    assert case.jurisdiction.code == "ES"


def test_the_case_page_and_the_queue_show_the_legal_deadline(client, open_case, teams, ana):
    case = open_case()
    client.force_login(ana)
    page = client.get(f"/helpdesk/cases/{case.reference}", HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert "Legal deadline" in text and "Spain (ES)" in text
    assert "Answer to the complaint within 15 working days" in text
    assert "https://www.boe.es/eli/es/l/2025/12/26/10" in text
    assert f"/helpdesk/dossier/{case.reference}" in text
    queue = client.get("/helpdesk/?view=all", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-legal="green"' in queue and "<small>ES</small>" in queue


def test_the_api_gives_the_legal_deadline_and_its_rule(client, open_case, teams, ana):
    case = open_case()
    raw = ApiToken.issue(user=ana, name="CRM")[1]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_ACCEPT_LANGUAGE": "en"}
    body = client.get(f"/api/v1/cases/{case.reference}", **headers).json()
    assert body["jurisdiction"] == "ES"
    assert dt.datetime.fromisoformat(body["legal_deadline"]) == case.legal_deadline
    assert body["legal_clock"] == "green"
    assert body["legal_rule"]["days"] == 15 and "Ley 10/2025" in body["legal_rule"]["law"]
    listed = client.get("/api/v1/cases", {"view": "all"}, **headers).json()["items"]
    assert listed[0]["jurisdiction"] == "ES" and listed[0]["legal_deadline"]


# --- warnings ----------------------------------------------------------------------------------


def legal_notifications(case: Case) -> list[tuple[str, str]]:
    return sorted(
        Notification.objects.filter(
            case=case,
            kind__in=[NotificationKind.LEGAL_AT_RISK, NotificationKind.LEGAL_BREACHED],
        ).values_list("kind", "recipient__username")
    )


def test_the_helpdesk_warns_once_before_the_legal_deadline_and_once_when_it_is_missed(
    open_case, teams, ana, sara
):
    # Given Ana owns a case (Sara supervises her team)
    case = open_case()
    actions.assign_case(case=case, assignee=ana, actor=sara)
    case.refresh_from_db()
    warn_at, deadline = case.legal_alert_due_at, case.legal_deadline
    # The warning comes when three working days are left: the end of the working day before
    local = warn_at.astimezone(MADRID)
    left = terms("ES").calendar.working_days_between(
        local.date() + dt.timedelta(days=1), deadline.astimezone(MADRID).date()
    )
    assert (left, local.time()) == (3, dt.time(23, 59, 59))
    # Nothing before it
    sweep(now=warn_at - dt.timedelta(seconds=1))
    assert legal_notifications(case) == []
    # Then the owner is told once, however often the sweep runs
    first = sweep(now=warn_at)
    sweep(now=warn_at + dt.timedelta(hours=1))
    assert first.legal_near == 1
    assert legal_notifications(case) == [(NotificationKind.LEGAL_AT_RISK, "ana")]
    # At the deadline the owner and the supervisor are told that it was missed, once
    missed = sweep(now=deadline)
    sweep(now=deadline + dt.timedelta(days=2))
    assert missed.legal_breached == 1
    assert legal_notifications(case) == [
        (NotificationKind.LEGAL_AT_RISK, "ana"),
        (NotificationKind.LEGAL_BREACHED, "ana"),
        (NotificationKind.LEGAL_BREACHED, "sara"),
    ]
    kinds = list(
        case.events.filter(
            kind__in=[EventKind.LEGAL_AT_RISK, EventKind.LEGAL_BREACHED]
        ).values_list("kind", flat=True)
    )
    assert kinds == [EventKind.LEGAL_AT_RISK, EventKind.LEGAL_BREACHED]
    note = Notification.objects.get(kind=NotificationKind.LEGAL_BREACHED, recipient=ana).note
    assert note == f"ES {deadline.astimezone(MADRID):%Y-%m-%d}"


def test_the_legal_clock_runs_while_the_case_waits_for_the_customer_but_not_once_closed(
    open_case, teams, ana
):
    waiting, closed = open_case(), open_case(email="other@example.com")
    actions.reply_to_customer(case=waiting, body="¿Nos envía una foto?", author=ana)
    actions.close_case(case=closed, outcome="resolved", actor_user=ana)
    for case in (waiting, closed):
        case.refresh_from_db()
    # Waiting for the customer pauses the SLA, never the legal deadline
    assert waiting.sla_paused_at is not None
    result = sweep(now=waiting.legal_deadline + dt.timedelta(minutes=1))
    assert result.legal_breached == 1
    assert legal_notifications(waiting) and not legal_notifications(closed)


def test_a_reopened_case_gets_a_new_legal_deadline_from_its_reopening(open_case, teams, ana):
    case = open_case()
    actions.close_case(case=case, outcome="resolved", actor_user=ana)
    old = Case.objects.get(pk=case.pk).legal_deadline
    actions.change_status(case=case, status="pending_agent", actor_user=ana)
    case.refresh_from_db()
    assert case.legal_deadline >= old
    assert case.legal_alerted == "" and case.legal_alert_due_at is not None
