"""Background jobs of intake: clearing files kept for forms that were never completed."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_tasks import task

from concilia.intake.actions import discard_pending_uploads
from concilia.intake.models import PendingUpload


@task()
def purge_pending_uploads(*, older_than_hours: int = 24) -> int:
    """Delete kept uploads (and their files) of forms abandoned for longer than the given hours."""
    cutoff = timezone.now() - dt.timedelta(hours=older_than_hours)
    stale = list(PendingUpload.objects.filter(created_at__lt=cutoff))
    discard_pending_uploads(stale)
    return len(stale)
