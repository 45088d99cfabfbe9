"""Reading a case's facts: its own fields, the customer's history, the shop's order and the
calendar, into the shape `facts.SCHEMA` describes."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from concilia.cases.models import Case
from concilia.cases.sla import calendar_for
from concilia.core.ports import Order, order_lookup
from concilia.resolution import facts as fact_schema
from concilia.resolution.models import Resolution

logger = logging.getLogger(__name__)


def gather(
    case: Case, *, now: dt.datetime | None = None
) -> tuple[fact_schema.Facts, frozenset[str]]:
    """The case's facts, and the namespaces that could not be read (the shop did not answer)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    unavailable: set[str] = set()
    order: Order | None = None
    if case.order_number:
        try:
            order = order_lookup().find_order(number=case.order_number, email=case.customer.email)
        except Exception:
            logger.warning("Order look-up failed for case %s", case.reference, exc_info=True)
            unavailable.add("order")
    facts: fact_schema.Facts = {
        "case": case_facts(case, today),
        "customer": customer_facts(case, now),
        "order": order_facts(order, case, today) if order else fact_schema.empty_order(),
    }
    purchase = order.placed_on if order else case.purchase_date
    facts["calendar"] = {
        "today": today.isoformat(),
        "weekday": today.isoweekday(),
        "month": today.month,
        "days_since_purchase": (today - purchase).days if purchase else -1,
        "business_days_late": facts["order"]["business_days_late"],
    }
    return facts, frozenset(unavailable)


def case_facts(case: Case, today: dt.date) -> dict:
    types = list(case.attachments.values_list("content_type", flat=True)) if case.pk else []
    return {
        "category": case.category.code,
        "kind": case.kind,
        "channel": case.channel,
        "language": case.language,
        "has_amount": case.amount is not None,
        "amount": case.amount if case.amount is not None else Decimal("0"),
        "currency": case.currency,
        "has_order_number": bool(case.order_number),
        "has_purchase_date": case.purchase_date is not None,
        "days_since_purchase": (today - case.purchase_date).days if case.purchase_date else -1,
        "attachments": len(types),
        "has_photo": any(t.startswith("image/") for t in types),
        "has_document": any(t == "application/pdf" for t in types),
    }


def customer_facts(case: Case, now: dt.datetime) -> dict:
    customer = case.customer
    others = Case.objects.filter(customer=customer).exclude(pk=case.pk)
    counts = others.aggregate(
        last_90=Count("pk", filter=Q(created_at__gte=now - dt.timedelta(days=90))),
        last_365=Count("pk", filter=Q(created_at__gte=now - dt.timedelta(days=365))),
        open=Count("pk", filter=~Q(status="closed")),
    )
    year = Resolution.objects.filter(
        case__customer=customer, created_at__gte=now - dt.timedelta(days=365)
    ).exclude(case=case)
    paid = year.filter(kind__in=("refund", "partial_refund", "credit")).aggregate(s=Sum("amount"))
    return {
        "customer_since_days": max(0, (now - customer.created_at).days),
        "complaints_90d": counts["last_90"],
        "complaints_365d": counts["last_365"],
        "open_cases": counts["open"],
        "resolutions_365d": year.count(),
        "paid_365d": paid["s"] or Decimal("0"),
    }


def order_facts(order: Order, case: Case, today: dt.date) -> dict:
    shipment = order.shipment
    days_late = order.days_late
    business_late = 0
    if shipment is not None and shipment.promised_on is not None and days_late > 0:
        end = shipment.delivered_on or today
        business_late = calendar_for(case).working_days_between(
            shipment.promised_on + dt.timedelta(days=1), end
        )
    return {
        "found": True,
        "number": order.number,
        "total": order.total,
        "currency": order.currency,
        "payment_method": order.payment_method,
        "items": sum(item.quantity for item in order.items),
        "skus": [item.sku for item in order.items],
        "days_since_purchase": (today - order.placed_on).days,
        "has_shipment": shipment is not None,
        "shipment_status": shipment.status if shipment else "",
        "carrier": shipment.carrier if shipment else "",
        "delivered": bool(shipment and shipment.status == "delivered"),
        "days_late": days_late,
        "business_days_late": business_late,
        "placed_on": order.placed_on.isoformat(),
        "promised_on": shipment.promised_on.isoformat()
        if shipment and shipment.promised_on
        else "",
    }
