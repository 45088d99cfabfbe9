"""The weekly summary: on Monday morning each supervisor gets last week's figures by email, in
their language, once; people who opted out and agents get nothing."""

from __future__ import annotations

import pytest
from django.core import mail

from concilia.accounts.models import Role
from concilia.analytics.models import SummaryOptOut
from concilia.analytics.refresh import refresh
from concilia.analytics.tasks import weekly_sweep
from concilia.cases.tests.conftest import person

pytestmark = pytest.mark.django_db


def test_supervisors_get_last_weeks_figures_on_monday_once(
    clock, open_case, ana, sara, teams, run_tasks
):
    # Given two cases opened in the week of 23 November, and a supervisor who opted out
    clock.at(2026, 11, 24, 10, 0)
    open_case()
    open_case(email="b@example.com")
    quiet = person("quim", Role.SUPERVISOR, teams[0], language="en")
    SummaryOptOut.objects.create(user=quiet)
    person("emma", Role.SUPERVISOR, teams[1], language="en")

    # On Sunday nothing is sent
    clock.at(2026, 11, 29, 12, 0)
    assert weekly_sweep(now=clock.now) == 0

    # On Monday morning, after a refresh, Sara and Emma get it (not Quim, not Ana)
    clock.at(2026, 11, 30, 7, 30)
    refresh(now=clock.now)
    run_tasks()  # the cases' own emails (confirmations, assignment) first
    mail.outbox.clear()
    assert weekly_sweep(now=clock.now) == 2
    run_tasks()
    by_person = {message.to[0]: message for message in mail.outbox}
    assert set(by_person) == {"sara@company.test", "emma@company.test"}
    spanish, english_mail = by_person["sara@company.test"], by_person["emma@company.test"]
    assert "2026-11-23" in spanish.subject and "2026-11-29" in spanish.subject
    assert "Weekly summary" in english_mail.subject
    assert "- Cases opened: 2" in english_mail.body
    assert "/helpdesk/analytics/?start=2026-11-23&end=2026-11-29" in english_mail.body
    html = english_mail.alternatives[0][0]
    assert "<strong>2</strong>" in html

    # A second sweep the same Monday sends nothing more
    clock.at(2026, 11, 30, 7, 31)
    assert weekly_sweep(now=clock.now) == 0
