"""A fake WooCommerce store speaking REST API v3 (/wp-json/wc/v3): orders, refunds, order notes,
with key-pair authentication (HTTP Basic or query parameters) and WooCommerce's error bodies."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import re
from decimal import Decimal
from typing import Any

from concilia.integrations.tests.fakes import Answer, FakeServer, Received

KEY = "ck_0123456789abcdef0123456789abcdef01234567"
SECRET = "cs_0123456789abcdef0123456789abcdef01234567"


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, {"code": code, "message": message, "data": {"status": status}})


def woo_order(
    order_id: int,
    *,
    email: str,
    placed: dt.datetime,
    status: str = "processing",
    lines: tuple[tuple[str, str, int, str], ...] = (("SKU-KETTLE", "Electric kettle", 1, "39.90"),),
    shipping: str = "4.95",
    currency: str = "EUR",
    payment_method: str = "stripe",
    tracking: tuple[str, str] | None = None,
    meta: dict[str, Any] | None = None,
    completed: dt.datetime | None = None,
) -> dict[str, Any]:
    """An order as GET /orders/<id> returns it (the fields Concilia reads, and a few more)."""
    line_items = [
        {
            "id": 100 + n,
            "name": name,
            "product_id": 10 + n,
            "variation_id": 0,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": f"{Decimal(price) * quantity:.2f}",
            "total": f"{Decimal(price) * quantity:.2f}",
            "sku": sku,
            "price": Decimal(price),
        }
        for n, (sku, name, quantity, price) in enumerate(lines)
    ]
    total = sum(Decimal(p) * q for _, _, q, p in lines) + Decimal(shipping)
    meta_data = [
        {"id": 900 + n, "key": k, "value": v} for n, (k, v) in enumerate((meta or {}).items())
    ]
    if tracking:
        meta_data.append(
            {
                "id": 990,
                "key": "_wc_shipment_tracking_items",
                "value": [
                    {
                        "tracking_provider": tracking[0],
                        "custom_tracking_provider": "",
                        "tracking_number": tracking[1],
                        "date_shipped": str(int(placed.timestamp()) + 86400),
                        "tracking_id": "a1b2c3",
                    }
                ],
            }
        )
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": f"wc_order_{order_id}",
        "status": status,
        "currency": currency,
        "date_created": placed.astimezone(dt.timezone(dt.timedelta(hours=2))).strftime(
            "%Y-%m-%dT%H:%M:%S"
        ),
        "date_created_gmt": placed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "date_completed_gmt": completed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if completed
        else None,
        "total": f"{total:.2f}",
        "total_tax": "0.00",
        "shipping_total": shipping,
        "customer_id": 0,
        "billing": {"first_name": "Lucía", "last_name": "Fernández", "email": email, "phone": ""},
        "shipping": {"first_name": "Lucía", "last_name": "Fernández", "country": "ES"},
        "payment_method": payment_method,
        "payment_method_title": "Credit card",
        "line_items": line_items,
        "shipping_lines": [
            {
                "id": 200,
                "method_title": "Envío estándar",
                "method_id": "flat_rate",
                "total": shipping,
            }
        ],
        "meta_data": meta_data,
        "refunds": [],
    }


class FakeWooCommerce(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[int, dict[str, Any]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self._ids = itertools.count(5000)

    def add(self, order: dict[str, Any]) -> dict[str, Any]:
        self.orders[order["id"]] = order
        return order

    def _authorised(self, request: Received) -> bool:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode() == f"{KEY}:{SECRET}"
        return (request.query.get("consumer_key"), request.query.get("consumer_secret")) == (
            KEY,
            SECRET,
        )

    def answer(self, request: Received) -> Answer:
        if not request.path.startswith("/wp-json/wc/v3/"):
            return _error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        if not self._authorised(request):
            return _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        match = re.fullmatch(r"/wp-json/wc/v3/orders/(\d+)(?:/(refunds|notes))?", request.path)
        if not match:
            return _error(
                404, "rest_no_route", "No route was found matching the URL and request method."
            )
        order = self.orders.get(int(match[1]))
        if order is None:
            return _error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
        sub, now = match[2], dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        if sub is None and request.method == "GET":
            return Answer(200, order)
        if sub == "refunds" and request.method == "GET":
            return Answer(200, list(reversed(self.refunds.get(order["id"], []))))
        if sub == "refunds" and request.method == "POST":
            amount = Decimal(str(request.body.get("amount", "0")))
            done = sum(Decimal(r["amount"]) for r in self.refunds.get(order["id"], []))
            if amount <= 0 or amount + done > Decimal(order["total"]):
                return _error(
                    400, "woocommerce_rest_cannot_create_order_refund", "Invalid refund amount."
                )
            refund = {
                "id": next(self._ids),
                "date_created": now,
                "date_created_gmt": now,
                "amount": f"{amount:.2f}",
                "reason": request.body.get("reason", ""),
                "refunded_by": 1,
                "refunded_payment": bool(request.body.get("api_refund", True)),
                "meta_data": [],
                "line_items": [],
            }
            self.refunds.setdefault(order["id"], []).append(refund)
            return Answer(201, refund)
        if sub == "notes" and request.method == "GET":
            return Answer(200, list(reversed(self.notes.get(order["id"], []))))
        if sub == "notes" and request.method == "POST":
            if not request.body or not request.body.get("note"):
                return _error(400, "rest_missing_callback_param", "Missing parameter(s): note")
            note = {
                "id": next(self._ids),
                "author": "WooCommerce",
                "date_created": now,
                "date_created_gmt": now,
                "note": request.body["note"],
                "customer_note": bool(request.body.get("customer_note", False)),
            }
            self.notes.setdefault(order["id"], []).append(note)
            return Answer(201, note)
        return _error(
            404, "rest_no_route", "No route was found matching the URL and request method."
        )
