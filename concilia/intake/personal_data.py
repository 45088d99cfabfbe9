"""Intake's personal data (house rule 8): files of a complaint form that had errors, kept until
the corrected form is sent (then they join the case and are deleted here) or for a day at most
(`purge_pending_uploads`). They name no customer, so no export or erasure finds them by person;
anonymising a case deletes any still kept with the same content as its files."""

from __future__ import annotations

from concilia.cases.models import Attachment, Case
from concilia.core.personal_data import DELETED, PersonalFields, counted, forget_files_after_commit
from concilia.intake.models import PendingUpload

DECLARED = [
    PersonalFields(
        "intake.PendingUpload",
        fields=("file", "original_name"),
        erasure=DELETED,
        note="Linked to a form, not to a person: deleted when the form is sent, or within a day.",
    ),
]


def anonymise_case(case: Case) -> dict[str, int]:
    hashes = Attachment.objects.filter(case_id=case.pk).values_list("sha256", flat=True)
    kept = PendingUpload.objects.filter(sha256__in=list(hashes))
    names = list(kept.values_list("file", flat=True))
    deleted, _by_model = kept.delete()
    forget_files_after_commit(names)
    return counted(pending_uploads=deleted)
