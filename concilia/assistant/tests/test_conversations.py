"""Whole conversations with the assistant, in Spanish and English, through the chat API.

Lucía writes in Spanish, James in English. Each test drives a real conversation (the NLU, the
dialogue, the database) from the privacy notice to its end, and checks what the customer reads
and what the company gets: the case, its fields, its thread, the hand-over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.core import mail

from concilia.assistant.demo import load_demo
from concilia.assistant.models import (
    ChatUpload,
    Conversation,
    ConversationStatus,
    Handover,
    HandoverReason,
    HandoverRules,
    KnowledgeArticle,
    TechnicianVisit,
)
from concilia.assistant.tests.chat import Chat
from concilia.cases.models import ActorKind, Case, Category, EventKind, Priority, Status
from concilia.core.ports import TriageDecision
from concilia.customers.models import Consent, Customer
from conftest import PDF_BYTES, PNG_BYTES

pytestmark = pytest.mark.django_db

PEOPLE = {
    "es": {"email": "lucia@example.com", "name": "Lucía Fernández"},
    "en": {"email": "james@example.com", "name": "James Carter"},
}


@pytest.fixture(autouse=True)
def demo_content(db):
    load_demo()


def begin(client, language: str) -> Chat:
    chat = Chat(client, language)
    assert chat.choices == ["accept", "decline"]
    chat.press("accept")
    return chat


def identify(chat: Chat, language: str) -> None:
    assert chat.expects == "email", chat.answer
    chat.say(PEOPLE[language]["email"])
    assert chat.expects == "name", chat.answer
    chat.say(PEOPLE[language]["name"])


def answer_until_summary(chat: Chat) -> None:
    """Skip what may be skipped, take the first option, give a date when one is asked."""
    for _ in range(12):
        if chat.choices == ["yes", "no"]:
            return
        if chat.expects == "date":
            chat.say("yesterday")
        elif chat.choices:
            chat.press("__skip" if "__skip" in chat.choices else chat.choices[0])
        else:
            chat.say("Some headphones")
    raise AssertionError(chat.answer)


def confirm(chat: Chat, run_tasks: Callable[[], None] | None = None) -> Case:
    """The customer confirms the summary and reads the case's reference; with `run_tasks`, the
    policies' decision then follows in the chat (a job, after the reply)."""
    assert chat.choices == ["yes", "no"], chat.answer
    chat.press("yes")
    case = Case.objects.get(reference=chat.case_reference)
    assert case.reference in chat.answer
    if run_tasks is not None:
        chat.wait_for_decision(run_tasks)
    return case


# -- every category flow, in both languages --------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "amount"),
    [
        ("es", "Me han cobrado dos veces la factura de este mes, 49,90 € cada vez", "49.90"),
        ("en", "You charged me twice on my bill this month, 49.90 EUR each time", "49.90"),
    ],
)
def test_billing_error_collects_amount_and_invoice(client, language, text, amount, run_tasks):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    # The order number is optional for a billing error; the amount came with the description.
    assert "__skip" in chat.choices
    chat.press("__skip")
    assert chat.expects == "date"
    chat.say("2026-11-02" if language == "en" else "2 de noviembre de 2026")
    assert chat.expects == "file", chat.answer
    chat.send_file("factura.pdf", PDF_BYTES)
    assert "refund" in chat.choices  # what the customer would like
    chat.press("refund")
    assert f"{Decimal(amount):.2f}".replace(".", "," if language == "es" else ".") in chat.answer
    case = confirm(chat)
    # The case is registered at once; what follows (here: no policy, so a person) a moment later.
    assert chat.expects == "wait"
    if language == "en":  # (the Spanish words come with the next translation round)
        assert "One moment, please: I am checking what we can do for you" in chat.answer
    chat.wait_for_decision(run_tasks)
    assert (
        "Una persona de nuestro equipo te responderá"
        if language == "es"
        else "A person from our team will answer by"
    ) in chat.answer
    assert chat.choices == ["1", "2", "3", "4", "5"]
    assert case.category.code == "billing_error"
    assert case.channel == "chat"
    assert case.language == language
    assert case.amount == Decimal(amount)
    assert case.purchase_date == dt.date(2026, 11, 2)
    assert case.order_number == ""
    assert [a.original_name for a in case.attachments.all()] == ["factura.pdf"]
    assert case.customer.email == PEOPLE[language]["email"]
    assert case.privacy_consent is not None and case.privacy_consent.channel == "chat"
    # The whole transcript is the case's first messages.
    bodies = list(case.messages.values_list("body", flat=True))
    assert text in bodies
    assert PEOPLE[language]["email"] in bodies


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Devolví el pedido 4471 hace tres semanas y todavía no me han reembolsado"),
        ("en", "I returned order 4471 three weeks ago and I still have not got my refund"),
    ],
)
def test_refund_looks_up_the_order_and_asks_the_amount(client, language, text):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    # The order number from the description was looked up in the shop.
    assert "4471" in chat.answer
    assert chat.expects == "amount" or "49" in chat.answer or chat.expects == "text"
    chat.say("39,90 €" if language == "es" else "€39.90")
    assert chat.expects == "file"
    chat.press("__skip")
    case = confirm(chat)
    assert case.category.code == "refund"
    assert case.order_number == "4471"
    assert case.amount == Decimal("39.90")
    assert case.purchase_date is not None  # from the shop's order


