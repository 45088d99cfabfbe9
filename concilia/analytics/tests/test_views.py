"""The dashboards as people use them: Sara (supervisor) sees every chart and every agent, Ana
(agent) sees only her own figures, and every chart downloads as the CSV of what it draws."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.urls import reverse

from concilia.analytics.models import SummaryOptOut
from concilia.analytics.refresh import refresh
from concilia.analytics.tables import DASHBOARD
from concilia.cases import actions
from concilia.cases.models import Outcome, Status

pytestmark = pytest.mark.django_db

RANGE = "start=2026-11-23&end=2026-12-06"


@pytest.fixture
def history(clock, open_case, ana, bruno):
    """Three cases opened on Monday 30 November: two for Ana (one answered at 11:00 and closed),
    one for Bruno still waiting."""
    clock.at(2026, 11, 30, 10, 0)
    first, second = open_case(), open_case(email="b@example.com")
    third = open_case(email="c@example.com", language="en")
    for case, person in ((first, ana), (second, ana), (third, bruno)):
        actions.assign_case(case=case, assignee=person, actor=person)
    clock.at(2026, 11, 30, 11, 0)
    actions.reply_to_customer(
        case=first, body="Hecho", author=ana, status=Status.CLOSED, outcome=Outcome.RESOLVED
    )
    clock.at(2026, 12, 1, 9, 0)
    refresh(now=clock.now)
    return first, second, third


def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_sara_sees_every_chart_drawn_on_the_server(history, sara):
    response = signed_in(sara).get(reverse("analytics:dashboard") + "?" + RANGE)
    assert response.status_code == 200
    page = response.content.decode()
    # Every chart is an SVG drawn on the server, with its CSV link
    for slug in DASHBOARD:
        assert f'data-chart="{slug}"' in page
        assert reverse("analytics:csv", args=[slug]) + "?" + RANGE.replace("&", "&amp;") in page
    assert page.count("<svg") == len(DASHBOARD)
    assert "<script" not in page.split("<main")[1].split("</main>")[0]
    # with the headline figures: 3 opened, 1 resolved (33.3%)
    assert "Cases opened" in page and "33.3 %" in page


def test_the_dashboard_reads_only_the_aggregates(history, sara, django_assert_max_num_queries):
    client = signed_in(sara)
    client.get(reverse("analytics:dashboard"))
    with django_assert_max_num_queries(25) as captured:
        assert client.get(reverse("analytics:dashboard") + "?" + RANGE).status_code == 200
    tables = " ".join(q["sql"] for q in captured.captured_queries)
    assert "cases_case" not in tables and "cases_caseevent" not in tables
    assert "assistant_conversation" not in tables


def test_ana_sees_her_own_figures_and_not_the_dashboard(history, ana):
    client = signed_in(ana)
    assert client.get(reverse("analytics:dashboard")).status_code == 403
    assert client.get(reverse("analytics:people")).status_code == 403
    page = client.get(reverse("analytics:mine") + "?" + RANGE).content.decode()
    # Her two cases, not Bruno's: 2 opened, 1 open now, 50% resolved
    figures = page.split('class="analytics-figures"')[1].split("</section>")[0]
    assert ">2</strong>" in figures and "50.0 %" in figures
    # Her CSV of the volume is hers, whatever agent she asks for
    response = client.get(reverse("analytics:csv", args=["volume"]) + "?" + RANGE + "&assignee=1")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day", "Opened", "Closed"]
    assert ["2026-11-30", "2", "1"] in rows
    assert client.get(reverse("analytics:csv", args=["agents"])).status_code == 403


def test_the_csv_holds_what_the_chart_draws(history, sara):
    client = signed_in(sara)
    response = client.get(reverse("analytics:csv", args=["volume"]) + "?" + RANGE)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="volume-20261123-20261206.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Day", "Opened", "Closed"]
    assert len(rows) == 1 + 14  # one row per day of the range
    assert rows[1 + 7] == ["2026-11-30", "3", "1"]
    assert rows[1 + 8] == ["2026-12-01", "0", "0"]
    # The figures: every KPI by name
    figures = dict(
        csv.reader(
            io.StringIO(
                client.get(reverse("analytics:csv", args=["kpis"]) + "?" + RANGE).content.decode()
            )
        )
    )
    assert figures["Cases opened"] == "3"
    assert figures["Resolution rate"] == "0.3333"
    assert figures["Open now"] == "2"
    # 1 hour, read from the buckets: within one bucket (15%)
    assert float(figures["Median first response (calendar hours)"]) == pytest.approx(1, rel=0.15)
    # Open cases by age: both open cases are 23 hours old at the refresh
    ages = list(
        csv.reader(
            io.StringIO(
                client.get(reverse("analytics:csv", args=["ages"]) + "?" + RANGE).content.decode()
            )
        )
    )
    assert ages[1:3] == [["0-1 days", "2"], ["1-3 days", "0"]]


def test_agents_and_teams_side_by_side(history, sara, ana, bruno):
    page = signed_in(sara).get(reverse("analytics:people") + "?" + RANGE).content.decode()
    agents = page.split('data-table="agents"')[1].split("</section>")[0]
    assert '<th scope="row">Ana</th><td>2</td><td>1</td>' in agents
    assert '<th scope="row">Bruno</th><td>1</td><td>0</td>' in agents
    teams = page.split('data-table="teams"')[1].split("</section>")[0]
    assert "Care" in teams


def test_bad_filters_get_a_clear_error_not_a_500(history, sara):
    client = signed_in(sara)
    response = client.get(reverse("analytics:dashboard") + "?start=2026-12-06&end=2026-11-01")
    assert response.status_code == 200
    assert "The start of the range is after its end." in response.content.decode()
    response = client.get(reverse("analytics:csv", args=["volume"]) + "?start=yesterday")
    assert response.status_code == 400
    assert client.get(reverse("analytics:csv", args=["nothing"])).status_code == 404
    far = (dt.date(2020, 1, 1)).isoformat()
    response = client.get(reverse("analytics:dashboard") + f"?start={far}&end=2026-12-01")
    assert "Choose a range of at most 731 days." in response.content.decode()


def test_sara_turns_the_weekly_summary_off_and_on(sara):
    client = signed_in(sara)
    client.post(reverse("analytics:summary"), {"weekly": "off"})
    assert SummaryOptOut.objects.filter(user=sara).exists()
    client.post(reverse("analytics:summary"), {"weekly": "on"})
    assert not SummaryOptOut.objects.filter(user=sara).exists()
