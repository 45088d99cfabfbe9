"""Writes made by the intake channels: submitting a complaint once, keeping files between attempts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from concilia.accounts.models import User
from concilia.cases.actions import open_case
from concilia.cases.attachments import CheckedFile, stored_files
from concilia.cases.models import ActorKind, Case
from concilia.core.tasks import enqueue_with_change
from concilia.customers.actions import identify_customer, normalize_email, record_consent
from concilia.intake.models import IdempotencyKey, PendingUpload


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different request."""


@dataclass(frozen=True)
class Submission:
    case: Case
    created: bool


@transaction.atomic
def submit_complaint(
    *,
    data: dict[str, Any],
    channel: str,
    language: str,
    files: Sequence[CheckedFile] = (),
    idempotency_scope: str = "",
    idempotency_key: str = "",
    fingerprint: str = "",
    actor_kind: str = ActorKind.CUSTOMER,
    actor_user: User | None = None,
    verified_email: str = "",
) -> Submission:
    """Turn a validated complaint into a case, once per idempotency key.

    `data` is a ComplaintForm's cleaned_data; `verified_email` is the address the submitter has
    proven they own (a signed-in customer), whose contact data the submission may then update. A repeated key with the same fingerprint returns the
    case of the first submission; with another fingerprint it raises IdempotencyConflict.
    """
    key = None
    if idempotency_key:
        try:
            with transaction.atomic():
                key = IdempotencyKey.objects.create(
                    scope=idempotency_scope, key=idempotency_key, fingerprint=fingerprint
                )
        except IntegrityError:
            existing = IdempotencyKey.objects.select_related("case").get(
                scope=idempotency_scope, key=idempotency_key
            )
            if fingerprint and existing.fingerprint != fingerprint:
                raise IdempotencyConflict from None
            return Submission(case=existing.case, created=False)  # type: ignore[arg-type]
    category = data["category"]
    customer = identify_customer(
        email=data["email"],
        name=data["name"],
        # Data minimisation: a phone the category does not ask for is not kept.
        phone=(data.get("phone") or "") if category.asks("phone") else "",
        language=language,
        verified=actor_kind == ActorKind.INTEGRATION
        or normalize_email(verified_email) == normalize_email(data["email"]),
    )
    consent = record_consent(customer=customer, notice=data["notice_version"], channel=channel)
    case = open_case(
        customer=customer,
        category=category,
        kind=data["kind"],
        channel=channel,
        language=language,
        description=data["description"],
        desired_resolution=data.get("desired_resolution") or "",
        order_number=data.get("order_number") or "",
        purchase_date=data.get("purchase_date"),
        amount=data.get("amount"),
        consent=consent,
        files=files,
        actor_kind=actor_kind,
        actor_user=actor_user,
    )
    if key is not None:
        key.case = case
        key.save(update_fields=["case"])
    from concilia.intake.tasks import triage_new_case

    enqueue_with_change(triage_new_case, case_id=case.pk)
    return Submission(case=case, created=True)


def keep_pending_uploads(*, submission_id: uuid.UUID, files: Sequence[CheckedFile]) -> None:
    """Keep checked files of a form that has errors, so the corrected form still has them."""
    for checked in files:
        upload = PendingUpload(
            submission_id=submission_id,
            original_name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
        )
        upload.file.save(
            f"{uuid.uuid4().hex}.{checked.extension}", ContentFile(checked.content), save=False
        )
        upload.save()


def pending_files(uploads: Sequence[PendingUpload]) -> list[CheckedFile]:
    return stored_files(uploads)


def discard_pending_uploads(uploads: Sequence[PendingUpload]) -> None:
    for upload in uploads:
        upload.file.delete(save=False)
        upload.delete()
