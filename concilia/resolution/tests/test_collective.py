"""Collective complaints: many customers complaining about the same thing within a window raise
one flag that supervisors see and act on once for all its cases.

The people: Sara supervises Customer care, Ana is one of its agents. The customers are Lucía,
Marta, Pedro, Jorge, Elena and Tomás, each with their own email. Their orders come from a shop
the tests stock themselves (`FakeShop`), so that each order's product, carrier and days are
exactly what a test says.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from concilia.accounts.models import ROLE_GROUPS, Role, User
from concilia.cases import actions as case_actions
from concilia.cases.models import (
    Case,
    CaseEvent,
    Category,
    EventKind,
    Notification,
    NotificationKind,
    Outcome,
    Status,
)
from concilia.core.ports import Order, OrderItem, Shipment
from concilia.resolution import collective
from concilia.resolution.actions import triage_case
from concilia.resolution.engine import Settlement
from concilia.resolution.models import (
    CollectiveFlag,
    CollectiveKind,
    CollectiveMember,
    CollectiveRule,
    CollectiveSignal,
    Decision,
    DecisionSource,
    FlagStatus,
    Resolution,
)

pytestmark = pytest.mark.django_db

CUSTOMERS = ["lucia", "marta", "pedro", "jorge", "elena", "tomas"]
TODAY = dt.date(2026, 12, 3)


class FakeShop:
    """An OrderLookup over the orders a test puts in `orders` (by number)."""

    orders: dict[str, Order] = {}

    def find_order(self, *, number: str, email: str) -> Order | None:
        return self.orders.get(number)


@pytest.fixture
def shop(settings):
    """Stock an order: `shop("K1", sku="SKU-KETTLE", carrier="SEUR", placed=..., promised=...)`."""
    from concilia.core.ports import _load

    settings.ORDER_LOOKUP = "concilia.resolution.tests.test_collective.FakeShop"
    _load.cache_clear()
    FakeShop.orders = {}

    def stock(
        number: str,
        *,
        sku: str = "SKU-KETTLE",
        carrier: str = "SEUR",
        placed: dt.date = TODAY - dt.timedelta(days=6),
        promised: dt.date | None = TODAY - dt.timedelta(days=3),
    ) -> str:
        FakeShop.orders[number] = Order(
            number=number,
            customer_email="",
            placed_on=placed,
            total=Decimal("39.90"),
            currency="EUR",
            payment_method="card",
            items=(OrderItem(sku=sku, name=sku, quantity=1, unit_price=Decimal("39.90")),),
            shipment=Shipment(
                carrier=carrier,
                tracking_number=f"T{number}",
                status="in_transit",
                promised_on=promised,
            ),
        )
        return number

    yield stock
    FakeShop.orders = {}
    _load.cache_clear()


def person(username: str, role: Role) -> User:
    user = User.objects.create_user(username, f"{username}@company.test", "pw", language="en")
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[role][0]))
    return user


@pytest.fixture
def sara(db):
    return person("sara", Role.SUPERVISOR)


@pytest.fixture
def ana(db):
    return person("ana", Role.AGENT)


@pytest.fixture
def complain(open_case):
    """A customer's complaint, triaged (as every channel has it triaged)."""

    def file(customer: str, *, category: str = "damaged_missing", **extra) -> Case:
        case = open_case(
            email=f"{customer}@example.com",
            name=customer.title(),
            category=category,
            purchase_date=TODAY - dt.timedelta(days=6),
            **extra,
        )
        triage_case(case=case)
        return case

    return file


def a_kettle_each(shop, complain, customers, **order) -> list[Case]:
    """Each customer complains about a kettle from a different day's shipment and carrier, so
    that only the product is shared."""
    cases = []
    for n, customer in enumerate(customers):
        number = shop(
            f"K{len(FakeShop.orders) + 1}",
            sku="SKU-KETTLE",
            carrier=f"Carrier {n}",
            placed=TODAY - dt.timedelta(days=6 + n),
            **order,
        )
        cases.append(complain(customer, order_number=number))
    return cases


# Detection -----------------------------------------------------------------------------------


