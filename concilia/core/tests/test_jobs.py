"""Jobs that fail are tried again with backoff, then kept as dead jobs that an administrator
retries from the admin (on the database backend; test_rq_backend.py runs the same on RQ)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tasks.base import DEFAULT_TASK_PRIORITY, TASK_MAX_PRIORITY
from django_tasks_db.models import DBTaskResult

from concilia.core.jobs import RETRY_KWARG, backoff_seconds, job
from concilia.core.models import DeadJob, PeriodicRun
from concilia.core.tests.jobs_for_tests import fail_until_fixed, mark_done


def attempts_of(name: str) -> int:
    row = PeriodicRun.objects.filter(name=f"{name}-attempts").first()
    return int(row.last_result) if row else 0


def test_backoff_doubles_up_to_the_ceiling_with_jitter():
    for attempt, full in [(1, 30), (2, 60), (3, 120), (10, 3600)]:
        waits = [backoff_seconds(attempt, base=30, ceiling=3600) for _ in range(200)]
        assert all(full / 2 <= wait <= full for wait in waits)
        assert len(set(waits)) > 1  # jittered


def test_a_job_that_succeeds_runs_once_and_leaves_no_retry(run_tasks):
    mark_done.enqueue(name="ok")
    run_tasks()
    assert PeriodicRun.objects.filter(name="ok").count() == 1
    assert DBTaskResult.objects.count() == 1
    assert DeadJob.objects.count() == 0


def test_a_failing_job_is_queued_again_later_with_its_attempt(run_tasks, settings):
    settings.JOB_BACKOFF_SECONDS = 60
    before = timezone.now()
    fail_until_fixed.enqueue(name="mail")
    run_tasks()
    assert attempts_of("mail") == 1
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.args_kwargs["kwargs"] == {
        "name": "mail",
        RETRY_KWARG: {
            "attempt": 2,
            "first_failed_at": retry.args_kwargs["kwargs"][RETRY_KWARG]["first_failed_at"],
        },
    }
    assert (
        before + dt.timedelta(seconds=30)
        <= retry.run_after
        <= timezone.now() + dt.timedelta(seconds=60)
    )
    assert DBTaskResult.objects.filter(status="FAILED").count() == 1
    assert DeadJob.objects.count() == 0


def test_a_job_that_keeps_failing_becomes_a_dead_job(run_tasks, settings):
    settings.JOB_ATTEMPTS = 3
    settings.JOB_BACKOFF_SECONDS = 0
    fail_until_fixed.enqueue(name="shop")
    run_tasks()  # the batch worker runs the retries as they fall due (at once here)
    assert attempts_of("shop") == 3
    dead = DeadJob.objects.get()
    assert dead.task_path == "concilia.core.tests.jobs_for_tests.fail_until_fixed"
    assert dead.kwargs == {"name": "shop"}
    assert dead.attempts == 3
    assert "ConnectionError: the service behind shop is away" in dead.error
    assert dead.first_failed_at <= dead.last_failed_at
    assert dead.retried_at is None
    assert DBTaskResult.objects.filter(status="FAILED").count() == 3


def test_a_dead_job_recovers_after_it_first_succeeds(run_tasks, settings):
    settings.JOB_ATTEMPTS = 3
    settings.JOB_BACKOFF_SECONDS = 0
    fail_until_fixed.enqueue(name="crm")
    PeriodicRun.objects.create(name="crm-fixed")
    run_tasks()
    assert attempts_of("crm") == 1
    assert PeriodicRun.objects.filter(name="crm").exists()
    assert DeadJob.objects.count() == 0


def test_an_administrator_retries_a_dead_job_from_the_admin(run_tasks, settings, admin_client):
    settings.JOB_ATTEMPTS = 2
    settings.JOB_BACKOFF_SECONDS = 0
    fail_until_fixed.enqueue(name="sms")
    run_tasks()
    dead = DeadJob.objects.get()
    changelist = reverse("admin:core_deadjob_changelist")
    assert "fail_until_fixed" in admin_client.get(changelist).content.decode()

    # Given the cause was fixed, when the administrator retries the job, then it runs once more.
    PeriodicRun.objects.create(name="sms-fixed")
    response = admin_client.post(
        changelist,
        {"action": "retry", "_selected_action": [dead.pk]},
        follow=True,
        headers={"Accept-Language": "en"},
    )
    assert "1 job queued again." in response.content.decode()
    run_tasks()
    assert attempts_of("sms") == 3
    assert PeriodicRun.objects.filter(name="sms").exists()
    dead.refresh_from_db()
    assert dead.retried_at is not None
    assert DeadJob.objects.count() == 1

    # A second click queues nothing more.
    admin_client.post(changelist, {"action": "retry", "_selected_action": [dead.pk]})
    assert DBTaskResult.objects.filter(status="READY").count() == 0


@pytest.mark.parametrize(
    "name", ["send_case_confirmation", "send_agent_reply", "send_notification_email"]
)
def test_the_email_jobs_retry(name):
    from concilia.cases import tasks

    assert getattr(tasks, name).takes_context
    assert getattr(tasks, name).module_path == f"concilia.cases.tasks.{name}"


def urgent() -> None:
    """A job function defined at module level, as django-tasks requires."""


def test_a_job_with_a_priority_is_defined_on_a_backend_without_priorities(settings):
    # Given the scaled deployment's RQ backend, which refuses any priority but the default
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["customer"]}}
    settings.RQ_QUEUES = {"customer": {"URL": "redis://127.0.0.1:6379/15"}}

    # When a job asks to go first (as the policies' decision in the chat does)
    defined = job(priority=TASK_MAX_PRIORITY, queue_name="customer")(urgent)

    # Then it is defined (it used to raise InvalidTaskError, a 500 on every chat confirmation
    # on RQ), with the default priority: its queue puts it first there
    assert defined.priority == DEFAULT_TASK_PRIORITY
    assert defined.queue_name == "customer"


def test_a_job_keeps_its_priority_on_the_database_backend():
    defined = job(priority=TASK_MAX_PRIORITY, queue_name="customer")(urgent)
    assert defined.priority == TASK_MAX_PRIORITY
