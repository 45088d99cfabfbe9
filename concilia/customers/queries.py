"""Reads of the customers app: the privacy notice every submission needs, and finding customers
by what a person types (their data is encrypted: an email whole, a name by whole words)."""

from __future__ import annotations

from django.db.models import Q

from concilia.core.memo import remember_for
from concilia.customers.models import PrivacyNotice, email_index, names_contain


@remember_for(seconds=10)
def current_notice() -> PrivacyNotice:
    """The privacy notice in force (raises PrivacyNotice.DoesNotExist if none is published)."""
    return PrivacyNotice.objects.current()


@remember_for(seconds=10)
def notice_by_version(version: str) -> PrivacyNotice | None:
    return PrivacyNotice.objects.filter(version=version).first()


def customer_matches(term: str, *, prefix: str = "") -> Q:
    """Customers a search box's `term` finds: the one with that email when it is an address
    (whole, any case), else those whose name has all its words. `prefix` reaches the customer
    from another model ("customer__")."""
    term = term.strip()
    if "@" in term:
        return Q(**{f"{prefix}email_index": email_index(term)})
    return names_contain(term, path=f"{prefix}name_words")
