"""The dialogue: one customer turn in, the assistant's answers out, over a conversation's state.

A turn is read (the NLU), checked against what holds at any point of any flow (asking for a
person, frustration, a correction, a question for the knowledge base, cancelling), and then
handled by the current step: consent, the problem, the category, who the customer is, the slots
of the category's flow, the summary, troubleshooting and a technician's visit, the survey.
"""

from concilia.assistant.dialogue.base import (
    HUMAN,
    SKIP,
    Reply,
    Rules,
    open_case_references,
    rules,
    shipment_status,
    understanding_record,
)
from concilia.assistant.dialogue.conversation import Dialogue

__all__ = [
    "HUMAN",
    "SKIP",
    "Dialogue",
    "Reply",
    "Rules",
    "open_case_references",
    "rules",
    "shipment_status",
    "understanding_record",
]
