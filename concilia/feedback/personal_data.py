"""The feedback app's personal data (house rule 8): reviewers' copies of customers' messages (the
labels) and the unanswered questions customers asked; both go when the conversation's customer
is erased or its case anonymised, as the conversation's own texts do."""

from __future__ import annotations

from concilia.cases.models import Case
from concilia.core.personal_data import DELETED, PersonalFields, counted
from concilia.customers.models import Customer
from concilia.feedback.models import ReviewLabel, UnansweredAsk, UnansweredQuestion

DECLARED = [
    PersonalFields("feedback.ReviewLabel", fields=("text", "slots"), erasure=DELETED),
    PersonalFields("feedback.UnansweredAsk", fields=("text",), erasure=DELETED),
    PersonalFields(
        "feedback.UnansweredQuestion",
        fields=("text",),
        erasure=DELETED,
        note="Normalised and shared by everyone who asked it: deleted with its last ask.",
    ),
]


def _forget(lookup: str, value: int) -> dict[str, int]:
    """Delete what was copied from the conversations whose `lookup` is `value`."""
    labels, _ = ReviewLabel.objects.filter(**{f"review__conversation__{lookup}": value}).delete()
    asks, _ = UnansweredAsk.objects.filter(**{f"conversation__{lookup}": value}).delete()
    questions, _ = UnansweredQuestion.objects.filter(asks__isnull=True).delete()
    return counted(review_labels=labels, unanswered_asks=asks, unanswered_questions=questions)


def anonymise_case(case: Case) -> dict[str, int]:
    """The labels and unanswered questions of the conversations that led to the case."""
    return _forget("case_id", case.pk)


def erase_customer(customer: Customer, *, reason: str) -> dict[str, int]:
    """Those of the customer's conversations that opened no case."""
    return _forget("customer_id", customer.pk)
