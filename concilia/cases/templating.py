"""Reply templates: {{ variable }} placeholders filled from a case, nothing else evaluated."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

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


# Higher apps that measure templates (concilia.feedback) register here in their ready(): cases
# imports none of them.
TemplateUseListener = Callable[..., None]
_use_listeners: list[TemplateUseListener] = []


def on_template_used(listener: TemplateUseListener) -> None:
    """Call `listener(code=, case=, message=, author=, at=)` for each reply sent from a template."""
    if listener not in _use_listeners:
        _use_listeners.append(listener)


def template_used(*, code: str, case: Case, message: Any, author: Any, at: dt.datetime) -> None:
    """Tell the registered listeners, inside the reply's transaction, that a template was used."""
    for listener in _use_listeners:
        listener(code=code, case=case, message=message, author=author, at=at)
