"""Describing other systems' JSON in settings: dotted paths read into Decimal money and dates,
and text templates ("/orders/{number}") checked against the values they may use, then filled."""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from concilia.integrations.resilience import ConnectorClient

_PATH = re.compile(r"^[A-Za-z0-9_\-$@]+(\.[A-Za-z0-9_\-$@]+)*$")


class FieldError(ValueError):
    """A value in another system's answer is missing or not what its mapping says it is."""


def is_path(path: Any) -> bool:
    """Whether `path` is a dotted path such as "billing.email" or "lines.0.sku"."""
    return isinstance(path, str) and bool(_PATH.match(path))


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (numbers index lists); None when any step is missing."""
    value = data
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
        if value is None:
            return None
    return value


def money(value: Any, *, minor_units: bool = False) -> Decimal:
    """A Decimal from "29.35", 29.35 (already Decimal when parsed with parse_float) or 2935 cents."""
    if isinstance(value, bool) or value is None or value == "":
        raise FieldError(f"not an amount: {value!r}")
    try:
        amount = Decimal(str(value).strip())
        if minor_units:
            amount = amount / 100
    except ArithmeticError as error:  # InvalidOperation, and Overflow for "1e999999999" cents
        raise FieldError(f"not an amount: {value!r}") from error
    if not amount.is_finite():
        raise FieldError(f"not an amount: {value!r}")
    return amount


def date(value: Any) -> dt.date:
    """A local date from "2026-03-22", an ISO date-time (naive ones are UTC) or a Unix time."""
    if isinstance(value, bool) or value in (None, ""):
        raise FieldError(f"not a date: {value!r}")
    try:
        return _local_date(value)
    # Out of range: a Unix time past year 9999, NaN, a moment whose local day does not exist.
    except (ValueError, OverflowError, OSError) as error:
        raise FieldError(f"not a date: {value!r}") from error


def _local_date(value: Any) -> dt.date:
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.isdigit()):
        moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        return timezone.localdate(moment)
    text = str(value).strip()
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return timezone.localdate(moment)


def optional_date(value: Any) -> dt.date | None:
    return None if value in (None, "") else date(value)


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def iso_utc(moment: dt.datetime | None) -> str:
    """An ISO date-time in UTC with milliseconds and a "Z" (now when `moment` is None)."""
    moment = (moment or timezone.now()).astimezone(dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def template_problems(
    where: str, template: Any, allowed: frozenset[str], *, example: str = "/orders/{number}"
) -> list[str]:
    """What is wrong with a text template: not a text, unreadable, or naming a value not allowed."""
    if not isinstance(template, str) or not template:
        return [f"{where} must be a text template such as {example!r}."]
    try:
        names = placeholders(template)
    except ValueError as error:
        return [f"{where}: {error} in {template!r}."]
    unknown = names - allowed
    if unknown:
        return [
            f"{where} uses {', '.join(sorted(unknown))}; it may use {', '.join(sorted(allowed))}."
        ]
    return []


def placeholders(template: str) -> set[str]:
    """The names a text template uses ("/customers/{id}" uses id); ValueError if unreadable."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def template_leaves(body: Any, where: str) -> list[tuple[str, str]]:
    """Every text leaf of a body template, with where it is."""
    if isinstance(body, Mapping):
        return [leaf for k, v in body.items() for leaf in template_leaves(v, f"{where}.{k}")]
    if isinstance(body, list):
        return [leaf for i, v in enumerate(body) for leaf in template_leaves(v, f"{where}.{i}")]
    return [(where, body)] if isinstance(body, str) else []


def fill(body: Any, values: Mapping[str, str], *, keep_empty: bool = True) -> Any:
    """The body template with {placeholders} filled in (texts only; numbers and booleans kept).

    With `keep_empty=False` a key whose template is one placeholder with an empty value is left
    out (and so is an object left with nothing), so that a partial update never blanks what the
    other system already knows.
    """
    if isinstance(body, Mapping):
        filled = {}
        for key, template in body.items():
            if not keep_empty and _empty_placeholder(template, values):
                continue
            value = fill(template, values, keep_empty=keep_empty)
            if keep_empty or value or not isinstance(template, Mapping) or not template:
                filled[key] = value
        return filled
    if isinstance(body, list):
        return [fill(v, values, keep_empty=keep_empty) for v in body]
    return body.format_map(values) if isinstance(body, str) else body


def _empty_placeholder(template: Any, values: Mapping[str, str]) -> bool:
    if not (isinstance(template, str) and template.startswith("{") and template.endswith("}")):
        return False
    name = template[1:-1]
    return name in values and values[name] == ""


def rest_client(
    name: str, config: Mapping[str, Any], *, problems: list[str], token: str, what: str
) -> ConnectorClient:
    """The client of a REST connector described in settings: refused with every problem of its
    mapping listed, else sending `<auth_header>: <auth_scheme> <token>` with the mapping's
    timeout (`what` names the connector and its setting in the error)."""
    if problems:
        raise ImproperlyConfigured(f"{what} is misconfigured:\n- " + "\n- ".join(problems))
    headers = {}
    if token:
        scheme = config.get("auth_scheme", "Bearer")
        headers[config.get("auth_header", "Authorization")] = f"{scheme} {token}".strip()
    return ConnectorClient(
        name, base_url=config["base_url"], headers=headers, timeout=config.get("timeout")
    )
