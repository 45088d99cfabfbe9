"""WooCommerce through its REST API v3 (/wp-json/wc/v3): orders as an OrderLookup, refunds and
order notes as a Fulfilment.

Authentication is a REST API key pair (WooCommerce → Settings → Advanced → REST API, read/write):
HTTP Basic over HTTPS, or the `consumer_key`/`consumer_secret` query parameters for servers that
drop the Authorization header. Plain HTTP is accepted only on loopback (WooCommerce would want
OAuth 1.0a signatures there). The customer's order number is the WooCommerce order id.

WooCommerce has no API for return labels or replacements: those are recorded as a private
order note for the shop's staff ("[Concilia RC-…] Replacement agreed…"), once per case.
Refunds are real refunds (through the gateway unless WOOCOMMERCE_API_REFUND is off), and are
made once per case: a refund whose reason carries the case's marker is found and reused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from concilia.core.ports import FulfilmentRequest, Order, OrderItem, Shipment
from concilia.integrations import mapping
from concilia.integrations.resilience import ConnectorClient, ConnectorUnavailable

API = "/wp-json/wc/v3"
# The Shipment Tracking extension keeps its parcels in this order meta entry.
TRACKING_META = "_wc_shipment_tracking_items"
# WooCommerce order statuses (and the usual tracking plugins' "shipped"/"delivered") as the
# shipment's state. "completed" means fulfilled: read as delivered, so that a finished order is
# never taken for a late parcel.
STATUS_TO_SHIPMENT = {
    "processing": "label_created",
    "on-hold": "label_created",
    "shipped": "in_transit",
    "partial-shipped": "in_transit",
    "completed": "delivered",
    "delivered": "delivered",
    "refunded": "returned",
}
# Payment gateway ids as the policies' payment methods; others are passed through.
PAYMENT_METHODS = {
    "bacs": "transfer",
    "cheque": "cheque",
    "cod": "cash_on_delivery",
    "stripe": "card",
    "woocommerce_payments": "card",
    "ppcp-gateway": "paypal",
    "ppec_paypal": "paypal",
    "paypal": "paypal",
}
REFUND_KINDS = ("refund", "partial_refund")
NOTE_KINDS = ("replacement", "return_label")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class WooCommerceShop:
    """OrderLookup and Fulfilment over one WooCommerce store (settings.WOOCOMMERCE_*)."""

    name = "woocommerce"

    def __init__(
        self,
        *,
        url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        query_auth: bool | None = None,
    ) -> None:
        url = (url if url is not None else settings.WOOCOMMERCE_URL).rstrip("/")
        key = key if key is not None else settings.WOOCOMMERCE_KEY
        secret = secret if secret is not None else settings.WOOCOMMERCE_SECRET
        query_auth = settings.WOOCOMMERCE_QUERY_AUTH if query_auth is None else query_auth
        parts = urlsplit(url)
        problems = []
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(
                "CONCILIA_WOOCOMMERCE_URL must be the store's URL, e.g. https://shop.example"
            )
        elif parts.scheme == "http" and not _is_loopback(parts.hostname):
            problems.append("CONCILIA_WOOCOMMERCE_URL must use https (keys would travel in clear)")
        if not key.startswith("ck_") or not secret.startswith("cs_"):
            problems.append(
                "CONCILIA_WOOCOMMERCE_KEY (ck_…) and CONCILIA_WOOCOMMERCE_SECRET (cs_…) are required"
            )
        if problems:
            raise ImproperlyConfigured("WooCommerce connector: " + "; ".join(problems) + ".")
        self.client = ConnectorClient(
            self.name,
            base_url=url + API,
            auth=None if query_auth else (key, secret),
            params={"consumer_key": key, "consumer_secret": secret} if query_auth else None,
        )

    # --- OrderLookup ------------------------------------------------------------------------

    def find_order(self, *, number: str, email: str) -> Order | None:
        data = self._order_data(number, email)
        if data is None:
            return None
        try:
            return self._order(data)
        except (mapping.FieldError, TypeError, ValueError) as error:
            raise ConnectorUnavailable(self.name, f"unexpected order shape: {error}") from error

    def _order_data(self, number: str, email: str) -> Mapping[str, Any] | None:
        """The order's JSON when it exists and is billed to `email`, else None."""
        order_id = re.sub(r"\D", "", number)
        if not order_id:
            return None
        data = self.client.request("GET", f"/orders/{int(order_id)}")
        if not isinstance(data, Mapping):
            return None
        billed_to = mapping.text(mapping.dig(data, "billing.email"))
        if not billed_to or billed_to.casefold() != email.strip().casefold():
            return None  # someone else's order is, for this customer, no order at all
        return data

    def _order(self, data: Mapping[str, Any]) -> Order:
        placed_on = mapping.date(data.get("date_created_gmt") or data.get("date_created"))
        items = tuple(
            OrderItem(
                sku=mapping.text(line.get("sku")) or f"product-{line.get('product_id', '')}",
                name=mapping.text(line.get("name")),
                quantity=int(line.get("quantity") or 0),
                unit_price=self._unit_price(line),
            )
            for line in data.get("line_items") or []
        )
        gateway = mapping.text(data.get("payment_method"))
        return Order(
            number=mapping.text(data.get("number") or data.get("id")),
            customer_email=mapping.text(mapping.dig(data, "billing.email")),
            placed_on=placed_on,
            total=mapping.money(data.get("total")),
            currency=mapping.text(data.get("currency")).upper(),
            payment_method=PAYMENT_METHODS.get(gateway, gateway),
            items=items,
            shipment=self._shipment(data, placed_on),
        )

    @staticmethod
    def _unit_price(line: Mapping[str, Any]) -> Decimal:
        if line.get("price") not in (None, ""):
            return mapping.money(line["price"])
        quantity = int(line.get("quantity") or 1) or 1
        return mapping.money(line.get("subtotal") or "0") / quantity

    def _shipment(self, data: Mapping[str, Any], placed_on: dt.date) -> Shipment | None:
        meta = {entry.get("key"): entry.get("value") for entry in data.get("meta_data") or []}
        parcels = meta.get(TRACKING_META) or []
        status = STATUS_TO_SHIPMENT.get(mapping.text(data.get("status")))
        if status is None or (not parcels and not data.get("shipping_lines")):
            return None
        parcel = parcels[-1] if parcels else {}
        carrier = mapping.text(parcel.get("custom_tracking_provider")) or mapping.text(
            parcel.get("tracking_provider")
        )
        if not carrier and data.get("shipping_lines"):
            carrier = mapping.text(data["shipping_lines"][0].get("method_title"))
        if parcels and status == "label_created":
            status = "in_transit"  # a tracking number was added: the parcel has left
        promised_on = None
        if settings.WOOCOMMERCE_PROMISE_META and meta.get(settings.WOOCOMMERCE_PROMISE_META):
            promised_on = mapping.date(meta[settings.WOOCOMMERCE_PROMISE_META])
        elif settings.WOOCOMMERCE_PROMISE_DAYS:
            promised_on = placed_on + dt.timedelta(days=settings.WOOCOMMERCE_PROMISE_DAYS)
        delivered_on = None
        if status == "delivered":
            completed = data.get("date_completed_gmt") or data.get("date_completed")
            delivered_on = mapping.optional_date(completed)
        return Shipment(
            carrier=carrier,
            tracking_number=mapping.text(parcel.get("tracking_number")),
            status=status,
            promised_on=promised_on,
            delivered_on=delivered_on,
        )

    # --- Fulfilment -------------------------------------------------------------------------

    def carry_out(self, request: FulfilmentRequest) -> str:
        data = self._order_data(request.order_number, request.customer_email)
        if data is None:
            raise ConnectorUnavailable(
                self.name, f"order {request.order_number} not found for the case's customer"
            )
        order_id = int(data["id"])
        marker = f"[Concilia {request.reference}]"
        if request.kind in REFUND_KINDS:
            return self._refund(order_id, data, request, marker)
        if request.kind in NOTE_KINDS:
            return self._note(order_id, request, marker)
        raise ConnectorUnavailable(self.name, f"WooCommerce cannot carry out {request.kind}")

    def _refund(
        self, order_id: int, data: Mapping[str, Any], request: FulfilmentRequest, marker: str
    ) -> str:
        for refund in self.client.request("GET", f"/orders/{order_id}/refunds") or []:
            if marker in mapping.text(refund.get("reason")):
                return f"refund-{refund['id']}"  # already made by an earlier attempt
        currency = mapping.text(data.get("currency")).upper()
        if request.currency and request.currency.upper() != currency:
            raise ConnectorUnavailable(
                self.name, f"the order is in {currency}, the refund in {request.currency}"
            )
        amount = request.amount if request.amount is not None else mapping.money(data["total"])
        refund = self.client.request(
            "POST",
            f"/orders/{order_id}/refunds",
            json={
                "amount": f"{amount:.2f}",
                "reason": f"{marker} {_('Refund agreed in the complaint')}",
                "api_refund": settings.WOOCOMMERCE_API_REFUND,
            },
        )
        return f"refund-{refund['id']}"

    def _note(self, order_id: int, request: FulfilmentRequest, marker: str) -> str:
        """A private order note asking the shop's staff to send the replacement or label."""
        tag = f"{marker} {request.kind}"
        for note in self.client.request("GET", f"/orders/{order_id}/notes") or []:
            if mapping.text(note.get("note")).startswith(tag):
                return f"note-{note['id']}"
        if request.kind == "replacement":
            what = _("A replacement was agreed with the customer: please send it.")
        else:
            what = _("A free return label was agreed with the customer: please send it.")
        note = self.client.request(
            "POST",
            f"/orders/{order_id}/notes",
            json={"note": f"{tag}: {what}", "customer_note": False},
        )
        return f"note-{note['id']}"