def test_four_customers_with_the_same_product_raise_no_flag_and_the_fifth_does(shop, complain):
    # given four customers who complain about the same kettle within the window
    cases = a_kettle_each(shop, complain, CUSTOMERS[:4])
    assert CollectiveFlag.objects.count() == 0
    assert CollectiveSignal.objects.filter(kind="product", key="SKU-KETTLE").count() == 4
    # when a fifth customer complains about it
    cases += a_kettle_each(shop, complain, CUSTOMERS[4:5])
    # then one flag is raised for the product, with the five cases and customers
    flag = CollectiveFlag.objects.get()
    assert (flag.kind, flag.key, flag.status) == ("product", "SKU-KETTLE", FlagStatus.OPEN)
    assert flag.detail == {"sku": "SKU-KETTLE"}
    assert (flag.customers, flag.case_count) == (5, 5)
    assert (flag.min_customers, flag.window_hours) == (5, 48)
    assert set(flag.cases.values_list("pk", flat=True)) == {c.pk for c in cases}
    assert flag.first_seen_at == cases[0].created_at
    assert flag.last_seen_at == cases[-1].created_at
    # and every case has a line in its history saying so
    for case in cases:
        event = CaseEvent.objects.get(case=case, kind=EventKind.LINKED)
        assert event.data == {
            "collective": flag.pk,
            "kind": "product",
            "key": "SKU-KETTLE",
            "raised": True,
        }


def test_the_same_customer_twice_counts_once(shop, complain):
    # given four customers, one of whom (Lucía) complains twice about the kettle
    cases = a_kettle_each(shop, complain, ["lucia", "marta", "pedro", "jorge", "lucia"])
    # then five cases make only four customers: no flag
    assert len(cases) == 5
    assert CollectiveFlag.objects.count() == 0
    # when a fifth customer complains, the flag counts five customers and six cases
    cases += a_kettle_each(shop, complain, ["elena"])
    flag = CollectiveFlag.objects.get()
    assert (flag.customers, flag.case_count) == (5, 6)


def test_complaints_outside_the_window_do_not_count(shop, complain):
    # given four complaints about the kettle that arrived 49 hours ago (the window is 48)
    old = a_kettle_each(shop, complain, CUSTOMERS[:4])
    long_ago = timezone.now() - dt.timedelta(hours=49)
    Case.objects.filter(pk__in=[c.pk for c in old]).update(created_at=long_ago)
    CollectiveSignal.objects.filter(case__in=old).update(seen_at=long_ago)
    # when a fifth arrives now
    a_kettle_each(shop, complain, CUSTOMERS[4:5])
    # then there is no flag: only one complaint is within the window
    assert CollectiveFlag.objects.count() == 0


def test_the_same_carrier_and_promised_day_raises_a_carrier_day_flag(shop, complain):
    # given five late parcels of different products and order days, all SEUR's of 30 November
    promised = TODAY - dt.timedelta(days=3)
    for n, customer in enumerate(CUSTOMERS[:5]):
        number = shop(
            f"S{n}",
            sku=f"SKU-{n}",
            carrier="SEUR",
            placed=TODAY - dt.timedelta(days=6 + n),
            promised=promised,
        )
        complain(customer, category="shipping_delay", order_number=number)
    # then one flag for the carrier and day, and none for products or shipment batches
    flag = CollectiveFlag.objects.get()
    assert (flag.kind, flag.key) == ("carrier_day", f"SEUR|{promised.isoformat()}")
    assert flag.detail == {"carrier": "SEUR", "day": promised.isoformat()}
    assert flag.customers == 5
    assert collective.describe_flag(flag, language="en") == "SEUR, delivery promised for 11/30/2026"


def test_the_same_charge_in_billing_errors_raises_a_charge_flag(complain):
    # given four customers charged 12.99 € by mistake, and one charged 13.99 €
    for customer in CUSTOMERS[:4]:
        complain(customer, category="billing_error", amount=Decimal("12.99"))
    complain("elena", category="billing_error", amount=Decimal("13.99"))
    assert CollectiveFlag.objects.count() == 0
    # when a fifth customer complains of the same 12.99 €
    complain("tomas", category="billing_error", amount=Decimal("12.99"))
    # then one flag for that charge, its amount in Decimal
    flag = CollectiveFlag.objects.get()
    assert (flag.kind, flag.key) == ("charge", "billing_error|12.99|EUR")
    assert (flag.amount, flag.currency) == (Decimal("12.99"), "EUR")
    assert flag.customers == 5
    assert "tomas@example.com" in set(flag.cases.values_list("customer__email", flat=True))
    assert "elena@example.com" not in set(flag.cases.values_list("customer__email", flat=True))


