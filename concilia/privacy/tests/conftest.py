"""People of the privacy tests.

Ana is an agent of Customer care; Dora is the data-protection officer, who works no cases but reads
and exports the audit log. Lucía (conftest's `open_case`) is the customer whose data they touch.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from concilia.accounts.models import ROLE_GROUPS, Role, Team, User

DPO_GROUP = "Role: data-protection officer"

# Where Ana works from: the audit entries must say so.
ANA_WHERE = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Firefox/128.0 (Ana's laptop)"}


@pytest.fixture
def care(db):
    return Team.objects.create(code="care", name_es="Atención", name_en="Care")


@pytest.fixture
def ana(care):
    user = User.objects.create_user("ana", "ana@company.test", "pw", first_name="Ana")
    user.groups.add(Group.objects.get(name=ROLE_GROUPS[Role.AGENT][0]), care.group)
    return user


@pytest.fixture
def dora(db):
    user = User.objects.create_user("dora", "dora@company.test", "pw", first_name="Dora")
    user.groups.add(Group.objects.get(name=DPO_GROUP))
    return user


@pytest.fixture
def ana_client(ana):
    client = Client(**ANA_WHERE)
    client.force_login(ana)
    return client


@pytest.fixture
def dora_client(dora):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(dora)
    return client


# Data-subject requests --------------------------------------------------------------------


@pytest.fixture
def customer_client(run_tasks):
    """A browser-less customer signed in on the tracking pages through the link emailed to
    them (which is how their identity is verified by email), reading English."""
    from concilia.intake.tests.test_tracking import sign_in

    def sign_in_as(case) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        sign_in(client, case, run_tasks)
        return client

    return sign_in_as