@pytest.mark.parametrize(
    ("language", "text", "item"),
    [
        ("es", "Quiero devolver un producto que compré, el pedido 5512", "Unos auriculares"),
        ("en", "I want to return an item I bought, order 5512", "Some headphones"),
    ],
)
def test_return_collects_item_condition_and_reason(client, language, text, item):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    assert "5512" in chat.answer
    while chat.expects in ("amount",) or ("__skip" in chat.choices and chat.expects != "choice"):
        chat.press("__skip")
    chat.say(item)
    assert set(chat.choices) >= {"unopened", "used", "faulty", "damaged"}
    # A typed answer that names an option is taken as that option.
    chat.say("sin abrir" if language == "es" else "unopened")
    assert "changed_mind" in chat.choices
    chat.press("changed_mind")
    case = confirm(chat)
    assert case.category.code == "return"
    assert item in case.description
    assert ("Sin abrir" if language == "es" else "Unopened") in case.description


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Mi paquete no ha llegado todavía y ya pasó la fecha de entrega, pedido 1234564"),
        ("en", "My parcel still has not arrived and the delivery date has passed, order 1234564"),
    ],
)
def test_late_delivery_shows_the_shipment_status(client, language, text):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    # Numbers ending in 4-6 are late and in transit in the demo shop.
    assert ("en tránsito" if language == "es" else "in transit") in chat.answer
    assert ("días de retraso" if language == "es" else "days late") in chat.answer
    chat.press("refund")
    case = confirm(chat)
    assert case.category.code == "shipping_delay"
    assert case.order_number == "1234564"
    assert case.desired_resolution


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "El paquete llegó roto, la caja estaba aplastada. Pedido 4471"),
        ("en", "My parcel arrived damaged, the box was crushed. Order 4471"),
    ],
)
def test_damaged_delivery_takes_a_photo(client, language, text):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    if chat.expects == "amount":
        chat.press("__skip")
    assert "damaged" in chat.choices
    chat.press("damaged")
    assert chat.expects == "file"
    chat.send_file("golpe.png", PNG_BYTES)
    chat.press("replacement")
    case = confirm(chat)
    assert case.category.code == "damaged_missing"
    assert [a.content_type for a in case.attachments.all()] == ["image/png"]
    assert ChatUpload.objects.get().attached_at is not None


@pytest.mark.parametrize(
    ("language", "text", "product"),
    [
        ("es", "El router no funciona, no tengo internet desde ayer", "router"),
        ("en", "My wifi router does not work, no internet since yesterday", "router"),
    ],
)
def test_technical_problem_solved_by_a_troubleshooting_step_opens_no_case(
    client, language, text, product
):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    while product not in chat.choices:
        chat.press("__skip")
    chat.press(product)
    assert "1" in chat.answer and chat.choices == ["yes", "no"]
    chat.press("no")
    assert chat.choices == ["yes", "no"]  # step 2
    chat.press("yes")
    assert chat.choices == ["1", "2", "3", "4", "5"]
    conversation = Conversation.objects.get()
    assert conversation.resolved_by_assistant
    assert Case.objects.count() == 0


