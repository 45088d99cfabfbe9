"""Training and evaluation of text classifiers from labelled CSV files, with a held-out report."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from concilia.nlu.classifier import TextClassifier, encoder_names
from concilia.nlu.types import UNKNOWN


class TrainingDataError(ValueError):
    """The examples cannot train or evaluate a model (missing file or column, one label, empty)."""


@dataclass
class Examples:
    texts: list[str]
    labels: list[str]
    languages: list[str] = field(default_factory=list)  # "" where the file has no language column


def read_examples(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    language_column: str = "language",
) -> Examples:
    """The (text, label) rows of a CSV file; rows with a blank text or label are skipped."""
    path = Path(path)
    if not path.is_file():
        raise TrainingDataError(f"No such file: {path}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            for column in (text_column, label_column):
                if column not in columns:
                    found = ", ".join(columns) if columns else "none (the file is empty)"
                    raise TrainingDataError(
                        f"{path} has no column {column!r}; its columns are: {found}."
                    )
            examples = Examples([], [], [])
            for row in reader:
                text = (row.get(text_column) or "").strip()
                label = (row.get(label_column) or "").strip()
                if text and label:
                    examples.texts.append(text)
                    examples.labels.append(label)
                    examples.languages.append((row.get(language_column) or "").strip())
    except UnicodeDecodeError as error:
        raise TrainingDataError(f"{path} is not UTF-8 text: {error}") from None
    except csv.Error as error:
        raise TrainingDataError(f"{path} is not a readable CSV file: {error}") from None
    if not examples.texts:
        raise TrainingDataError(f"{path} has no examples (no row with both a text and a label).")
    return examples


@dataclass(frozen=True)
class Merged:
    """What joining extra examples did: new texts, texts whose label they changed, repeats."""

    added: int
    relabelled: int
    repeated: int


def _same_text(text: str) -> str:
    return " ".join(text.casefold().split())


def merge_examples(examples: Examples, extra: Sequence[tuple[str, str]]) -> Merged:
    """Join (text, label) pairs to `examples`, once per text (case and spaces aside): an extra
    pair for a text already there replaces its label, since extras are people's corrections."""
    where = {_same_text(text): i for i, text in enumerate(examples.texts)}
    added = relabelled = repeated = 0
    for text, label in extra:
        key = _same_text(text)
        if key in where:
            i = where[key]
            if examples.labels[i] == label:
                repeated += 1
            else:
                examples.labels[i] = label
                relabelled += 1
            continue
        where[key] = len(examples.texts)
        examples.texts.append(text)
        examples.labels.append(label)
        examples.languages.append("")
        added += 1
    return Merged(added, relabelled, repeated)


def check_trainable(examples: Examples, unknown_labels: Sequence[str]) -> None:
    in_scope = {label for label in examples.labels if label not in unknown_labels}
    if len(in_scope) < 2:
        only = ", ".join(sorted(in_scope)) or "none"
        raise TrainingDataError(
            f"Training needs at least two labels; the examples have only: {only}."
        )


@dataclass
class Evaluation:
    """How a model did on labelled texts. UNKNOWN is a right answer for out-of-scope texts."""

    size: int
    accuracy: float
    macro_f1: float
    labels: list[str]  # rows and columns of the confusion matrix (UNKNOWN last if present)
    precision: dict[str, float]
    recall: dict[str, float]
    support: dict[str, int]
    confusion: list[list[int]]
    threshold: float
    unknown_share: float  # share of answers that were UNKNOWN

    def as_dict(self) -> dict:
        return {
            "size": self.size,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "threshold": self.threshold,
            "unknown_share": self.unknown_share,
            "precision": self.precision,
            "recall": self.recall,
            "support": self.support,
        }


def evaluate(
    model: TextClassifier,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    unknown_labels: Sequence[str] | None = None,
) -> Evaluation:
    """Compare the model's answers with the gold labels (out-of-scope gold labels → UNKNOWN).

    Out-of-scope gold labels are the model's own (`oos`, `unknown` by default) unless given.
    """
    outside = set(model.unknown_labels if unknown_labels is None else unknown_labels) | {UNKNOWN}
    gold = [UNKNOWN if label in outside else label for label in labels]
    predicted = [p.label for p in model.predict_many(texts)]
    names = sorted(set(model.labels) | (set(gold) - {UNKNOWN}))
    if UNKNOWN in gold or UNKNOWN in predicted:
        names.append(UNKNOWN)
    # Macro-F1 over the labels that occur in the gold data (UNKNOWN included when it does).
    scored = [name for name in names if name in set(gold)]
    precision, recall, _f1, support = precision_recall_fscore_support(
        gold, predicted, labels=names, zero_division=0
    )
    return Evaluation(
        size=len(gold),
        accuracy=float(np.mean([g == p for g, p in zip(gold, predicted, strict=True)])),
        macro_f1=float(f1_score(gold, predicted, labels=scored, average="macro", zero_division=0)),
        labels=names,
        precision={n: float(v) for n, v in zip(names, precision, strict=True)},
        recall={n: float(v) for n, v in zip(names, recall, strict=True)},
        support={n: int(v) for n, v in zip(names, support, strict=True)},
        confusion=confusion_matrix(gold, predicted, labels=names).tolist(),
        threshold=model.threshold,
        unknown_share=float(np.mean([p == UNKNOWN for p in predicted])),
    )


