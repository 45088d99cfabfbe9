"""The complaint form in a real browser asks for no phone when the category does without one,
and asks for it again for a category that needs it."""

from __future__ import annotations

import os

import pytest

from concilia.cases.models import Category
from conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def test_the_phone_is_not_asked_where_the_category_does_without_it(page, live_server):
    Category.objects.filter(code="staff_conduct").update(
        field_rules={
            "order_number": "hidden",
            "purchase_date": "hidden",
            "amount": "hidden",
            "phone": "hidden",
        }
    )
    Category.objects.filter(code="refund").update(
        field_rules={"order_number": "required", "phone": "required"}
    )
    page.goto(f"{live_server.url}/reclamaciones/nueva")
    phone = page.locator('[data-field="phone"]')
    assert phone.is_visible()  # before a category is chosen

    page.select_option("#id_category", "staff_conduct")
    assert not phone.is_visible()
    assert not page.locator("#order-data").is_visible()

    page.select_option("#id_category", "refund")
    assert phone.is_visible()
    assert page.locator('[data-field="phone"] [data-when="required"]').is_visible()
