"""`concilia nlu train|evaluate`: train a text classifier from a CSV file and measure it."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from tqdm import tqdm

from concilia.nlu import encoders
from concilia.nlu.classifier import (
    DEFAULT_UNKNOWN_LABELS,
    ModelNotFound,
    TextClassifier,
    encoder_names,
    forget_models,
    load_model,
    model_paths,
)
from concilia.nlu.sources import UnknownSource, example_sources, examples_from
from concilia.nlu.training import (
    Examples,
    TrainingDataError,
    TrainingResult,
    check_trainable,
    evaluate,
    format_evaluation,
    merge_examples,
    read_examples,
    train,
    training_steps,
)

CASES_SOURCE = "closed_cases"
# Reviewers' labels of one model (concilia.feedback registers "reviews:categories"...).
REVIEWS_SOURCE = "reviews:{model}"


class Command(BaseCommand):
    help = "Train a language-understanding model from labelled examples, or evaluate one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="train|evaluate")

        def data_arguments(sub: CommandParser) -> None:
            sub.add_argument("data", metavar="DATA.csv", help="a CSV file with a header row")
            sub.add_argument("--model", required=True, help="the model's name, e.g. categories")
            sub.add_argument("--text-column", default="text")
            sub.add_argument("--label-column", default="label")
            sub.add_argument(
                "--unknown-label",
                action="append",
                metavar="LABEL",
                help="a label meaning out of scope (repeatable; default: oos and unknown; "
                "evaluate: the model's own)",
            )

        trainer = actions.add_parser(
            "train",
            help="train NLU_MODEL_DIR/NAME.joblib and report on a held-out fifth",
        )
        data_arguments(trainer)
        trainer.add_argument(
            "--from-cases",
            action="store_true",
            help="add the descriptions and categories of closed cases to the examples",
        )
        trainer.add_argument(
            "--encoder",
            default=encoders.NONE,
            metavar="|".join((*encoders.CHOICES, "minilm+use")),
            help="append a pretrained sentence encoder's vectors to the n-grams (needs the "
            f"'{encoders.EXTRA}' extra): minilm (English), use (multilingual), both, or none "
            "(default)",
        )
        trainer.add_argument(
            "--without-reviews",
            action="store_true",
            help="leave out the labels reviewers gave to conversations (joined by default, once "
            "per text, their label replacing the file's)",
        )
        evaluator = actions.add_parser("evaluate", help="measure a model on labelled examples")
        data_arguments(evaluator)

    def handle(self, *args, action: str, **options) -> None:
        unknown = tuple(options["unknown_label"] or DEFAULT_UNKNOWN_LABELS)
        try:
            examples = read_examples(
                options["data"],
                text_column=options["text_column"],
                label_column=options["label_column"],
            )
        except TrainingDataError as error:
            raise CommandError(str(error)) from None
        if action == "train":
            self.train(examples, name=options["model"], unknown=unknown, **options)
        else:
            self.evaluate(examples, name=options["model"], unknown=options["unknown_label"])

    def train(
        self,
        examples: Examples,
        *,
        name: str,
        unknown: tuple[str, ...],
        from_cases: bool,
        encoder: str,
        without_reviews: bool = False,
        **_,
    ) -> None:
        try:
            for encoder_name in encoder_names(encoder):
                encoders.check_available(encoder_name)
        except encoders.EncoderUnavailable as error:
            raise CommandError(str(error)) from None
        if from_cases:
            try:
                extra = examples_from(CASES_SOURCE)
            except UnknownSource as error:
                raise CommandError(str(error)) from None
            except DatabaseError as error:
                raise CommandError(f"Could not read the closed cases: {error}") from None
            examples.texts += [text for text, _label in extra]
            examples.labels += [label for _text, label in extra]
            examples.languages += [""] * len(extra)
            self.stdout.write(f"Added {len(extra)} examples from closed cases.")
        try:
            check_trainable(examples, unknown)
        except TrainingDataError as error:
            raise CommandError(str(error)) from None
        reviewed = [] if without_reviews else self.add_reviews(examples, name)
        labels = sorted(set(examples.labels))
        shown = ", ".join(labels[:12]) + (", …" if len(labels) > 12 else "")
        self.stdout.write(
            f"Training {name!r} on {len(examples.texts)} examples, {len(labels)} labels: {shown}"
            + (f" (sentence encoder: {encoder})" if encoder_names(encoder) else "")
        )
        with tqdm(
            total=training_steps(examples, unknown, encoder),
            desc="training",
            unit="step",
            leave=False,
        ) as bar:

            def step(description: str) -> None:
                bar.set_postfix_str(description)
                bar.update(1)

            result = train(examples, unknown_labels=unknown, on_step=step, encoder=encoder)
        previous = self.previous_model(name)
        path = result.model.save(model_paths(name)[0])
        forget_models()
        self.stdout.write(f"Saved {path} ({path.stat().st_size / 1e6:.1f} MB).")
        if result.evaluation is None:
            self.stdout.write(
                "Too few examples per label to hold any out: no evaluation. "
                f"Unknown threshold: {result.model.threshold:.3f}"
            )
            return
        self.stdout.write(
            f"\nHeld-out evaluation ({result.held_out} examples, a model trained on the other "
            f"{result.trained_on - result.held_out}; the saved model learnt from all "
            f"{result.trained_on}):\n"
        )
        self.stdout.write(format_evaluation(result.evaluation))
        self.stdout.write(f"\nSaved model's unknown threshold: {result.model.threshold:.3f}")
        self.compare(previous, result, reviewed)

    def evaluate(self, examples: Examples, *, name: str, unknown: list[str] | None) -> None:
        try:
            model = load_model(name)
        except (ModelNotFound, encoders.EncoderUnavailable) as error:
            raise CommandError(str(error)) from None
        source = next((p for p in model_paths(name) if Path(p).exists()), None)
        self.stdout.write(f"Model {name!r} ({source}), {len(examples.texts)} examples:\n")
        evaluation = evaluate(model, examples.texts, examples.labels, unknown_labels=unknown)
        self.stdout.write(format_evaluation(evaluation))

    def add_reviews(self, examples: Examples, name: str) -> list[tuple[str, str]]:
        """Join the reviewers' labels of this model to the examples; the pairs joined."""
        source = REVIEWS_SOURCE.format(model=name)
        if source not in example_sources():
            return []
        try:
            reviewed = examples_from(source)
        except DatabaseError as error:
            self.stderr.write(f"Could not read the reviewers' labels ({error}): left out.")
            return []
        merged = merge_examples(examples, reviewed)
        self.stdout.write(
            f"Reviewers' labels: {len(reviewed)} ({merged.added} new texts, "
            f"{merged.relabelled} relabelled, {merged.repeated} already there)."
        )
        return reviewed

    def previous_model(self, name: str) -> TextClassifier | None:
        """The model this training replaces, if there is one that loads."""
        try:
            return load_model(name)
        except (ModelNotFound, encoders.EncoderUnavailable):
            return None

    def compare(
        self,
        previous: TextClassifier | None,
        result: TrainingResult,
        reviewed: list[tuple[str, str]],
    ) -> None:
        """Before and after: the replaced model on the same held-out examples, and both models
        on the reviewers' labels (which the new one learnt from)."""
        if previous is None or result.held_out_examples is None or result.evaluation is None:
            return
        held = result.held_out_examples
        before = evaluate(previous, held.texts, held.labels)
        self.stdout.write(
            f"\nBefore/after on the same {len(held.texts)} held-out examples: "
            f"accuracy {before.accuracy:.1%} -> {result.evaluation.accuracy:.1%}, "
            f"macro-F1 {before.macro_f1:.3f} -> {result.evaluation.macro_f1:.3f} "
            "(the previous model may have learnt some of them)."
        )
        if reviewed:
            texts = [text for text, _label in reviewed]
            labels = [label for _text, label in reviewed]
            old = evaluate(previous, texts, labels)
            new = evaluate(result.model, texts, labels)
            self.stdout.write(
                f"Reviewers' labels ({len(texts)}): the previous model got {old.accuracy:.1%} "
                f"right, the saved one {new.accuracy:.1%} (it learnt from them)."
            )
