"""The retention job: Lucía's refund case, closed six years ago, is anonymised (its statistics stay,
her texts and files go) while James's, closed last year, is kept; abandoned chats, files of forms
never sent, original emails and failed jobs past their periods are deleted. A dry run reports the
same and changes nothing; a real run's report is kept for Dora, the data-protection officer; the
sweep runs it once a day however often it sweeps."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from concilia.assistant.actions import start_conversation
from concilia.assistant.models import ChatMessage, ChatUpload, Conversation
from concilia.cases.actions import add_customer_message, close_case
from concilia.cases.attachments import check_file
from concilia.cases.models import Attachment, Case, Category, Outcome, attachment_storage
from concilia.cases.sweep import sweep
from concilia.core.models import AuditEntry, DeadJob
from concilia.customers.models import Customer
from concilia.intake.models import PendingUpload
from concilia.integrations.mail.models import InboundEmail
from concilia.integrations.mail.models import Outcome as EmailOutcome
from concilia.privacy import retention
from concilia.privacy.models import LegalHold, RetentionRules, RetentionRun
from conftest import PNG_BYTES

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def closed(case: Case, *, ago: dt.timedelta, by) -> Case:
    """The case closed `ago` (its closing moved back in time, as if it had happened then)."""
    close_case(case=case, outcome=Outcome.RESOLVED, actor_user=by)
    Case.objects.filter(pk=case.pk).update(closed_at=NOW - ago)
    return Case.objects.get(pk=case.pk)


def years(n: int) -> dt.timedelta:
    return dt.timedelta(days=365 * n + 2)


@pytest.fixture
def old_refund(open_case, ana):
    """Lucía's refund of 49.90 €, with a photo and a message, closed six years ago."""
    case = open_case(
        category="refund",
        order_number="PED-10482",
        amount=Decimal("49.90"),
        purchase_date=dt.date(2020, 3, 1),
    )
    add_customer_message(
        case=case,
        body="Sigo esperando mi reembolso, Lucía.",
        files=[check_file("ticket.png", PNG_BYTES)],
    )
    Customer.objects.filter(pk=case.customer_id).update(created_at=NOW - years(7))
    Case.objects.filter(pk=case.pk).update(created_at=NOW - years(7))
    return closed(case, ago=years(6), by=ana)


@pytest.fixture
def recent_case(open_case, ana):
    """James's case, closed last year: still within the five years."""
    case = open_case(email="james@example.com", name="James Carter", category="refund")
    return closed(case, ago=years(1), by=ana)


@pytest.fixture
def abandoned_chat(db):
    """A chat that opened no case, with a photo, silent for 40 days; and one from today."""
    old = start_conversation(language="es", channel="page").conversation
    upload = ChatUpload(
        conversation=old, original_name="foto.png", content_type="image/png", size=1, sha256="ab"
    )
    upload.file.save("foto.png", ContentFile(PNG_BYTES), save=True)
    Conversation.objects.filter(pk=old.pk).update(updated_at=NOW - dt.timedelta(days=40))
    fresh = start_conversation(language="es", channel="page").conversation
    return old, fresh, upload.file.name


@pytest.fixture
def leftovers(db):
    """A form's file kept two days, an email received 100 days ago, a job dead for 40 days; and
    one of each from today."""
    made = {}
    for age, key in ((dt.timedelta(days=2), "old"), (dt.timedelta(0), "new")):
        upload = PendingUpload(
            submission_id=uuid.uuid4(),
            original_name="f.png",
            content_type="image/png",
            size=1,
            sha256="cd",
        )
        upload.file.save("f.png", ContentFile(PNG_BYTES), save=True)
        PendingUpload.objects.filter(pk=upload.pk).update(created_at=NOW - age)
        email = InboundEmail(
            dedupe_key=f"{key}-email",
            from_address=f"{key}@example.com",
            subject="Mi pedido",
            outcome=EmailOutcome.NEW_CASE,
            detail="RC-2020-000001",
            received_at=NOW - (age * 50),
        )
        email.raw.save("m.eml", ContentFile(b"From: someone@example.com\n\nHola"), save=True)
        job = DeadJob.objects.create(
            task_path="concilia.cases.tasks.send_case_confirmation",
            kwargs={"case_id": 1},
            attempts=5,
            error="550 no such user lucia@example.com",
            first_failed_at=NOW - age * 20,
            last_failed_at=NOW - age * 20,
        )
        made[key] = (upload, email, job)
    return made


