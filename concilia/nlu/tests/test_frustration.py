"""Frustration: calm messages near 0, angry ones high, and the reasons an agent can read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concilia.nlu.frustration import Reason, reasons, score


@pytest.mark.parametrize(
    "text",
    [
        "hola, buenos días",
        "gracias",
        "my parcel is late",
        "me cobraron 49,90 € dos veces en el pedido 4471 ayer",
        "disculpen las molestias",
        "no estoy enfadado, solo quiero saber cuándo llega",
        "I am not angry, just asking",
        "el consumo de batería es alto",
        "PEDIDO 4471",
        "ok",
    ],
)
def test_a_calm_message_or_plain_complaint_scores_0(text):
    assert score(text, "es") == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is my order???", 0.15),
        ("otra vez sin noticias", 0.15),
        ("estoy enfadado", 0.35),
        ("this is unacceptable", 0.45),
        ("estoy harto", 0.45),
        ("voy a poner una denuncia en consumo", 0.45),
        ("I will report you", 0.45),
        ("estoy muy enfadado", 0.6),
        ("sois unos estafadores", 0.6),
        # 1 - (1 - 0.45) * (1 - 0.45) * (1 - 0.4)
        ("This is ridiculous, third time I write. I will contact my lawyer", 0.819),
        # 1 - 0.55 * 0.6 * 0.65 * 0.7: outrage, repeated contact, shouting, "!!!"
        ("ESTO ES UNA VERGÜENZA, TERCERA VEZ QUE ESCRIBO!!!", 0.85),
    ],
)
def test_each_signal_adds_its_documented_weight(text, expected):
    assert score(text, "es") == expected


def test_the_reasons_say_what_was_found_strongest_first():
    # Given a shouted complaint
    text = "ESTO ES UNA VERGÜENZA, TERCERA VEZ QUE ESCRIBO!!!"
    # When its reasons are read
    found = reasons(text, "es")
    # Then each signal shows the customer's own words and its weight
    assert found == [
        Reason("outrage", "VERGÜENZA", 0.45),
        Reason("repeated_contact", "TERCERA VEZ", 0.4),
        Reason("shouting", "38 of 38 letters in capitals", 0.35),
        Reason("marks", "!!!", 0.3),
    ]


def test_very_angry_counts_once_not_also_as_angry():
    assert reasons("estoy muy enfadado", "es") == [Reason("very_angry", "muy enfadado", 0.6)]


def test_five_insults_count_as_one_insult():
    assert score("idiotas, inútiles, estafadores, ladrones, payasos", "es") == 0.6


def test_a_short_word_in_capitals_is_not_shouting():
    assert score("OK, pedido 4471 URGENTE", "es") == 0.0


def test_more_signals_score_higher_but_never_past_1():
    # Given a message with every kind of signal
    text = (
        "SOIS UNOS ESTAFADORES, ESTOY MUY ENFADADO Y HARTO, ES LA TERCERA VEZ, "
        "OTRA VEZ, IRÉ A MI ABOGADO!!! ???"
    )
    # Then the score approaches 1 without passing it
    assert 0.98 < score(text, "es") < 1.0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_scores_between_0_and_1_and_never_raises(text):
    assert 0.0 <= score(text, "es") <= 1.0


def test_an_angry_emoji_counts_like_an_angry_word():
    assert reasons("¿dónde está mi pedido? 😡😡", "es") == [Reason("angry_emoji", "😡😡", 0.35)]
    assert score("estoy enfadado 😡", "es") == 0.577
