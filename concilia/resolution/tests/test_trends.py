"""Trends: a burst of similar complaints (15 "parcel lost" complaints about one carrier in one
country within two days) stands out against a quiet month, is shown first on the supervisors'
trends page, alerts its subscribers once, and becomes a collective complaint.

The people: Sara supervises (subscribed to alerts), Silvia supervises too (not subscribed), Ana
is an agent. The customers are numbered; their cases' order facts come from their decisions.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from concilia.accounts.models import ROLE_GROUPS, Role, User
from concilia.cases.jurisdictions import Jurisdiction
from concilia.cases.models import Case, CaseEvent, EventKind, Notification, NotificationKind
from concilia.resolution import trends
from concilia.resolution.models import (
    CollectiveFlag,
    CollectiveKind,
    Decision,
    Trend,
    TrendSubscription,
)

pytestmark = pytest.mark.django_db

LOST = [
    "My parcel never arrived, the tracking says it is lost",
    "Parcel lost by the courier, tracking has not moved for days",
    "The courier lost my parcel and nobody answers",
    "Lost parcel: the tracking number shows no delivery",
    "Where is my parcel? The courier says it is lost",
]
QUIET = [
    "The kettle I bought stopped working after a week",
    "I was charged twice for the same order",
    "The jacket is the wrong size and I want to return it",
    "The discount code was not applied at checkout",
    "The invoice has the wrong company name",
    "The headphones arrived with a broken cable",
    "I want to cancel my subscription",
]


def person(username: str, role: Role) -> User:
    user = User.objects.create_user(username, f"{username}@company.test", "pw", language="en")
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[role][0]))
    return user


@pytest.fixture
def sara(db):
    sara = person("sara", Role.SUPERVISOR)
    trends.subscribe(user=sara)
    return sara


@pytest.fixture
def complaint(open_case):
    """A complaint with its text, arrival time, country and the carrier its order went with."""
    counter = iter(range(1, 10_000))

    def file(
        text: str,
        *,
        at: dt.datetime,
        carrier: str = "",
        country: str = "ES",
        status: str = "in_transit",
    ) -> Case:
        n = next(counter)
        case = open_case(email=f"customer{n}@example.com", name=f"Customer {n}", description=text)
        Case.objects.filter(pk=case.pk).update(
            created_at=at, jurisdiction=Jurisdiction.objects.get(code=country)
        )
        if carrier:
            order = {"found": True, "carrier": carrier, "skus": [], "shipment_status": status}
            Decision.objects.create(
                case=case, source="engine", outcome="escalate", facts={"order": order}
            )
        case.refresh_from_db()
        return case

    return file


@pytest.fixture
def quiet_month(complaint):
    """Four weeks of ordinary complaints, a few a day, one "parcel lost" a week among them."""
    now = timezone.now()
    cases = []
    for day in range(3, 30):
        for n in range(2):
            text = QUIET[(day + n) % len(QUIET)]
            cases.append(complaint(text, at=now - dt.timedelta(days=day, hours=3 * n)))
        if day % 7 == 0:
            cases.append(
                complaint(LOST[day % 5], at=now - dt.timedelta(days=day), carrier="Correos")
            )
    return cases


@pytest.fixture
def burst(complaint):
    """15 "parcel lost" complaints about PaqExpress deliveries in Chile in the last two days."""
    now = timezone.now()
    return [
        complaint(
            LOST[n % len(LOST)],
            at=now - dt.timedelta(hours=2 + 3 * n),
            carrier="PaqExpress",
            country="CL",
            status="lost",
        )
        for n in range(15)
    ]


def test_the_burst_is_one_cluster_and_a_spike_against_a_quiet_month(quiet_month, burst):
    clusters = trends.find()
    spike = clusters[0]
    # The 15 complaints are one cluster, shown first, and a spike
    assert spike.spike
    assert spike.case_ids == sorted(c.pk for c in burst)
    assert [c for c in clusters[1:] if c.spike] == []
    # Its words and what its complaints share
    assert {"parcel", "lost"} <= {word for term in spike.terms for word in term.split()}
    assert ("carrier", "PaqExpress", 15) in spike.facts
    assert ("region", "CL", 15) in spike.facts
    assert ("shipment", "lost", 15) in spike.facts
    # Against its usual level: one such complaint a week, 4 in fourteen two-day periods
    assert len(spike.baseline) == 14
    assert sum(spike.baseline) == 4
    assert spike.mean == pytest.approx(4 / 14)
    assert spike.zscore > 10


def test_the_same_level_as_usual_is_no_spike(quiet_month, complaint):
    # Two "parcel lost" complaints in two days, as some weeks had: a cluster, not a spike
    now = timezone.now()
    for hours in (5, 20):
        complaint(LOST[0], at=now - dt.timedelta(hours=hours), carrier="Correos")
    clusters = trends.find()
    assert clusters
    assert not any(c.spike for c in clusters)


def test_a_new_spike_alerts_each_subscriber_once(quiet_month, burst, sara, run_tasks, mailoutbox):
    silvia = person("silvia", Role.SUPERVISOR)  # not subscribed
    ana = person("ana", Role.AGENT)
    TrendSubscription.objects.create(user=ana)  # subscribed, but no longer supervises
    now = timezone.now()
    # When detection runs, and runs again later with the same complaints and one more
    trends.detect(now=now)
    [trend] = Trend.objects.all()
    assert trend.alerted_at == now
    assert trend.case_ids == sorted(c.pk for c in burst)
    trends.detect(now=now + dt.timedelta(minutes=15))
    # Then Sara alone was told, once, in the helpdesk and by email
    [note] = Notification.objects.filter(kind=NotificationKind.COLLECTIVE)
    assert note.recipient == sara
    assert note.case == max(burst, key=lambda c: c.created_at)
    assert note.note.startswith("New spike of similar complaints: ")
    assert "15 in 2 days" in note.note
    assert "carrier PaqExpress (15 of 15)" in note.note
    assert Trend.objects.count() == 1
    assert not Notification.objects.filter(recipient__in=[silvia, ana]).exists()
    run_tasks()
    assert [m.to for m in mailoutbox if m.to[0].endswith("@company.test")] == [
        ["sara@company.test"]
    ]


def test_the_sweep_runs_detection_once_per_period(quiet_month, burst, sara):
    now = timezone.now()
    assert trends.sweep(now=now) == 1
    assert trends.sweep(now=now + dt.timedelta(minutes=1)) == 0  # not due yet
    assert Notification.objects.filter(recipient=sara).count() == 1


def test_a_spike_becomes_a_collective_complaint(quiet_month, burst, sara):
    [trend] = [c.trend for c in trends.detect(now=timezone.now()) if c.spike]
    flag = trends.flag_trend(trend=trend, actor=sara)
    assert (flag.kind, flag.status) == (CollectiveKind.TOPIC, "open")
    assert flag.case_count == 15
    assert set(flag.cases.values_list("pk", flat=True)) == {c.pk for c in burst}
    assert CaseEvent.objects.filter(kind=EventKind.LINKED, case__in=burst).count() == 15
    # Flagging again links the same flag
    assert trends.flag_trend(trend=trend, actor=sara) == flag
    assert CollectiveFlag.objects.count() == 1


def test_the_trends_page_highlights_the_spike_and_escapes_text(quiet_month, burst, sara, complaint):
    now = timezone.now()
    evil = "<img src=x onerror=alert(1)>"
    for hours in (1, 4):
        complaint(
            "<script>alert('x')</script> broken screen",
            at=now - dt.timedelta(hours=hours),
            carrier=evil,
        )
    trends.detect(now=now)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(sara)
    page = client.get("/helpdesk/trends/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-spike="1"' in html
    assert html.count('data-spike="1"') == 1
    assert "carrier PaqExpress (15 of 15)" in html
    assert "Flag as a collective complaint" in html
    assert "<script>alert" not in html and evil not in html
    assert "carrier &lt;img src=x onerror=alert(1)&gt; (2 of 2)" in html
    assert "You are alerted" in html
    # Spanish too
    page = Client(HTTP_ACCEPT_LANGUAGE="es")
    page.force_login(sara)
    assert page.get("/helpdesk/trends/").status_code == 200


def test_supervisors_subscribe_and_flag_from_the_page(quiet_month, burst):
    silvia = person("silvia", Role.SUPERVISOR)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(silvia)
    assert client.post("/helpdesk/trends/subscription", {"subscribe": "1"}).status_code == 302
    assert TrendSubscription.objects.filter(user=silvia).exists()
    [trend] = [c.trend for c in trends.detect(now=timezone.now()) if c.spike]
    response = client.post(f"/helpdesk/trends/{trend.pk}/flag")
    flag = CollectiveFlag.objects.get()
    assert response["Location"] == f"/helpdesk/collective/{flag.pk}"
    assert client.post("/helpdesk/trends/subscription", {"subscribe": "0"}).status_code == 302
    assert not TrendSubscription.objects.filter(user=silvia).exists()


def test_agents_and_strangers_may_not_see_trends():
    ana = person("ana", Role.AGENT)
    client = Client()
    assert client.get("/helpdesk/trends/").status_code == 302  # to the sign-in page
    client.force_login(ana)
    assert client.get("/helpdesk/trends/").status_code == 403
    assert client.post("/helpdesk/trends/subscription", {"subscribe": "1"}).status_code == 403
