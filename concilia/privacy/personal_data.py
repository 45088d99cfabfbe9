"""The privacy app's own personal data (house rule 8): data-subject requests (the person's words
and contact address, encrypted; the export's zip, in the encrypted store) and legal holds.

Erasure empties the customer's requests' details and deletes their exports; a request keeps its
kind, dates and outcome (the proof it was answered on time). The erasure request being answered
keeps its contact address until its confirmation is sent, then that is cleared too. Legal holds
are kept: they are staff's record of why data was kept, and name no value.
"""

from __future__ import annotations

from concilia.core.personal_data import (
    KEPT,
    Export,
    PersonalFields,
    counted,
    forget_files_after_commit,
    iso,
)
from concilia.customers.models import Customer
from concilia.privacy.models import DataSubjectRequest

DECLARED = [
    PersonalFields(
        "privacy.DataSubjectRequest",
        fields=("contact_email", "details", "export_file"),
        exported=("details",),
    ),
    PersonalFields(
        "privacy.LegalHold",
        fields=("reason",),
        erasure=KEPT,
        note="Why the data was kept against an erasure request: staff's words, for accountability.",
    ),
]


def export_customer(customer: Customer) -> Export:
    requests = DataSubjectRequest.objects.for_customer(customer).order_by("received_at", "pk")
    return Export(
        data={
            "data_requests": [
                {
                    "request": request.kind,
                    "received_at": iso(request.received_at),
                    "due_at": iso(request.deadline),
                    "status": request.status,
                    "closed_at": iso(request.completed_at),
                    "details": request.details,
                }
                for request in requests
            ]
        }
    )


def erase_customer(customer: Customer, *, reason: str) -> dict[str, int]:
    """Empty the customer's requests' details (and the addresses of those answered), delete
    their exports. The columns are encrypted, so the few rows are compared in Python."""
    files, details, contacts = [], 0, 0
    for request in DataSubjectRequest.objects.for_customer(customer):
        changed = []
        if request.export_file:
            files.append(request.export_file.name)
            request.export_file = ""
            request.export_size, request.export_sha256, request.export_expires_at = None, "", None
            changed += ["export_file", "export_size", "export_sha256", "export_expires_at"]
        if request.details:
            request.details = ""
            changed.append("details")
            details += 1
        if request.contact_email and not request.is_pending:
            request.contact_email = ""
            changed.append("contact_email")
            contacts += 1
        if changed:
            request.save(update_fields=[*changed, "updated_at"])
    forget_files_after_commit(files)
    return counted(request_exports=len(files), request_details=details, request_contacts=contacts)
