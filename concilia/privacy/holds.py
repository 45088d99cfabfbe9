"""Legal holds: what keeps a customer's data although they asked for its erasure.

An open dispute holds it, read from the cases' and the resolution's state:

- an open complaint (a case of kind complaint not yet closed): the company must still answer it,
  within its legal deadline, and keep the record of that answer;
- a case in mediation with third parties (a party invited and not removed, or a proposal open);
- a settlement agreed but not yet carried out in the shop (a refund in flight, or one that
  failed and a person must do by hand): the shop needs the customer to pay them.

Staff add holds of their own with a reason (a claim in court, a chargeback, a regulator's
inquiry): `LegalHold` rows, in force until released.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _

from concilia.cases.models import Case, Kind
from concilia.customers.models import Customer
from concilia.privacy.models import LegalHold
from concilia.resolution.personal_data import open_disputes


@dataclass(frozen=True)
class Hold:
    kind: str  # "mediation", "settlement", "open_complaint" or "manual"
    reason: str  # what the person and the officer read
    reference: str = ""  # the case, for the automatic ones
    hold: LegalHold | None = None


def holds_on(customer: Customer) -> list[Hold]:
    """Every hold in force on the customer's data, automatic ones first."""
    found: list[Hold] = []
    disputed = set()
    for reference, what in open_disputes(customer):
        disputed.add(reference)
        if what == "mediation":
            reason = _(
                "Case %(reference)s is in a mediation with other parties, which needs its "
                "record until the mediation ends."
            )
        else:
            reason = _("The settlement agreed in case %(reference)s has not been carried out yet.")
        found.append(Hold(what, reason % {"reference": reference}, reference))
    complaints = (
        Case.objects.for_customer(customer)
        .open()
        .filter(kind=Kind.COMPLAINT)
        .order_by("pk")
        .values_list("reference", flat=True)
    )
    for reference in complaints:
        if reference not in disputed:
            found.append(
                Hold(
                    "open_complaint",
                    _(
                        "Case %(reference)s is an open complaint that we must still answer; "
                        "its data can be erased once it is closed."
                    )
                    % {"reference": reference},
                    reference,
                )
            )
    for hold in LegalHold.objects.active().filter(customer=customer).order_by("placed_at", "pk"):
        found.append(
            Hold("manual", _("Legal hold: %(reason)s") % {"reason": hold.reason}, "", hold)
        )
    return found
