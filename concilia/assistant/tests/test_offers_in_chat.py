"""The company's policies answer in the chat: a late parcel gets an offer the customer accepts,
chooses, counters or rejects right there, in Spanish and English."""

from __future__ import annotations

from decimal import Decimal

import pytest

from concilia.assistant.models import Handover
from concilia.cases.models import Outcome, Status
from concilia.resolution.demo import load_demo as load_policy
from concilia.resolution.models import Offer, OfferStatus, Resolution

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


def late_parcel_offer(client, language: str):
    chat = begin(client, language)
    chat.say(LATE[language])
    identify(chat, language)
    answer_until_summary(chat)
    case = confirm(chat)
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
    client, language, offered, agreed
):
    chat, case = late_parcel_offer(client, language)
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


def test_a_counter_within_the_limit_is_agreed_in_the_chat(client):
    chat, case = late_parcel_offer(client, "en")
    credit = Decimal(Offer.objects.get(case=case).options[0]["amount"])
    chat.press("counter")
    assert chat.expects == "text"
    chat.say("what?")
    assert "Write the amount as a number" in chat.answer
    chat.say(f"{credit + 1} EUR")
    assert "Agreed: store credit of" in chat.answer
    assert Resolution.objects.get(case=case).amount == credit + 1


def test_a_counter_beyond_the_limit_gets_a_better_offer_then_a_person(client):
    chat, case = late_parcel_offer(client, "es")
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


def test_rejecting_the_offer_hands_over_with_the_reason(client):
    chat, case = late_parcel_offer(client, "en")
    chat.press("reject")
    chat.say("I do not want credit, I want my money back")
    assert Handover.objects.filter(conversation__case=case).exists()
    assert Offer.objects.get(case=case).status == OfferStatus.REJECTED
    note = "\n".join(case.messages.filter(internal=True).values_list("body", flat=True))
    assert "I want my money back" in note