def test_charges_in_categories_the_rule_does_not_watch_do_not_count(complain):
    for customer in CUSTOMERS[:5]:
        complain(customer, category="refund", amount=Decimal("12.99"), order_number="")
    assert CollectiveSignal.objects.count() == 0
    assert CollectiveFlag.objects.count() == 0


def test_triaging_again_does_not_duplicate_membership(shop, complain):
    # given a flag of five kettle complaints
    cases = a_kettle_each(shop, complain, CUSTOMERS[:5])
    flag = CollectiveFlag.objects.get()
    # when every case is decided again (new evidence arrived)
    for case in cases:
        triage_case(case=case, again=True)
    # then each case is in the flag once, with one signal per thing it shares and one event
    flag.refresh_from_db()
    assert (flag.customers, flag.case_count) == (5, 5)
    assert CollectiveMember.objects.filter(flag=flag).count() == 5
    assert CollectiveSignal.objects.filter(kind="product").count() == 5
    assert CaseEvent.objects.filter(kind=EventKind.LINKED, case__in=cases).count() == 5
    assert CollectiveFlag.objects.count() == 1


def test_supervisors_are_told_once_and_later_complaints_join_the_flag(shop, complain, sara, ana):
    # given five kettle complaints: the flag is raised
    cases = a_kettle_each(shop, complain, CUSTOMERS[:5])
    flag = CollectiveFlag.objects.get()
    # then Sara (a supervisor) is told once, on the case that raised it; Ana (an agent) is not
    told = Notification.objects.filter(kind=NotificationKind.COLLECTIVE)
    assert [(n.recipient, n.case) for n in told] == [(sara, cases[-1])]
    assert told.get().note == (
        f"product SKU-KETTLE: 5 customers (Same product). See /helpdesk/collective/{flag.pk}"
    )
    # when a sixth customer complains about the kettle
    sixth = a_kettle_each(shop, complain, CUSTOMERS[5:6])[0]
    # then the case joins the open flag and nobody is told again
    flag.refresh_from_db()
    assert (flag.customers, flag.case_count) == (6, 6)
    assert flag.last_seen_at == sixth.created_at
    assert CollectiveMember.objects.filter(flag=flag, case=sixth).exists()
    assert CaseEvent.objects.get(case=sixth, kind=EventKind.LINKED).data["raised"] is False
    assert told.count() == 1


def test_thresholds_are_tuned_in_the_database(shop, complain):
    # given an administrator who wants three customers within a day to be enough
    rule = CollectiveRule.objects.get(kind=CollectiveKind.PRODUCT)
    rule.min_customers, rule.window_hours = 3, 24
    rule.save()
    # when three customers complain about the kettle
    a_kettle_each(shop, complain, CUSTOMERS[:3])
    # then the flag is raised, and keeps the rule it was raised under
    flag = CollectiveFlag.objects.get()
    assert (flag.customers, flag.min_customers, flag.window_hours) == (3, 3, 24)


def test_a_rule_switched_off_detects_nothing(shop, complain):
    CollectiveRule.objects.filter(kind=CollectiveKind.PRODUCT).update(active=False)
    a_kettle_each(shop, complain, CUSTOMERS[:5])
    assert not CollectiveSignal.objects.filter(kind="product").exists()
    assert CollectiveFlag.objects.count() == 0


def test_after_a_dismissal_only_new_complaints_count(shop, complain, sara):
    # given a flag of five complaints, dismissed by Sara
    a_kettle_each(shop, complain, CUSTOMERS[:5])
    flag = CollectiveFlag.objects.get()
    collective.dismiss_flag(flag=flag, actor=sara, reason="Different faults, checked one by one.")
    # when a sixth customer complains within the window
    a_kettle_each(shop, complain, CUSTOMERS[5:6])
    # then no new flag: the dismissed complaints are not counted again
    assert CollectiveFlag.objects.count() == 1
    flag.refresh_from_db()
    assert (flag.status, flag.closed_by, flag.case_count) == (FlagStatus.DISMISSED, sara, 5)
    assert flag.close_reason == "Different faults, checked one by one."


