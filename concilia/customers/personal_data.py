"""The customers app's personal data (house rule 8): the customer's contact data (encrypted), the
consents they gave and their sign-in links; their copy, and their erasure.

An erased customer keeps their row (their cases, consents and conversations point to it, and
statistics count customers) with a name of "—", an address that stands for no one
(erased-customer-<id>@erased.invalid, unique as the email index needs) and no phone; their
sign-in links are deleted. Someone writing later from the old address is a new customer.
"""

from __future__ import annotations

from concilia.core.personal_data import (
    DELETED,
    ERASED_DOMAIN,
    ERASED_TEXT,
    KEPT,
    Export,
    PersonalFields,
    counted,
    erased_email,
    iso,
)
from concilia.customers.models import Consent, Customer, SignInLink

DECLARED = [
    PersonalFields(
        "customers.Customer",
        fields=("name", "email", "phone"),
        exported=("name", "email", "phone"),
    ),
    PersonalFields(
        "customers.Consent",
        fields=("accepted_at", "channel"),
        exported=("accepted_at", "channel"),
        erasure=KEPT,
        note="Which version of the notice was accepted, when: the proof of consent, no contact data.",
    ),
    PersonalFields(
        "customers.SignInLink",
        fields=("next_reference",),
        erasure=DELETED,
    ),
]


def is_erased(customer: Customer) -> bool:
    return (customer.email or "").endswith("@" + ERASED_DOMAIN)


def export_customer(customer: Customer) -> Export:
    consents = Consent.objects.filter(customer=customer).select_related("notice")
    return Export(
        data={
            "customer": {
                "name": customer.name,
                "email": customer.email,
                "phone": customer.phone,
                "language": customer.language,
                "created_at": iso(customer.created_at),
            },
            "consents": [
                {
                    "privacy_notice": consent.notice.version,
                    "accepted_at": iso(consent.accepted_at),
                    "channel": consent.channel,
                }
                for consent in consents.order_by("accepted_at", "pk")
            ],
        }
    )


def erase_customer(customer: Customer, *, reason: str) -> dict[str, int]:
    """Replace the contact data (the email and name indexes follow on save) and delete the
    sign-in links. Runs last: the other apps' hooks still read the address."""
    links, _by_model = SignInLink.objects.filter(customer=customer).delete()
    changed = 0
    if not is_erased(customer):
        customer.name = ERASED_TEXT
        customer.email = erased_email("customer", customer.pk)
        customer.phone = ""
        customer.save(update_fields=["name", "email", "phone", "updated_at"])
        changed = 1
    return counted(customers=changed, sign_in_links=links)
