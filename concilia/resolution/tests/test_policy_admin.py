"""Policies in the admin: a version is YAML checked before it is stored (each problem shown where
it is, nothing stored), read-only once saved, published and simulated only by staff who may
change policies. Pilar administers policies; Ana (an agent) may only read cases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone, translation

from concilia.resolution import actions
from concilia.resolution.models import PolicyVersion, VersionStatus

from .conftest import SHOP_POLICY
from .test_policy_command import INVALID

pytestmark = pytest.mark.django_db

ADD = "admin:resolution_policyversion_add"


@pytest.fixture(autouse=True)
def in_english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def pilar(django_user_model, teams):
    user = django_user_model.objects.create_user("pilar", "pilar@company.test", "pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="resolution",
            codename__in=[
                "view_policy",
                "change_policy",
                "view_policyversion",
                "add_policyversion",
            ],
        )
    )
    return user


@pytest.fixture
def as_pilar(client, pilar):
    client.force_login(pilar)
    return client


@pytest.fixture
def as_ana(client, agent):
    agent.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="resolution", codename__in=["view_policy", "view_policyversion"]
        )
    )
    client.force_login(agent)
    return client


def add(client, source: str, code: str = "shop", **extra):
    return client.post(
        reverse(ADD),
        {"code": code, "source": source, "note": "", **extra},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_an_invalid_policy_is_refused_with_each_problem_where_it_is_and_nothing_stored(as_pilar):
    response = add(as_pilar, INVALID)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert errors == [
        "rules[1].when (line 8): unknown fact: order.totl",
        "rules[2].when (line 12): can never fire: no value of case.amount meets all its comparisons",
    ]
    assert "rules[1].when (line 8): unknown fact: order.totl" in response.content.decode()
    assert not PolicyVersion.objects.exists()


def test_a_valid_policy_is_stored_as_the_next_version_by_its_author(as_pilar, pilar):
    response = add(as_pilar, SHOP_POLICY.read_text(), note="first")
    assert response.status_code == 302
    version = PolicyVersion.objects.get()
    assert (str(version), version.status, version.created_by, version.note) == (
        "shop v1",
        VersionStatus.DRAFT,
        pilar,
        "first",
    )
    add(as_pilar, SHOP_POLICY.read_text(), publish="on")
    assert PolicyVersion.objects.get(number=2).status == VersionStatus.LIVE


def test_a_saved_version_is_read_only_and_offers_to_save_a_new_one_from_it(as_pilar):
    version = actions.save_policy_version(code="shop", source=SHOP_POLICY.read_text(), author=None)
    change = reverse("admin:resolution_policyversion_change", args=[version.pk])
    page = as_pilar.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="source"' not in html and "late-parcel" in html
    assert f"{reverse(ADD)}?from={version.pk}" in html
    # posting a change is refused
    assert as_pilar.post(change, {"source": "x"}).status_code == 403
    # the new version's form starts from this one
    form = as_pilar.get(reverse(ADD), {"from": version.pk}).context["adminform"].form
    assert form.initial["code"] == "shop" and form.initial["source"] == version.source


def test_publishing_from_the_admin_makes_the_version_live(as_pilar, pilar):
    first = actions.save_policy_version(
        code="shop", source=SHOP_POLICY.read_text(), author=None, publish=True
    )
    second = actions.save_policy_version(code="shop", source=SHOP_POLICY.read_text(), author=None)
    response = as_pilar.post(reverse("admin:resolution_policyversion_publish", args=[second.pk]))
    assert response.status_code == 302
    second.refresh_from_db()
    first.refresh_from_db()
    assert (second.status, second.published_by) == (VersionStatus.LIVE, pilar)
    assert first.status == VersionStatus.RETIRED
    # and back to the first through the list's action
    response = as_pilar.post(
        reverse("admin:resolution_policyversion_changelist"),
        {"action": "publish_selected", "_selected_action": [first.pk]},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == VersionStatus.LIVE


def test_publishing_is_a_post(as_pilar):
    version = actions.save_policy_version(code="shop", source=SHOP_POLICY.read_text(), author=None)
    url = reverse("admin:resolution_policyversion_publish", args=[version.pk])
    assert as_pilar.get(url).status_code == 405


def test_the_simulation_page_shows_the_report_with_links_to_differing_cases(as_pilar, open_case):
    live = actions.save_policy_version(
        code="shop", source=SHOP_POLICY.read_text(), author=None, publish=True
    )
    billing = open_case(email="b@example.com", category="billing_error", amount=Decimal("30.00"))
    actions.triage_case(case=billing)
    draft = actions.save_policy_version(
        code="shop",
        source=SHOP_POLICY.read_text().replace("case.amount <= 50", "case.amount <= 20"),
        author=None,
    )
    url = reverse("admin:resolution_policyversion_simulate", args=[draft.pk])
    form_only = as_pilar.get(url)
    assert form_only.status_code == 200 and "simulation-report" not in form_only.content.decode()
    assert as_pilar.get(url, {"since": "2026-02-01", "until": "2026-01-01"}).context[
        "form"
    ].errors == {"until": ["The last day is before the first."]}
    today = timezone.localdate().isoformat()
    response = as_pilar.get(url, {"since": today})
    assert response.status_code == 200 and response.streaming
    html = b"".join(response.streaming_content).decode()
    # the progress bar grew while the cases were read, then the report came
    assert '<progress max="1" value="0"></progress> 0 of 1 cases' in html
    assert '<progress max="1" value="1"></progress> 1 of 1 cases' in html
    assert "1 cases considered" in html
    assert '<tr class="outcome-ask_evidence"><td>Evidence asked for</td><td>1</td></tr>' in html
    assert "Cases where it differs from what was done: 1" in html
    assert f'<a href="/helpdesk/cases/{billing.reference}">{billing.reference}</a>' in html
    assert "a refund of €30.00 (Automatically, by policy)" in html
    assert html.rstrip().endswith("</html>")
    assert live.status == VersionStatus.LIVE  # nothing changed
    assert PolicyVersion.objects.get(pk=live.pk).status == VersionStatus.LIVE


def test_an_agent_may_neither_simulate_nor_publish(as_ana, shop_policy):
    simulate = reverse("admin:resolution_policyversion_simulate", args=[shop_policy.pk])
    publish = reverse("admin:resolution_policyversion_publish", args=[shop_policy.pk])
    assert as_ana.get(simulate, {"since": "2026-01-01"}).status_code == 403
    assert as_ana.post(publish).status_code == 403
    # and her view of the version offers neither
    page = as_ana.get(reverse("admin:resolution_policyversion_change", args=[shop_policy.pk]))
    assert page.status_code == 200
    assert simulate not in page.content.decode() and publish not in page.content.decode()


def test_someone_not_signed_in_is_sent_to_the_login(client, shop_policy):
    url = reverse("admin:resolution_policyversion_simulate", args=[shop_policy.pk])
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
