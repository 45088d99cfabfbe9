"""What intake remembers between requests: idempotency keys and files kept while a form is corrected."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from concilia.cases.models import Case, get_attachment_storage


class IdempotencyKey(models.Model):
    """A submission already handled: a repeated key returns the same case instead of a new one."""

    scope = models.CharField(max_length=80)
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class PendingUpload(models.Model):
    """A checked file from a form that had errors, kept so the person need not attach it again."""

    submission_id = models.UUIDField(db_index=True)
    file = models.FileField(storage=get_attachment_storage, upload_to="pending/", max_length=300)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.original_name
