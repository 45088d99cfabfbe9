"""The complaint form in a real browser: fields follow the category, errors keep what was typed."""

from __future__ import annotations

import os

import pytest

from concilia.cases.models import Attachment, Case
from conftest import CHROMIUM, PDF_BYTES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def test_the_form_asks_only_what_the_category_needs_and_files_the_case(page, live_server, tmp_path):
    page.goto(f"{live_server.url}/reclamaciones/nueva")
    assert page.locator("h1").inner_text() == "Cuéntanos qué ha pasado"
    order_card = page.locator("#order-data")

    page.select_option("#id_category", "staff_conduct")
    assert not order_card.is_visible()

    page.select_option("#id_category", "shipping_delay")
    assert order_card.is_visible()
    assert page.locator('[data-field="order_number"] [data-when="required"]').is_visible()
    assert not page.locator('[data-field="amount"]').is_visible()

    page.select_option("#id_category", "refund")
    page.fill("#id_name", "Lucía Fernández")
    page.fill("#id_email", "lucia@example.com")
    page.fill("#id_order_number", "PED-10482")
    page.fill("#id_purchase_date", "2026-10-01")
    page.fill("#id_description", "Devolví el pedido y no me han reembolsado nada.")
    page.fill("#id_desired_resolution", "El reembolso.")
    invoice = tmp_path / "factura.pdf"
    invoice.write_bytes(PDF_BYTES)
    page.set_input_files("#id_attachments", str(invoice))
    page.check("#id_accept_privacy")
    page.click("button[type=submit]")

    # The amount was missing: the server says so, and nothing typed or attached is lost.
    assert (
        "Nada de lo que has escrito se ha perdido" in page.locator(".errors-summary").inner_text()
    )
    assert "Reembolso" in page.locator('[data-field="amount"] .errorlist').inner_text()
    assert page.input_value("#id_order_number") == "PED-10482"
    assert "factura.pdf" in page.locator(".kept-files").inner_text()
    assert Case.objects.count() == 0

    page.fill("#id_amount", "49,90")
    page.check("#id_accept_privacy")
    page.click("button[type=submit]")

    reference = page.locator("#reference").inner_text()
    case = Case.objects.get()
    assert reference == case.reference
    assert str(case.amount) == "49.90"
    assert case.language == "es"
    assert Attachment.objects.get(case=case).original_name == "factura.pdf"


def test_pages_work_under_the_content_security_policy(page, live_server):
    problems: list[str] = []
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.goto(f"{live_server.url}/complaints/new")
    assert "script-src 'self'" in page.evaluate(
        "() => fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    # The language switch submits itself from site.js, not from an inline handler.
    with page.expect_navigation():
        page.select_option("#language-switch", "en")
    assert page.locator("h1").inner_text() == "Tell us what happened"
    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".swagger-ui", timeout=10000)
    page.goto(f"{live_server.url}/admin/login/")
    assert page.locator("#id_username").is_visible()
    assert problems == []