def format_evaluation(evaluation: Evaluation) -> str:
    """A plain-text report: headline figures, per-label precision/recall, confusion matrix."""
    lines = [
        f"examples: {evaluation.size}",
        f"accuracy: {evaluation.accuracy:.1%}",
        f"macro-F1: {evaluation.macro_f1:.3f}",
        f"unknown threshold: {evaluation.threshold:.3f} "
        f"({evaluation.unknown_share:.1%} of answers were '{UNKNOWN}')",
        "",
    ]
    width = max(len(name) for name in [*evaluation.labels, "label"])
    lines.append(f"{'label':<{width}}  precision  recall  support")
    for name in evaluation.labels:
        lines.append(
            f"{name:<{width}}  {evaluation.precision[name]:>9.1%}  {evaluation.recall[name]:>6.1%}"
            f"  {evaluation.support[name]:>7}"
        )
    lines += ["", "confusion matrix (rows: true label, columns: predicted, in the order above)"]
    cell = max(4, *(len(str(v)) for row in evaluation.confusion for v in row))
    header = " ".join(f"{i:>{cell}}" for i in range(len(evaluation.labels)))
    lines.append(f"{'':<{width + 4}} {header}")
    for i, (name, row) in enumerate(zip(evaluation.labels, evaluation.confusion, strict=True)):
        values = " ".join(f"{v:>{cell}}" for v in row)
        lines.append(f"{i:>2}  {name:<{width}} {values}")
    return "\n".join(lines)


@dataclass
class TrainingResult:
    model: TextClassifier
    evaluation: Evaluation | None  # on the held-out part; None when too small to hold any out
    trained_on: int
    held_out: int
    # The held-out examples themselves, so that another model (the one this replaces) can be
    # measured on the same ones.
    held_out_examples: Examples | None = None


def train(
    examples: Examples,
    *,
    unknown_labels: Sequence[str],
    held_out_share: float = 0.2,
    random_state: int = 0,
    on_step: Callable[[str], None] | None = None,
    kind: str = "svm",
    encoder: str = "none",
) -> TrainingResult:
    """Evaluate on a held-out share, then train the model to keep on all the examples.

    With a sentence `encoder` every text is encoded once, for both models.
    """
    check_trainable(examples, unknown_labels)
    texts = examples.texts
    options = {
        "kind": kind,
        "unknown_labels": unknown_labels,
        "random_state": random_state,
        "encoder": encoder,
    }
    model = TextClassifier(**options)
    with model.encoding(texts, on_step):
        return _held_out_then_all(model, examples, options, held_out_share, on_step)


def _held_out_then_all(
    model: TextClassifier,
    examples: Examples,
    options: dict,
    held_out_share: float,
    on_step: Callable[[str], None] | None,
) -> TrainingResult:
    texts, labels = examples.texts, examples.labels
    unknown_labels, random_state = options["unknown_labels"], options["random_state"]
    evaluation = None
    held_out = 0
    held_out_examples = None
    counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)[1]
    n_test = round(len(labels) * held_out_share)
    if counts.min() >= 2 and n_test >= len(counts):
        train_x, test_x, train_y, test_y = train_test_split(
            texts, labels, test_size=held_out_share, stratify=labels, random_state=random_state
        )
        check_trainable(Examples(list(train_x), list(train_y)), unknown_labels)
        trial = TextClassifier(**options)
        trial.fit(train_x, train_y, on_step=on_step)
        evaluation = evaluate(trial, test_x, test_y)
        held_out = len(test_x)
        held_out_examples = Examples(list(test_x), list(test_y))
    model.fit(texts, labels, on_step=on_step)
    model.info = {
        "trained_at": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
        "examples": len(texts),
        "held_out": held_out,
        "encoder": model.encoder,
        "evaluation": evaluation.as_dict() if evaluation else None,
    }
    return TrainingResult(model, evaluation, len(texts), held_out, held_out_examples)


def training_steps(examples: Examples, unknown_labels: Sequence[str], encoder: str = "none") -> int:
    """How many progress steps train() reports for these examples."""
    model = TextClassifier(unknown_labels=unknown_labels, encoder=encoder)
    one = model.steps_for(examples.labels)
    encoding = len(encoder_names(model.encoder))
    return (one - encoding) * 2 + encoding
