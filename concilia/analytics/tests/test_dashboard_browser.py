"""Sara opens the analytics dashboard in a real browser (Debian's Chromium, no network): every
chart renders as an SVG with something drawn in it, nothing is refused by the CSP, a chart's
CSV downloads, and a screenshot is kept (in CONCILIA_TEST_ARTIFACTS, else the test's tmp dir)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from concilia.analytics.refresh import refresh
from concilia.analytics.tables import DASHBOARD
from concilia.cases import actions
from concilia.cases.models import Outcome, Status
from conftest import CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]


def test_sara_sees_the_charts_and_downloads_one(
    seeded, page, live_server, tmp_path, open_case, teams, ana, sara
):
    # Given a few cases, one answered and closed, and the aggregates refreshed
    cases = [open_case(email=f"c{i}@example.com") for i in range(4)]
    actions.reply_to_customer(
        case=cases[0], body="Hecho", author=ana, status=Status.CLOSED, outcome=Outcome.RESOLVED
    )
    actions.reply_to_customer(case=cases[1], body="¿Número de pedido?", author=ana)
    refresh()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
    page.set_viewport_size({"width": 1366, "height": 768})  # a laptop screen

    # When Sara signs in and opens the dashboard
    page.goto(f"{live_server.url}/helpdesk/analytics/")
    assert "/helpdesk/login/" in page.url
    page.fill("#id_username", "sara")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url("**/helpdesk/analytics/")

    # Then every chart is an SVG the browser lays out at a readable size, with lines or bars
    for slug in DASHBOARD:
        svg = page.locator(f'[data-chart="{slug}"] svg.chart')
        box = svg.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 30, slug
        if slug != "payouts":  # nothing paid out yet: an empty chart says so
            assert svg.locator("polyline, circle, rect").count() > 0, slug
    assert page.locator('[data-chart="payouts"] svg text').text_content() == "—"
    assert page.locator('[data-chart="volume"] polyline.series').count() == 2
    assert page.locator('[data-chart="funnel"] rect.step').count() == 6
    # the menu links to it, in the page's language (Spanish here)
    link = page.locator('header nav a[href="/helpdesk/analytics/"]')
    assert link.count() == 1
    assert link.text_content().strip() == "Analítica"
    # and nothing was refused or fetched from elsewhere
    assert problems == []
    screenshot = Path(os.environ.get("CONCILIA_TEST_ARTIFACTS") or tmp_path) / "analytics.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000

    # A chart's CSV downloads with the day's figures
    with page.expect_download() as download:
        page.locator('[data-chart="volume"] figcaption a').click()
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0] == "Día,Abierto,Cerrado"  # in the page's language
    assert ",4,1" in text
