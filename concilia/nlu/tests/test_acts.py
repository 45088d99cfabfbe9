"""The act of a message: asking for a person, confirming, correcting, cancelling, asking, telling."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concilia.nlu.acts import detect


def examples(*texts: str) -> list[str]:
    return list(texts)


@pytest.mark.parametrize(
    "text",
    examples(
        "quiero hablar con una persona",
        "Quiero hablar con una persona",
        "quiero ablar con una persona",
        "pásame con un humano",
        "pasame con un umano",
        "ponme con un operador",
        "operador",
        "OPERADOR!!",
        "un agente por favor",
        "agente",
        "humano",
        "persona real",
        "atención al cliente real",
        "necesito hablar con alguien",
        "me puede atender una persona?",
        "quiero que me atienda una persona",
        "quiero hablar con el responsable",
        "no, quiero hablar con una persona",
        "no quiero hablar con una máquina, quiero una persona",
        "no consigo hablar con una persona",
        "ESTO ES UNA VERGÜENZA, quiero hablar con un responsable YA",
        "can I talk to a human",
        "Can I talk to a human?",
        "real person",
        "representative",
        "agent please",
        "Human please",
        "speak to someone",
        "I want to speak to a manager",
        "can I get a human",
        "let me talk to a real person please",
        "I don't want a bot, I want a human",
        "transfer me to an agent",
        "is there a real person I can talk to?",
        "I can't talk to a human, this is ridiculous",
        "me pasas con alguien?",
        "me pones con un agente",
        "con una persona por favor",
        "necesito ayuda de una persona",
        "I need help from a human",
        "get me a human",
        # typos one letter away from a person noun, after a request verb
        "hablar con una perosna",
        "quiero hablar con un humnao",
        "talk to a humna",
        "can I speak to a represenative",
    ),
)
def test_asking_for_a_person_is_request_human(text):
    assert detect(text, "es") == "request_human"


@pytest.mark.parametrize(
    "text",
    examples(
        "no quiero hablar con nadie",
        "no quiero hablar con un agente",
        "no me pases con un operador",
        "the agent was rude",
        "your agent hung up on me",
        "la persona que me atendió fue muy borde",
        "el operador me colgó",
        "hablé con una persona ayer y no me solucionó nada",
        "I spoke to an agent yesterday",
        "I don't want to talk to an agent",
        "don't transfer me to an agent",
        "la atención al cliente es pésima",
        "¿eres una persona?",
        "are you a human?",
        "I want a refund, not to talk to an agent",
        "no quiero hablar con una perosna",
        "quiero hablar sobre mis datos personales",
        "quiero que me devuelvan el dinero, es urgente",
    ),
)
def test_declining_or_mentioning_a_person_is_not_request_human(text):
    assert detect(text, "es") != "request_human"


@pytest.mark.parametrize(
    ("text", "act"),
    [
        # affirm
        ("sí", "affirm"),
        ("si", "affirm"),
        ("Sí.", "affirm"),
        ("vale", "affirm"),
        ("correcto", "affirm"),
        ("exacto", "affirm"),
        ("claro", "affirm"),
        ("de acuerdo", "affirm"),
        ("sí, gracias", "affirm"),
        ("si por favor", "affirm"),
        ("Sí, ese es mi pedido", "affirm"),
        ("sí quiero", "affirm"),
        ("yes", "affirm"),
        ("yep", "affirm"),
        ("that's right", "affirm"),
        ("ok", "affirm"),
        ("OK thanks", "affirm"),
        ("yes please", "affirm"),
        ("claro que sí", "affirm"),
        ("siii", "affirm"),
        ("yesss", "affirm"),
        ("sure thing", "affirm"),
        # deny
        ("no", "deny"),
        ("No.", "deny"),
        ("nope", "deny"),
        ("incorrecto", "deny"),
        ("that's wrong", "deny"),
        ("no gracias", "deny"),
        ("no, no es correcto", "deny"),
        ("no, eso no es así", "deny"),
        ("no quiero", "deny"),
        ("nah", "deny"),
        ("claro que no", "deny"),
        ("por supuesto que no", "deny"),
        ("Nooo", "deny"),
        ("no hace falta", "deny"),
        # correct
        ("no, el pedido es 4471", "correct"),
        ("no, the order is 4471", "correct"),
        ("no es 4471, es 4472", "correct"),
        ("perdón, quería decir 4471", "correct"),
        ("me he equivocado, es el 4472", "correct"),
        ("mejor dicho, 30 euros", "correct"),
        ("actually it was 30 euros", "correct"),
        ("I meant 4471", "correct"),
        ("sorry, it's 4472", "correct"),
        ("nope, it was 30 euros", "correct"),
        ("wrong, my email is ana@example.com", "correct"),
        ("Yes, but it was 40 euros", "correct"),
        ("ok, but the order is 4472", "correct"),
        ("vale pero el importe era 30", "correct"),
        ("sí, pero el pedido es otro", "correct"),
        # greet
        ("hola", "greet"),
        ("Hola, buenas tardes", "greet"),
        ("buenos días", "greet"),
        ("hi", "greet"),
        ("hello there", "greet"),
        ("good morning", "greet"),
        # thank
        ("gracias", "thank"),
        ("muchas gracias", "thank"),
        ("mil gracias!", "thank"),
        ("gracias, adiós", "thank"),
        ("thanks", "thank"),
        ("thank you so much", "thank"),
        ("vale gracias adiós", "thank"),
        ("thx", "thank"),
        # cancel
        ("déjalo", "cancel"),
        ("olvídalo", "cancel"),
        ("no, déjalo", "cancel"),
        ("cancelar", "cancel"),
        ("cancel", "cancel"),
        ("never mind", "cancel"),
        ("nevermind", "cancel"),
        ("forget it", "cancel"),
        ("stop", "cancel"),
        ("stop it", "cancel"),
        ("olvídalo, ya lo he recibido", "cancel"),
        ("never mind, it arrived", "cancel"),
        # question
        ("¿cuál es el plazo de devolución?", "question"),
        ("cual es el plazo de devolución", "question"),
        ("¿Cuándo llegará mi pedido?", "question"),
        ("cuándo llega mi pedido", "question"),
        ("  cuándo  llega mi pedido", "question"),
        ("quiero saber cómo devolver un producto", "question"),
        ("hola, ¿cuál es el horario?", "question"),
        ("how do refunds work?", "question"),
        ("how do refunds work", "question"),
        ("what are your opening hours", "question"),
        ("where is my order", "question"),
        ("do you ship to the Canary Islands", "question"),
        ("can you help me?", "question"),
        ("me podéis ayudar", "question"),
        ("Is it possible to change the address", "question"),
        ("por qué me cobraron dos veces", "question"),
        ("me pueden decir cuándo llega", "question"),
        ("buenas tardes, quería saber el estado de mi pedido", "question"),
        # inform
        ("me cobraron 49,90 € dos veces en el pedido 4471 ayer", "inform"),
        ("hola, me cobraron dos veces", "inform"),
        ("my parcel is late", "inform"),
        ("quiero cancelar mi pedido", "inform"),
        ("cancel my order please", "inform"),
        ("si no me devolvéis el dinero iré a consumo", "inform"),
        ("no me ha llegado el pedido", "inform"),
        ("cuando llegó estaba roto", "inform"),
        ("when I opened the box it was broken", "inform"),
        ("¡qué vergüenza!", "inform"),
        ("qué vergüenza de empresa", "inform"),
        ("ESTO ES UNA VERGÜENZA, TERCERA VEZ QUE ESCRIBO!!!", "inform"),
        ("hay un error en mi factura", "inform"),
        ("good morning, my parcel arrived broken and I want a refund", "inform"),
        ("4471", "inform"),
        ("porque no funciona", "inform"),
        ("I would like a refund", "inform"),
        ("cancela la suscripción", "inform"),
        ("no lo sé", "inform"),
        ("ana@example.com", "inform"),
    ],
)
def test_each_message_gets_its_act(text, act):
    assert detect(text, "es") == act


def test_request_human_wins_over_every_other_act():
    # Given messages that also greet, thank, deny, ask or complain
    texts = [
        "hola, quiero hablar con una persona",
        "gracias, pero prefiero hablar con un agente",
        "no, pásame con un humano",
        "¿puedo hablar con una persona?",
        "sois unos inútiles, quiero hablar con un humano",
    ]
    # Then each one asks for a person
    assert [detect(text, "es") for text in texts] == ["request_human"] * len(texts)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gets_one_act_and_never_raises(text):
    assert detect(text, "es") in {
        "request_human",
        "affirm",
        "deny",
        "correct",
        "greet",
        "thank",
        "cancel",
        "question",
        "inform",
    }


def test_a_request_at_the_end_of_a_long_complaint_is_still_heard():
    # Given a long complaint that ends asking for a person
    text = "llevo semanas esperando y nadie me responde. " * 40 + "Quiero hablar con una persona."
    # Then it is a request for a person
    assert detect(text, "es") == "request_human"
