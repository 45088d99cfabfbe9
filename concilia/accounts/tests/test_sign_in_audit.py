"""The audit log names every staff sign-in, sign-out, failed sign-in and lock-out, every change of
two-factor sign-in and of a password, and who gave whom which role, team or permission.

Ana is an agent; Olga administers the site; Mallory guesses from her own address.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from concilia.accounts.models import ROLE_GROUPS, Role, User
from concilia.accounts.tests import test_sign_in
from concilia.accounts.tests.test_sign_in import EN, PASSWORD, set_up_two_factor, sign_in
from concilia.core import audit
from concilia.core.models import AuditEntry

ANA_WHERE = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Firefox/128.0 (Ana's laptop)"}
MALLORY_WHERE = {"REMOTE_ADDR": "198.51.100.66", "HTTP_USER_AGENT": "curl/8.0"}

# Ana with a password, Olga the administrator: the sign-in tests' fixtures.
agent = test_sign_in.agent
olga = test_sign_in.olga


@pytest.fixture(autouse=True)
def administrators_need_two_factors(settings):
    settings.TWO_FACTOR_REQUIRED = "administrators"


def entries(action: str, user: User | None = None) -> list[AuditEntry]:
    found = AuditEntry.objects.filter(action=action).order_by("seq")
    if user is not None:
        found = found.filter(object_type="accounts.user", object_id=str(user.pk))
    return list(found)


def assert_chain_holds() -> None:
    assert audit.verify().ok


def test_signing_in_and_out_of_the_helpdesk_is_recorded_with_where_from(agent):
    client = Client(**ANA_WHERE)

    assert sign_in(client, "ana")["Location"] == "/helpdesk/"
    client.post("/accounts/sign-out/", **EN)

    [signed_in] = entries(audit.SIGN_IN, agent)
    [signed_out] = entries(audit.SIGN_OUT, agent)
    for entry in (signed_in, signed_out):
        assert (entry.actor_kind, entry.actor_id, entry.actor_label) == (
            "staff",
            str(agent.pk),
            "ana",
        )
        assert (entry.ip_address, entry.user_agent, entry.channel) == (
            "203.0.113.7",
            "Firefox/128.0 (Ana's laptop)",
            "web",
        )
    assert signed_in.detail == {"step": "password"}
    assert signed_out.seq > signed_in.seq
    assert_chain_holds()


def test_wrong_passwords_and_the_lock_out_they_cause_are_recorded(agent):
    mallory = Client(**MALLORY_WHERE)
    for _attempt in range(5):
        sign_in(mallory, "ana", "wrong guess")
    sign_in(mallory, "not-a-user@example.com", "hunter2")

    failed = entries(audit.SIGN_IN_FAILED)
    assert len(failed) == 6
    for entry in failed[:5]:
        assert (entry.actor_kind, entry.actor_label, entry.object_id) == (
            "staff",
            "ana",
            str(agent.pk),
        )
        assert entry.detail == {"step": "password", "known_user": True}
        assert entry.ip_address == "198.51.100.66"
    # A name that is no account is not kept (people type passwords into that field)
    unknown = failed[5]
    assert (unknown.actor_kind, unknown.object_type, unknown.object_id) == (
        "system",
        "accounts.user",
        "",
    )
    assert unknown.detail == {"step": "password", "known_user": False}
    assert not AuditEntry.objects.filter(detail__icontains="not-a-user").exists()
    [locked] = entries(audit.LOCK_OUT, agent)
    assert locked.detail == {"locked": "user", "minutes": 15}
    assert locked.ip_address == "198.51.100.66"
    assert locked.seq > failed[4].seq
    assert entries(audit.SIGN_IN) == []
    assert_chain_holds()


def test_two_factor_set_up_a_recovery_code_used_and_turning_it_off_are_recorded(
    client, olga, agent, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # the wrong code below does not delay the right one
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    sign_in(client, "olga", area="admin")
    _key, codes = set_up_two_factor(client, next_url="/admin/")
    client.logout()
    sign_in(client, "olga", area="admin")
    client.post("/accounts/two-factor/verify/", {"code": "000000"}, **EN)  # a wrong code
    client.post("/accounts/two-factor/verify/", {"code": codes[0], "next": "/admin/"}, **EN)
    ana = Client(**ANA_WHERE)
    sign_in(ana, "ana")
    set_up_two_factor(ana)
    # Ana lost her phone: Olga resets her two-factor sign-in from the admin
    reset = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "reset_two_factor", "_selected_action": [agent.pk]},
        follow=True,
        **EN,
    )
    assert "Two-factor sign-in reset for 1 person." in reset.content.decode(), reset.redirect_chain

    changes = [(e.object_id, e.actor_label, e.detail) for e in entries(audit.CHANGE)]
    assert (str(olga.pk), "olga", {"two_factor": "on"}) in changes
    assert (str(agent.pk), "ana", {"two_factor": "on"}) in changes
    assert (str(agent.pk), "olga", {"two_factor": "off"}) in changes
    [wrong_code] = entries(audit.SIGN_IN_FAILED, olga)
    assert wrong_code.detail == {"step": "two_factor"}
    second_steps = [
        e.detail for e in entries(audit.SIGN_IN, olga) if e.detail["step"] != "password"
    ]
    assert second_steps == [{"step": "two_factor", "recovery_code": True, "recovery_codes_left": 9}]
    assert_chain_holds()


@pytest.fixture
def olga_in_admin(olga, settings):
    """Olga at the admin (two factors not asked here: they are tested above)."""
    settings.TWO_FACTOR_REQUIRED = "none"
    client = Client(REMOTE_ADDR="192.0.2.10")
    client.force_login(olga)
    return client


def user_form(user: User, **changes: object) -> dict[str, object]:
    """The admin's change form of `user` as it is, with `changes`."""
    joined = timezone.localtime(user.date_joined)
    return {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "groups": [group.pk for group in user.groups.all()],
        "user_permissions": [],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "language": user.language,
        **changes,
    }


