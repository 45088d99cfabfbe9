"""`concilia policy`: a file is checked with every problem pointed at (exit 1, nothing stored),
loaded as the next version, published, its facts listed, and simulated from a file or a code."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone, translation

from concilia.resolution import actions
from concilia.resolution.models import Policy, PolicyVersion, VersionStatus

from .conftest import SHOP_POLICY

pytestmark = pytest.mark.django_db

INVALID = """\
name: {es: Prueba, en: Test}
rules:
  - id: ok
    when: case.amount > 1
    then: {escalate: {}}
    reason: {es: Motivo, en: Reason}
  - id: typo
    when: order.totl > 5.0
    then: {escalate: {}}
    reason: {es: Motivo, en: Reason}
  - id: never
    when: case.amount > 5 && case.amount < 3
    then: {escalate: {}}
    reason: {es: Motivo, en: Reason}
"""


@pytest.fixture(autouse=True)
def in_english():
    with translation.override("en"):
        yield


def policy(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("policy", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> tuple[str, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("policy", *args, stdout=io.StringIO(), stderr=err)
    return str(error.value), err.getvalue()


@pytest.fixture
def invalid_file(tmp_path: Path) -> Path:
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID)
    return path


@pytest.fixture
def shop_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP_POLICY.read_text())
    return path


def test_check_points_at_every_problem_with_its_line_and_fails(invalid_file, teams):
    message, problems = refused("check", str(invalid_file))
    assert message == f"{invalid_file} is not valid: 2 problem(s); nothing was stored."
    assert problems.splitlines() == [
        f"{invalid_file}: rules[1].when (line 8): unknown fact: order.totl",
        f"{invalid_file}: rules[2].when (line 12): can never fire: no value of case.amount "
        "meets all its comparisons",
    ]


def test_check_of_a_valid_file_says_so(shop_file, teams):
    out, _err = policy("check", str(shop_file))
    assert out.strip() == f"{shop_file} is valid: 15 rule(s)."


def test_check_of_a_missing_file_is_a_clear_error(tmp_path):
    message, _ = refused("check", str(tmp_path / "nowhere.yaml"))
    assert message.startswith(f"Cannot read {tmp_path / 'nowhere.yaml'}:")


def test_the_exit_code_of_an_invalid_check_is_1(invalid_file, teams, capsys):
    from concilia.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["policy", "check", str(invalid_file)])
    assert exit_.value.code == 1
    assert "rules[1].when (line 8): unknown fact: order.totl" in capsys.readouterr().err


def test_load_stores_the_next_version_and_publish_makes_it_live(shop_file, invalid_file, teams):
    out, _ = policy("load", str(shop_file), "--code", "shop", "--note", "first")
    assert out.strip() == "Stored shop v1 (Draft)."
    out, _ = policy("load", str(shop_file), "--code", "shop", "--publish")
    assert out.strip() == "Stored shop v2 (Live)."
    # an invalid file stores nothing
    refused("load", str(invalid_file), "--code", "shop")
    assert PolicyVersion.objects.count() == 2
    out, _ = policy("publish", "shop", "1")
    assert out.strip() == "shop v1 is live."
    statuses = dict(PolicyVersion.objects.values_list("number", "status"))
    assert statuses == {1: VersionStatus.LIVE, 2: VersionStatus.RETIRED}
    assert Policy.objects.get().live_version.number == 1
    assert PolicyVersion.objects.get(number=1).note == "first"


def test_publishing_what_does_not_exist_is_a_clear_error(shop_policy):
    assert refused("publish", "nope", "1")[0] == "No policy nope (policies: shop)."
    assert refused("publish", "shop", "7")[0] == "Policy shop has no version 7."


def test_facts_lists_every_fact_with_its_type_and_help_in_the_active_language():
    out, _ = policy("facts")
    assert "  order.days_late" in out and "int" in out
    assert "calendar days past the promised delivery" in out
    with translation.override("es"):
        spanish, _ = policy("facts")
    assert "el código de la categoría" in spanish


@pytest.fixture
def past_cases(shop_policy, open_case):
    """A lost parcel refunded automatically, and a billing error of 30 refunded automatically."""
    lost = open_case(email="a@example.com", category="shipping_delay", order_number="5558")
    billing = open_case(email="b@example.com", category="billing_error", amount=Decimal("30.00"))
    for case in (lost, billing):
        actions.triage_case(case=case)
    return lost, billing


def test_simulate_a_draft_file_lists_what_differs_with_links(past_cases, tmp_path):
    lost, billing = past_cases
    draft = tmp_path / "draft.yaml"
    draft.write_text(SHOP_POLICY.read_text().replace("case.amount <= 50", "case.amount <= 20"))
    today = timezone.localdate().isoformat()
    out, _ = policy("simulate", str(draft), "--since", today)
    assert "Cases considered: 2 (2 on the facts of their decision" in out
    assert "Resolved now (resolve): 1" in out
    assert "Evidence asked for (ask_evidence): 1" in out
    assert "Cases where it differs from what was done: 1" in out
    assert (
        f"  {billing.reference}: a refund of €30.00 (Automatically, by policy) → Evidence asked "
        f"for [billing-needs-invoice]  http://testserver/helpdesk/cases/{billing.reference}"
    ) in out
    assert lost.reference not in out
    assert PolicyVersion.objects.count() == 1  # a draft file stores nothing


def test_simulate_a_stored_policy_by_code_and_version(past_cases):
    today = timezone.localdate().isoformat()
    out, _ = policy("simulate", "shop", "--since", today, "--until", today)
    assert out.startswith(f"Policy shop v1 over the cases opened from {today} to {today}")
    assert "Cases where it differs from what was done: 0" in out
    out, _ = policy("simulate", "shop", "--version", "1", "--since", today)
    assert out.startswith(f"Policy shop v1 over the cases opened since {today}\n")
    assert "Resolved now (resolve): 2" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--since", "2026-01-01"), "No policy nope (policies: shop)."),
        (
            ("shop", "--since", "2026-13-01"),
            "--since: not a date; write it as YYYY-MM-DD, e.g. 2026-01-01",
        ),
        (("shop", "--since", "2026-02-01", "--until", "2026-01-01"), "--until is before --since."),
        (("shop", "--version", "9", "--since", "2026-01-01"), "Policy shop has no version 9."),
    ],
)
def test_simulate_refuses_bad_input_clearly(shop_policy, args, message):
    assert refused("simulate", *args)[0] == message


def test_simulate_an_invalid_file_points_at_the_problem(shop_policy, invalid_file):
    message, problems = refused("simulate", str(invalid_file), "--since", "2026-01-01")
    assert "is not valid: 2 problem(s)" in message
    assert "rules[1].when (line 8): unknown fact: order.totl" in problems
