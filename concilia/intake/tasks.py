"""Background jobs of intake: deciding new cases by the company's policies, clearing files kept
for forms that were never completed."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django_tasks import task

from concilia.cases.models import Case
from concilia.core.ports import triage
from concilia.intake.actions import discard_pending_uploads
from concilia.intake.models import PendingUpload


@task()
def purge_pending_uploads(*, older_than_hours: int = 24) -> int:
    """Delete kept uploads (and their files) of forms abandoned for longer than the given hours."""
    cutoff = timezone.now() - dt.timedelta(hours=older_than_hours)
    stale = list(PendingUpload.objects.filter(created_at__lt=cutoff))
    discard_pending_uploads(stale)
    return len(stale)


@task(queue_name="customer")
def triage_new_case(*, case_id: int) -> str:
    """Ask the company's policies about a case the form or the API just opened (after commit, so
    that a slow or failing shop never loses the complaint: it then simply waits in the queue)."""
    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    if case is None or not case.is_open:
        return ""
    return triage()(case).action
