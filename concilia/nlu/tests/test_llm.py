"""The language-model engine and reply wording, against a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from concilia.nlu import llm
from concilia.nlu.llm import LLMEngine, word_reply
from concilia.nlu.tests.fake_openai import (  # noqa: F401 (the fixture)
    FakeOpenAI,
    Scripted,
    fake_openai_fixture,
)
from concilia.nlu.types import UNKNOWN, Entity, Prediction, Understanding

TODAY = dt.date(2026, 12, 2)
LABELS = ("refund", "delivery", "damaged", "other")
TEXT = "Llevo tres semanas esperando el reembolso del pedido PED-10482 y nadie me contesta"

ORDER = Entity(kind="order_number", text="PED-10482", value="PED-10482", start=52, end=61)


class LocalReader:
    """Stands in for the local engine: one fixed reading, and a count of the texts it read."""

    name = "local"

    def __init__(self) -> None:
        self.read: list[str] = []

    def understand(self, text: str, *, language: str | None, today: dt.date) -> Understanding:
        self.read.append(text)
        return Understanding(
            text=text,
            language="es",
            language_confidence=0.93,
            kind=Prediction(label="question", confidence=0.55, best="question"),
            category=Prediction(
                label="delivery", confidence=0.61, best="delivery", alternatives=(("refund", 0.3),)
            ),
            frustration=0.2,
            act="question",
            entities=(ORDER,),
            engine="local",
        )


GOOD_ANSWER = {
    "language": "es",
    "kind": "complaint",
    "category": "refund",
    "confidence": 0.9,
    "frustration": 0.8,
    "act": "inform",
}


@pytest.fixture
def local():
    return LocalReader()


@pytest.fixture
def engine(local):
    return LLMEngine(fallback=local, labels=LABELS, threshold=0.5)


def read(engine: LLMEngine) -> Understanding:
    return engine.understand(TEXT, language=None, today=TODAY)


def local_reading() -> Understanding:
    return LocalReader().understand(TEXT, language=None, today=TODAY)


# --- understanding ---------------------------------------------------------------------------


def test_the_model_reads_the_message_and_its_answer_becomes_the_understanding(fake_openai, engine):
    # Given a model that reads a refund complaint
    fake_openai.reply(GOOD_ANSWER)

    # When the engine reads the customer's message
    understanding = read(engine)

    # Then the model's reading is the answer, with the local engine's entities
    assert understanding == Understanding(
        text=TEXT,
        language="es",
        language_confidence=0.93,
        kind=Prediction(label="complaint", confidence=0.9, best="complaint"),
        category=Prediction(label="refund", confidence=0.9, best="refund"),
        frustration=0.8,
        act="inform",
        entities=(ORDER,),
        engine="llm",
    )


def test_the_request_is_a_json_chat_completion_listing_what_the_model_may_answer(
    fake_openai, engine
):
    fake_openai.reply(GOOD_ANSWER)

    read(engine)

    [request] = fake_openai.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
    assert request.body["model"] == "concilia-test-model"
    assert request.body["temperature"] == 0
    assert request.body["response_format"] == {"type": "json_object"}
    assert 0 < request.body["max_tokens"] <= 500
    assert [m["role"] for m in request.messages] == ["system", "user"]
    assert request.user == TEXT
    system = request.system
    assert '"refund", "delivery", "damaged", "other"' in system
    assert f'"{UNKNOWN}"' in system
    assert '"complaint", "question", "suggestion", "thanks"' in system
    for act in llm.ACTS:
        assert f'"{act}"' in system
    for key in ("language", "kind", "category", "confidence", "frustration", "act"):
        assert f'"{key}"' in system
    assert '"es", "en"' in system
    assert TEXT not in system


def test_no_authorization_header_without_a_key(fake_openai, engine):
    fake_openai.reply(GOOD_ANSWER)

    read(engine)

    assert "authorization" not in fake_openai.requests[0].headers


def test_the_key_is_sent_as_a_bearer_token(fake_openai, engine, settings):
    settings.LLM_API_KEY = "sk-local-123"
    fake_openai.reply(GOOD_ANSWER)

    read(engine)

    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-local-123"


def test_the_labels_default_to_the_category_models(fake_openai, local, monkeypatch):
    # Given a category model with its own labels and threshold, loaded only when needed
    loads = []

    def category_model():
        loads.append(1)
        return SimpleNamespace(labels=["billing", "warranty"], threshold=0.7)

    monkeypatch.setattr(llm, "_category_model", category_model)
    engine = LLMEngine(fallback=local)
    assert loads == []
    fake_openai.reply({**GOOD_ANSWER, "category": "warranty", "confidence": 0.65})

    understanding = read(engine)

    assert '"billing", "warranty"' in fake_openai.requests[0].system
    # 0.65 is under that model's threshold (0.7)
    assert understanding.category == Prediction(label=UNKNOWN, confidence=0.65, best="warranty")


def test_a_confidence_under_the_threshold_gives_unknown_with_the_best_guess(fake_openai, engine):
    fake_openai.reply({**GOOD_ANSWER, "confidence": 0.3})

    understanding = read(engine)

    assert understanding.category == Prediction(label=UNKNOWN, confidence=0.3, best="refund")
    assert understanding.engine == "llm"


def test_the_model_may_say_no_category_fits(fake_openai, engine):
    fake_openai.reply({**GOOD_ANSWER, "category": UNKNOWN, "confidence": 0.8})

    understanding = read(engine)

    assert understanding.category == Prediction(label=UNKNOWN, confidence=0.8, best="delivery")


def test_entities_come_from_the_local_extractor_whatever_the_model_claims(fake_openai, engine):
    fake_openai.reply(
        {
            **GOOD_ANSWER,
            "entities": [{"kind": "order_number", "text": "PED-99999", "value": "PED-99999"}],
            "order_number": "PED-99999",
        }
    )

    understanding = read(engine)

    assert understanding.entities == (ORDER,)
    assert understanding.first("order_number") == ORDER
    assert understanding.engine == "llm"


def test_a_message_in_another_language_takes_the_models_language(fake_openai, local):
    engine = LLMEngine(fallback=local, labels=LABELS, threshold=0.5)
    fake_openai.reply({**GOOD_ANSWER, "language": "en", "confidence": 0.85})

    understanding = read(engine)

    assert (understanding.language, understanding.language_confidence) == ("en", 0.85)


# --- failures: each falls back and still answers in full --------------------------------------


def test_a_server_error_falls_back_to_the_local_engine(fake_openai, engine, local):
    fake_openai.fail(500)

    understanding = read(engine)

    assert understanding == local_reading()
    assert understanding.engine == "local"
    assert len(fake_openai.requests) == 1


def test_a_server_that_does_not_answer_in_time_falls_back(fake_openai, engine, settings):
    settings.LLM_TIMEOUT = 0.3
    fake_openai.stall(5)

    started = time.monotonic()
    understanding = read(engine)

    assert time.monotonic() - started < 2
    assert understanding == local_reading()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",  # not JSON
        b'{"choices": []}',  # JSON, no choice
        b'{"choices": [{"message": {"content": null}}]}',  # no content
        b"[1, 2, 3]",
    ],
    ids=["not-json", "no-choices", "null-content", "array"],
)
def test_a_body_that_is_not_a_chat_completion_falls_back(fake_openai, engine, body):
    fake_openai.malformed(body)

    assert read(engine) == local_reading()


@pytest.mark.parametrize(
    "content",
    ["Sure! The category is refund.", "[]", '"refund"', "{}", '{"kind": "rant", "act": 3}'],
    ids=["prose", "array", "string", "empty-object", "nothing-valid"],
)
def test_content_without_a_usable_json_object_falls_back_entirely(fake_openai, engine, content):
    fake_openai.reply(content)

    understanding = read(engine)

    assert understanding == local_reading()
    assert understanding.engine == "local"


def test_an_unreachable_server_falls_back(engine, settings):
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"

    assert read(engine) == local_reading()


def test_without_a_base_url_the_model_is_not_called(fake_openai, engine, settings):
    settings.LLM_BASE_URL = ""

    assert read(engine) == local_reading()
    assert fake_openai.requests == []


def test_a_label_not_allowed_keeps_the_local_category_only(fake_openai, engine):
    fake_openai.reply({**GOOD_ANSWER, "category": "lottery_winnings"})

    understanding = read(engine)

    local = local_reading()
    assert understanding == replace(
        local,
        kind=Prediction(label="complaint", confidence=0.9, best="complaint"),
        frustration=0.8,
        act="inform",
        engine="llm",
    )
    assert understanding.category == local.category


@pytest.mark.parametrize("confidence", [1.7, -0.1, "0.9", True, None], ids=repr)
def test_a_confidence_out_of_range_or_mistyped_keeps_the_local_kind_and_category(
    fake_openai, engine, confidence
):
    fake_openai.reply({**GOOD_ANSWER, "confidence": confidence})

    understanding = read(engine)

    assert understanding == replace(local_reading(), frustration=0.8, act="inform", engine="llm")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("language", "fr"),
        ("language", 1),
        ("kind", "rant"),
        ("frustration", 3),
        ("frustration", "high"),
        ("frustration", False),
        ("act", "shout"),
        ("act", ["inform"]),
    ],
    ids=repr,
)
def test_each_invalid_field_is_replaced_by_the_local_value(fake_openai, engine, field, value):
    fake_openai.reply({**GOOD_ANSWER, field: value})

    understanding = read(engine)

    expected = Understanding(
        text=TEXT,
        language="es",
        language_confidence=0.93,
        kind=Prediction(label="complaint", confidence=0.9, best="complaint"),
        category=Prediction(label="refund", confidence=0.9, best="refund"),
        frustration=0.8,
        act="inform",
        entities=(ORDER,),
        engine="llm",
    )
    local = local_reading()
    kept = {
        "language": {"language": local.language},
        "kind": {"kind": local.kind},
        "frustration": {"frustration": local.frustration},
        "act": {"act": local.act},
    }[field]
    assert understanding == replace(expected, **kept)


def test_a_fenced_json_answer_is_read(fake_openai, engine):
    fake_openai.reply("```json\n" + json.dumps(GOOD_ANSWER) + "\n```")

    assert read(engine).category.label == "refund"


def test_failures_never_log_the_customers_text(fake_openai, engine, caplog):
    fake_openai.fail(500)
    fake_openai.malformed()
    fake_openai.reply("not json")
    fake_openai.reply({**GOOD_ANSWER, "category": "nope"})

    with caplog.at_level(logging.DEBUG, logger="concilia.nlu.llm"):
        for _ in range(4):
            read(engine)

    assert [r.levelname for r in caplog.records].count("WARNING") == 3
    assert all("PED-10482" not in r.getMessage() for r in caplog.records)
    assert all("reembolso" not in r.getMessage() for r in caplog.records)


def test_the_public_understand_goes_through_the_model_when_the_engine_is_llm(
    fake_openai, settings, monkeypatch
):
    understanding_module = pytest.importorskip(
        "concilia.nlu.understanding",
        exc_type=ImportError,
        reason="the local engine's modules are not all written yet",
    )
    from concilia.nlu import understand

    # Given the LLM engine chosen in settings, over a local engine that needs no trained model
    settings.NLU_ENGINE = "llm"
    monkeypatch.setattr(understanding_module, "LocalEngine", LocalReader)
    monkeypatch.setattr(
        llm, "_category_model", lambda: SimpleNamespace(labels=list(LABELS), threshold=0.5)
    )
    fake_openai.reply(GOOD_ANSWER)
    understanding_module._engine.cache_clear()
    try:
        # When any part of Concilia reads a message
        understanding = understand(TEXT, today=TODAY)
    finally:
        understanding_module._engine.cache_clear()

    # Then the model read it
    assert [r.user for r in fake_openai.requests] == [TEXT]
    assert understanding.engine == "llm"
    assert understanding.category == Prediction(label="refund", confidence=0.9, best="refund")
    assert understanding.entities == (ORDER,)


# --- wording replies -------------------------------------------------------------------------

REPLY = (
    "Su caso RC-2026-000123-X está abierto. Le devolveremos 49,90 € antes del 15/12/2026. "
    "Puede escribirnos a ayuda@tienda.es o seguirlo en https://tienda.es/casos/RC-2026-000123-X."
)
WORDED = (
    "¡Gracias por su paciencia! Su caso RC-2026-000123-X ya está abierto y le devolveremos "
    "49,90 € antes del 15/12/2026. Si lo necesita, escríbanos a ayuda@tienda.es o consulte "
    "https://tienda.es/casos/RC-2026-000123-X."
)


@pytest.fixture
def wording(fake_openai, settings):
    settings.LLM_WORD_REPLIES = True
    return fake_openai


def test_a_rewording_that_keeps_every_fact_is_used(wording):
    wording.reply(WORDED)

    worded = word_reply(
        REPLY,
        language="es",
        history=[("customer", "¿Dónde está mi dinero?"), ("assistant", "Lo miro ahora mismo.")],
    )

    assert worded == WORDED
    [request] = wording.requests
    assert request.body["model"] == "concilia-test-model"
    assert "response_format" not in request.body
    assert "Spanish" in request.system
    assert REPLY in request.user
    assert "Customer: ¿Dónde está mi dinero?" in request.user
    assert "Assistant: Lo miro ahora mismo." in request.user


def test_quotes_around_the_rewording_are_removed(wording):
    wording.reply(f"“{WORDED}”")

    assert word_reply(REPLY, language="es") == WORDED


@pytest.mark.parametrize(
    "worded",
    [
        WORDED.replace("49,90", "49.90"),  # amount rewritten
        WORDED.replace("15/12/2026", "15 de diciembre de 2026"),  # date rewritten
        WORDED.replace("RC-2026-000123-X ya", "RC-2026-000123 ya"),  # reference cut
        WORDED.replace("ayuda@tienda.es", "soporte@tienda.es"),  # email changed
        WORDED.replace(" o consulte https://tienda.es/casos/RC-2026-000123-X", ""),  # URL dropped
        WORDED + " Recibirá el dinero en 3 días.",  # a new fact
        "",
        "   ",
        WORDED + " " + "Gracias de nuevo. " * 20,  # more than twice as long
    ],
    ids=[
        "amount",
        "date",
        "reference",
        "email",
        "url",
        "new-number",
        "empty",
        "blank",
        "too-long",
    ],
)
def test_a_rewording_that_changes_a_fact_or_the_length_is_rejected(wording, worded):
    assert worded != WORDED  # the case really changes the good rewording
    wording.reply(worded)

    assert word_reply(REPLY, language="es") == REPLY
    assert len(wording.requests) == 1


def test_replies_are_not_reworded_unless_enabled(fake_openai, settings):
    settings.LLM_WORD_REPLIES = False
    fake_openai.reply(WORDED)

    assert word_reply(REPLY, language="es") == REPLY
    assert fake_openai.requests == []


def test_replies_are_not_reworded_without_a_base_url(wording, settings):
    settings.LLM_BASE_URL = ""

    assert word_reply(REPLY, language="es") == REPLY
    assert wording.requests == []


@pytest.mark.parametrize(
    "script",
    [
        lambda server: server.fail(503),
        lambda server: server.malformed(),
        lambda server: server.stall(5),
    ],
    ids=["503", "malformed", "timeout"],
)
def test_a_failing_server_leaves_the_reply_as_it_was(wording, settings, script):
    settings.LLM_TIMEOUT = 0.3
    script(wording)

    assert word_reply(REPLY, language="en") == REPLY


def test_the_fake_server_answers_through_a_function_of_the_request(wording):
    # The fake server can answer from what it was asked, as a real model would.
    wording.answer_with(lambda request: Scripted(content=request.user.split("\n")[-1].upper()))

    assert word_reply("Your order 4471 is on its way.", language="en") == (
        "YOUR ORDER 4471 IS ON ITS WAY."
    )


def test_facts_are_numbers_amounts_dates_references_emails_and_urls():
    assert llm.facts(
        "Caso RC-2026-000123-X: 1.234,56 € el 2/12/2026 a las 10:30, pedido PED-10482, "
        "3 días; ana.b@shop.es, https://shop.es/c/12?x=1."
    ) == {
        "RC-2026-000123-X",
        "1.234,56",
        "2/12/2026",
        "10:30",
        "PED-10482",
        "3",
        "ana.b@shop.es",
        "https://shop.es/c/12?x=1",
    }


def test_the_fake_server_refuses_other_paths():
    import urllib.error
    import urllib.request

    with FakeOpenAI() as server:
        url = f"{server.url}/embeddings"  # loopback
        request = urllib.request.Request(url, data=b"{}", method="POST")  # noqa: S310
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(request, timeout=2)
    assert refused.value.code == 404
    assert [r.path for r in server.requests] == ["/v1/embeddings"]


def test_the_public_understand_over_the_real_local_engine(fake_openai, settings):
    # Given the LLM engine chosen in settings, over the shipped local models and extractor
    understanding_module = pytest.importorskip(
        "concilia.nlu.understanding",
        exc_type=ImportError,
        reason="the local engine's modules are not all written yet",
    )
    from concilia.nlu import understand

    labels = llm._category_model().labels
    settings.NLU_ENGINE = "llm"
    fake_openai.reply(
        {**GOOD_ANSWER, "category": labels[-1], "confidence": 0.99, "order_number": "X-1"}
    )
    understanding_module._engine.cache_clear()
    try:
        # When a message is read
        understanding = understand(TEXT, today=TODAY)
    finally:
        understanding_module._engine.cache_clear()

    # Then the model was offered the local model's labels and its answer is used,
    # with the entities the local extractor finds
    local = understanding_module.LocalEngine().understand(TEXT, language=None, today=TODAY)
    assert _listing(labels) in fake_openai.requests[0].system
    assert understanding == replace(
        local,
        kind=Prediction(label="complaint", confidence=0.99, best="complaint"),
        category=Prediction(label=labels[-1], confidence=0.99, best=labels[-1]),
        frustration=0.8,
        act="inform",
        engine="llm",
    )
    assert understanding.first("order_number").value == "PED-10482"


def _listing(labels):
    return ", ".join(f'"{label}"' for label in labels)
