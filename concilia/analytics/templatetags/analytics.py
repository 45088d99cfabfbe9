"""Template filters of the dashboards: a figure as a percentage, hours, money or a number."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def figure(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "%":
        return f"{number_format(value * 100, 1)} %"
    if kind == "h":
        return f"{number_format(value, 1)} h"
    if kind == "€":
        return f"{number_format(value, 2)} €"
    if isinstance(value, float):
        return number_format(value, 2)
    return number_format(value, 0, force_grouping=True)


@register.filter
def cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return number_format(value, 2)
    return str(value)