def test_a_dry_run_reports_what_has_expired_and_changes_nothing(
    old_refund, recent_case, abandoned_chat, leftovers
):
    description = old_refund.description
    audited = AuditEntry.objects.count()

    report = retention.run(dry_run=True, now=NOW)

    assert report.as_dict()["categories"] == {
        "refund": {"cases": 1, "attachments": 1, "messages": 1}
    }
    assert report.other["conversations"] == 1
    assert report.other["chat_files"] == 1
    assert report.other["pending_uploads"] == 1
    assert report.other["inbound_emails"] == 1
    assert report.other["dead_jobs"] == 1
    # nothing changed, nothing stored
    assert Case.objects.get(pk=old_refund.pk).description == description
    assert Case.objects.get(pk=old_refund.pk).anonymised_at is None
    assert Conversation.objects.count() == 2
    assert PendingUpload.objects.count() == 2
    assert DeadJob.objects.count() == 2
    assert not RetentionRun.objects.exists()
    assert AuditEntry.objects.count() == audited


def test_an_expired_case_keeps_its_statistics_and_loses_its_personal_data(
    old_refund, recent_case, run_tasks
):
    stored_file = Attachment.objects.get(case=old_refund).file.name
    assert attachment_storage.exists(stored_file)

    report = retention.run(now=NOW)
    run_tasks()  # the files leave the storage after commit

    case = Case.objects.get(pk=old_refund.pk)
    # what statistics count stays
    assert (case.category.code, case.channel, case.outcome) == ("refund", "web", "resolved")
    assert case.amount == Decimal("49.90")
    assert case.closed_at == old_refund.closed_at
    assert case.created_at == old_refund.created_at
    # what Lucía wrote and sent is gone
    assert case.description == ""
    assert case.order_number == ""
    assert case.purchase_date is None
    assert [m.body for m in case.messages.all()] == [""]
    assert not case.attachments.exists()
    assert not attachment_storage.exists(stored_file)
    assert case.anonymised_at is not None
    # James's case is within its period
    kept = Case.objects.get(pk=recent_case.pk)
    assert kept.description == recent_case.description
    assert kept.anonymised_at is None
    assert report.categories["refund"]["cases"] == 1
    assert report.categories["refund"]["attachments"] == 1


def test_each_category_keeps_its_cases_for_its_own_period(open_case, ana):
    """An administrator keeps questions only 30 days after closing."""
    Category.objects.filter(code="other").update(retention_days=30)
    question = closed(open_case(category="other"), ago=dt.timedelta(days=31), by=ana)
    refund = closed(open_case(category="refund"), ago=dt.timedelta(days=31), by=ana)

    report = retention.run(now=NOW)

    assert Case.objects.get(pk=question.pk).anonymised_at is not None
    assert Case.objects.get(pk=refund.pk).anonymised_at is None
    assert set(report.categories) == {"other"}


def test_open_cases_are_never_anonymised_however_old(open_case):
    case = open_case()
    Case.objects.filter(pk=case.pk).update(created_at=NOW - years(10))

    retention.run(now=NOW)

    assert Case.objects.get(pk=case.pk).anonymised_at is None
    assert Case.objects.get(pk=case.pk).description == case.description


def test_a_case_already_anonymised_is_not_counted_again(old_refund):
    retention.run(now=NOW)

    again = retention.run(now=NOW + dt.timedelta(days=1))

    assert again.categories == {}
    assert again.cases == 0


def test_abandoned_chats_their_files_and_the_rest_are_deleted(abandoned_chat, leftovers, run_tasks):
    old, fresh, chat_file = abandoned_chat
    assert attachment_storage.exists(chat_file)

    report = retention.run(now=NOW)
    run_tasks()

    assert list(Conversation.objects.all()) == [fresh]
    assert not ChatMessage.objects.filter(conversation_id=old.pk).exists()
    assert not attachment_storage.exists(chat_file)
    assert list(PendingUpload.objects.all()) == [leftovers["new"][0]]
    assert list(DeadJob.objects.all()) == [leftovers["new"][2]]
    # the old email's row stays (so the mailbox never imports it twice), its content is gone
    old_email = InboundEmail.objects.get(pk=leftovers["old"][1].pk)
    assert (old_email.from_address, old_email.subject, old_email.detail) == ("", "", "")
    assert not old_email.raw
    assert not attachment_storage.exists(leftovers["old"][1].raw.name)
    assert InboundEmail.objects.get(pk=leftovers["new"][1].pk).subject == "Mi pedido"
    assert dict(report.other) == {
        "conversations": 1,
        "chat_files": 1,
        "telegram_chats": 0,
        "pending_uploads": 1,
        "inbound_emails": 1,
        "dead_jobs": 1,
    }


