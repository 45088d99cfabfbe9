"""Reads of the cases app that every submission makes."""

from __future__ import annotations

from concilia.cases.models import Category
from concilia.core.memo import remember_for


@remember_for(seconds=10)
def active_categories() -> dict[str, Category]:
    """The categories customers can choose, by code, in display order."""
    return {category.code: category for category in Category.objects.active()}
