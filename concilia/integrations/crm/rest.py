"""A CRM with its own REST API, described by URL templates and JSON field mappings
(settings.CRM_REST, see docs/connectors.md), as a CustomerDirectory.

The mapping is checked by `validate`, which lists every problem at once: when the connector is
built and by Django's system checks (`concilia check`, and every command that starts Concilia).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core import checks

from concilia.core.ports import CaseSummary, CustomerProfile
from concilia.integrations import mapping
from concilia.integrations.crm.hubspot import summary_text
from concilia.integrations.resilience import ConnectorUnavailable

TOP_LEVEL = frozenset(
    {
        "base_url",
        "auth_header",
        "auth_scheme",
        "timeout",
        "idempotency_header",
        "idempotency_key",
        "customer_url",
        "customer_root",
        "customer_fields",
        "push_customer",
        "push_case",
    }
)
CUSTOMER_FIELDS = ("id", "email", "name", "first_name", "last_name", "phone", "tier")
# What a template may ask for: the look-up gets the e-mail; pushes get what they push.
LOOKUP_VALUES = frozenset({"email"})
CUSTOMER_VALUES = frozenset({"email", "name", "first_name", "last_name", "phone"})
CASE_VALUES = frozenset(
    {
        "reference",
        "email",
        "event",
        "category",
        "status",
        "outcome",
        "opened_at",
        "closed_at",
        "url",
        "text",
        "customer_id",
        "idempotency_key",
    }
)
METHODS = ("POST", "PUT", "PATCH")


def validate(config: Mapping[str, Any]) -> list[str]:
    """Every problem in a GenericRestDirectory mapping, in words an operator can act on."""
    if not isinstance(config, Mapping) or not config:
        return ["CRM_REST is empty: set CONCILIA_CRM_REST (JSON) or CONCILIA_CRM_REST_FILE."]
    problems: list[str] = []
    unknown = set(config) - TOP_LEVEL
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}.")
    base = config.get("base_url")
    if not isinstance(base, str) or not base.startswith(("http://", "https://")):
        problems.append(f"base_url must be an http(s) URL, not {base!r}.")
    timeout = config.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        problems.append(f"timeout must be a number of seconds, not {timeout!r}.")
    problems += _template("customer_url", config.get("customer_url"), LOOKUP_VALUES)
    root = config.get("customer_root")
    if root is not None and not mapping.is_path(root):
        problems.append(f"customer_root must be a dotted path, not {root!r}.")
    fields = config.get("customer_fields")
    if not isinstance(fields, Mapping):
        problems.append('customer_fields must map at least "email" (and "name" or first/last).')
        fields = {}
    for name, path in fields.items():
        if name not in CUSTOMER_FIELDS:
            problems.append(
                f"customer_fields.{name} is not a field ({', '.join(CUSTOMER_FIELDS)})."
            )
        elif not mapping.is_path(path):
            problems.append(
                f"customer_fields.{name} must be a dotted path such as 'contact.email'."
            )
    if "email" not in fields:
        problems.append("customer_fields.email is required: pulled customers are matched by it.")
    if "name" in fields and {"first_name", "last_name"} & set(fields):
        problems.append("customer_fields: map either name or first_name/last_name, not both.")
    push = config.get("push_customer")
    if isinstance(push, Mapping) and ("create" in push or "update" in push):
        problems += _request("push_customer.create", push.get("create"), CUSTOMER_VALUES)
        problems += _request("push_customer.update", push.get("update"), {*CUSTOMER_VALUES, "id"})
        if "id" not in fields:
            problems.append("push_customer.update needs customer_fields.id (the CRM's id).")
    else:
        problems += _request("push_customer", push, CUSTOMER_VALUES)
    problems += _request("push_case", config.get("push_case"), CASE_VALUES)
    if "customer_id" in _names(config.get("push_case")) and "id" not in fields:
        problems.append("push_case uses {customer_id}: map customer_fields.id.")
    key = config.get("idempotency_key", "{reference}:{event}")
    problems += mapping.template_problems(
        "idempotency_key", key, CASE_VALUES - {"idempotency_key", "customer_id"}
    )
    return problems


def _template(where: str, template: Any, allowed: frozenset[str] | set[str]) -> list[str]:
    return mapping.template_problems(
        where, template, frozenset(allowed), example="/customers?email={email}"
    )


def _request(where: str, request: Any, allowed: frozenset[str] | set[str]) -> list[str]:
    if not isinstance(request, Mapping):
        return [f"{where} must be an object with url (and method, body, id)."]
    problems = _template(f"{where}.url", request.get("url"), allowed)
    if request.get("method", "POST") not in METHODS:
        problems.append(f"{where}.method must be {', '.join(METHODS)}.")
    for path, template in mapping.template_leaves(request.get("body", {}), f"{where}.body"):
        problems += _template(path, template, allowed)
    if request.get("id") is not None and not mapping.is_path(request["id"]):
        problems.append(f"{where}.id must be a dotted path to the CRM's id in its answer.")
    return problems


def _names(request: Any) -> set[str]:
    """The placeholders a request's URL and body use."""
    if not isinstance(request, Mapping):
        return set()
    leaves = [request.get("url"), *(t for _, t in mapping.template_leaves(request.get("body"), ""))]
    names: set[str] = set()
    for leaf in leaves:
        try:
            names |= mapping.placeholders(leaf) if isinstance(leaf, str) else set()
        except ValueError:
            continue  # validate() names the broken template
    return names