def test_a_customer_left_with_only_anonymised_cases_is_erased(old_refund, recent_case):
    lucia = old_refund.customer

    report = retention.run(now=NOW)

    assert report.other["customers"] == 1
    assert Customer.objects.get(pk=lucia.pk).email.endswith("@erased.invalid")
    assert Customer.objects.get(pk=recent_case.customer_id).email == "james@example.com"
    # erased once: the next runs do not count her again
    assert retention.run(now=NOW).other["customers"] == 0


def test_a_real_run_is_stored_for_the_dpo_and_recorded_in_the_audit_log(old_refund, leftovers):
    report = retention.run(now=NOW)

    run = RetentionRun.objects.get()
    assert run.trigger == "command"
    assert run.cases_anonymised == 1
    assert run.records_deleted == report.records
    assert run.report["categories"]["refund"]["cases"] == 1
    entry = AuditEntry.objects.filter(object_type="privacy.retentionrun").get()
    assert entry.action == "erase"
    assert entry.detail["retention_run"] == run.pk


def test_the_command_prints_the_report_per_category(old_refund, leftovers, settings):
    settings.LANGUAGE_CODE = "en"
    dry = StringIO()
    call_command("retention", "run", "--dry-run", stdout=dry)

    assert dry.getvalue().splitlines() == [
        "Dry run: nothing was changed; this is what a real run would do.",
        "Refund: 1 files deleted, 1 cases anonymised, 1 messages emptied",
        "1 failed jobs deleted",
        "1 original emails deleted",
        "1 files of unsent forms deleted",
    ]
    assert not RetentionRun.objects.exists()

    out = StringIO()
    call_command("retention", "run", stdout=out)

    assert "Refund: " in out.getvalue()
    assert RetentionRun.objects.count() == 1
    assert Case.objects.get(pk=old_refund.pk).anonymised_at is not None


def test_the_sweep_runs_it_once_a_day(old_refund):
    first = sweep(now=NOW)
    later_that_day = sweep(now=NOW + dt.timedelta(hours=3))
    next_day = sweep(now=NOW + dt.timedelta(hours=25))

    job = "expired personal data anonymised or deleted"
    assert first.others[job] >= 1
    assert later_that_day.others[job] == 0
    assert next_day.others[job] == 0  # ran, nothing left
    assert [run.trigger for run in RetentionRun.objects.all()] == ["sweep", "sweep"]
    assert Case.objects.get(pk=old_refund.pk).anonymised_at is not None


def test_the_periods_outside_cases_are_the_administrators(abandoned_chat):
    rules = RetentionRules.objects.create(conversation_days=60)

    retention.run(now=NOW)
    assert Conversation.objects.count() == 2

    rules.conversation_days = 7
    rules.save()
    retention.run(now=NOW)
    assert Conversation.objects.count() == 1


def test_a_legal_hold_keeps_the_customers_cases_until_released(old_refund, ana):
    hold = LegalHold.objects.create(
        customer=old_refund.customer, reason="Demanda en el juzgado n.º 3", placed_by=ana
    )

    report = retention.run(now=NOW)

    assert Case.objects.get(pk=old_refund.pk).anonymised_at is None
    assert dict(report.categories["refund"]) == {"held": 1}
    assert report.other["customers"] == 0
    assert "Refund: 1 cases kept under a legal hold" in report_text(report)

    LegalHold.objects.filter(pk=hold.pk).update(released_at=NOW, released_by=ana)
    retention.run(now=NOW)

    assert Case.objects.get(pk=old_refund.pk).anonymised_at is not None


def report_text(report) -> str:
    from django.utils import translation

    with translation.override("en"):
        return "\n".join(report.lines())


def test_an_administrator_sets_a_categorys_period_and_rules_in_the_admin(admin_client):
    other = Category.objects.get(code="other")
    form = {
        "code": "other",
        "name_es": other.name_es,
        "name_en": other.name_en,
        "response_days": 10,
        "first_response_days": 1,
        "reopen_days": 14,
        "retention_days": 730,
        "position": other.position,
        "active": "on",
        "field_rules": '{"phone": "never"}',
    }
    url = f"/admin/cases/category/{other.pk}/change/"

    refused = admin_client.post(url, form, HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 200
    assert "Give each of order_number, purchase_date, amount, phone as required" in (
        refused.content.decode()
    )

    saved = admin_client.post(url, {**form, "field_rules": '{"phone": "hidden"}'})
    assert saved.status_code == 302
    other.refresh_from_db()
    assert (other.retention_days, other.rule("phone")) == (730, "hidden")
