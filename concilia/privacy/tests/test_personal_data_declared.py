"""House rule 8: every model's personal data is declared, and the declarations say the truth."""

from __future__ import annotations

from django.apps import apps

from concilia.core.personal_data import ANONYMISED, DELETED, KEPT
from concilia.privacy import hooks


def test_every_declared_field_exists_and_its_encryption_is_read_from_the_field():
    for item in hooks.declared():
        model = item.model_class
        names = {field.name for field in model._meta.get_fields()}
        assert set(item.fields) <= names, item.model
        assert set(item.exported) <= set(item.fields), item.model
        assert item.erasure in (ANONYMISED, DELETED, KEPT), item.model
        if item.erasure == KEPT:
            assert item.note, f"{item.model} is kept: say why"
    customer = next(i for i in hooks.declared() if i.model == "customers.Customer")
    assert customer.encrypted == ("name", "email", "phone")


def test_every_model_that_lists_personal_fields_is_declared_with_them():
    declared = {item.model: set(item.fields) for item in hooks.declared()}
    for model in apps.get_models():
        own = set(getattr(model, "PERSONAL_FIELDS", ()))
        if own:
            assert model._meta.label in declared, model._meta.label
            assert own <= declared[model._meta.label], model._meta.label


def test_every_app_with_personal_data_has_its_hooks():
    modules = [module.__name__ for module in hooks.modules()]
    for app in ("cases", "customers", "assistant", "resolution", "intake", "integrations"):
        assert f"concilia.{app}.personal_data" in modules
    assert modules[-1] == "concilia.customers.personal_data"  # erased last