@pytest.mark.parametrize("language", ["es", "en"])
def test_technical_problem_unsolved_books_a_technician_with_a_report(client, language):
    chat = begin(client, language)
    chat.say(
        "Los auriculares inalámbricos no se conectan al móvil"
        if language == "es"
        else "My wireless headphones will not connect to my phone"
    )
    identify(chat, language)
    while "headphones" not in chat.choices:
        chat.press("__skip")
    chat.press("headphones")
    for _ in range(3):
        chat.press("no")
    visits = [value for value in chat.choices if value.startswith("visit:")]
    assert len(visits) == 4
    chat.press(visits[0])
    case = confirm(chat)
    visit = TechnicianVisit.objects.get(case=case)
    assert visit.ends_at - visit.starts_at == dt.timedelta(hours=2)
    # The report lists what was already tried, for the technician.
    assert visit.report.count("\n  ") == 3
    report_note = case.messages.get(internal=True)
    assert case.reference in report_note.body
    assert report_note.author_kind == ActorKind.SYSTEM


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "El dependiente de la tienda de Sol me gritó y me insultó delante de todos"),
        ("en", "The shop assistant at the Main Street store shouted at me and insulted me"),
    ],
)
def test_staff_conduct_always_goes_to_a_person(client, language, text):
    chat = begin(client, language)
    chat.say(text)
    identify(chat, language)
    assert chat.expects == "date"
    chat.say("ayer" if language == "es" else "yesterday")
    chat.say("Tienda de la calle Mayor" if language == "es" else "The Main Street shop")
    chat.say(
        "Se llamaba Pedro, había otros dos clientes."
        if language == "es"
        else "His name tag said Peter."
    )
    case = confirm(chat)
    assert case.category.code == "staff_conduct"
    handover = Handover.objects.get(case=case)
    assert handover.reason == HandoverReason.CATEGORY
    assert chat.status == "handed_over"
    # No automated outcome: nothing but the hand-over is offered.
    assert case.status == Status.PENDING_AGENT
    assert "RC-" in chat.answer


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("es", "Quería comentaros una cosa sobre la web, no encuentro dónde cambiar mi dirección"),
        ("en", "I wanted to tell you something about your website, I cannot change my address"),
    ],
)
def test_other_reaches_a_case_with_the_category_chosen_by_button(client, language, text):
    chat = begin(client, language)
    chat.say(text)
    if "other" in chat.choices:  # not sure: the customer picks it
        chat.press("other")
    identify(chat, language)
    while chat.choices and "__skip" in chat.choices:
        chat.press("__skip")
    case = confirm(chat)
    assert case.category.code == "other"


# -- corrections, questions, consent -----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "correction"),
    [("es", "no, el pedido es 4473"), ("en", "no, the order is 4473")],
)
def test_a_field_is_corrected_mid_flow_and_at_the_summary(client, language, correction):
    chat = begin(client, language)
    chat.say(
        "El paquete del pedido 4471 llegó roto"
        if language == "es"
        else "The parcel of order 4471 arrived broken"
    )
    identify(chat, language)
    asked = chat.expects
    chat.say(correction)
    assert "4473" in chat.answer
    assert chat.expects == asked  # the question is asked again
    while chat.choices and chat.choices != ["yes", "no"]:
        chat.press(chat.choices[-1] if "__skip" in chat.choices else chat.choices[0])
    # At the summary, the customer changes the order once more.
    chat.press("no")
    chat.press("field:order_number")
    chat.say("5515")
    assert "5515" in chat.answer and chat.choices == ["yes", "no"]
    case = confirm(chat)
    assert case.order_number == "5515"


@pytest.mark.parametrize(
    ("language", "question", "answer_fragment"),
    [
        ("es", "¿cuánto tiempo tengo para devolver un producto?", "30 días"),
        ("en", "how long do I have to return a product?", "30 calendar days"),
    ],
)
def test_a_question_mid_flow_is_answered_and_the_flow_goes_on(
    client, language, question, answer_fragment
):
    chat = begin(client, language)
    chat.say(
        "Quiero devolver un producto del pedido 5512"
        if language == "es"
        else "I want to return an item from order 5512"
    )
    assert chat.expects == "email"
    chat.say(question)
    assert answer_fragment in chat.answer
    assert chat.expects == "email"  # asked again
    article = KnowledgeArticle.objects.get(question_en__startswith="How long do I have")
    assert article.shown_count == 1
    # A thumbs up on the answer counts for the article.
    answer = next(m for m in reversed(chat.log) if answer_fragment in m["body"])
    response = client.post(
        f"/api/v1/conversations/{chat.id}/messages/{answer['seq']}/rating",
        {"helpful": True},
        content_type="application/json",
        headers=chat.headers,
    )
    assert response.json() == {"seq": answer["seq"], "rating": 1}
    article.refresh_from_db()
    assert article.helpful_count == 1


