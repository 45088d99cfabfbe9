"""The company's policies answer in the chat: a late parcel gets an offer the customer accepts,
chooses, counters or rejects right there, in Spanish and English. The policies decide after the
reply that registers the case (a job), so their answer follows a moment later."""

from __future__ import annotations

from decimal import Decimal

import pytest

from concilia.assistant.actions import decide_case
from concilia.assistant.models import Handover
from concilia.cases.models import Outcome, Status
from concilia.resolution.demo import load_demo as load_policy
from concilia.resolution.models import Decision, Offer, OfferStatus, Resolution

from .test_conversations import answer_until_summary, begin, confirm, identify

pytestmark = pytest.mark.django_db

LATE = {
    "es": "Mi paquete no ha llegado todavía y ya debería estar aquí, pedido 1234",
    "en": "My parcel has not arrived yet and it is late, order 1234",
}


@pytest.fixture(autouse=True)
def shop_policy(db):
    from concilia.accounts.models import Team

    for code in ("customer-care", "logistics"):
        Team.objects.create(code=code, name_es=code, name_en=code)
    load_policy()


def late_parcel_confirmed(client, language: str):
    chat = begin(client, language)
    chat.say(LATE[language])
    identify(chat, language)
    answer_until_summary(chat)
    return chat, confirm(chat)


def late_parcel_offer(client, language: str, run_tasks):
    chat, case = late_parcel_confirmed(client, language)
    chat.wait_for_decision(run_tasks)
    assert chat.choices == ["accept:0", "accept:1", "counter", "reject"], chat.answer
    return chat, case


@pytest.mark.parametrize(
    ("language", "offered", "agreed"),
    [
        ("es", "Te ofrecemos un saldo a favor de", "Acordado: un saldo a favor de"),
        ("en", "We offer you store credit of", "Agreed: store credit of"),
    ],
)
def test_a_late_parcel_is_settled_with_credit_accepted_in_the_chat(
    client, language, offered, agreed, run_tasks
):
    chat, case = late_parcel_offer(client, language, run_tasks)
    assert offered in chat.answer
    assert case.reference in chat.answer
    chat.press("accept:0")
    assert agreed in chat.answer
    assert chat.choices == ["1", "2", "3", "4", "5"]  # the survey follows
    resolution = Resolution.objects.get(case=case)
    assert resolution.kind == "credit" and resolution.agreed_by == "customer"
    assert str(resolution.amount).replace(".", "," if language == "es" else ".") in chat.answer
    case.refresh_from_db()
    assert (case.status, case.outcome) == (Status.CLOSED, Outcome.RESOLVED)
    assert case.conversations.get().resolved_by_assistant


def test_a_counter_within_the_limit_is_agreed_in_the_chat(client, run_tasks):
    chat, case = late_parcel_offer(client, "en", run_tasks)
    credit = Decimal(Offer.objects.get(case=case).options[0]["amount"])
    chat.press("counter")
    assert chat.expects == "text"
    chat.say("what?")
    assert "Write the amount as a number" in chat.answer
    chat.say(f"{credit + 1} EUR")
    assert "Agreed: store credit of" in chat.answer
    assert Resolution.objects.get(case=case).amount == credit + 1


def test_a_counter_beyond_the_limit_gets_a_better_offer_then_a_person(client, run_tasks):
    chat, case = late_parcel_offer(client, "es", run_tasks)
    chat.press("counter")
    chat.say("100 euros")
    assert "podemos mejorar nuestra oferta hasta" in chat.answer
    assert chat.choices == ["accept:0", "counter", "reject"]
    chat.press("counter")
    chat.say("90")
    assert "una persona de nuestro equipo lo revisará" in chat.answer
    handover = Handover.objects.get(conversation__case=case)
    assert handover.reason == "policy"
    assert not Resolution.objects.exists()


def test_rejecting_the_offer_hands_over_with_the_reason(client, run_tasks):
    chat, case = late_parcel_offer(client, "en", run_tasks)
    chat.press("reject")
    chat.say("I do not want credit, I want my money back")
    assert Handover.objects.filter(conversation__case=case).exists()
    assert Offer.objects.get(case=case).status == OfferStatus.REJECTED
    note = "\n".join(case.messages.filter(internal=True).values_list("body", flat=True))
    assert "I want my money back" in note


def test_the_offer_follows_the_registered_case_once_the_policies_have_decided(client, run_tasks):
    # Given a customer who confirms a late parcel's summary
    chat, case = late_parcel_confirmed(client, "en")
    # Then the reply registers the case and asks for a moment, and nothing is decided yet
    assert case.reference in chat.answer
    assert "One moment, please" in chat.answer
    assert (chat.expects, chat.choices) == ("wait", [])
    assert not Decision.objects.filter(case=case).exists()
    # When they write meanwhile, they are asked to wait a little more
    chat.say("hello?")
    assert "still checking" in chat.answer
    assert chat.expects == "wait"
    # When the job has run, the offer is in the chat with its buttons, once
    assert "We offer you store credit of" in chat.wait_for_decision(run_tasks)
    assert chat.choices == ["accept:0", "accept:1", "counter", "reject"]
    shown = len(chat.log)
    run_tasks()
    assert decide_case(conversation_id=case.conversations.get().pk, case_id=case.pk) == []
    chat.follow()
    assert len(chat.log) == shown
    assert Offer.objects.filter(case=case).count() == 1


def test_asking_for_a_person_while_the_policies_decide_hands_over_and_the_offer_goes_by_email(
    client, run_tasks
):
    chat, case = late_parcel_confirmed(client, "en")
    chat.say("I want to talk to a person")
    assert chat.status == "handed_over"
    assert Handover.objects.get(case=case).reason == "requested"
    # The policies still decide the case; a person has the conversation, so the chat is quiet
    shown = len(chat.log)
    run_tasks()
    chat.follow()
    assert len(chat.log) == shown
    assert Decision.objects.filter(case=case).count() == 1
    assert Offer.objects.get(case=case).status == OfferStatus.OPEN
    assert any("store credit" in message.body for message in case.messages.all())


def test_a_failing_policy_leaves_the_case_to_a_person_and_the_customer_is_told(
    client, settings, run_tasks
):
    settings.TRIAGE = "concilia.assistant.tests.test_offers_in_chat.broken_policy"
    from concilia.core import ports

    ports._load.cache_clear()
    try:
        chat, _case = late_parcel_confirmed(client, "en")
        chat.wait_for_decision(run_tasks)
        assert "A person from our team will answer by" in chat.answer
        assert chat.choices == ["1", "2", "3", "4", "5"]
    finally:
        ports._load.cache_clear()


def broken_policy(case, **_kwargs):
    raise RuntimeError("the shop is down")
