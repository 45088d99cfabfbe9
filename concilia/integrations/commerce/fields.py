"""Reading other systems' JSON: dotted paths, money as Decimal, dates in the forms shops write."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

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
    except InvalidOperation as error:
        raise FieldError(f"not an amount: {value!r}") from error
    if not amount.is_finite():
        raise FieldError(f"not an amount: {value!r}")
    return amount / 100 if minor_units else amount


def date(value: Any) -> dt.date:
    """A local date from "2026-03-22", an ISO date-time (naive ones are UTC) or a Unix time."""
    if isinstance(value, bool) or value in (None, ""):
        raise FieldError(f"not a date: {value!r}")
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.isdigit()):
        moment = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        return timezone.localdate(moment)
    text = str(value).strip()
    if len(text) == 10:
        try:
            return dt.date.fromisoformat(text)
        except ValueError as error:
            raise FieldError(f"not a date: {value!r}") from error
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise FieldError(f"not a date: {value!r}") from error
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=dt.UTC)
    return timezone.localdate(moment)


def optional_date(value: Any) -> dt.date | None:
    return None if value in (None, "") else date(value)


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()
