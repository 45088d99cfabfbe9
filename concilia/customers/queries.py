"""Reads of the customers app that every submission makes."""

from __future__ import annotations

from concilia.core.memo import remember_for
from concilia.customers.models import PrivacyNotice


@remember_for(seconds=10)
def current_notice() -> PrivacyNotice:
    """The privacy notice in force (raises PrivacyNotice.DoesNotExist if none is published)."""
    return PrivacyNotice.objects.current()


@remember_for(seconds=10)
def notice_by_version(version: str) -> PrivacyNotice | None:
    return PrivacyNotice.objects.filter(version=version).first()