@pytest.mark.parametrize(
    ("language", "question", "answer_fragment"),
    [
        ("es", "¿a qué hora abrís?", "lunes a viernes"),
        ("en", "what are your opening hours?", "Monday to Friday"),
    ],
)
def test_declining_consent_still_answers_questions_and_stores_nothing_personal(
    client, language, question, answer_fragment
):
    chat = Chat(client, language)
    chat.press("decline")
    chat.say(question)
    assert answer_fragment in chat.answer
    chat.press("end")
    assert chat.status == "closed"
    conversation = Conversation.objects.get()
    assert conversation.consent_declined_at is not None
    assert conversation.customer is None
    assert Customer.objects.count() == 0
    assert Consent.objects.count() == 0
    assert Case.objects.count() == 0


def test_a_complaint_without_consent_is_refused_politely(client):
    chat = Chat(client, "en")
    chat.press("decline")
    chat.say("my parcel never arrived, order 4471, my email is james@example.com")
    assert "consent" in chat.answer
    assert set(chat.choices) == {"accept", "end"}
    assert Customer.objects.count() == 0


# -- hand-over triggers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "ask"),
    [("es", "quiero hablar con una persona"), ("en", "can I talk to a human please")],
)
def test_asking_for_a_person_mid_flow_hands_over_with_everything_collected(client, language, ask):
    chat = begin(client, language)
    chat.say(
        "Me cobraron 30 € de más en el pedido 4471"
        if language == "es"
        else "You overcharged me 30 EUR on order 4471"
    )
    identify(chat, language)
    chat.say(ask)
    assert chat.status == "handed_over"
    case = Case.objects.get(reference=chat.case_reference)
    handover = Handover.objects.get()
    assert handover.reason == HandoverReason.REQUESTED
    assert handover.snapshot["fields"]["order_number"] == "4471"
    note = case.messages.get(internal=True)
    assert "4471" in note.body
    assert case.events.filter(kind=EventKind.HANDED_OVER).count() == 1
    # After the hand-over, the customer's messages go to the case's thread.
    chat.say("¿hay alguien?" if language == "es" else "is anyone there?")
    assert chat.last == []
    asked = [message for message in case.messages.all() if "?" in message.body]
    assert asked[-1].author_kind == ActorKind.CUSTOMER


def test_the_person_button_reads_as_words_in_the_transcript(client):
    chat = begin(client, "es")
    chat._post("/messages", {"choice": "__human"})
    customer_lines = [m["body"] for m in chat.log if m["author"] == "customer"]
    assert customer_lines[-1] == "Hablar con una persona"


def test_asking_for_a_person_before_consent_asks_consent_and_contact_first(client):
    chat = Chat(client, "es")
    chat.say("quiero hablar con un humano")
    assert chat.choices == ["accept", "decline"]
    chat.press("accept")
    assert chat.expects == "email"
    chat.say("lucia@example.com")
    chat.say("Lucía Fernández")
    assert chat.status == "handed_over"
    handover = Handover.objects.get()
    assert handover.reason == HandoverReason.REQUESTED
    assert handover.case.category.code == "other"


@pytest.mark.parametrize(
    ("language", "angry"),
    [
        (
            "es",
            "ESTO ES UNA VERGÜENZA!!! TERCERA VEZ QUE ESCRIBO Y NADIE ME HACE CASO, SOIS UNOS INÚTILES",
        ),
        ("en", "THIS IS RIDICULOUS!!! THIRD TIME I WRITE AND NOBODY ANSWERS, YOU ARE USELESS"),
    ],
)
def test_strong_frustration_hands_over_with_high_priority(client, language, angry):
    chat = begin(client, language)
    chat.say("El pedido 4471 no llegó" if language == "es" else "Order 4471 never arrived")
    identify(chat, language)
    chat.say(angry)
    assert chat.status == "handed_over"
    handover = Handover.objects.get()
    assert handover.reason == HandoverReason.FRUSTRATION
    assert handover.case.priority == Priority.HIGH
    # The agent reads what showed it, in the customer's own words.
    note = handover.case.messages.get(internal=True).body
    assert ("VERGÜENZA" if language == "es" else "RIDICULOUS") in note.upper()


