"""Background jobs of data-subject requests: building an export, emailing the person and the
data-protection officers, compacting the search index after an erasure, and the sweep's part
(warnings before a request's deadline, exports past their download date deleted)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from concilia.accounts.models import User
from concilia.cases.personal_data import purge_search_index as purge_index
from concilia.core.jobs import job
from concilia.core.mail import compose
from concilia.core.personal_data import file_digest, forget_files_after_commit
from concilia.core.tasks import enqueue_with_change
from concilia.privacy import actions, exports
from concilia.privacy.models import (
    DataSubjectRequest,
    RequestKind,
    RequestStatus,
    export_path,
)

logger = logging.getLogger(__name__)

# Days the person may download their export; the data-protection officers are warned this many
# days before a request's deadline.
EXPORT_DAYS = getattr(settings, "CONCILIA_DSR_EXPORT_DAYS", 7)
WARN_DAYS = getattr(settings, "CONCILIA_DSR_WARN_DAYS", 7)

HANDLE_PERMISSION = ("privacy", "handle_datasubjectrequest")


@job()
def build_export(*, request_id: int, again: bool = False) -> None:
    """Build and store the zip of an access request (once; `again` for one whose download
    expired), then answer the request."""
    request = DataSubjectRequest.objects.select_related("customer").filter(pk=request_id).first()
    if request is None or request.kind != RequestKind.ACCESS or request.customer is None:
        return
    if request.status == RequestStatus.UNVERIFIED or request.export_available:
        return
    if request.export_ready_at is not None and not again:
        return
    built = exports.build(request)
    storage = DataSubjectRequest._meta.get_field("export_file").storage
    name = storage.save(export_path(request, "export.zip"), ContentFile(built.content))
    try:
        actions.record_export(
            request=request,
            name=name,
            size=len(built.content),
            sha256=file_digest(built.content),
            files=built.files,
            days=EXPORT_DAYS,
        )
    except Exception:
        storage.delete(name)
        raise


@job()
def purge_search_index() -> None:
    purge_index()


# Emails ---------------------------------------------------------------------------------------


def _date(moment: dt.datetime | None) -> str:
    return formats.date_format(timezone.localtime(moment), "DATE_FORMAT") if moment else ""


def _my_data_url() -> str:
    return settings.BASE_URL + reverse("intake:my-data")


def _to_person(request: DataSubjectRequest, what: str) -> tuple[str, list[str], str, str]:
    """(subject, paragraphs, link label, link) of an email to the person who asked."""
    kind = request.get_kind_display()
    link_label, link = _("My data"), _my_data_url()
    if what == "confirm":
        token = actions.confirm_token(request)
        return (
            _("Confirm your request about your personal data"),
            [
                _("We have received a request in your name: %(kind)s.") % {"kind": kind},
                _(
                    "To make sure it comes from you, confirm it with this link within %(days)d "
                    "days. If you did not ask for it, ignore this email: nothing will be done."
                )
                % {"days": actions.CONFIRM_LINK_DAYS},
            ],
            _("Confirm the request"),
            settings.BASE_URL + reverse("intake:my-data-confirm", args=[token]),
        )
    if what == "received":
        paragraphs = [
            _("We have received your request: %(kind)s.") % {"kind": kind},
            _("We will answer by %(date)s at the latest.") % {"date": _date(request.deadline)},
        ]
        return _("We have received your request about your data"), paragraphs, link_label, link
    if what == "export_ready":
        paragraphs = [
            _("The copy of your personal data is ready."),
            _(
                "Sign in to your tracking page to download it, until %(date)s. It is a zip "
                "file with your data in JSON and your files."
            )
            % {"date": _date(request.export_expires_at)},
        ]
        return _("Your data is ready to download"), paragraphs, link_label, link
    if what == "extended":
        paragraphs = [
            _("We need more time to answer your request (%(kind)s): %(reason)s")
            % {"kind": kind, "reason": request.extension_reason},
            _("We will answer by %(date)s at the latest.") % {"date": _date(request.deadline)},
        ]
        return _("We need more time to answer your request"), paragraphs, link_label, link
    if what == "held":
        paragraphs = [
            _("We cannot erase your data yet, for this reason:"),
            request.hold_reason,
            _("We will erase it once this no longer applies, and tell you then."),
        ]
        return _("We cannot erase your data yet"), paragraphs, link_label, link
    if what == "erased":
        paragraphs = [
            _("Your personal data has been erased from our complaints system."),
            _(
                "This is the last email we send you: we no longer keep your address. Anonymous "
                "figures (how many cases of each kind we had) are all that remains."
            ),
        ]
        return _("Your data has been erased"), paragraphs, "", ""
    if request.status == RequestStatus.REFUSED:
        paragraphs = [
            _("We cannot carry out your request (%(kind)s):") % {"kind": kind},
            request.outcome,
        ]
        return _("Your request about your data"), paragraphs, link_label, link
    paragraphs = [
        _("Your request has been answered (%(kind)s):") % {"kind": kind},
        request.outcome,
    ]
    return _("Your request about your data has been answered"), paragraphs, link_label, link


@job(queue_name="mail")
def email_person(*, request_id: int, what: str) -> None:
    """Tell the person who asked about their request, in their language."""
    request = DataSubjectRequest.objects.filter(pk=request_id).first()
    if request is None or not request.contact_email:
        return
    with translation.override(request.language):
        subject, paragraphs, link_label, link = _to_person(request, what)
        compose(
            subject=subject,
            template="privacy/email/message",
            context={"paragraphs": paragraphs, "link_label": link_label, "link": link},
            to=[request.contact_email],
        ).send()
    if what == "erased":
        actions.forget_contact(request=request)


def handlers() -> Sequence[User]:
    """The active staff who handle data-subject requests (the data-protection officer's role)."""
    app_label, codename = HANDLE_PERMISSION
    permission = Permission.objects.filter(
        content_type__app_label=app_label, codename=codename
    ).first()
    if permission is None:
        return []
    return list(
        User.objects.filter(is_active=True)
        .filter(Q(groups__permissions=permission) | Q(user_permissions=permission))
        .exclude(email="")
        .distinct()
        .order_by("pk")
    )


@job()
def tell_handlers(*, request_id: int, what: str) -> None:
    """Email the data-protection officers: a new request, or one whose deadline is near."""
    request = DataSubjectRequest.objects.filter(pk=request_id).first()
    if request is None:
        return
    link = settings.BASE_URL + reverse("privacy:request", args=[request.pk])
    for user in handlers():
        with translation.override(getattr(user, "language", "") or settings.LANGUAGE_CODE):
            kind = request.get_kind_display()
            if what == "deadline":
                subject = _("A data-subject request is due on %(date)s") % {
                    "date": _date(request.deadline)
                }
                paragraphs = [
                    _("Request #%(number)d (%(kind)s) must be answered by %(date)s.")
                    % {"number": request.pk, "kind": kind, "date": _date(request.deadline)}
                ]
            else:
                subject = _("New data-subject request: %(kind)s") % {"kind": kind}
                paragraphs = [
                    _("Request #%(number)d (%(kind)s) was received; answer it by %(date)s.")
                    % {"number": request.pk, "kind": kind, "date": _date(request.deadline)}
                ]
            compose(
                subject=subject,
                template="privacy/email/message",
                context={
                    "paragraphs": paragraphs,
                    "link_label": _("Open the request"),
                    "link": link,
                },
                to=[user.email],
            ).send()


# The sweep ------------------------------------------------------------------------------------


def sweep(*, now: dt.datetime) -> int:
    """Warn the data-protection officers of requests due within WARN_DAYS (once per deadline),
    and delete exports past their download date; returns how many warnings were queued."""
    soon = now + dt.timedelta(days=WARN_DAYS)
    due = (
        DataSubjectRequest.objects.pending()
        .filter(deadline_warned_at__isnull=True)
        .annotate(deadline=Coalesce(F("extended_until"), F("due_at")))
        .filter(deadline__lte=soon)
        .values_list("pk", flat=True)
    )
    warned = 0
    for pk in list(due[:500]):
        claimed = DataSubjectRequest.objects.filter(pk=pk, deadline_warned_at__isnull=True).update(
            deadline_warned_at=now
        )
        if claimed:
            enqueue_with_change(tell_handlers, request_id=pk, what="deadline")
            warned += 1
    _forget_expired_exports(now)
    return warned


def _forget_expired_exports(now: dt.datetime) -> None:
    expired = DataSubjectRequest.objects.filter(export_expires_at__lte=now).exclude(export_file="")
    for request in expired[:500]:
        claimed = DataSubjectRequest.objects.filter(
            pk=request.pk, export_file=request.export_file.name
        ).update(export_file="", export_size=None, export_sha256="")
        if claimed:
            forget_files_after_commit([request.export_file.name])
