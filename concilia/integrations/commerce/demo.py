"""A demo shop for `concilia demo` and tests, until a real connector is configured.

Orders are made up deterministically from their number, so the same number always tells the
same story: numbers ending in 0-3 were delivered on time, 4-6 are late in transit, 7 were
delivered late, 8 are lost, 9 were delivered (damaged parcels are reported by customers).
Every order belongs to whoever asks for it, except numbers starting with 9, which belong to
nobody (to show the "order not found" path).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal

from django.utils import timezone

from concilia.core.ports import FulfilmentRequest, Order, OrderItem, Shipment

_PRODUCTS = (
    ("SKU-KETTLE", "Hervidor eléctrico / Electric kettle", Decimal("39.90")),
    ("SKU-HEADPH", "Auriculares inalámbricos / Wireless headphones", Decimal("89.00")),
    ("SKU-ROUTER", "Router wifi / Wi-fi router", Decimal("119.00")),
    ("SKU-JACKET", "Chaqueta impermeable / Rain jacket", Decimal("74.50")),
    ("SKU-PHONE", "Teléfono móvil / Mobile phone", Decimal("299.00")),
)
_CARRIERS = ("Correos", "SEUR", "GLS")


class DemoShop:
    """OrderLookup over made-up orders: numbers of 3 to 12 digits (letters and dashes ignored)."""

    def find_order(self, *, number: str, email: str) -> Order | None:
        digits = re.sub(r"\D", "", number)
        if not 3 <= len(digits) <= 12 or digits.startswith("9"):
            return None
        seed = int(hashlib.sha256(digits.encode()).hexdigest(), 16)
        today = timezone.localdate()
        placed = today - dt.timedelta(days=5 + seed % 20)
        sku, name, price = _PRODUCTS[seed % len(_PRODUCTS)]
        quantity = 1 + (seed >> 8) % 2
        promised = placed + dt.timedelta(days=3)
        outcome = int(digits[-1])
        if outcome <= 3:
            status, delivered = "delivered", promised - dt.timedelta(days=1)
        elif outcome <= 6:
            status, delivered = "in_transit", None
            promised = max(promised, today - dt.timedelta(days=2 + outcome % 3))
            promised = min(promised, today - dt.timedelta(days=1))
        elif outcome == 7:
            status, delivered = "delivered", promised + dt.timedelta(days=4)
        elif outcome == 8:
            status, delivered = "lost", None
        else:
            status, delivered = "delivered", promised
        carrier = _CARRIERS[(seed >> 16) % len(_CARRIERS)]
        tracking = f"PQ{seed % 10**9:09d}ES" if carrier == "Correos" else f"{seed % 10**10:010d}"
        return Order(
            number=digits,
            customer_email=email,
            placed_on=placed,
            total=price * quantity,
            currency="EUR",
            payment_method=("card", "paypal", "transfer")[(seed >> 4) % 3],
            items=(OrderItem(sku=sku, name=name, quantity=quantity, unit_price=price),),
            shipment=Shipment(
                carrier=carrier,
                tracking_number=tracking,
                status=status,
                promised_on=promised,
                delivered_on=delivered,
            ),
        )

    def carry_out(self, request: FulfilmentRequest) -> str:
        """The demo shop accepts every request and answers with a stable id for it."""
        key = f"{request.reference}:{request.kind}:{request.amount}".encode()
        return f"DEMO-{request.kind.upper()}-{hashlib.sha256(key).hexdigest()[:10]}"