def test_repeated_milder_frustration_hands_over(client):
    rules = HandoverRules.objects.get()
    rules.frustration_threshold = 0.99
    rules.frustration_warning = 0.2
    rules.frustration_repeats = 2
    rules.save()
    chat = begin(client, "en")
    chat.say("This is unacceptable, my parcel of order 4471 never arrived")
    assert chat.status == "active"
    chat.say("james@example.com")
    chat.say("Seriously, this is unacceptable!!")
    # A person needs a name to address the customer by; then the hand-over happens.
    assert chat.expects == "name"
    chat.say("James Carter")
    assert chat.status == "handed_over"
    assert Handover.objects.get().reason == HandoverReason.FRUSTRATION


@pytest.mark.parametrize(
    ("language", "gibberish"),
    [("es", "blablabla xyz qwerty"), ("en", "zzzz qwerty asdf")],
)
def test_not_understood_twice_in_a_row_hands_over(client, language, gibberish):
    chat = begin(client, language)
    chat.say(gibberish)
    assert chat.status == "active"
    assert "other" in chat.choices and "__human" in chat.choices
    chat.say(gibberish + " hmm")
    assert chat.expects == "email"  # a person needs a way to reach the customer
    identify(chat, language)
    assert chat.status == "handed_over"
    assert Handover.objects.get().reason == HandoverReason.NOT_UNDERSTOOD


def escalate_everything(case, *, hand_over: bool = True) -> TriageDecision:
    return TriageDecision(
        action="escalate",
        reason="refund above the automatic limit",
        message={"es": "Lo revisará una persona.", "en": "A person will review this."},
    )


def test_the_policy_engine_escalating_hands_over(client, settings, run_tasks):
    settings.TRIAGE = "concilia.assistant.tests.test_conversations.escalate_everything"
    from concilia.core import ports

    ports._load.cache_clear()
    try:
        chat = begin(client, "en")
        chat.say("My parcel never arrived, order 4478")
        identify(chat, "en")
        answer_until_summary(chat)
        confirm(chat, run_tasks)
        assert "A person will review this." in chat.answer
        assert chat.status == "handed_over"
        handover = Handover.objects.get()
        assert handover.reason == HandoverReason.POLICY
        assert handover.detail == "refund above the automatic limit"
    finally:
        ports._load.cache_clear()


def test_an_amount_above_the_limit_hands_over(client, run_tasks):
    chat = begin(client, "en")
    chat.say("You charged me 900 EUR twice on my bill")
    identify(chat, "en")
    answer_until_summary(chat)
    case = confirm(chat, run_tasks)
    assert chat.status == "handed_over"
    assert case.amount == Decimal("900.00")
    assert Handover.objects.get().reason == HandoverReason.AMOUNT


def test_outside_business_hours_the_customer_is_told_when_a_person_answers(client, teams_closed):
    chat = begin(client, "en")
    chat.say("I want to talk to a person")
    chat.say("james@example.com")
    chat.say("James Carter")
    handover = Handover.objects.get()
    assert handover.expected_at > handover.created_at
    assert "not working right now" in chat.answer


@pytest.fixture
def teams_closed(db):
    """A team whose calendar never opens today (a holiday), receiving every case."""
    from django.utils import timezone

    from concilia.accounts.models import Team
    from concilia.cases.models import AssignmentRule, Strategy
    from concilia.core.models import BusinessCalendar, Holiday

    calendar = BusinessCalendar.objects.create(
        name="Care", time_zone="Europe/Madrid", opens=dt.time(9), closes=dt.time(18)
    )
    Holiday.objects.create(date=timezone.localdate(), name="Today", calendar=calendar)
    team = Team.objects.create(code="care", name_es="Atención", name_en="Care", calendar=calendar)
    AssignmentRule.objects.create(name="All", position=1, team=team, strategy=Strategy.TEAM_QUEUE)
    return team


# -- returning customers, coming back, the survey ---------------------------------------------


def test_a_signed_in_customer_is_greeted_by_name_and_offered_their_open_case(client, open_case):
    case = open_case(email="lucia@example.com", name="Lucía Fernández", category="refund")
    customer = case.customer
    from concilia.customers.auth import SESSION_KEY

    session = client.session
    session[SESSION_KEY] = customer.pk
    session.save()
    chat = Chat(client, "es", channel="page")
    opening = "\n".join(m["body"] for m in chat.log)
    assert "Lucía Fernández" in opening
    assert case.reference in opening
    chat.press("accept")
    chat.say("Sigo sin recibir el reembolso del pedido, ya ha pasado un mes")
    assert case.reference in chat.choices
    chat.press(case.reference)
    assert case.reference in chat.answer
    assert Case.objects.count() == 1
    assert any("Sigo sin recibir" in message.body for message in case.messages.all())


