"""Spanish or English for short chat messages, and the hint for messages that say nothing."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concilia.nlu.language import detect


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("me cobraron 49,90 € dos veces en el pedido 4471 ayer", "es"),
        ("quiero hablar con una persona", "es"),
        ("ESTO ES UNA VERGÜENZA, TERCERA VEZ QUE ESCRIBO!!!", "es"),
        ("¿cuál es el plazo de devolución?", "es"),
        ("sí", "es"),
        ("gracias", "es"),
        ("vale", "es"),
        ("hola", "es"),
        ("pasame con un humano", "es"),
        ("el paquete llego roto", "es"),
        ("déjalo", "es"),
        ("no, the order is 4471", "en"),
        ("can I talk to a human", "en"),
        ("my parcel is late", "en"),
        ("What are your opening hours", "en"),
        ("yes", "en"),
        ("thanks", "en"),
        ("hi", "en"),
        ("I was charged twice", "en"),
        ("never mind", "en"),
        ("the agent was rude", "en"),
        ("si", "es"),
        ("llamadme", "es"),
        ("call me", "en"),
        ("estoy", "es"),
    ],
)
def test_a_chat_message_gets_its_language(text, language):
    assert detect(text)[0] == language
    assert detect(text, hint="es" if language == "en" else "en")[0] == language


@pytest.mark.parametrize("text", ["ok", "4471", "ana@example.com", "no", "???", "", "   ", "👍"])
def test_a_neutral_message_returns_the_hint_with_low_confidence(text):
    assert detect(text) == ("es", 0.2)
    assert detect(text, hint="en") == ("en", 0.2)
    assert detect(text, hint="es") == ("es", 0.2)


def test_a_long_message_is_more_certain_than_a_single_word():
    # Given a one-word answer and a full sentence in Spanish
    _, one_word = detect("gracias")
    _, sentence = detect("me cobraron dos veces el pedido y nadie me responde")
    # Then both are Spanish, the sentence with full confidence
    assert one_word < sentence == 1.0


def test_an_email_address_does_not_make_a_message_english():
    # The address's English words count for nothing: same answer as without it
    assert (
        detect("mi correo es the.best.order@example.com") == detect("mi correo es") == ("es", 1.0)
    )


def test_an_unknown_hint_falls_back_to_spanish():
    assert detect("4471", hint="fr") == ("es", 0.2)


def test_detection_is_fast():
    # Given a typical chat message
    text = "me cobraron 49,90 € dos veces en el pedido 4471 ayer"
    # When detected a thousand times
    started = time.perf_counter()
    for _ in range(1000):
        detect(text)
    per_message = (time.perf_counter() - started) / 1000
    # Then one detection takes well under a millisecond
    assert per_message < 0.001


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from([None, "es", "en"]))
def test_any_text_gives_es_or_en_with_a_confidence_between_0_and_1(text, hint):
    language, confidence = detect(text, hint=hint)
    assert language in {"es", "en"}
    assert 0.0 <= confidence <= 1.0