class GenericRestDirectory:
    """CustomerDirectory over a REST API described in settings.CRM_REST.

    Pulling GETs `customer_url` and keeps the record whose e-mail is the customer's. Pushing a
    customer is one request (an upsert such as `PUT /customers/{email}`), or a look-up followed
    by `update` (when found) or `create`. A case summary is one request per case and event, sent
    with an idempotency header, so a repeated job writes nothing twice.
    """

    name = "crm-rest"

    def __init__(self, config: Mapping[str, Any] | None = None, token: str | None = None):
        self.config = dict(config if config is not None else settings.CRM_REST)
        self.client = mapping.rest_client(
            self.name,
            self.config,
            problems=validate(self.config),
            token=token if token is not None else settings.CRM_REST_TOKEN,
            what="The REST CRM connector (CRM_REST)",
        )
        self.fields: Mapping[str, str] = self.config["customer_fields"]

    # Pull ---------------------------------------------------------------------------------

    def _record(self, email: str) -> Mapping[str, Any] | None:
        """The CRM's record of this e-mail address (compared case-blind), or None."""
        url = self.config["customer_url"].format_map({"email": quote(email, safe="")})
        body = self.client.request("GET", url)
        if body is None:
            return None
        root = self.config.get("customer_root")
        data = mapping.dig(body, root) if root else body
        candidates = data if isinstance(data, list) else [data]
        for record in candidates:
            if not isinstance(record, Mapping):
                continue
            found = mapping.text(mapping.dig(record, self.fields["email"]))
            if not found:
                raise ConnectorUnavailable(
                    self.name,
                    f"the customer does not fit the mapping: email ({self.fields['email']}) "
                    "is missing",
                )
            if found.casefold() == email.casefold():
                return record
        return None

    def _known(self, record: Mapping[str, Any]) -> dict[str, str]:
        """The record's mapped values as texts, by field name."""
        return {name: mapping.text(mapping.dig(record, path)) for name, path in self.fields.items()}

    def _profile(self, record: Mapping[str, Any]) -> CustomerProfile:
        known = self._known(record)
        name = known.get("name") or " ".join(
            part for part in (known.get("first_name"), known.get("last_name")) if part
        )
        return CustomerProfile(
            email=known["email"],
            name=name,
            phone=known.get("phone", ""),
            tier=known.get("tier", ""),
        )

    def pull_customer(self, *, email: str) -> CustomerProfile | None:
        email = email.strip()
        if not email:
            return None
        record = self._record(email)
        return None if record is None else self._profile(record)

    # Push ---------------------------------------------------------------------------------

    def _send(
        self,
        where: str,
        request: Mapping[str, Any],
        values: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Send a configured request with its templates filled; the CRM's id from the answer."""
        url = request["url"].format_map({k: quote(v, safe="") for k, v in values.items()})
        body = self.client.request(
            request.get("method", "POST"),
            url,
            json=mapping.fill(request.get("body", {}), values, keep_empty=False),
            headers=headers,
        )
        if body is None:
            raise ConnectorUnavailable(self.name, f"{where}: the CRM answered 404 to {url}")
        return mapping.text(mapping.dig(body, request["id"])) if request.get("id") else ""

    def _id(self, record: Mapping[str, Any]) -> str:
        crm_id = mapping.text(mapping.dig(record, self.fields["id"]))
        if not crm_id:
            raise ConnectorUnavailable(
                self.name,
                f"the customer does not fit the mapping: id ({self.fields['id']}) is missing",
            )
        return crm_id

    def push_customer(self, customer: CustomerProfile) -> str:
        return self._push(customer) or customer.email.strip()

    def _push(
        self,
        customer: CustomerProfile,
        *,
        looked_up: bool = False,
        record: Mapping[str, Any] | None = None,
    ) -> str:
        """Upsert, or update the record found (`record`, when the caller `looked_up` already)
        or create one; the CRM's id, "" when its answer carries none."""
        first, _sep, last = customer.name.strip().partition(" ")
        values = {
            "email": customer.email.strip(),
            "name": customer.name.strip(),
            "first_name": first,
            "last_name": last.strip(),
            "phone": customer.phone.strip(),
        }
        push = self.config["push_customer"]
        if "create" not in push and "update" not in push:  # one upsert request
            return self._send("push_customer", push, values)
        if not looked_up:
            record = self._record(values["email"])
        if record is None:
            return self._send("push_customer.create", push["create"], values)
        crm_id = self._id(record)
        known = self._known(record)
        if any(value and known.get(name, value) != value for name, value in values.items()):
            self._send("push_customer.update", push["update"], {**values, "id": crm_id})
        return crm_id

    def push_case_summary(self, summary: CaseSummary) -> str:
        values = {
            "reference": summary.reference,
            "email": summary.customer_email,
            "event": summary.event,
            "category": summary.category,
            "status": summary.status,
            "outcome": summary.outcome,
            "opened_at": mapping.iso_utc(summary.opened_at) if summary.opened_at else "",
            "closed_at": mapping.iso_utc(summary.closed_at) if summary.closed_at else "",
            "url": summary.url,
            "text": summary_text(summary),
        }
        key = self.config.get("idempotency_key", "{reference}:{event}").format_map(values)
        values["idempotency_key"] = key
        request = self.config["push_case"]
        if "customer_id" in _names(request):
            values["customer_id"] = self._customer_id(summary.customer_email)
        header = self.config.get("idempotency_header", "Idempotency-Key")
        return self._send("push_case", request, values, headers={header: key}) or key

    def _customer_id(self, email: str) -> str:
        """The CRM's id for the customer, who is created first when the CRM has none."""
        record = self._record(email)
        if record is not None:
            return self._id(record)
        crm_id = self._push(CustomerProfile(email=email), looked_up=True, record=None)
        if crm_id:
            return crm_id
        record = self._record(email)  # the CRM's answer carried no id: read the record back
        if record is None:
            raise ConnectorUnavailable(self.name, f"the customer {email} was pushed but not found")
        return self._id(record)


@checks.register("concilia")
def check_crm_rest(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Django system check: the REST CRM's mapping, when it is the configured directory."""
    if f"{__name__}.{GenericRestDirectory.__name__}" != settings.CUSTOMER_DIRECTORY:
        return []
    return [
        checks.Error(
            f"CRM_REST: {problem}",
            hint="See docs/connectors.md, section 'Generic REST CRM'.",
            id="integrations.E001",
        )
        for problem in validate(settings.CRM_REST)
    ]
