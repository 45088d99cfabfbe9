"""The admin's pages of models with personal fields leave audit entries (a list, a record opened,
saved naming the personal fields changed, deleted); pages of other models leave none.

Olga administers the site from her office; Lucía (conftest's `open_case`) is the customer.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from concilia.accounts.models import Team, User
from concilia.core import audit
from concilia.core.admin_audit import AuditedModelAdmin, declared_fields
from concilia.core.models import AuditEntry
from concilia.customers.models import Customer

pytestmark = pytest.mark.django_db

OFFICE = {"REMOTE_ADDR": "192.0.2.10", "HTTP_USER_AGENT": "Olga's desktop"}


@pytest.fixture
def olga_in_admin(settings):
    settings.TWO_FACTOR_REQUIRED = "none"  # two factors are tested with the sign-in
    olga = User.objects.create_superuser("olga", "olga@company.test", "pw")
    client = Client(**OFFICE)
    client.force_login(olga)
    return client


def since(seq: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(seq__gt=seq).order_by("seq"))


def last_seq() -> int:
    return AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def test_every_model_declaring_personal_fields_has_an_audited_admin_if_it_has_one():
    for label in declared_fields():
        registered = [m for m in admin.site._registry if m._meta.label_lower == label]
        for model in registered:
            assert isinstance(admin.site._registry[model], AuditedModelAdmin), label
    assert isinstance(admin.site._registry[Customer], AuditedModelAdmin)
    assert not isinstance(admin.site._registry[Team], AuditedModelAdmin)


def test_opening_changing_listing_and_deleting_a_customer_in_the_admin_is_recorded(
    olga_in_admin, open_case
):
    customer = open_case().customer
    other = Customer.objects.create(email="someone@example.com", name="Someone")
    change = reverse("admin:customers_customer_change", args=[customer.pk])
    start = last_seq()

    assert olga_in_admin.get(reverse("admin:customers_customer_changelist")).status_code == 200
    page = olga_in_admin.get(change)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    response = olga_in_admin.post(change, {**data, "phone": "+34 611 222 333"})
    assert response.status_code == 302
    olga_in_admin.post(reverse("admin:customers_customer_delete", args=[other.pk]), {"post": "yes"})

    listed, viewed, changed, erased = since(start)
    for entry in (listed, viewed, changed, erased):
        assert (entry.actor_kind, entry.actor_label) == ("staff", "olga")
        assert (entry.ip_address, entry.user_agent, entry.channel) == (
            "192.0.2.10",
            "Olga's desktop",
            "web",
        )
        assert entry.detail.get("via") == "admin"
    assert (listed.action, listed.object_type) == ("list", "customers.customer")
    assert sorted(listed.detail["shown"]) == sorted([customer.pk, other.pk])
    assert (viewed.action, viewed.object_id, viewed.customer_pk) == (
        "view",
        str(customer.pk),
        customer.pk,
    )
    assert viewed.fields == ["name", "email", "phone"]
    assert (changed.action, changed.object_id, changed.fields) == (
        "change",
        str(customer.pk),
        ["phone"],
    )
    assert (erased.action, erased.object_id, erased.customer_pk) == (
        "erase",
        str(other.pk),
        other.pk,
    )
    assert not AuditEntry.objects.filter(detail__icontains="611").exists()
    assert audit.verify().ok


def test_admin_pages_of_models_without_personal_data_record_nothing(olga_in_admin):
    start = last_seq()
    assert olga_in_admin.get(reverse("admin:accounts_team_changelist")).status_code == 200
    assert since(start) == []
