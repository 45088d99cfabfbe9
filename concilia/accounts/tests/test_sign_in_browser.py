"""Olga sets up two-factor sign-in in a real browser, and the staff pages work under the CSP
(no inline script or style is refused: Chromium reports each refusal as a console error)."""

from __future__ import annotations

import os
import time
from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from concilia.accounts.models import User
from conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

PASSWORD = "a long passphrase for staff"


def test_an_administrator_sets_up_two_factor_sign_in_and_the_admin_works(
    page, live_server, settings
):
    settings.TWO_FACTOR_REQUIRED = "administrators"
    User.objects.create_superuser("olga", "olga@company.test", PASSWORD)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")

    # She is sent to set up her app: the QR code shows, and so does the key to type
    assert "/accounts/two-factor/setup/" in page.url
    assert page.locator("img.qr-code").evaluate("img => img.naturalWidth") > 0
    key = page.locator("#totp-key").inner_text().replace(" ", "")
    totp = TOTP(b32decode(key + "=" * (-len(key) % 8)))
    totp.time = time.time()
    page.fill("#id_code", f"{totp.token():06d}")
    with page.expect_navigation():
        page.click("form.card button[type=submit]")
    assert page.locator(".recovery-codes li").count() == 10
    with page.expect_navigation():
        page.click("a.button")

    # The admin opens, with its scripts (the team form's two-list selector) working
    assert page.url == f"{live_server.url}/admin/"
    page.goto(f"{live_server.url}/admin/accounts/team/add/")
    page.wait_for_selector(".selector-available")
    page.goto(f"{live_server.url}/admin/accounts/user/")
    assert page.locator("#result_list").is_visible()
    page.goto(f"{live_server.url}/accounts/two-factor/")
    assert page.locator(".status").first.is_visible()
    assert problems == []