def test_an_unverified_email_reveals_nothing_about_its_owner(client, open_case):
    case = open_case(email="lucia@example.com", name="Lucía Fernández", category="refund")
    chat = begin(client, "es")
    chat.say("No me han devuelto el dinero del pedido 4471")
    chat.say("lucia@example.com")
    everything = "\n".join(m["body"] for m in chat.log)
    assert "Lucía" not in everything
    assert case.reference not in everything


def test_a_customer_comes_back_later_to_the_same_conversation(client):
    chat = begin(client, "en")
    chat.say("My parcel arrived damaged, order 4471")
    seen = chat.log[-1]["seq"]
    # Later, from the same device: the conversation and its place are still there.
    response = client.get(f"/api/v1/conversations/{chat.id}?after=0", headers=chat.headers)
    data = response.json()
    assert [m["seq"] for m in data["messages"]][-1] == seen
    assert data["messages"][-1]["expects"] == "email"
    chat.say("james@example.com")
    assert chat.expects == "name"


def test_the_survey_is_stored(client):
    chat = begin(client, "en")
    chat.say("what are your opening hours?")
    chat.press("yes")
    assert chat.choices == ["1", "2", "3", "4", "5"]
    chat.press("4")
    chat.say("Quick and clear")
    conversation = Conversation.objects.get()
    assert conversation.csat_score == 4
    assert conversation.csat_comment == "Quick and clear"
    assert conversation.status == ConversationStatus.CLOSED
    assert conversation.resolved_by_assistant


def test_cancelling_ends_the_conversation(client):
    chat = begin(client, "es")
    chat.say("Mi pedido 4471 no ha llegado")
    chat.say("déjalo, olvídalo")
    assert chat.status == "closed"
    assert Case.objects.count() == 0


def test_the_conversation_follows_the_customers_language(client):
    chat = begin(client, "es")
    chat.say("My parcel arrived damaged and the box was crushed")
    assert Conversation.objects.get().language == "en"
    assert "email" in chat.answer


# -- the API refuses what it must ----------------------------------------------------------------


def test_the_api_refuses_wrong_tokens_empty_messages_and_bad_files(client):
    chat = Chat(client, "en")
    wrong = client.get(f"/api/v1/conversations/{chat.id}", headers={"X-Conversation-Token": "nope"})
    assert wrong.status_code == 404
    empty = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        {"text": "   "},
        content_type="application/json",
        headers=chat.headers,
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "text"
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = client.post(
        f"/api/v1/conversations/{chat.id}/attachments",
        {"file": SimpleUploadedFile("photo.jpg", b"MZ\x90\x00 not a picture")},
        headers=chat.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "file"
    survey = client.post(
        f"/api/v1/conversations/{chat.id}/survey",
        {"score": 9},
        content_type="application/json",
        headers=chat.headers,
    )
    assert survey.status_code == 422
    not_json = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        "{oops",
        content_type="application/json",
        headers=chat.headers,
    )
    assert not_json.status_code == 400


