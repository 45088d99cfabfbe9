"""The WooCommerce connector against a fake store speaking REST API v3 on loopback: orders read
into Concilia's shape, someone else's order is not found, refunds and notes made once per case,
a slow or failing store trips the breaker, and triage carries on without it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from concilia.core.ports import FulfilmentRequest, OrderItem, _load
from concilia.integrations.commerce.woocommerce import WooCommerceShop
from concilia.integrations.resilience import CircuitBreaker, ConnectorUnavailable
from concilia.integrations.tests.fakes.woocommerce import KEY, SECRET, FakeWooCommerce, woo_order
from concilia.resolution.tests.conftest import live_policy, shop_policy, teams  # noqa: F401

SHOP = "concilia.integrations.commerce.woocommerce.WooCommerceShop"


def days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def store(settings):
    """The fake store, and Concilia configured to use it for look-ups and fulfilment."""
    server = FakeWooCommerce().start()
    settings.WOOCOMMERCE_URL = server.url
    settings.WOOCOMMERCE_KEY = KEY
    settings.WOOCOMMERCE_SECRET = SECRET
    settings.WOOCOMMERCE_QUERY_AUTH = False
    settings.WOOCOMMERCE_PROMISE_DAYS = 3
    settings.WOOCOMMERCE_PROMISE_META = ""
    settings.CONNECTOR_TIMEOUT = 2
    settings.CONNECTOR_BREAKER_THRESHOLD = 3
    settings.ORDER_LOOKUP = SHOP
    settings.FULFILMENT = SHOP
    _load.cache_clear()
    yield server
    _load.cache_clear()
    server.stop()


@pytest.fixture
def shop(store):
    return WooCommerceShop()


def refund_request(**overrides) -> FulfilmentRequest:
    data = {
        "reference": "RC-2026-000042-7",
        "order_number": "#1234",
        "customer_email": "lucia@example.com",
        "kind": "refund",
        "amount": Decimal("20.00"),
        "currency": "EUR",
    }
    return FulfilmentRequest(**(data | overrides))


def test_an_order_is_read_with_its_lines_total_and_parcel(store, shop):
    store.add(
        woo_order(
            1234,
            email="Lucia@Example.com",
            placed=days_ago(10),
            status="processing",
            lines=(("SKU-KETTLE", "Electric kettle", 2, "39.90"), ("SKU-CUP", "Cup", 1, "5.10")),
            tracking=("Correos", "PQ123456789ES"),
        )
    )

    order = shop.find_order(number="PED-1234", email="lucia@example.com")

    assert order.number == "1234"
    assert order.total == Decimal("89.85") and isinstance(order.total, Decimal)
    assert order.currency == "EUR" and order.payment_method == "card"
    assert order.placed_on == timezone.localdate(days_ago(10))
    assert order.items == (
        OrderItem(
            sku="SKU-KETTLE", name="Electric kettle", quantity=2, unit_price=Decimal("39.90")
        ),
        OrderItem(sku="SKU-CUP", name="Cup", quantity=1, unit_price=Decimal("5.10")),
    )
    assert (order.shipment.carrier, order.shipment.tracking_number) == ("Correos", "PQ123456789ES")
    assert order.shipment.status == "in_transit"  # processing, with a tracking number
    assert order.shipment.promised_on == order.placed_on + dt.timedelta(days=3)
    assert order.days_late == 7
    assert store.received[-1].headers["authorization"].startswith("Basic ")


def test_a_completed_order_reads_as_delivered_on_its_completion_date(store, shop):
    store.add(
        woo_order(
            77,
            email="lucia@example.com",
            placed=days_ago(9),
            status="completed",
            completed=days_ago(4),
        )
    )
    shipment = shop.find_order(number="77", email="lucia@example.com").shipment
    assert (shipment.status, shipment.delivered_on) == (
        "delivered",
        timezone.localdate(days_ago(4)),
    )
    assert shipment.carrier == "Envío estándar"


def test_keys_may_travel_as_query_parameters(store):
    store.add(woo_order(1234, email="lucia@example.com", placed=days_ago(2)))
    shop = WooCommerceShop(query_auth=True)
    assert shop.find_order(number="1234", email="lucia@example.com") is not None
    assert store.received[-1].query["consumer_key"] == KEY
    assert "authorization" not in store.received[-1].headers


def test_an_unknown_order_and_another_customers_order_are_not_found(store, shop):
    store.add(woo_order(1234, email="james@example.com", placed=days_ago(2)))
    assert shop.find_order(number="999999", email="lucia@example.com") is None
    assert shop.find_order(number="1234", email="lucia@example.com") is None
    assert shop.find_order(number="sin número", email="lucia@example.com") is None


def test_wrong_keys_make_the_shop_unavailable_not_the_order_unknown(store):
    shop = WooCommerceShop(key="ck_wrong", secret="cs_wrong")
    with pytest.raises(ConnectorUnavailable, match="HTTP 401"):
        shop.find_order(number="1234", email="lucia@example.com")


def test_plain_http_to_another_host_and_missing_keys_are_refused_at_start_up(settings):
    with pytest.raises(ImproperlyConfigured, match="must use https"):
        WooCommerceShop(url="http://shop.example", key=KEY, secret=SECRET)
    with pytest.raises(ImproperlyConfigured, match="CONCILIA_WOOCOMMERCE_KEY"):
        WooCommerceShop(url="https://shop.example", key="", secret="")


def test_a_refund_is_made_once_per_case_however_often_the_job_runs(store, shop):
    store.add(woo_order(1234, email="lucia@example.com", placed=days_ago(2)))

    first = shop.carry_out(refund_request())
    again = shop.carry_out(refund_request())

    assert first == again and first.startswith("refund-")
    (refund,) = store.refunds[1234]
    assert refund["amount"] == "20.00"
    assert refund["reason"].startswith("[Concilia RC-2026-000042-7]")
    assert refund["refunded_payment"] is True


def test_a_refund_the_store_refuses_raises_without_tripping_the_breaker(store, shop):
    store.add(woo_order(1234, email="lucia@example.com", placed=days_ago(2)))
    with pytest.raises(ConnectorUnavailable, match="HTTP 400"):
        shop.carry_out(refund_request(amount=Decimal("500.00")))
    assert CircuitBreaker("woocommerce").state == "closed"


def test_no_refund_on_someone_elses_order(store, shop):
    store.add(woo_order(1234, email="james@example.com", placed=days_ago(2)))
    with pytest.raises(ConnectorUnavailable, match="not found"):
        shop.carry_out(refund_request())
    assert store.refunds == {}


def test_a_return_label_becomes_one_private_order_note(store, shop):
    store.add(woo_order(1234, email="lucia@example.com", placed=days_ago(2)))
    request = refund_request(kind="return_label", amount=None)

    assert shop.carry_out(request) == shop.carry_out(request)

    (note,) = store.notes[1234]
    assert note["note"].startswith("[Concilia RC-2026-000042-7] return_label: ")
    assert note["customer_note"] is False


def test_a_slow_store_times_out_and_then_the_breaker_opens(store, shop, settings):
    store.add(woo_order(1234, email="lucia@example.com", placed=days_ago(2)))
    store.delay = 0.5
    shop = WooCommerceShop()
    shop.client._client.timeout = __import__("httpx").Timeout(0.1)

    for _ in range(3):
        with pytest.raises(ConnectorUnavailable, match="timed out"):
            shop.find_order(number="1234", email="lucia@example.com")
    calls = len(store.received)
    with pytest.raises(ConnectorUnavailable, match="circuit open"):
        shop.find_order(number="1234", email="lucia@example.com")
    assert len(store.received) == calls  # an open circuit does not even call


# --- end to end: triage with the store's facts ----------------------------------------------


@pytest.mark.usefixtures("shop_policy")
def test_triage_settles_a_refund_with_the_stores_total_and_the_store_refunds_it(
    store, open_case, run_tasks
):
    """Lucía bought 5 days ago: within the withdrawal period the policy refunds the order's
    total as the store reports it, and the store then makes that refund, once."""
    from concilia.resolution.actions import triage_case
    from concilia.resolution.models import FollowUp, Resolution

    store.add(woo_order(4321, email="lucia@example.com", placed=days_ago(5), status="completed"))
    case = open_case(category="refund", order_number="4321", purchase_date=timezone.localdate())

    record = triage_case(case=case)
    run_tasks()

    assert (record.outcome, record.rule) == ("resolve", "refund-withdrawal")
    resolution = Resolution.objects.get(case=case)
    assert (resolution.kind, resolution.amount) == ("refund", Decimal("44.85"))
    resolution.refresh_from_db()
    assert resolution.follow_up == FollowUp.DONE
    (refund,) = store.refunds[4321]
    assert refund["amount"] == "44.85" and case.reference in refund["reason"]
    assert resolution.follow_up_detail == f"refund-{refund['id']}"


@pytest.mark.usefixtures("shop_policy")
def test_triage_offers_credit_for_a_parcel_the_store_shows_late(store, open_case):
    from concilia.resolution.actions import triage_case
    from concilia.resolution.models import Offer

    store.add(
        woo_order(
            5555, email="lucia@example.com", placed=days_ago(10), tracking=("SEUR", "0012345678")
        )
    )
    case = open_case(
        category="shipping_delay", order_number="5555", purchase_date=timezone.localdate()
    )

    record = triage_case(case=case)

    assert (record.outcome, record.rule) == ("offer", "late-parcel")
    assert Offer.objects.get(case=case).options[0]["kind"] == "credit"


@pytest.mark.usefixtures("shop_policy")
def test_with_the_store_down_the_case_waits_and_nothing_is_settled(store, open_case):
    from concilia.resolution.actions import triage_case
    from concilia.resolution.models import Offer, Resolution

    store.add(woo_order(4321, email="lucia@example.com", placed=days_ago(5)))
    store.down = True
    case = open_case(category="refund", order_number="4321", purchase_date=timezone.localdate())

    record = triage_case(case=case)

    assert record.outcome == "wait"
    assert record.unavailable == ["order"]
    assert not Resolution.objects.exists() and not Offer.objects.exists()
