"""The text classifier: any label set, calibrated confidence, UNKNOWN under its threshold, files."""

from __future__ import annotations

import csv
import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from concilia.nlu.classifier import ModelNotFound, TextClassifier, forget_models, load_model
from concilia.nlu.training import read_examples
from concilia.nlu.types import UNKNOWN

# A label set that has nothing to do with complaints: the engine must learn whatever it is given.
TOPICS = {
    "garden": (
        ["my tomatoes", "the roses", "the lawn", "our apple tree", "the basil plants"],
        ["need watering", "have aphids", "are turning yellow", "need pruning", "won't flower"],
    ),
    "car": (
        ["my car", "the engine", "the van", "the gearbox", "the brakes"],
        ["makes a rattling noise", "won't start", "needs an oil change", "leaks oil", "overheats"],
    ),
    "cooking": (
        ["the risotto", "my bread dough", "the sponge cake", "the curry", "this soup"],
        ["is too salty", "didn't rise", "burnt at the bottom", "needs more spice", "is too thick"],
    ),
}
OUT_OF_SCOPE = [
    "what time is the football match tonight",
    "translate hello into french",
    "who won the election",
    "tell me a joke",
    "how tall is mount everest",
    "set an alarm for seven",
    "what's the capital of peru",
    "play some jazz music",
    "how many days until christmas",
    "book a table for two",
    "what is my bank balance",
    "remind me to call mum",
]


def topic_rows() -> list[tuple[str, str]]:
    return [
        (f"{subject} {problem}", label)
        for label, (subjects, problems) in TOPICS.items()
        for subject, problem in itertools.product(subjects, problems)
    ]


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_learns_an_arbitrary_label_set_from_a_csv(tmp_path):
    # Given a CSV of gardening, car and cooking problems
    examples = read_examples(write_csv(tmp_path / "topics.csv", topic_rows()))
    # When a classifier learns it
    model = TextClassifier().fit(examples.texts, examples.labels)
    # Then it knows those labels and reads new sentences about them
    assert model.labels == ["car", "cooking", "garden"]
    assert model.predict("the roses have aphids again").label == "garden"
    assert model.predict("the van won't start in the morning").label == "car"
    assert model.predict("the curry is too salty").label == "cooking"
    assert [p.best for p in model.predict_many(["the lawn needs watering", "brakes overheat"])] == [
        "garden",
        "car",
    ]


def test_prediction_carries_a_probability_the_best_label_and_the_alternatives():
    texts, labels = zip(*topic_rows(), strict=True)
    model = TextClassifier().fit(texts, labels)

    prediction = model.predict("the gearbox leaks oil")

    assert prediction.label == prediction.best == "car"
    assert 0.0 <= prediction.confidence <= 1.0
    assert [label for label, _ in prediction.alternatives] == sorted(
        ["cooking", "garden"], key=lambda label: -dict(prediction.alternatives)[label]
    )
    total = prediction.confidence + sum(p for _, p in prediction.alternatives)
    assert total == pytest.approx(1.0)
    assert model.probabilities(["the gearbox leaks oil"]).sum() == pytest.approx(1.0)
    assert model.predict_many([]) == []


def test_out_of_scope_examples_choose_a_threshold_that_answers_unknown():
    # Given in-scope topics and a few out-of-scope examples (label "oos")
    rows = topic_rows() + [(text, "oos") for text in OUT_OF_SCOPE[:8]]
    texts, labels = zip(*rows, strict=True)
    # When trained
    model = TextClassifier(unknown_labels=["oos"]).fit(texts, labels)
    # Then "oos" is not a label, the threshold is above zero, and unseen off-topic texts are UNKNOWN
    assert "oos" not in model.labels
    assert model.threshold > 0
    unseen = model.predict_many(OUT_OF_SCOPE[8:])
    assert [p.label for p in unseen] == [UNKNOWN] * 4
    assert all(p.best in model.labels and p.confidence < model.threshold for p in unseen)
    # while in-scope texts keep their label
    assert model.predict("the basil plants are turning yellow").label == "garden"
    assert model.predict("my bread dough is too thick").label == "cooking"


