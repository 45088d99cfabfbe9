"""The generic REST shop: a mapping validated at start-up, orders read through dotted paths into
Decimal money and dates, refunds sent once with an idempotency key, and the circuit breaker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from concilia.core.ports import FulfilmentRequest, OrderItem, Shipment
from concilia.integrations import resilience
from concilia.integrations.commerce.rest import GenericRestShop
from concilia.integrations.resilience import CircuitBreaker, ConnectorUnavailable
from concilia.integrations.tests.fakes.shop_rest import TOKEN, FakeShopApi


def mapping(base_url: str) -> dict:
    return {
        "base_url": base_url + "/api",
        "order_url": "/orders/{number}",
        "order_root": "data",
        "minor_units": True,
        "fields": {
            "number": "ref",
            "email": "customer.email",
            "placed_on": "created_at",
            "total": "totals.grand",
            "currency": "totals.currency",
            "payment_method": "payment.type",
            "items": "lines",
            "item": {"sku": "sku", "name": "title", "quantity": "qty", "unit_price": "price"},
            "shipment": "parcels",
            "shipment_fields": {
                "carrier": "carrier.name",
                "tracking_number": "tracking",
                "status": "state",
                "promised_on": "eta",
                "delivered_on": "delivered_at",
            },
        },
        "shipment_status_map": {"shipped": "in_transit", "done": "delivered"},
        "actions": {
            "refund": {
                "url": "/orders/{number}/refunds",
                "body": {
                    "amount": "{amount}",
                    "currency": "{currency}",
                    "note": "Case {reference}",
                },
                "id": "refund.id",
            }
        },
    }


ORDER = {
    "ref": "A-1001",
    "customer": {"email": "lucia@example.com"},
    "created_at": "2026-03-02T23:30:00Z",
    "totals": {"grand": 8475, "currency": "eur"},
    "payment": {"type": "card"},
    "lines": [{"sku": "SKU-JACKET", "title": "Rain jacket", "qty": 1, "price": 7450}],
    "parcels": [
        {"carrier": {"name": "GLS"}, "tracking": "0012", "state": "shipped", "eta": "2026-03-06"}
    ],
}


@pytest.fixture
def api(settings):
    settings.CONNECTOR_BREAKER_THRESHOLD = 2
    settings.CONNECTOR_BREAKER_COOL_DOWN = 30
    server = FakeShopApi().start()
    server.orders["A-1001"] = ORDER
    yield server
    server.stop()


@pytest.fixture
def shop(api):
    return GenericRestShop(mapping(api.url), token=TOKEN)


def test_an_order_is_read_through_the_mapping(shop, settings):
    settings.TIME_ZONE = "Europe/Madrid"
    order = shop.find_order(number="A-1001", email="LUCIA@example.com")
    assert (order.number, order.currency, order.payment_method) == ("A-1001", "EUR", "card")
    assert order.total == Decimal("84.75")
    assert order.placed_on == dt.date(2026, 3, 3)  # 23:30 UTC is past midnight in Madrid
    assert order.items == (
        OrderItem(sku="SKU-JACKET", name="Rain jacket", quantity=1, unit_price=Decimal("74.50")),
    )
    assert order.shipment == Shipment(
        carrier="GLS",
        tracking_number="0012",
        status="in_transit",
        promised_on=dt.date(2026, 3, 6),
        delivered_on=None,
    )


def test_unknown_and_other_customers_orders_are_not_found(shop):
    assert shop.find_order(number="A-9999", email="lucia@example.com") is None
    assert shop.find_order(number="A-1001", email="james@example.com") is None


def test_a_refund_is_sent_with_the_case_as_idempotency_key(shop, api):
    request = FulfilmentRequest(
        reference="RC-2026-000042-7",
        order_number="A-1001",
        customer_email="lucia@example.com",
        kind="partial_refund",  # falls back to the refund request
        amount=Decimal("10"),
        currency="EUR",
    )
    assert shop.carry_out(request) == shop.carry_out(request) == "R1"
    sent = api.received[-1]
    assert sent.headers["idempotency-key"] == "RC-2026-000042-7:partial_refund"
    assert sent.body == {"amount": "10.00", "currency": "EUR", "note": "Case RC-2026-000042-7"}
    assert len(api.refunds) == 1


def test_a_kind_without_a_request_is_unavailable(shop):
    request = FulfilmentRequest("RC-1", "A-1001", "lucia@example.com", "credit", None, "EUR")
    with pytest.raises(ConnectorUnavailable, match="no request configured for credit"):
        shop.carry_out(request)


def test_a_bad_mapping_is_refused_at_start_up_with_every_problem_named():
    bad = mapping("ftp://shop")
    del bad["fields"]["total"]
    bad["order_url"] = "/orders/{id}"
    bad["actions"]["refund"]["body"]["x"] = "{password}"
    bad["shipment_status_map"]["gone"] = "vanished"
    with pytest.raises(ImproperlyConfigured) as error:
        GenericRestShop(bad, token="")
    message = str(error.value)
    for expected in (
        "base_url must be an http(s) URL",
        "order_url uses id",
        "fields.total must be a dotted path",
        "actions.refund.body.x uses password",
        "shipment_status_map must map",
    ):
        assert expected in message


def test_the_breaker_opens_after_failures_then_lets_one_trial_through(shop, api, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(resilience.time, "time", lambda: clock[0])
    api.down = True
    for _ in range(2):
        with pytest.raises(ConnectorUnavailable, match="HTTP 503"):
            shop.find_order(number="A-1001", email="lucia@example.com")
    assert CircuitBreaker("shop-rest").state == "open"
    with pytest.raises(ConnectorUnavailable, match="circuit open"):
        shop.find_order(number="A-1001", email="lucia@example.com")
    assert len(api.received) == 2

    # after the cool-down one trial goes through; it fails, so the circuit opens again
    clock[0] += 31
    assert CircuitBreaker("shop-rest").state == "half_open"
    with pytest.raises(ConnectorUnavailable, match="HTTP 503"):
        shop.find_order(number="A-1001", email="lucia@example.com")
    assert CircuitBreaker("shop-rest").state == "open"

    # the next trial succeeds and closes it
    clock[0] += 31
    api.down = False
    assert shop.find_order(number="A-1001", email="lucia@example.com") is not None
    assert CircuitBreaker("shop-rest").state == "closed"


def test_in_half_open_only_one_caller_tries(shop, api, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(resilience.time, "time", lambda: clock[0])
    breaker = CircuitBreaker("shop-rest")
    breaker.record_failure()
    breaker.record_failure()
    clock[0] += 31
    breaker.before_call()  # the first caller (any process) takes the trial
    with pytest.raises(ConnectorUnavailable, match="trial call in progress"):
        breaker.before_call()
