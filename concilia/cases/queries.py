"""Reads of the cases app that every submission makes."""

from __future__ import annotations

from collections.abc import Iterator

from concilia.cases.models import Case, Category, Outcome, Status
from concilia.core.memo import remember_for


@remember_for(seconds=10)
def active_categories() -> dict[str, Category]:
    """The categories customers can choose, by code, in display order."""
    return {category.code: category for category in Category.objects.active()}


def closed_case_examples() -> Iterator[tuple[str, str]]:
    """(description, category code) of each closed case that was neither merged nor a duplicate.

    The NLU's feedback loop (`concilia nlu train --from-cases`): agents confirmed or corrected the
    category while working the case, so a closed case is a labelled example.
    """
    cases = (
        Case.objects.filter(status=Status.CLOSED, merged_into__isnull=True)
        .exclude(outcome=Outcome.DUPLICATE)
        .order_by("pk")
        .values_list("description", "category__code")
    )
    yield from cases.iterator(chunk_size=2000)