def test_the_sweep_raises_a_flag_that_concurrent_triage_missed(shop, complain, sara):
    # given four kettle complaints, and a fifth whose triage ran at the same time as the fourth's
    # (each saw four customers, neither raised the flag)
    cases = a_kettle_each(shop, complain, CUSTOMERS[:4])
    fifth = a_kettle_each(shop, complain, CUSTOMERS[4:5])[0]
    CollectiveMember.objects.all().delete()
    CollectiveFlag.objects.all().delete()
    Notification.objects.all().delete()
    # when the sweep runs
    raised = collective.sweep()
    # then the flag is raised with all five cases and Sara is told, once
    assert raised == 1
    flag = CollectiveFlag.objects.get()
    assert set(flag.cases.values_list("pk", flat=True)) == {c.pk for c in [*cases, fifth]}
    assert Notification.objects.filter(kind=NotificationKind.COLLECTIVE).count() == 1
    # and a second sweep raises nothing more
    assert collective.sweep() == 0
    assert CollectiveFlag.objects.count() == 1


def test_the_sweep_forgets_old_signals(shop, complain):
    a_kettle_each(shop, complain, CUSTOMERS[:2])
    CollectiveSignal.objects.update(seen_at=timezone.now() - dt.timedelta(days=31))
    collective.sweep()
    assert CollectiveSignal.objects.count() == 0


