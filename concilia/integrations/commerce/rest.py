"""A shop or ERP with its own REST API, described by URL templates and JSON field mappings
(settings.SHOP_REST, see docs/connectors.md), as an OrderLookup and a Fulfilment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from django.conf import settings

from concilia.core.ports import FulfilmentRequest, Order, OrderItem, Shipment
from concilia.integrations import mapping
from concilia.integrations.resilience import ConnectorUnavailable

ORDER_FIELDS = ("number", "email", "placed_on", "total", "currency")
OPTIONAL_ORDER_FIELDS = ("payment_method", "items", "shipment")
ITEM_FIELDS = ("sku", "name", "quantity", "unit_price")
SHIPMENT_FIELDS = ("carrier", "tracking_number", "status", "promised_on", "delivered_on")
SHIPMENT_STATUSES = (
    "label_created",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "lost",
    "returned",
)
ACTION_KINDS = ("refund", "partial_refund", "credit", "replacement", "return_label")
# What a template may ask for: the order look-up gets number and email; actions get them all.
LOOKUP_VALUES = frozenset({"number", "email"})
ACTION_VALUES = frozenset(
    {"reference", "number", "email", "kind", "amount", "currency", "idempotency_key"}
)
# Kinds that fall back to another kind's request when they have none of their own.
FALLBACK = {"partial_refund": "refund"}


def validate(config: Mapping[str, Any]) -> list[str]:
    """Every problem in a GenericRestShop mapping, in words an operator can act on."""
    problems: list[str] = []
    if not isinstance(config, Mapping) or not config:
        return ["SHOP_REST is empty: set CONCILIA_SHOP_REST (JSON) or CONCILIA_SHOP_REST_FILE."]
    base = config.get("base_url")
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        problems.append(f"base_url must be an http(s) URL, not {base!r}.")
    problems += mapping.template_problems("order_url", config.get("order_url"), LOOKUP_VALUES)
    if config.get("order_root") is not None and not mapping.is_path(config["order_root"]):
        problems.append(f"order_root must be a dotted path, not {config['order_root']!r}.")
    field_paths = config.get("fields")
    if not isinstance(field_paths, Mapping):
        problems.append('fields must map "number", "email", "placed_on", "total", "currency".')
        field_paths = {}
    for name in ORDER_FIELDS:
        if not mapping.is_path(field_paths.get(name)):
            problems.append(f"fields.{name} must be a dotted path such as 'customer.email'.")
    for name in OPTIONAL_ORDER_FIELDS:
        if field_paths.get(name) is not None and not mapping.is_path(field_paths[name]):
            problems.append(f"fields.{name} must be a dotted path or absent.")
    unknown = set(field_paths) - {*ORDER_FIELDS, *OPTIONAL_ORDER_FIELDS, "item", "shipment_fields"}
    if unknown:
        problems.append(f"fields has unknown keys: {', '.join(sorted(unknown))}.")
    problems += _sub_mapping(
        field_paths, "item", ITEM_FIELDS, needed=("sku", "quantity", "unit_price")
    )
    problems += _sub_mapping(field_paths, "shipment_fields", SHIPMENT_FIELDS, needed=("status",))
    status_map = config.get("shipment_status_map", {})
    if not isinstance(status_map, Mapping) or not all(
        v in SHIPMENT_STATUSES for v in status_map.values()
    ):
        problems.append(
            "shipment_status_map must map the shop's words to: " + ", ".join(SHIPMENT_STATUSES)
        )
    actions = config.get("actions", {})
    if not isinstance(actions, Mapping):
        problems.append("actions must map kinds to requests.")
        actions = {}
    for kind, action in actions.items():
        if kind not in ACTION_KINDS:
            problems.append(f"actions.{kind}: unknown kind (one of {', '.join(ACTION_KINDS)}).")
            continue
        if not isinstance(action, Mapping):
            problems.append(f"actions.{kind} must be an object with url (and body, id).")
            continue
        problems += mapping.template_problems(
            f"actions.{kind}.url", action.get("url"), ACTION_VALUES
        )
        if action.get("method", "POST") not in ("POST", "PUT", "PATCH"):
            problems.append(f"actions.{kind}.method must be POST, PUT or PATCH.")
        for path, template in mapping.template_leaves(
            action.get("body", {}), f"actions.{kind}.body"
        ):
            problems += mapping.template_problems(path, template, ACTION_VALUES)
        if action.get("id", "id") and not mapping.is_path(action.get("id", "id")):
            problems.append(f"actions.{kind}.id must be a dotted path to the shop's id.")
    key = config.get("idempotency_key", "{reference}:{kind}")
    problems += mapping.template_problems(
        "idempotency_key", key, ACTION_VALUES - {"idempotency_key"}
    )
    return problems


def _sub_mapping(
    field_paths: Mapping[str, Any], key: str, allowed: tuple[str, ...], *, needed: tuple[str, ...]
) -> list[str]:
    sub = field_paths.get(key)
    if sub is None:
        return []
    if not isinstance(sub, Mapping):
        return [f"fields.{key} must be an object."]
    problems = [f"fields.{key}.{name} is required." for name in needed if name not in sub]
    problems += [
        f"fields.{key}.{name} is not a field ({', '.join(allowed)})."
        for name in sub
        if name not in allowed
    ]
    problems += [
        f"fields.{key}.{name} must be a dotted path."
        for name, path in sub.items()
        if name in allowed and not mapping.is_path(path)
    ]
    return problems


class GenericRestShop:
    """OrderLookup and Fulfilment over a REST API described in settings.SHOP_REST.

    The look-up GETs `order_url`; an order whose e-mail differs from the customer's is "not
    found". Each agreed kind is sent to its `actions` request with an Idempotency-Key header
    (the case reference and the kind), so a repeated job never refunds twice.
    """

    name = "shop-rest"

    def __init__(self, config: Mapping[str, Any] | None = None, token: str | None = None):
        self.config = dict(config if config is not None else settings.SHOP_REST)
        self.client = mapping.rest_client(
            self.name,
            self.config,
            problems=validate(self.config),
            token=token if token is not None else settings.SHOP_REST_TOKEN,
            what="The REST shop connector (SHOP_REST)",
        )

    def find_order(self, *, number: str, email: str) -> Order | None:
        number = number.strip()
        if not number:
            return None
        url = self.config["order_url"].format_map(
            {"number": quote(number, safe=""), "email": quote(email, safe="")}
        )
        body = self.client.request("GET", url)
        if body is None:
            return None
        root = self.config.get("order_root")
        data = mapping.dig(body, root) if root else body
        if isinstance(data, list):  # a search endpoint: the first match
            data = data[0] if data else None
        if not isinstance(data, Mapping):
            return None
        try:
            order = self._order(data)
        except mapping.FieldError as error:
            raise ConnectorUnavailable(
                self.name, f"the order does not fit the mapping: {error}"
            ) from error
        if order.customer_email.casefold() != email.strip().casefold():
            return None
        return order

    def _order(self, data: Mapping[str, Any]) -> Order:
        field_paths = self.config["fields"]
        minor = bool(self.config.get("minor_units", False))

        def field(name: str) -> Any:
            value = mapping.dig(data, field_paths[name])
            if value is None:
                raise mapping.FieldError(f"{name} ({field_paths[name]}) is missing")
            return value

        items: list[OrderItem] = []
        item_map = field_paths.get("item", {})
        for raw in (
            mapping.dig(data, field_paths["items"]) if field_paths.get("items") else None
        ) or []:
            items.append(
                OrderItem(
                    sku=mapping.text(mapping.dig(raw, item_map.get("sku", "sku"))),
                    name=mapping.text(mapping.dig(raw, item_map.get("name", "name"))),
                    quantity=int(mapping.dig(raw, item_map.get("quantity", "quantity")) or 0),
                    unit_price=mapping.money(
                        mapping.dig(raw, item_map.get("unit_price", "unit_price")),
                        minor_units=minor,
                    ),
                )
            )
        return Order(
            number=mapping.text(field("number")),
            customer_email=mapping.text(field("email")),
            placed_on=mapping.date(field("placed_on")),
            total=mapping.money(field("total"), minor_units=minor),
            currency=mapping.text(field("currency")).upper(),
            payment_method=mapping.text(mapping.dig(data, field_paths.get("payment_method", "-"))),
            items=tuple(items),
            shipment=self._shipment(data),
        )

    def _shipment(self, data: Mapping[str, Any]) -> Shipment | None:
        field_paths = self.config["fields"]
        if not field_paths.get("shipment"):
            return None
        raw = mapping.dig(data, field_paths["shipment"])
        if isinstance(raw, list):  # several parcels: the latest
            raw = raw[-1] if raw else None
        if not isinstance(raw, Mapping):
            return None
        paths = {name: name for name in SHIPMENT_FIELDS} | dict(
            field_paths.get("shipment_fields", {})
        )
        status = mapping.text(mapping.dig(raw, paths["status"]))
        status = self.config.get("shipment_status_map", {}).get(status, status)
        if status not in SHIPMENT_STATUSES:
            raise mapping.FieldError(f"unknown shipment status {status!r}: map it")
        return Shipment(
            carrier=mapping.text(mapping.dig(raw, paths["carrier"])),
            tracking_number=mapping.text(mapping.dig(raw, paths["tracking_number"])),
            status=status,
            promised_on=mapping.optional_date(mapping.dig(raw, paths["promised_on"])),
            delivered_on=mapping.optional_date(mapping.dig(raw, paths["delivered_on"])),
        )

    def carry_out(self, request: FulfilmentRequest) -> str:
        actions = self.config.get("actions", {})
        kind = request.kind if request.kind in actions else FALLBACK.get(request.kind, "")
        action = actions.get(kind)
        if action is None:
            raise ConnectorUnavailable(self.name, f"no request configured for {request.kind}")
        values = {
            "reference": request.reference,
            "number": request.order_number,
            "email": request.customer_email,
            "kind": request.kind,
            "amount": "" if request.amount is None else f"{request.amount:.2f}",
            "currency": request.currency,
        }
        key = self.config.get("idempotency_key", "{reference}:{kind}").format_map(values)
        values["idempotency_key"] = key
        url = action["url"].format_map({k: quote(v, safe="") for k, v in values.items()})
        header = self.config.get("idempotency_header", "Idempotency-Key")
        body = self.client.request(
            action.get("method", "POST"),
            url,
            json=mapping.fill(action.get("body", {}), values),
            headers={header: key},
        )
        if body is None:
            raise ConnectorUnavailable(
                self.name, f"the shop does not know order {request.order_number}"
            )
        shop_id = mapping.dig(body, action.get("id", "id"))
        return mapping.text(shop_id) or key
