"""The customer sees an offer on their case's page and answers it there: accept an option,
propose an amount, or say no with a reason. Bad answers get a clear message and change nothing;
another customer never sees nor answers it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from concilia.resolution.models import Offer, OfferStatus, Resolution

from .test_tracking import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def offered(open_case, run_tasks, client):
    """Lucía's late order 1234 got an offer from the demo shop's policy (decided by the form's
    background job), and she is signed in on the tracking page."""
    from concilia.accounts.models import Team
    from concilia.resolution.demo import load_demo

    for code in ("customer-care", "logistics"):
        Team.objects.create(code=code, name_es=code, name_en=code)
    load_demo()
    case = open_case(
        category="shipping_delay",
        order_number="1234",
        purchase_date=timezone.localdate(),
        language="en",
    )
    run_tasks()
    sign_in(client, case, run_tasks)
    return Offer.objects.get(case=case)


def page(client: Client, offer: Offer) -> str:
    return client.get(
        f"/track/cases/{offer.case.reference}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()


def answer(client: Client, offer: Offer, **data) -> object:
    return client.post(
        f"/track/cases/{offer.case.reference}/offer",
        {"offer": str(offer.public_id), **data},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_the_offer_shows_with_its_options_and_reason(client, offered):
    html = page(client, offered)
    credit = offered.options[0]["amount"]
    assert "Our offer" in html
    assert f"Store credit of €{credit}" in html
    assert "An apology and a 10% discount code" in html
    assert "is 1 days past the promised date" in html or "days past the promised date" in html


def test_accepting_the_second_option_on_the_page(client, offered):
    response = answer(client, offered, answer="accept", option="1")
    assert response.status_code == 302
    resolution = Resolution.objects.get()
    assert resolution.kind == "discount_code"
    html = page(client, offered)
    assert "What we agreed" in html and resolution.discount_code in html
    assert "Our offer" not in html


def test_a_counter_within_the_limit_is_agreed_on_the_page(client, offered):
    asked = Decimal(offered.options[0]["amount"]) + Decimal("1")
    response = answer(client, offered, answer="counter", amount=f"{asked} €")
    assert response.status_code == 302
    assert Resolution.objects.get().amount == asked


def test_bad_answers_are_explained_and_change_nothing(client, offered):
    response = answer(client, offered, answer="counter", amount="lots")
    assert response.status_code == 400
    assert "Write the amount as a number" in response.content.decode()
    response = answer(client, offered, answer="reject", reason="")
    assert response.status_code == 400
    assert "Tell us why the offer does not suit you." in response.content.decode()
    response = answer(client, offered, answer="accept", option="7")
    assert response.status_code == 400
    assert "This offer has no option 8." in response.content.decode()
    offered.refresh_from_db()
    assert offered.status == OfferStatus.OPEN


def test_saying_no_with_a_reason_goes_to_a_person(client, offered):
    response = answer(client, offered, answer="reject", reason="I prefer a refund.")
    assert response.status_code == 302
    offered.refresh_from_db()
    assert offered.status == OfferStatus.REJECTED
    public = offered.case.messages.filter(internal=False)
    assert "I prefer a refund." in [message.body for message in public]


def test_an_answered_offer_cannot_be_answered_again(client, offered):
    answer(client, offered, answer="accept", option="0")
    response = answer(client, offered, answer="accept", option="0")
    assert response.status_code == 302
    response = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert "This offer has already been answered." in response.content.decode()
    assert Resolution.objects.count() == 1


def test_another_customer_can_neither_see_nor_answer_it(offered, open_case, run_tasks):
    other = Client()
    case = open_case(email="pedro@example.com", name="Pedro Ruiz")
    run_tasks()  # the policy's answer to his case is emailed before his sign-in link
    sign_in(other, case, run_tasks)
    assert other.get(f"/track/cases/{offered.case.reference}").status_code == 404
    response = answer(other, offered, answer="accept", option="0")
    assert response.status_code == 404
    assert not Resolution.objects.exists()


def test_a_photo_sent_after_the_policy_asked_for_one_gets_the_case_decided_again(
    client, open_case, run_tasks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from concilia.resolution.demo import load_demo
    from conftest import PNG_BYTES

    load_demo_teams()
    load_demo()
    case = open_case(category="damaged_missing", order_number="1231", language="en")
    run_tasks()
    assert case.decisions.get().outcome == "ask_evidence"
    sign_in(client, case, run_tasks)
    response = client.post(
        f"/track/cases/{case.reference}",
        {"body": "Here is the photo", "attachments": [SimpleUploadedFile("box.png", PNG_BYTES)]},
    )
    assert response.status_code == 302
    run_tasks()
    assert list(case.decisions.values_list("outcome", flat=True)) == ["offer", "ask_evidence"]
    offer = Offer.objects.get(case=case)
    assert [o["kind"] for o in offer.options] == ["replacement", "refund"]
    # sending more files later does not decide it a third time
    client.post(
        f"/track/cases/{case.reference}",
        {"body": "Another one", "attachments": [SimpleUploadedFile("box2.png", PNG_BYTES)]},
    )
    run_tasks()
    assert case.decisions.count() == 2


def load_demo_teams() -> None:
    from concilia.accounts.models import Team

    for code in ("customer-care", "logistics"):
        Team.objects.get_or_create(code=code, defaults={"name_es": code, "name_en": code})
