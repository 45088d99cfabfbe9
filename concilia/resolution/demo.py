"""The demo shop's policy, for `concilia demo`."""

from __future__ import annotations

from pathlib import Path

from concilia.resolution.actions import save_policy_version
from concilia.resolution.models import Policy

SHOP_POLICY = Path(__file__).resolve().parent / "policies" / "shop.yaml"


def load_demo() -> bool:
    """Publish the demo shop's policy unless a policy exists already; True when it did."""
    if Policy.objects.exists():
        return False
    save_policy_version(
        code="shop",
        source=SHOP_POLICY.read_text(encoding="utf-8"),
        author=None,
        note="Demo policy",
        publish=True,
    )
    return True