def test_an_administrator_giving_a_role_and_staff_access_is_recorded(olga_in_admin, olga, agent):
    supervisor = Group.objects.get(name=ROLE_GROUPS[Role.SUPERVISOR][0])
    before = [group.pk for group in agent.groups.all()]
    change = reverse("admin:accounts_user_change", args=[agent.pk])

    response = olga_in_admin.post(
        change, user_form(agent, groups=[*before, supervisor.pk], is_staff="on"), **EN
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    given = [e for e in entries(audit.CHANGE, agent) if e.actor_label == "olga"]
    details = [e.detail for e in given]
    assert {"is_staff": True} in details
    assert {"groups_added": ["Role: supervisor"]} in details
    assert {e.ip_address for e in given} == {"192.0.2.10"}

    olga_in_admin.post(change, user_form(agent, groups=before), **EN)
    [taken] = [e for e in entries(audit.CHANGE, agent) if "groups_removed" in e.detail]
    assert (taken.actor_label, taken.detail) == ("olga", {"groups_removed": ["Role: supervisor"]})
    assert_chain_holds()


def test_a_new_password_set_in_the_admin_is_recorded_without_it(olga_in_admin, agent):
    olga_in_admin.post(
        reverse("admin:auth_user_password_change", args=[agent.pk]),
        {"password1": "another long passphrase", "password2": "another long passphrase"},
        **EN,
    )

    agent.refresh_from_db()
    assert agent.check_password("another long passphrase")
    [changed] = [e for e in entries(audit.CHANGE, agent) if e.actor_label == "olga"]
    assert (changed.fields, changed.detail, changed.ip_address) == (["password"], {}, "192.0.2.10")
    assert not AuditEntry.objects.filter(detail__icontains="another long").exists()
    assert PASSWORD not in str(list(AuditEntry.objects.values()))
    assert_chain_holds()


def test_team_members_added_from_the_team_side_are_recorded_per_person(olga_in_admin, agent):
    team = agent.groups.get(name__startswith="Team: ")
    team.user_set.remove(agent)  # done by the system (a fixture, a command)

    [removed] = [e for e in entries(audit.CHANGE, agent) if "groups_removed" in e.detail]
    assert (removed.actor_kind, removed.detail) == ("system", {"groups_removed": [team.name]})
    assert_chain_holds()
