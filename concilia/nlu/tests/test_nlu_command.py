"""`concilia nlu train|evaluate`: a model from a CSV, its report, bad input, the feedback loop."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from concilia.nlu.classifier import TextClassifier, load_model
from concilia.nlu.sources import register_example_source
from concilia.nlu.tests.test_classifier import OUT_OF_SCOPE, topic_rows, write_csv
from concilia.nlu.types import UNKNOWN


@pytest.fixture
def model_dir(settings, tmp_path):
    settings.NLU_MODEL_DIR = tmp_path / "nlu"
    return settings.NLU_MODEL_DIR


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("nlu", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_train_writes_a_model_that_load_model_then_uses(model_dir, tmp_path):
    # Given a CSV with custom column names and out-of-scope rows labelled "none"
    rows = [(t, label) for t, label in topic_rows()] + [(t, "none") for t in OUT_OF_SCOPE[:8]]
    data = write_csv(tmp_path / "topics.csv", rows, header=("message", "topic"))
    # When trained through the command
    output = run(
        "train",
        str(data),
        "--model",
        "topics",
        "--text-column",
        "message",
        "--label-column",
        "topic",
        "--unknown-label",
        "none",
    )
    # Then the model is in NLU_MODEL_DIR and load_model serves it
    assert (model_dir / "topics.joblib").is_file()
    model = load_model("topics")
    assert model.labels == ["car", "cooking", "garden"]
    assert model.predict("the brakes make a rattling noise").label == "car"
    assert model.predict(OUT_OF_SCOPE[-1]).label == UNKNOWN
    assert model.info["examples"] == len(rows)
    # And the report gives the held-out figures, per label, the matrix and the threshold
    assert "Held-out evaluation (17 examples" in output
    assert "accuracy: " in output
    assert "macro-F1: " in output
    assert "confusion matrix" in output
    assert "unknown threshold: " in output
    for label in ("car", "cooking", "garden", UNKNOWN):
        assert f"\n{label} " in output


def test_evaluate_prints_accuracy_macro_f1_per_label_and_the_confusion_matrix(model_dir, tmp_path):
    texts, labels = zip(*topic_rows(), strict=True)
    TextClassifier().fit(texts, labels).save(model_dir / "topics.joblib")
    data = write_csv(
        tmp_path / "check.csv",
        [
            ("the roses need pruning badly", "garden"),
            ("the van overheats on hills", "car"),
            ("the soup is far too salty", "cooking"),
            ("my bread dough didn't rise", "garden"),  # a wrong gold label: 3 of 4 right
        ],
    )

    output = run("evaluate", str(data), "--model", "topics")

    assert "examples: 4" in output
    assert "accuracy: 75.0%" in output
    assert "macro-F1: " in output
    assert "confusion matrix" in output
    lines = output.splitlines()
    garden_row = next(line for line in lines if line.strip().startswith("2  garden"))
    assert garden_row.split()[2:] == ["0", "1", "1"]  # garden read as car 0, cooking 1, garden 1


def test_evaluate_counts_unknown_right_for_the_given_out_of_scope_label(model_dir, tmp_path):
    rows = topic_rows() + [(t, "oos") for t in OUT_OF_SCOPE[:8]]
    texts, labels = zip(*rows, strict=True)
    TextClassifier().fit(texts, labels).save(model_dir / "topics.joblib")
    data = write_csv(
        tmp_path / "check.csv",
        [(t, "nothing") for t in OUT_OF_SCOPE[8:]] + [("the curry needs more spice", "cooking")],
    )

    output = run("evaluate", str(data), "--model", "topics", "--unknown-label", "nothing")

    assert "accuracy: 100.0%" in output
    assert "\nunknown " in output


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, (), "No such file"),
        ("", (), "has no column 'text'"),
        ("text,label\n", (), "has no examples"),
        ("words,label\nhello,a\n", (), "has no column 'text'; its columns are: words, label"),
        ("text,label\nhello,a\nbye,a\n", (), "at least two labels; the examples have only: a"),
        ("text,label\nhello,a\nbye,oos\n", (), "at least two labels; the examples have only: a"),
        ("text,topic\nhello,a\n", ("--label-column", "category"), "has no column 'category'"),
    ],
)
def test_bad_csv_files_give_a_clear_error(model_dir, tmp_path, content, args, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run("train", str(path), "--model", "x", *args)
    assert not (model_dir / "x.joblib").exists()


def test_evaluate_without_a_model_names_where_it_looked(model_dir, tmp_path):
    data = write_csv(tmp_path / "d.csv", topic_rows())
    with pytest.raises(CommandError, match="No NLU model named 'nothing'"):
        run("evaluate", str(data), "--model", "nothing")


def test_from_cases_adds_closed_cases_to_the_examples(model_dir, tmp_path, open_case):
    from concilia.cases.actions import change_status, merge_cases
    from concilia.cases.models import Outcome, Status
    from concilia.cases.queries import closed_case_examples

    # Given closed cases about a "staff_conduct" matter the CSV never mentions
    closed = []
    for text in (
        "the plumber insulted my grandmother",
        "the plumber insulted my neighbour",
        "the plumber insulted me twice",
        "the plumber insulted my wife",
    ):
        case = open_case(category="staff_conduct", description=text, language="en")
        closed.append(change_status(case=case, status=Status.CLOSED, outcome=Outcome.RESOLVED))
    # an open one, and a merged duplicate, which are not examples
    open_case(category="refund", description="still open: the plumber insulted nobody")
    first = open_case(email="eva@example.com", category="refund", description="plumber one")
    second = open_case(email="eva@example.com", category="refund", description="plumber dup")
    from django.contrib.auth import get_user_model

    merge_cases(duplicate=second, into=first, actor=get_user_model().objects.create_user("sara"))
    assert sorted(closed_case_examples()) == sorted(
        (c.description, "staff_conduct") for c in closed
    )
    data = write_csv(tmp_path / "topics.csv", topic_rows())

    # When trained with --from-cases
    output = run("train", str(data), "--model", "mixed", "--from-cases")

    # Then the cases' examples are learnt with their category code
    assert "Added 4 examples from closed cases." in output
    model = load_model("mixed")
    assert model.labels == ["car", "cooking", "garden", "staff_conduct"]
    assert model.predict("the plumber insulted my son").best == "staff_conduct"


def test_from_cases_uses_the_registered_source(model_dir, tmp_path, monkeypatch):
    from concilia.nlu import sources

    monkeypatch.setattr(sources, "_sources", {})
    data = write_csv(tmp_path / "topics.csv", topic_rows())
    with pytest.raises(CommandError, match="No example source 'closed_cases'"):
        run("train", str(data), "--model", "x", "--from-cases")

    register_example_source("closed_cases", lambda: [("the kettle won't boil", "kitchen")] * 3)
    output = run("train", str(data), "--model", "x", "--from-cases")
    assert "Added 3 examples from closed cases." in output
    assert "kitchen" in load_model("x").labels
