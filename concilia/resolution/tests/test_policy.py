"""Policies are checked when saved: a rule that does not parse, names an unknown fact or can
never fire is refused with a message that points at it, and nothing is stored."""

from __future__ import annotations

import pytest
from django.utils import translation

from concilia.resolution.actions import publish_version, save_policy_version
from concilia.resolution.models import Policy, PolicyVersion, VersionStatus
from concilia.resolution.policy import PolicyInvalid, parse

from .conftest import SHOP_POLICY

CATEGORIES = {
    "shipping_delay",
    "damaged_missing",
    "billing_error",
    "refund",
    "return",
    "staff_conduct",
}


@pytest.fixture(autouse=True)
def in_english():
    with translation.override("en"):
        yield


def policy_with(*rules: str, head: str = "") -> str:
    body = "\n".join(rules)
    return f"name: {{es: Prueba, en: Test}}\n{head}rules:\n{body}\n"


def rule(
    rule_id: str, when: str, then: str = "escalate: {}", reason: str = "{es: Motivo, en: Reason}"
) -> str:
    return f"  - id: {rule_id}\n    when: '{when}'\n    then: {{{then}}}\n    reason: {reason}\n"


def problems(source: str, **known) -> list[str]:
    with pytest.raises(PolicyInvalid) as refused:
        parse(
            source,
            categories=known.get("categories", CATEGORIES),
            teams=known.get("teams", {"logistics"}),
        )
    return [str(p) for p in refused.value.problems]


def test_the_demo_shop_policy_is_valid_and_covers_the_demo_categories():
    document = parse(
        SHOP_POLICY.read_text(),
        categories=CATEGORIES | {"technical_problem", "other"},
        teams={"customer-care", "logistics"},
    )
    assert len(document.rules) == 15
    outcomes = {r.outcome.type for r in document.rules}
    assert outcomes == {"resolve", "offer", "ask_evidence", "escalate", "mediate"}
    assert all(set(r.reason) == {"es", "en"} for r in document.rules)


def test_a_condition_that_does_not_parse_is_refused_at_its_place():
    found = problems(policy_with(rule("ok", "case.amount > 1"), rule("broken", "case.amount >")))
    assert len(found) == 1
    assert found[0].startswith("rules[1].when: the condition does not parse")


def test_an_unknown_fact_is_named():
    found = problems(policy_with(rule("typo", "order.totl > 5.0")))
    assert found == ["rules[0].when: unknown fact: order.totl"]
    found = problems(policy_with(rule("nowhere", "parcel.lost")))
    assert found == ["rules[0].when: unknown fact: parcel.lost"]


def test_a_condition_of_the_wrong_type_is_refused():
    found = problems(policy_with(rule("text-vs-number", "case.category > 3")))
    assert found[0].startswith("rules[0].when: the condition fails on typical facts")
    found = problems(policy_with(rule("not-a-test", "order.days_late + 1")))
    assert found == ["rules[0].when: the condition gives int, not true or false"]


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ("false", "the condition is always false"),
        (
            "case.amount > 100 && case.amount < 50",
            "no value of case.amount meets all its comparisons",
        ),
        ("order.days_late >= 3 && order.days_late == 1", "no value of order.days_late meets"),
        ('case.category == "shiping"', "unknown category shiping"),
        ('case.category in ["refund", "retrun"]', "unknown category retrun"),
    ],
)
def test_a_rule_that_can_never_fire_is_refused(when, why):
    found = problems(policy_with(rule("never", when)))
    assert len(found) == 1
    assert found[0].startswith("rules[0].when: can never fire: ")
    assert why in found[0]


def test_rules_after_a_catch_all_or_a_repeated_condition_can_never_fire():
    found = problems(
        policy_with(
            rule("late", "order.days_late > 2"),
            rule("late-again", "order.days_late  >  2"),
            rule("everything", "true"),
            rule("after", "case.amount > 1"),
        )
    )
    assert found == [
        "rules[1].when: can never fire: rule late before it has the same condition",
        "rules[3].when: can never fire: rule everything before it applies to every case",
    ]


def test_a_rule_outside_the_policys_categories_can_never_fire():
    found = problems(
        policy_with(rule("r", 'case.category == "refund"'), head="applies_to: [shipping_delay]\n")
    )
    assert found == ["rules[0].when: can never fire: the policy does not apply to category refund"]


def test_outcomes_are_checked_too():
    found = problems(
        policy_with(
            rule("a", "case.amount > 1", then="resolve: {kind: refund}"),
            rule(
                "b",
                "case.amount > 2",
                then="offer: {options: [{kind: credit, amount: order.number}]}",
            ),
            rule("c", "case.amount > 3", then="escalate: {team: nobody}"),
            rule("d", "case.amount > 4", then="ask_evidence: {items: [selfie]}"),
            rule("e", "case.amount > 5", then="pay: {}"),
            rule("f", "case.amount > 6", reason="{es: 'Hola {order.nope}'}"),
        )
    )
    assert found == [
        "rules[0].then.resolve.amount: a refund needs an amount",
        "rules[1].then.offer.options[0].amount.of: not a money fact; one of case.amount, customer.paid_365d, order.total",
        "rules[2].then.escalate.team: unknown team: nobody",
        "rules[3].then.ask_evidence.items: a list of what to ask for: photo, document",
        "rules[4].then.pay: unknown outcome; one of resolve, offer, ask_evidence, escalate, mediate",
        "rules[5].reason.en: missing text",
        "rules[5].reason.es: unknown placeholder {order.nope}",
    ]


def test_yaml_errors_say_the_line():
    found = problems("name: {es: a, en: b}\nrules:\n  - id: x\n    when: [unclosed\n")
    assert len(found) == 1
    assert found[0].startswith("line ")
    assert "not valid YAML" in found[0]


@pytest.mark.django_db
def test_an_invalid_policy_never_goes_live_and_nothing_is_stored(teams):
    source = policy_with(rule("typo", "order.totl > 5.0"))
    with pytest.raises(PolicyInvalid):
        save_policy_version(code="shop", source=source, author=None, publish=True)
    assert not Policy.objects.exists()
    assert not PolicyVersion.objects.exists()


@pytest.mark.django_db
def test_publishing_a_new_version_retires_the_live_one_and_keeps_its_history(teams):
    first = save_policy_version(
        code="shop", source=SHOP_POLICY.read_text(), author=None, publish=True
    )
    second = save_policy_version(
        code="shop",
        source=policy_with(rule("late", "order.days_late > 2")),
        author=None,
        note="simpler",
    )
    assert (first.number, second.number) == (1, 2)
    first.refresh_from_db()
    assert first.status == VersionStatus.LIVE and second.status == VersionStatus.DRAFT
    publish_version(version=second, actor=None)
    first.refresh_from_db()
    assert first.status == VersionStatus.RETIRED
    assert Policy.objects.get(code="shop").live_version == second
    assert list(PolicyVersion.objects.values_list("number", "status")) == [
        (2, "live"),
        (1, "retired"),
    ]


def test_problems_are_told_in_the_administrators_language():
    with translation.override("es"):
        found = problems(policy_with(rule("typo", "order.totl > 5.0"), rule("nunca", "false")))
    assert found == [
        "rules[0].when: dato desconocido: order.totl",
        "rules[1].when: nunca se aplicará: la condición siempre es falsa",
    ]