def test_out_of_scope_examples_are_learnt_as_a_class_whose_answer_is_unknown():
    # Given in-scope topics and out-of-scope examples
    rows = topic_rows() + [(text, "oos") for text in OUT_OF_SCOPE]
    texts, labels = zip(*rows, strict=True)
    # When trained with and without learning them as a class
    learnt = TextClassifier(unknown_labels=["oos"]).fit(texts, labels)
    threshold_only = TextClassifier(unknown_labels=["oos"], learn_out_of_scope=False)
    threshold_only.fit(texts, labels)
    # Then only the first has an out-of-scope class, which is never a label nor a best guess
    assert (learnt.outside, threshold_only.outside) == (True, False)
    assert learnt.labels == threshold_only.labels == ["car", "cooking", "garden"]
    joke = learnt.predict("tell me a joke")
    assert joke.label == UNKNOWN
    assert joke.best in learnt.labels
    # and the probabilities say how a text divides among the labels, if it is one of them
    row = learnt.probabilities(["tell me a joke"])[0]
    assert row.sum() == pytest.approx(1.0)
    assert joke.confidence == pytest.approx(row.max())
    assert threshold_only.probabilities(["tell me a joke"])[0].sum() == pytest.approx(1.0)
    assert learnt.predict("the basil plants are turning yellow").label == "garden"


def test_without_out_of_scope_examples_few_answers_become_unknown():
    texts, labels = zip(*topic_rows(), strict=True)
    model = TextClassifier(max_unknown_share=0.05).fit(texts, labels)

    answers = model.predict_many(texts)

    assert np.mean([p.label == UNKNOWN for p in answers]) <= 0.05
    assert 0.0 <= model.threshold < 1.0


def test_one_label_only_is_refused():
    with pytest.raises(ValueError, match="at least two labels"):
        TextClassifier().fit(["a", "b", "c"], ["x", "x", "oos"])


def test_baseline_kind_learns_too():
    texts, labels = zip(*topic_rows(), strict=True)
    model = TextClassifier(kind="baseline").fit(texts, labels)
    assert model.predict("the engine overheats").best == "car"


def test_save_and_load_model_prefers_the_trained_model_over_the_shipped_one(settings, tmp_path):
    settings.NLU_MODEL_DIR = tmp_path / "nlu"
    forget_models()
    shipped = load_model("categories")  # only the shipped one exists
    assert "refund" in shipped.labels

    texts, labels = zip(*topic_rows(), strict=True)
    TextClassifier().fit(texts, labels).save(tmp_path / "nlu" / "categories.joblib")

    assert load_model("categories").labels == ["car", "cooking", "garden"]
    assert load_model("categories") is load_model("categories")  # cached


def test_missing_model_names_both_places(settings, tmp_path):
    settings.NLU_MODEL_DIR = tmp_path / "nlu"
    with pytest.raises(ModelNotFound) as error:
        load_model("no_such_model")
    message = str(error.value)
    assert str(tmp_path / "nlu" / "no_such_model.joblib") in message
    assert "concilia/nlu/models/no_such_model.joblib" in message


def test_one_prediction_takes_well_under_five_milliseconds():
    model = TextClassifier.load(Path(__file__).parents[1] / "models" / "categories.joblib")
    sentences = ["me cobraron dos veces el mismo pedido", "the parcel never arrived"] * 50
    model.predict(sentences[0])  # warm up
    # CPU time of this thread: what a prediction costs, not how long others held the cores.
    timings = []
    for sentence in sentences:
        start = time.thread_time()
        model.predict(sentence)
        timings.append(time.thread_time() - start)
    # The median: a busy machine (other test runs, CI neighbours) inflates the tail, not this.
    assert np.median(timings) < 0.005