def test_starting_conversations_is_rate_limited(client, settings):
    settings.CHAT_START_RATE = "2/hour"
    Chat(client, "en")
    Chat(client, "en")
    response = client.post("/api/v1/conversations", {}, content_type="application/json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_no_email_is_sent_before_the_case_and_one_confirmation_after(client, run_tasks):
    chat = begin(client, "en")
    chat.say("You charged me twice on my bill, 12.50 EUR")
    identify(chat, "en")
    answer_until_summary(chat)
    run_tasks()
    assert mail.outbox == []
    case = confirm(chat)
    run_tasks()
    assert [m.to for m in mail.outbox] == [["james@example.com"]]
    assert case.reference in mail.outbox[0].subject


def test_category_rules_decide_what_is_asked(client):
    # Administrators stop asking the order number for refunds: the assistant follows.
    refund = Category.objects.get(code="refund")
    refund.field_rules = {**refund.field_rules, "order_number": "hidden"}
    refund.save()
    chat = begin(client, "en")
    chat.say("I returned my jacket three weeks ago and still have no refund")
    identify(chat, "en")
    asked = " ".join(m["body"] for m in chat.log if m["author"] == "assistant")
    assert "order number" not in asked.lower()


def test_a_file_sent_before_it_is_asked_for_goes_with_the_case(client):
    chat = Chat(client, "en")
    from django.core.files.uploadedfile import SimpleUploadedFile

    refused = client.post(
        f"/api/v1/conversations/{chat.id}/attachments",
        {"file": SimpleUploadedFile("early.png", PNG_BYTES)},
        headers=chat.headers,
    )
    # Nothing personal is kept before the privacy notice is accepted.
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "consent"
    assert ChatUpload.objects.count() == 0
    chat.press("accept")
    chat.say("You charged me twice on my bill, 12.50 EUR")
    assert chat.expects == "email"
    chat.send_file("receipt.png", PNG_BYTES)
    assert "receipt.png" in chat.answer
    assert chat.expects == "email"  # the question is asked again
    identify(chat, "en")
    answer_until_summary(chat)
    case = confirm(chat)
    assert [a.original_name for a in case.attachments.all()] == ["receipt.png"]


def test_a_returning_customer_proves_their_email_with_a_code_and_is_known(
    client, open_case, run_tasks
):
    case = open_case(email="lucia@example.com", name="Lucía Fernández", category="refund")
    chat = begin(client, "es")
    chat.say("Sigo sin recibir el reembolso que me prometisteis")
    chat.say("lucia@example.com")
    assert chat.expects == "code"
    assert "Lucía" not in chat.answer  # nothing is revealed before the code
    run_tasks()
    code = next(word for word in mail.outbox[-1].subject.split() if word.isdigit())
    assert mail.outbox[-1].to == ["lucia@example.com"]
    chat.say("000000" if code != "000000" else "111111")
    assert chat.expects == "code"  # wrong: asked again
    chat.say(code)
    assert "Lucía Fernández" in chat.answer
    assert case.reference in chat.choices
    chat.press(case.reference)
    assert Case.objects.count() == 1
    conversation = Conversation.objects.get()
    assert conversation.verified and conversation.customer == case.customer
    # The code is not stored anywhere: only its nonce is.
    assert code not in str(conversation.state)


def test_skipping_the_code_goes_on_as_a_new_customer_would(client, open_case):
    open_case(email="lucia@example.com", name="Lucía Fernández", category="refund")
    chat = begin(client, "es")
    chat.say("El paquete del pedido 4471 llegó roto")
    chat.say("lucia@example.com")
    chat.press("__skip")
    assert chat.expects == "name"
    assert Conversation.objects.get().verified is False


def test_a_turn_costs_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    chat = begin(client, "en")
    chat.say("My parcel arrived damaged, order 4471")
    chat.say("james@example.com")
    chat.say("James Carter")
    for _ in range(3):
        # 7 statements; 3 more when the ten-second memory of rules and categories runs out.
        with django_assert_max_num_queries(10):
            chat.press(chat.choices[0])


def test_a_person_is_reachable_even_after_the_end(client, run_tasks):
    chat = begin(client, "en")
    chat.say("You charged me twice on my bill, 12.50 EUR")
    identify(chat, "en")
    answer_until_summary(chat)
    case = confirm(chat, run_tasks)
    chat.press("2")
    chat.press("__skip")
    assert chat.status == "closed"
    chat.say("actually I want to speak to a real person")
    assert chat.status == "handed_over"
    handover = Handover.objects.get()
    assert handover.case == case
    assert handover.reason == HandoverReason.REQUESTED


def test_policies_never_settle_a_category_that_needs_a_person(client, settings, run_tasks):
    settings.TRIAGE = "concilia.assistant.tests.test_conversations.resolve_everything"
    from concilia.core import ports

    ports._load.cache_clear()
    try:
        chat = begin(client, "en")
        chat.say("The shop assistant at the Main Street store shouted at me and insulted me")
        identify(chat, "en")
        answer_until_summary(chat)
        confirm(chat)
        run_tasks()  # nothing is decided later either
        chat.follow()
        assert "refunded" not in chat.answer
        assert Handover.objects.get().reason == HandoverReason.CATEGORY
    finally:
        ports._load.cache_clear()


def resolve_everything(case) -> TriageDecision:
    return TriageDecision(action="resolved", message={"en": "We have refunded you."})
