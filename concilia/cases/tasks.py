"""Background jobs of the cases app: emails to customers (confirmation, replies) and to staff."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from concilia.cases.models import ActorKind, Case, Message, Notification, NotificationKind
from concilia.core.jobs import job
from concilia.core.mail import compose


@job(queue_name="mail")
def send_case_confirmation(*, case_id: int) -> None:
    case = Case.objects.select_related("customer", "category").filter(pk=case_id).first()
    if case is None:
        return
    with translation.override(case.language):
        context = {
            "case": case,
            "customer": case.customer,
            "track_url": settings.BASE_URL
            + reverse("intake:track")
            + f"?reference={case.reference}",
        }
        compose(
            subject=_("We have received your case %(reference)s") % {"reference": case.reference},
            template="cases/email/confirmation",
            context=context,
            to=[case.customer.email],
            reference=case.reference,
            root=True,
        ).send()


def _track_url(case: Case) -> str:
    return settings.BASE_URL + reverse("intake:track") + f"?reference={case.reference}"


@job(queue_name="mail")
def send_agent_reply(*, message_id: int) -> None:
    """Email an agent's reply to the customer, in the case's language and thread."""
    message = (
        Message.objects.select_related("case__customer", "case__category")
        .filter(pk=message_id, internal=False)
        .first()
    )
    if message is None:
        return
    case = message.case
    with translation.override(case.language):
        context = {"case": case, "message": message, "track_url": _track_url(case)}
        compose(
            subject=_("[%(reference)s] Answer to your case") % {"reference": case.reference},
            template="cases/email/reply",
            context=context,
            to=[case.customer.email],
            reference=case.reference,
            message_pk=message.pk,
            automatic=message.author_kind != ActorKind.STAFF,
        ).send()


@job(queue_name="mail")
def send_notification_email(*, notification_id: int) -> None:
    """Email a staff member one notification, in their language; sent once."""
    notification = (
        Notification.objects.select_related("recipient", "case")
        .filter(pk=notification_id, emailed_at__isnull=True)
        .first()
    )
    if notification is None or not notification.recipient.email:
        return
    recipient, case = notification.recipient, notification.case
    with translation.override(recipient.language):
        headline = str(NotificationKind(notification.kind).label)
        context = {
            "notification": notification,
            "case": case,
            "headline": headline,
            "language": recipient.language,
            "case_url": settings.BASE_URL + reverse("helpdesk:case", args=[case.reference]),
        }
        compose(
            subject=f"[{case.reference}] {headline}",
            template="cases/email/notification",
            context=context,
            to=[recipient.email],
            reference=case.reference,
        ).send()
    Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