def test_a_failure_in_detection_never_undoes_the_triage(shop, complain, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(collective, "_consider", broken)
    case = a_kettle_each(shop, complain, CUSTOMERS[:1])[0]
    assert Decision.objects.filter(case=case).count() == 1
    assert CollectiveFlag.objects.count() == 0


# Acting on a flag ----------------------------------------------------------------------------


@pytest.fixture
def kettle_flag(shop, complain):
    cases = a_kettle_each(shop, complain, CUSTOMERS[:5])
    return CollectiveFlag.objects.get(), cases


def test_one_decision_settles_every_open_case_and_reports_the_closed_ones(kettle_flag, sara):
    flag, cases = kettle_flag
    # given one of the five cases was already closed by an agent
    case_actions.close_case(case=cases[1], outcome=Outcome.RESOLVED, actor_user=sara)
    # when Sara (working in English) gives every customer 15 € of credit
    with translation.override("en"):
        report = collective.act_on_flag(
            flag=flag,
            actor=sara,
            settlement=Settlement(kind="credit", amount=Decimal("15.00"), currency="EUR"),
            reason="The kettles of this batch had a faulty lid.",
        )
    # then the four open cases are settled and the closed one is reported
    open_refs = [c.reference for c in cases if c != cases[1]]
    assert report.settled == open_refs
    assert report.not_settled == [
        {"reference": cases[1].reference, "why": "closed", "detail": "resolved"}
    ]
    for case in cases:
        case.refresh_from_db()
        assert case.status == Status.CLOSED
    # each by an audited override of its decision, with the reason, and a binding resolution
    overrides = Decision.objects.filter(source=DecisionSource.OVERRIDE)
    assert overrides.count() == 4
    for record in overrides:
        assert record.actor_user == sara
        assert record.override_reason == (
            f"Collective complaint #{flag.pk}: The kettles of this batch had a faulty lid."
        )
        assert record.overrides.source == DecisionSource.ENGINE
    resolutions = Resolution.objects.filter(case__in=cases)
    assert sorted(r.case.reference for r in resolutions) == sorted(open_refs)
    assert {(r.kind, r.amount, r.currency, r.agreed_by) for r in resolutions} == {
        ("credit", Decimal("15.00"), "EUR", "staff")
    }
    assert not Resolution.objects.filter(case=cases[1]).exists()
    # and the flag keeps who acted, what was applied and how it went
    flag.refresh_from_db()
    assert (flag.status, flag.closed_by, flag.settled) == (FlagStatus.ACTED, sara, 4)
    assert (flag.applied_kind, flag.applied_amount, flag.applied_currency) == (
        "credit",
        Decimal("15.00"),
        "EUR",
    )
    assert flag.not_settled == report.not_settled


def test_a_flag_is_acted_on_once(kettle_flag, sara):
    flag, _cases = kettle_flag
    credit = Settlement(kind="credit", amount=Decimal("5.00"), currency="EUR")
    collective.act_on_flag(flag=flag, actor=sara, settlement=credit, reason="Faulty lids.")
    with pytest.raises(collective.FlagNotOpen):
        collective.act_on_flag(flag=flag, actor=sara, settlement=credit, reason="Again.")
    assert Resolution.objects.count() == 5


def test_acting_needs_a_reason_and_a_valid_settlement(kettle_flag, sara):
    flag, _cases = kettle_flag
    with pytest.raises(collective.ReasonMissing):
        collective.act_on_flag(
            flag=flag, actor=sara, settlement=Settlement(kind="replacement"), reason="  "
        )
    with pytest.raises(collective.InvalidSettlement):
        collective.act_on_flag(
            flag=flag, actor=sara, settlement=Settlement(kind="refund"), reason="x"
        )
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN
    assert not Resolution.objects.exists()


# The supervisors' pages -----------------------------------------------------------------------


def test_an_agent_is_refused_every_page(client, kettle_flag, ana):
    flag, _cases = kettle_flag
    client.force_login(ana)
    assert client.get("/helpdesk/collective/").status_code == 403
    assert client.get(f"/helpdesk/collective/{flag.pk}").status_code == 403
    response = client.post(
        f"/helpdesk/collective/{flag.pk}/apply",
        {"kind": "replacement", "currency": "EUR", "reason": "Because."},
    )
    assert response.status_code == 403
    assert (
        client.post(
            f"/helpdesk/collective/{flag.pk}/dismiss", {"dismiss-reason": "No."}
        ).status_code
        == 403
    )
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN


def test_someone_signed_out_is_sent_to_sign_in(client, kettle_flag):
    response = client.get("/helpdesk/collective/")
    assert response.status_code == 302
    assert response["Location"].startswith("/helpdesk/login/")


def test_the_list_shows_open_flags_first_in_a_bounded_number_of_queries(client, sara, complain):
    client.force_login(sara)
    for customer in CUSTOMERS[:5]:
        complain(customer, category="billing_error", amount=Decimal("12.99"))
    response = client.get("/helpdesk/collective/")  # warm up the session and the user
    with CaptureQueriesContext(connection) as one:
        response = client.get("/helpdesk/collective/")
    assert response.status_code == 200
    # given three more flags, one of them dismissed and one with a dangerous-looking SKU
    for amount in ("20.00", "30.00"):
        for customer in CUSTOMERS[:5]:
            complain(customer, category="billing_error", amount=Decimal(amount))
    older = CollectiveFlag.objects.get(key="billing_error|20.00|EUR")
    collective.dismiss_flag(flag=older, actor=sara, reason="Price change, announced.")
    CollectiveFlag.objects.create(
        kind="product",
        key="<script>x</script>",
        detail={"sku": "<script>x</script>"},
        min_customers=5,
        window_hours=48,
        customers=5,
        case_count=5,
        first_seen_at=timezone.now(),
        last_seen_at=timezone.now() - dt.timedelta(days=3),
    )
    with CaptureQueriesContext(connection) as four:
        response = client.get("/helpdesk/collective/")
    assert len(four) == len(one)
    html = response.content.decode()
    shown = sorted(CollectiveFlag.objects.all(), key=lambda f: html.index(f'data-flag="{f.pk}"'))
    assert [f.status for f in shown] == ["open", "open", "open", "dismissed"]
    assert [f.key for f in shown[2:]] == ["<script>x</script>", "billing_error|20.00|EUR"]
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert 'data-count="customers">5<' in html


def test_the_detail_page_links_each_case_and_offers_the_forms(client, kettle_flag, sara):
    flag, cases = kettle_flag
    client.force_login(sara)
    response = client.get(f"/helpdesk/collective/{flag.pk}")
    assert response.status_code == 200
    html = response.content.decode()
    for case in cases:
        assert f'href="/helpdesk/cases/{case.reference}"' in html
    assert f'action="/helpdesk/collective/{flag.pk}/apply"' in html
    assert f'action="/helpdesk/collective/{flag.pk}/dismiss"' in html
    assert "csrfmiddlewaretoken" in html


def test_applying_from_the_page_settles_and_says_how_it_went(client, kettle_flag, sara):
    flag, cases = kettle_flag
    case_actions.close_case(case=cases[0], outcome=Outcome.RESOLVED, actor_user=sara)
    client.force_login(sara)
    response = client.post(
        f"/helpdesk/collective/{flag.pk}/apply",
        {"kind": "refund", "amount": "39.90", "currency": "eur", "reason": "Faulty batch."},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        "4 cases were settled.",
        f"1 case was not settled: {cases[0].reference} (already closed (Resolved in the customer's favour))",
    ]
    assert {(r.kind, r.amount, r.currency) for r in Resolution.objects.all()} == {
        ("refund", Decimal("39.90"), "EUR")
    }
    assert f'data-not-settled="{cases[0].reference}"' in response.content.decode()


def test_the_page_refuses_a_settlement_without_its_amount_or_reason(client, kettle_flag, sara):
    flag, _cases = kettle_flag
    client.force_login(sara)
    response = client.post(
        f"/helpdesk/collective/{flag.pk}/apply", {"kind": "refund", "currency": "EUR", "reason": ""}
    )
    assert response.status_code == 400
    assert set(response.context["act_form"].errors) == {"amount", "reason"}
    flag.refresh_from_db()
    assert flag.status == FlagStatus.OPEN
    assert not Resolution.objects.exists()


def test_dismissing_from_the_page(client, kettle_flag, sara):
    flag, _cases = kettle_flag
    client.force_login(sara)
    response = client.post(
        f"/helpdesk/collective/{flag.pk}/dismiss", {"dismiss-reason": "Unrelated faults."}
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.status, flag.closed_by, flag.close_reason) == (
        FlagStatus.DISMISSED,
        sara,
        "Unrelated faults.",
    )
    assert Category.objects.exists()  # nothing else touched
    assert not Resolution.objects.exists()


def test_a_case_page_says_the_case_is_part_of_an_open_flag(client, kettle_flag, sara, ana):
    flag, cases = kettle_flag
    # Sara, a supervisor, sees the flag linked from the case's page
    client.force_login(sara)
    html = client.get(f"/helpdesk/cases/{cases[0].reference}").content.decode()
    assert f'href="/helpdesk/collective/{flag.pk}"' in html
    assert f'data-flag="{flag.pk}"' in html
    # Ana, an agent, sees that it is collective, without the supervisors' link
    client.force_login(ana)
    html = client.get(f"/helpdesk/cases/{cases[0].reference}").content.decode()
    assert f'data-flag="{flag.pk}"' in html
    assert f'href="/helpdesk/collective/{flag.pk}"' not in html
    # once dismissed, the case page says nothing of it
    collective.dismiss_flag(flag=flag, actor=sara, reason="Unrelated.")
    html = client.get(f"/helpdesk/cases/{cases[0].reference}").content.decode()
    assert "data-collective" not in html


def test_supervisors_find_collective_complaints_in_the_helpdesk_menu(teams):
    from django.test import Client

    from concilia.accounts.models import Role
    from concilia.cases.tests.conftest import person

    supervisor, agent = Client(), Client()
    supervisor.force_login(person("sara", Role.SUPERVISOR, teams["customer-care"], language="en"))
    agent.force_login(person("ana", Role.AGENT, teams["customer-care"], language="en"))
    link = 'href="/helpdesk/collective/"'
    assert link in supervisor.get("/helpdesk/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert link not in agent.get("/helpdesk/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_an_administrator_tunes_the_thresholds_in_the_admin(admin_client):
    from concilia.resolution.models import CollectiveRule

    rule = CollectiveRule.objects.get(kind="product")
    page = admin_client.get(f"/admin/resolution/collectiverule/{rule.pk}/change/")
    assert page.status_code == 200
    response = admin_client.post(
        f"/admin/resolution/collectiverule/{rule.pk}/change/",
        {
            "kind": "product",
            "active": "on",
            "min_customers": "3",
            "window_hours": "24",
            "categories": list(rule.categories.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.min_customers, rule.window_hours) == (3, 24)
