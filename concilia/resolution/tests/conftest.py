"""Fixtures of the resolution engine's tests: policies made live, cases with demo-shop orders.

The demo shop (concilia.integrations.commerce.demo) makes orders up from their number: numbers
ending in 0-3 were delivered on time, 4-6 are late in transit, 7 was delivered late, 8 is lost,
9 was delivered; numbers starting with 9 are unknown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHOP_POLICY = Path(__file__).resolve().parents[1] / "policies" / "shop.yaml"


@pytest.fixture
def teams(db):
    from concilia.accounts.models import Team

    return {
        code: Team.objects.create(code=code, name_es=code, name_en=code)
        for code in ("customer-care", "logistics")
    }


@pytest.fixture
def live_policy(db, teams):
    """Publish a policy text (the demo shop's by default) and return its live version."""
    from concilia.resolution.actions import save_policy_version

    def publish(source: str | None = None, code: str = "shop"):
        return save_policy_version(
            code=code,
            source=source if source is not None else SHOP_POLICY.read_text(),
            author=None,
            publish=True,
        )

    return publish


@pytest.fixture
def shop_policy(live_policy):
    return live_policy()
