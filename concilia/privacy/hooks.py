"""Every app's personal-data hooks together (the modules of settings.PERSONAL_DATA_MODULES, see
concilia.core.personal_data): what is declared, a customer's whole export, anonymising a case
everywhere and erasing a customer everywhere, each recorded in the audit log."""

from __future__ import annotations

import functools
from collections import Counter
from importlib import import_module
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import transaction

from concilia.cases.models import Case
from concilia.core import audit
from concilia.core.personal_data import KEPT, Export, PersonalFields, add_counts
from concilia.customers.models import Customer


@functools.cache
def _modules(paths: tuple[str, ...]) -> tuple[ModuleType, ...]:
    return tuple(import_module(path) for path in paths)


def modules() -> tuple[ModuleType, ...]:
    """The apps' hook modules, in the order erasure runs them (higher apps first)."""
    return _modules(tuple(settings.PERSONAL_DATA_MODULES))


def declared() -> list[PersonalFields]:
    """Every model's declared personal fields."""
    return [item for module in modules() for item in getattr(module, "DECLARED", ())]


def export_customer(customer: Customer) -> Export:
    """The customer's data from every app: one JSON document (a section per app) and the files."""
    whole = Export()
    for module in modules():
        hook = getattr(module, "export_customer", None)
        if hook is None:
            continue
        part: Export = hook(customer)
        whole.data.update(part.data)
        whole.files.extend(part.files)
    return whole


@transaction.atomic
def anonymise_case(case: Case, *, actor: Any = None, reason: str = "") -> dict[str, int]:
    """Anonymise one case in every app that holds something of it (its thread, files and
    history, its conversations, mediation, emails…), and record it; returns counts by kind."""
    total: Counter[str] = Counter()
    for module in modules():
        hook = getattr(module, "anonymise_case", None)
        if hook is not None:
            add_counts(total, hook(case))
    audit.record(
        audit.ERASE,
        case=case,
        actor=actor,
        fields=_case_fields(),
        detail={"anonymised": dict(sorted(total.items())), "reason": reason[:200]},
    )
    return dict(total)


@transaction.atomic
def erase_customer(customer: Customer, *, reason: str, actor: Any = None) -> dict[str, int]:
    """Erase the customer everywhere: each case anonymised, then each app's own erasure (the
    customer's conversations, emails, contact data…); returns counts by kind."""
    total: Counter[str] = Counter()
    for case in Case.objects.for_customer(customer).order_by("pk"):
        add_counts(total, anonymise_case(case, actor=actor, reason=reason))
    for module in modules():
        hook = getattr(module, "erase_customer", None)
        if hook is not None:
            add_counts(total, hook(customer, reason=reason))
    return dict(total)


def _case_fields() -> list[str]:
    """The personal fields anonymising a case touches, as "model.field"."""
    return [
        f"{item.model.split('.')[-1].lower()}.{name}"
        for item in declared()
        if item.model != "customers.Customer"
        for name in item.fields
        if item.erasure != KEPT
    ]
