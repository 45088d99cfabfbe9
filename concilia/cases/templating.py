"""Reply templates: {{ variable }} placeholders filled from a case, nothing else evaluated."""

from __future__ import annotations

import re

from django.utils import formats, timezone, translation

from concilia.cases.models import Case

VARIABLE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

VARIABLES = ("customer_name", "reference", "deadline", "order_number", "category", "agent_name")


def unknown_variables(body: str) -> list[str]:
    return sorted({name for name in VARIABLE.findall(body) if name not in VARIABLES})


def variables_for(case: Case, agent_name: str = "") -> dict[str, str]:
    with translation.override(case.language):
        deadline = formats.date_format(timezone.localtime(case.deadline), "DATE_FORMAT")
        category = str(case.category)
    return {
        "customer_name": case.customer.name,
        "reference": case.reference,
        "deadline": deadline,
        "order_number": case.order_number,
        "category": category,
        "agent_name": agent_name,
    }


def render(body: str, values: dict[str, str]) -> str:
    """Fill each known {{ variable }}; unknown ones stay as written, so nothing is lost silently."""
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), body)
