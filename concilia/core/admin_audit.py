"""The admin's pages of models that declare personal fields leave audit entries: a list shown, a
record opened, saved (naming the personal fields changed) or deleted.

The default admin site is `AuditedAdminSite` (settings.INSTALLED_APPS names
`concilia.core.admin_apps.AuditedAdminConfig` in place of django.contrib.admin): when a model is
registered, its ModelAdmin gets `AuditedModelAdmin` mixed in if the model is declared in a
`personal_data` module (settings.PERSONAL_DATA_MODULES), so no app's admin has to remember it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from concilia.core import audit


@cache
def declared_fields() -> dict[str, tuple[str, ...]]:
    """Each declared model's personal fields, by "app_label.modelname"."""
    found: dict[str, tuple[str, ...]] = {}
    for path in settings.PERSONAL_DATA_MODULES:
        for declaration in getattr(importlib.import_module(path), "DECLARED", ()):
            found[declaration.model.lower()] = tuple(declaration.fields)
    return found


def _case_of(obj: Model) -> Any:
    """The case the record is, or belongs to (its reference and customer go in the entry)."""
    if obj._meta.label_lower == "cases.case":
        return obj
    return getattr(obj, "case", None) if hasattr(obj, "case_id") else None


class AuditedModelAdmin(admin.ModelAdmin):
    """What the admin shows or changes of a model with personal fields, in the audit log."""

    @property
    def personal_fields(self) -> tuple[str, ...]:
        return declared_fields().get(self.model._meta.label_lower, ())

    def _record(self, action: str, obj: Model, fields: Iterable[str]) -> None:
        audit.record(
            action, target=obj, case=_case_of(obj), fields=list(fields), detail={"via": "admin"}
        )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and response.status_code == 200:
            audit.record(
                audit.LIST,
                target=self.model,
                listed=list(changelist.result_list),
                fields=self.personal_fields,
                detail={"via": "admin"},
            )
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = getattr(response, "context_data", {}).get("original")
        if request.method == "GET" and shown is not None and response.status_code == 200:
            self._record(audit.VIEW, shown, self.personal_fields)
        return response

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        personal = self.personal_fields
        touched = [name for name in form.changed_data if name in personal] if change else personal
        self._record(audit.CHANGE if change else audit.CREATE, obj, touched)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        self._record(audit.ERASE, obj, self.personal_fields)  # while it still has its id
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self._record(audit.ERASE, obj, self.personal_fields)
        super().delete_queryset(request, queryset)


class AuditedAdminSite(admin.AdminSite):
    """The default admin site, which audits the pages of models with personal fields."""

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        models = [model_or_iterable] if isinstance(model_or_iterable, type) else model_or_iterable
        for model in models:
            chosen = admin_class or admin.ModelAdmin
            if model._meta.label_lower in declared_fields() and not issubclass(
                chosen, AuditedModelAdmin
            ):
                chosen = type(chosen.__name__, (AuditedModelAdmin, chosen), {})
            super().register(model, chosen, **options)
