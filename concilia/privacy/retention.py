"""The retention job: what has been kept long enough is anonymised or deleted, and what was done
is reported (a dry run reports what would be, and changes nothing).

What expires, and what happens to it:
- a closed case, its category's `retention_days` after closing: anonymised in every app
  (`privacy.hooks.anonymise_case`: texts, thread, files, history notes, conversations...); the row
  keeps what statistics count (kind, category, channel, outcome, amount, dates);
- a customer whose cases are all anonymised and who has no conversation left: erased
  (`privacy.hooks.erase_customer`);
- a conversation with the assistant that opened no case, `conversation_days` after its last
  change: deleted with its messages, files and Telegram link (a Telegram chat left with no
  conversation goes too);
- the files of forms never sent, after `pending_upload_hours`;
- the original of an inbound email, after `inbound_email_days`: the raw message is deleted and its
  sender, subject and detail blanked (the row stays so the mailbox is never imported twice);
- a job that failed for good (its arguments and error may name a person), after `dead_job_days`.
The periods outside cases are `privacy.RetentionRules` (admin). Handled Telegram updates are
deleted after two days by their own sweep job (`telegram.tasks.forget_old_updates`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from concilia.assistant.models import ChatUpload, Conversation
from concilia.cases.models import Case, Category, Status
from concilia.core import audit
from concilia.core.encrypted_json import filled
from concilia.core.models import DeadJob, PeriodicRun
from concilia.core.personal_data import erased_email, forget_files_after_commit
from concilia.customers.models import Customer, email_index
from concilia.intake.actions import discard_pending_uploads
from concilia.intake.models import PendingUpload
from concilia.integrations.mail.models import InboundEmail, Outcome
from concilia.integrations.telegram.models import TelegramChat
from concilia.privacy import hooks
from concilia.privacy.holds import holds_on
from concilia.privacy.models import LegalHold, RetentionRules, RetentionRun, RetentionTrigger

logger = logging.getLogger(__name__)

JOB = "retention"
BATCH = 500
REASON = "retention"

# What the report counts, as people read it (keys of the hooks' counts and of `other`).
LABELS = {
    "cases": gettext_lazy("cases anonymised"),
    "messages": gettext_lazy("messages emptied"),
    "attachments": gettext_lazy("files deleted"),
    "events": gettext_lazy("history entries cleaned"),
    "reminders": gettext_lazy("alerts cleaned"),
    "notifications": gettext_lazy("notifications cleaned"),
    "conversations": gettext_lazy("chat conversations deleted"),
    "chat_files": gettext_lazy("chat files deleted"),
    "telegram_chats": gettext_lazy("Telegram chats deleted"),
    "pending_uploads": gettext_lazy("files of unsent forms deleted"),
    "inbound_emails": gettext_lazy("original emails deleted"),
    "dead_jobs": gettext_lazy("failed jobs deleted"),
    "customers": gettext_lazy("customers erased"),
    "held": gettext_lazy("cases kept under a legal hold"),
}


@dataclass
class RetentionReport:
    """What a run did (or, dry, would do): counts per category of cases, and of the rest."""

    dry_run: bool
    now: dt.datetime
    categories: dict[str, Counter[str]] = field(default_factory=dict)
    other: Counter[str] = field(default_factory=Counter)
    failed: int = 0

    @property
    def cases(self) -> int:
        return sum(counts["cases"] for counts in self.categories.values())

    @property
    def records(self) -> int:
        return sum(self.other.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "at": self.now.isoformat(),
            "categories": {code: dict(counts) for code, counts in self.categories.items()},
            "other": dict(self.other),
            "failed": self.failed,
        }

    def lines(self) -> list[str]:
        """The report as a person reads it, one line per category and kind of data."""
        return report_lines(self.as_dict())

    def __str__(self) -> str:
        return f"{self.cases} cases anonymised, {self.records} other records deleted" + (
            f", {self.failed} failed (see the log)" if self.failed else ""
        )


def label(key: str) -> str:
    return str(LABELS.get(key, key.replace("_", " ")))


def report_lines(report: dict[str, Any]) -> list[str]:
    """A stored or fresh report (`RetentionReport.as_dict`) as lines of text."""
    lines = [
        _("Dry run: nothing was changed; this is what a real run would do.")
        if report.get("dry_run")
        else _("Retention run of %(at)s.") % {"at": report.get("at", "")}
    ]
    names = {c.code: c.name for c in Category.objects.all()}
    categories = report.get("categories") or {}
    for code, counts in sorted(categories.items()):
        done = ", ".join(f"{counts[key]} {label(key)}" for key in sorted(counts) if counts[key])
        lines.append(f"{names.get(code, code)}: {done or _('nothing')}")
    if not categories:
        lines.append(_("No case has reached the end of its retention period."))
    other = {key: count for key, count in (report.get("other") or {}).items() if count}
    lines.extend(f"{count} {label(key)}" for key, count in sorted(other.items()))
    if not other:
        lines.append(_("Nothing else has expired."))
    if report.get("failed"):
        lines.append(_("%(count)d failed: see the log.") % {"count": report["failed"]})
    return lines


# What has expired --------------------------------------------------------------------------


def expired_cases(category: Category, now: dt.datetime) -> models.QuerySet[Case]:
    """Closed cases of the category kept past its retention period, not yet anonymised (the
    `case_retention_due` index), held or not."""
    return Case.objects.filter(
        category=category,
        status=Status.CLOSED,
        anonymised_at__isnull=True,
        closed_at__lt=now - dt.timedelta(days=category.retention_days),
    )


def under_hold() -> Exists:
    """The case's customer has a legal hold in force (a claim in court...): nothing of theirs
    is anonymised until it is released."""
    return Exists(LegalHold.objects.active().filter(customer=OuterRef("customer")))


def expired_conversations(rules: RetentionRules, now: dt.datetime) -> models.QuerySet:
    """Conversations with the assistant that opened no case and have not moved for the period."""
    cutoff = now - dt.timedelta(days=rules.conversation_days)
    return Conversation.objects.filter(case__isnull=True, updated_at__lt=cutoff)


def expired_pending_uploads(rules: RetentionRules, now: dt.datetime) -> models.QuerySet:
    cutoff = now - dt.timedelta(hours=rules.pending_upload_hours)
    return PendingUpload.objects.filter(created_at__lt=cutoff)


def expired_inbound_emails(rules: RetentionRules, now: dt.datetime) -> models.QuerySet:
    """Received emails older than the period whose original or personal details are still kept
    (one waiting to be processed is left alone)."""
    cutoff = now - dt.timedelta(days=rules.inbound_email_days)
    return (
        InboundEmail.objects.filter(received_at__lt=cutoff)
        .exclude(outcome=Outcome.RECEIVED)
        .filter(~Q(raw="") | filled("from_address", "subject", "detail"))
    )


def expired_dead_jobs(rules: RetentionRules, now: dt.datetime) -> models.QuerySet:
    return DeadJob.objects.filter(last_failed_at__lt=now - dt.timedelta(days=rules.dead_job_days))


def customers_to_erase(now: dt.datetime, rules: RetentionRules) -> Iterator[Customer]:
    """Customers left with nothing but anonymised cases and no conversation, not already erased
    nor held (a customer newer than the conversations' period may still be in a chat)."""
    live_case = Case.objects.filter(customer=OuterRef("pk"), anonymised_at__isnull=True)
    conversation = Conversation.objects.filter(customer=OuterRef("pk"))
    cutoff = now - dt.timedelta(days=rules.conversation_days)
    candidates = Customer.objects.filter(created_at__lt=cutoff).filter(
        ~Exists(live_case), ~Exists(conversation)
    )
    # An erased customer's address is erased_email(...): known by its keyed hash, not decrypted.
    rows = candidates.order_by("pk").values_list("pk", "email_index")
    for pk, index in rows.iterator(chunk_size=BATCH):
        if index == email_index(erased_email("customer", pk)):
            continue
        customer = Customer.objects.get(pk=pk)
        if not holds_on(customer):
            yield customer


# The run -----------------------------------------------------------------------------------


def cases_due(now: dt.datetime) -> int:
    """How many cases a run at `now` would anonymise (for a progress bar)."""
    return sum(expired_cases(c, now).count() for c in Category.objects.all())


def run(
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    trigger: str = RetentionTrigger.COMMAND,
    progress: Callable[[int], object] = lambda done: None,
) -> RetentionReport:
    """Anonymise and delete what has expired at `now` (dry: only count it); a real run's report is
    stored as a RetentionRun and recorded in the audit log. `progress(1)` is called per case."""
    now = now or timezone.now()
    rules = RetentionRules.current()
    report = RetentionReport(dry_run=dry_run, now=now)
    _conversations(rules, report)
    _cases(report, progress)
    _customers(rules, report)
    _pending_uploads(rules, report)
    _inbound_emails(rules, report)
    _dead_jobs(rules, report)
    if not dry_run:
        _store(report, trigger)
    return report


def _cases(report: RetentionReport, progress: Callable[[int], object]) -> None:
    for category in Category.objects.order_by("position", "code"):
        expired = expired_cases(category, report.now)
        held = expired.filter(under_hold()).count()
        expired = expired.exclude(under_hold())
        counts: Counter[str] = Counter(held=held)
        if report.dry_run:
            counts.update(
                expired.aggregate(
                    cases=models.Count("pk", distinct=True),
                    attachments=models.Count("attachments", distinct=True),
                    messages=models.Count("messages", distinct=True),
                )
            )
        else:
            counts.update(_anonymise(expired, report, progress))
        if +counts:
            report.categories[category.code] = +counts


def _anonymise(
    expired: models.QuerySet[Case], report: RetentionReport, progress: Callable[[int], object]
) -> Counter[str]:
    """Anonymise each case in its own transaction (one that fails is logged and left for the
    next run); the counts of what was changed, "cases" being how many were anonymised."""
    counts: Counter[str] = Counter()
    done = 0
    for case in expired.order_by("closed_at", "pk").iterator(chunk_size=BATCH):
        progress(1)
        try:
            counts.update(hooks.anonymise_case(case, reason=REASON))
        except Exception:
            logger.exception("Retention: case %s could not be anonymised", case.reference)
            report.failed += 1
            continue
        done += 1
    counts["cases"] = done
    return counts


def _customers(rules: RetentionRules, report: RetentionReport) -> None:
    for customer in customers_to_erase(report.now, rules):
        if report.dry_run:
            report.other["customers"] += 1
            continue
        try:
            with transaction.atomic():
                hooks.erase_customer(customer, reason=REASON)
        except Exception:
            logger.exception("Retention: customer %s could not be erased", customer.pk)
            report.failed += 1
            continue
        report.other["customers"] += 1


def _in_pages(queryset: models.QuerySet) -> Iterator[list[Any]]:
    """The rows a page at a time, from the start each time (each page is deleted or changed so
    that it no longer matches before the next is read)."""
    while rows := list(queryset.order_by("pk")[:BATCH]):
        yield rows
        if len(rows) < BATCH:
            return


def _conversations(rules: RetentionRules, report: RetentionReport) -> None:
    expired = expired_conversations(rules, report.now)
    uploads = ChatUpload.objects.filter(conversation__in=expired)
    if report.dry_run:
        report.other["conversations"] += expired.count()
        report.other["chat_files"] += uploads.count()
        return
    for page in _in_pages(expired.only("pk")):
        pks = [conversation.pk for conversation in page]
        with transaction.atomic():
            files = ChatUpload.objects.filter(conversation_id__in=pks)
            names = [name for name in files.values_list("file", flat=True) if name]
            report.other["chat_files"] += forget_files_after_commit(names)
            _deleted, by_model = Conversation.objects.filter(pk__in=pks).delete()
            report.other["conversations"] += by_model.get(Conversation._meta.label, 0)
    # A Telegram chat whose conversations are all gone holds nothing but the chat's number.
    orphans = TelegramChat.objects.filter(
        ~Exists(Conversation.objects.filter(telegram__chat=OuterRef("pk"))),
        created_at__lt=report.now - dt.timedelta(days=rules.conversation_days),
    )
    _deleted, by_model = orphans.delete()
    report.other["telegram_chats"] += by_model.get(TelegramChat._meta.label, 0)


def _pending_uploads(rules: RetentionRules, report: RetentionReport) -> None:
    expired = expired_pending_uploads(rules, report.now)
    if report.dry_run:
        report.other["pending_uploads"] += expired.count()
        return
    for page in _in_pages(expired):
        discard_pending_uploads(page)
        report.other["pending_uploads"] += len(page)


def _inbound_emails(rules: RetentionRules, report: RetentionReport) -> None:
    expired = expired_inbound_emails(rules, report.now)
    if report.dry_run:
        report.other["inbound_emails"] += expired.count()
        return
    for page in _in_pages(expired.only("pk", "raw")):
        with transaction.atomic():
            forget_files_after_commit(email.raw.name for email in page if email.raw)
            InboundEmail.objects.filter(pk__in=[email.pk for email in page]).update(
                raw="", from_address="", from_index="", subject="", detail=""
            )
        report.other["inbound_emails"] += len(page)


def _dead_jobs(rules: RetentionRules, report: RetentionReport) -> None:
    expired = expired_dead_jobs(rules, report.now)
    if report.dry_run:
        report.other["dead_jobs"] += expired.count()
        return
    _deleted, by_model = expired.delete()
    report.other["dead_jobs"] += by_model.get(DeadJob._meta.label, 0)


@transaction.atomic
def _store(report: RetentionReport, trigger: str) -> RetentionRun:
    stored = RetentionRun.objects.create(
        started_at=report.now,
        finished_at=timezone.now(),
        trigger=trigger,
        report=report.as_dict(),
        cases_anonymised=report.cases,
        records_deleted=report.records,
        failed=report.failed,
    )
    audit.record(
        audit.ERASE,
        target=stored,
        fields=sorted({key for counts in report.categories.values() for key in counts}),
        detail={"retention_run": stored.pk, "cases": report.cases, "records": report.records},
    )
    return stored


def sweep(*, now: dt.datetime) -> int:
    """For the periodic sweep (settings.SWEEP_JOBS): a real run once every
    CONCILIA_RETENTION_HOURS in total, however many sweepers run. Returns what it anonymised and
    deleted (0 when it was not yet due)."""
    period = dt.timedelta(hours=settings.CONCILIA_RETENTION_HOURS)
    if not PeriodicRun.claim(JOB, period=period, now=now):
        return 0
    try:
        report = run(now=now, trigger=RetentionTrigger.SWEEP)
    except Exception as error:
        PeriodicRun.finish(JOB, now=timezone.now(), result=repr(error), failed=True)
        raise
    PeriodicRun.finish(JOB, now=timezone.now(), result=str(report), failed=bool(report.failed))
    return report.cases + report.records
