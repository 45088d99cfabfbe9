"""The local text classifier: learns any label set from texts, says UNKNOWN when it is unsure.

The model is the union of word 1-2-gram and character 2-5-gram TF-IDF (sublinear tf, accents
folded, so "devolucion" reads as "devolución" and typos still share most n-grams) under a linear
SVM; optionally with the vectors of a pretrained sentence encoder appended (`encoder=`, see
concilia/nlu/encoders.py: it knows that "billed twice" and "charged two times" mean the same).
Its margins become probabilities through a softmax whose temperature is fitted on
cross-validated predictions, and the same predictions choose the confidence under which the
answer is UNKNOWN. bench/README.md ("NLU") compares it with TF-IDF + logistic regression.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from concilia.nlu import encoders
from concilia.nlu.types import UNKNOWN, Prediction

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
# Labels that mean "none of these" in training data: learnt as one class of their own (OUTSIDE)
# whose answer is UNKNOWN, and used to choose the threshold; counted as a right answer when the
# model says UNKNOWN.
DEFAULT_UNKNOWN_LABELS = ("oos", UNKNOWN)
# The class the out-of-scope examples are learnt as: never a user's label (labels read from a
# file are stripped of spaces and control characters).
OUTSIDE = "\x00out-of-scope"
ALTERNATIVES = 3


class ModelNotFound(LookupError):
    """No trained model of that name, neither in NLU_MODEL_DIR nor shipped with Concilia."""


class SentenceFeatures(TransformerMixin, BaseEstimator):
    """The texts' sentence-encoder vectors times `weight`, their share next to the n-grams.

    Holds only the encoder's name: the weights stay in the installed package, loaded once per
    process (so a saved model is as small as without an encoder).
    """

    def __init__(self, encoder: str = "minilm", weight: float = 1.0) -> None:
        self.encoder = encoder
        self.weight = weight

    def fit(self, texts: Any, labels: Any = None) -> SentenceFeatures:
        return self

    def transform(self, texts: Any) -> np.ndarray:
        return encoders.encode(self.encoder, list(texts)) * np.float32(self.weight)


def encoder_names(encoder: str) -> tuple[str, ...]:
    """The encoders named by "none", "minilm", "use" or "minilm+use"."""
    return tuple(name for name in encoder.split("+") if name and name != encoders.NONE)


def _features(encoder: str = encoders.NONE, encoder_weight: float = 1.0) -> FeatureUnion:
    common: dict[str, Any] = {
        "sublinear_tf": True,
        "strip_accents": "unicode",
        "lowercase": True,
        # float32 like the saved coefficients: a mixed product would copy them on every predict.
        "dtype": np.float32,
    }
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), **common)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common)),
            *(
                (f"sentences_{name}", SentenceFeatures(name, encoder_weight))
                for name in encoder_names(encoder)
            ),
        ]
    )


def _estimator(kind: str, encoder: str = encoders.NONE, encoder_weight: float = 1.0) -> Pipeline:
    if kind == "baseline":  # the reference the engine must beat: TF-IDF 1-2-grams + LR
        return Pipeline(
            [
                ("features", TfidfVectorizer(ngram_range=(1, 2))),
                ("model", LogisticRegression(max_iter=1000)),
            ]
        )
    return Pipeline([("features", _features(encoder, encoder_weight)), ("model", LinearSVC(C=0.5))])


# Each sentence encoder's unit-norm vector is scaled by this next to the two unit-norm TF-IDF
# vectors: 2 did better than 1 and 1.5 on Banking77 (bench/nlu-encoders-experiment.md).
ENCODER_WEIGHT = 2.0
# With out-of-scope examples, the share of them the threshold must turn into UNKNOWN by itself
# (measured on cross-validated training predictions).
OOS_RECALL = 0.8
# A text of only unseen words needs this confidence to get a label ("reembolzo" does, by its
# characters; "zzzz qwerty asdf" does not).
UNSEEN_WORDS_CONFIDENCE = 0.9
# The word analyzer of each loaded model, built once (building it costs more than predicting).
_ANALYZERS: weakref.WeakKeyDictionary[TfidfVectorizer, Callable[[str], list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextClassifier:
    """A classifier of short texts into any label set, with an UNKNOWN answer under `threshold`.

    `kind` is "svm" (the engine) or "baseline" (TF-IDF + logistic regression, for comparison).
    `encoder` ("none", "minilm", "use", "minilm+use") appends sentence-encoder vectors, times
    `encoder_weight`, to the engine's n-grams; the encoder's package is then needed to load it.
    Out-of-scope examples (labelled with one of `unknown_labels`) are learnt as a class of their
    own whose answer is UNKNOWN (`learn_out_of_scope`, when there are at least as many as
    validation folds), and the threshold is the lowest that turns `oos_recall` of them into
    UNKNOWN in cross-validation. Without, it turns at most `max_unknown_share` of the validation
    predictions into UNKNOWN, and only where that removes more wrong answers than right ones.
    """

    # Defaults for model files saved before these attributes existed.
    encoder = encoders.NONE
    encoder_weight = 1.0
    outside = False  # whether out-of-scope examples were learnt as a class (the last column)

    def __init__(
        self,
        *,
        kind: str = "svm",
        unknown_labels: Sequence[str] = DEFAULT_UNKNOWN_LABELS,
        folds: int = 3,
        max_unknown_share: float = 0.05,
        oos_recall: float = OOS_RECALL,
        random_state: int = 0,
        encoder: str = encoders.NONE,
        encoder_weight: float = ENCODER_WEIGHT,
        learn_out_of_scope: bool = True,
    ) -> None:
        if kind not in ("svm", "baseline"):
            raise ValueError(f"Unknown classifier kind {kind!r}: use 'svm' or 'baseline'.")
        if kind == "baseline" and encoder_names(encoder):
            raise ValueError("The baseline has no sentence encoder.")
        for name in encoder_names(encoder):
            if name not in encoders.SPECS:
                encoders.check_available(name)  # raises, naming the known encoders
        self.kind = kind
        self.encoder = "+".join(encoder_names(encoder)) or encoders.NONE
        self.encoder_weight = encoder_weight
        self.unknown_labels = tuple(unknown_labels)
        self.folds = folds
        self.max_unknown_share = max_unknown_share
        self.oos_recall = oos_recall
        self.random_state = random_state
        self.learn_out_of_scope = learn_out_of_scope
        self.outside = False
        self.labels: list[str] = []
        self.threshold = 0.0
        self.temperature = 1.0
        self.pipeline: Pipeline | None = None
        # Filled by the trainer: where the model came from and how it did on held-out data.
        self.info: dict[str, Any] = {}

    # --- training -----------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        on_step: Callable[[str], None] | None = None,
    ) -> TextClassifier:
        """Learn from (text, label) pairs; `on_step` is told each of `steps_for()` steps."""
        step = on_step or (lambda _description: None)
        texts_arr = np.asarray([str(t) for t in texts], dtype=object)
        labels_arr = np.asarray([str(label) for label in labels], dtype=object)
        if len(texts_arr) != len(labels_arr):
            raise ValueError("texts and labels differ in length.")
        outside = np.isin(labels_arr, self.unknown_labels)
        x_in, y_in = texts_arr[~outside], labels_arr[~outside]
        x_out = texts_arr[outside]
        classes = sorted(set(y_in))
        if len(classes) < 2:
            raise ValueError("Training needs at least two labels (besides out-of-scope ones).")
        self.labels = classes
        with self.encoding(texts_arr.tolist(), step):
            self._fit_encoded(x_in, y_in, x_out, classes, step)
        self._slim()
        return self

    @contextlib.contextmanager
    def encoding(
        self, texts: Sequence[str], on_step: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Inside the block the texts are encoded already: once, in batches, for every fold.

        Texts already encoded by an enclosing block are not encoded again (nor is the step told).
        """
        with contextlib.ExitStack() as stack:
            for name in encoder_names(self.encoder):
                encoders.check_available(name)
                unique = list(dict.fromkeys(str(t) for t in texts))
                if encoders.remembers(name, unique):
                    continue
                if on_step is not None:
                    on_step(f"sentence encoder {name}")
                vectors = encoders.encode(name, unique)
                stack.enter_context(encoders.remembering(name, unique, vectors))
            yield

    def _fit_encoded(
        self,
        x_in: np.ndarray,
        y_in: np.ndarray,
        x_out: np.ndarray,
        classes: list[str],
        step: Callable[[str], None],
    ) -> None:
        counts = np.unique(y_in, return_counts=True)[1]
        n_splits = int(min(self.folds, counts.min()))
        self.outside = bool(
            getattr(self, "learn_out_of_scope", True) and n_splits >= 2 and len(x_out) >= n_splits
        )
        if self.outside:
            x_fit = np.concatenate([x_in, x_out])
            y_fit = np.concatenate([y_in, np.full(len(x_out), OUTSIDE, dtype=object)])
        else:
            x_fit, y_fit = x_in, y_in
        if n_splits >= 2:
            # Cross-validated scores: what the model says about texts it has not seen.
            columns = self._columns()
            scores = np.zeros((len(x_fit), len(columns)))
            # Out-of-scope texts that are not learnt: every fold model's scores of them, pooled
            # (an average of the models would be less sure than any of them).
            scores_out: list[np.ndarray] = []
            splitter = StratifiedKFold(n_splits, shuffle=True, random_state=self.random_state)
            for number, (train, test) in enumerate(splitter.split(x_fit, y_fit), start=1):
                step(f"validation fold {number}/{n_splits}")
                fold = self._fit_pipeline(x_fit[train], y_fit[train])
                scores[test] = self._scores(fold, x_fit[test])
                if len(x_out) and not self.outside:
                    scores_out.append(self._scores(fold, x_out))
            index = {label: i for i, label in enumerate(columns)}
            y_index = np.array([index[label] for label in y_fit])
            self.temperature = self._fit_temperature(scores, y_index)
            proba = _softmax(scores, self.temperature)
            inside = y_index < len(classes)
            if self.outside:
                proba_out: np.ndarray | None = proba[~inside]
            elif scores_out:
                proba_out = _softmax(np.vstack(scores_out), self.temperature)
            else:
                proba_out = None
            self.threshold = self._choose_threshold(proba[inside], y_index[inside], proba_out)
        else:  # too few examples of some label to validate: no threshold
            self.temperature, self.threshold = 1.0, 0.0
        step("final model on all examples")
        self.pipeline = self._fit_pipeline(x_fit, y_fit)

    def _columns(self) -> list[str]:
        """The classes in score order: the labels, then OUTSIDE if out-of-scope was learnt."""
        return [*self.labels, OUTSIDE] if self.outside else list(self.labels)

    def steps_for(self, labels: Sequence[str]) -> int:
        """How many times fit() will call on_step for these labels (for a progress bar)."""
        in_scope = [label for label in labels if label not in self.unknown_labels]
        counts = np.unique(np.asarray(in_scope, dtype=object), return_counts=True)[1]
        n_splits = int(min(self.folds, counts.min())) if len(counts) else 0
        return (n_splits if n_splits >= 2 else 0) + 1 + len(encoder_names(self.encoder))

    def _fit_pipeline(self, texts: np.ndarray, labels: np.ndarray) -> Pipeline:
        pipeline = _estimator(self.kind, self.encoder, self.encoder_weight)
        pipeline.fit(list(texts), list(labels))
        return pipeline

    def _scores(self, pipeline: Pipeline, texts: Sequence[str] | np.ndarray) -> np.ndarray:
        """One column per class in _columns() order: margins (svm) or log-probabilities."""
        if self.kind == "baseline":
            proba = pipeline.predict_proba(list(texts))
            scores = np.log(np.clip(proba, 1e-12, 1.0))
        else:
            scores = pipeline.decision_function(list(texts))
            if scores.ndim == 1:  # two labels: one margin, positive for the second
                scores = np.column_stack([-scores, scores]) / 2
        if self.outside:  # scikit-learn sorts the classes: OUTSIDE ("\x00…") comes first
            scores = scores[:, np.searchsorted(pipeline.classes_, self._columns())]
        return scores

    @staticmethod
    def _fit_temperature(scores: np.ndarray, y_index: np.ndarray) -> float:
        """The softmax temperature with the lowest log-loss on cross-validated scores."""
        best, best_loss = 1.0, np.inf
        for t in np.geomspace(0.02, 5.0, 60):
            p = _softmax(scores, t)[np.arange(len(y_index)), y_index]
            loss = -np.mean(np.log(np.clip(p, 1e-12, 1.0)))
            if loss < best_loss:
                best, best_loss = float(t), loss
        return best

    def _choose_threshold(
        self, proba_in: np.ndarray, y_index: np.ndarray, proba_out: np.ndarray | None
    ) -> float:
        """The threshold, from cross-validated probabilities of in-scope and out-of-scope texts.

        Rows have a column per label, then OUTSIDE's if out-of-scope was learnt: a text whose
        most probable class is OUTSIDE is UNKNOWN whatever the threshold, and the confidence
        compared with the threshold is that of the labels alone (see _reading()).
        """
        confidence, best, refused = self._reading(proba_in)
        correct = (best == y_index) & ~refused
        right = np.sort(confidence[correct])
        wrong = np.sort(confidence[~correct & ~refused])
        candidates = np.unique(np.concatenate([[0.0], confidence]))
        # How many right / wrong validation answers each candidate turns into UNKNOWN.
        rejected_right = np.searchsorted(right, candidates, side="left")
        rejected_wrong = np.searchsorted(wrong, candidates, side="left")
        if proba_out is not None and len(proba_out):
            # The lowest threshold that turns `oos_recall` of the out-of-scope examples into
            # UNKNOWN by itself: every higher one only costs in-scope answers. (Maximising
            # accuracy + recall instead chose ~0.98 on CLINC150: 91% recall for 78% in-scope
            # accuracy.) The learnt out-of-scope class is not counted: it knows texts like its
            # examples, which cross-validation rewards, far better than new ones (CLINC150: 54-63%
            # of the validation folds' out-of-scope examples, 34-36% of oos_val).
            outside = np.sort(self._reading(proba_out)[0])
            recall = np.searchsorted(outside, candidates, side="left") / len(outside)
            enough = np.flatnonzero(recall >= getattr(self, "oos_recall", OOS_RECALL))
            if len(enough):
                return float(candidates[enough[0]])
            accuracy = (len(right) - rejected_right) / len(confidence)
            return float(candidates[int(np.argmax(accuracy + recall))])
        # No out-of-scope examples: reject a small share, and only where mostly wrong.
        share = (rejected_right + rejected_wrong) / len(confidence)
        gain = np.where(
            share <= self.max_unknown_share, rejected_wrong - rejected_right, -1
        ).astype(float)
        best_share = int(np.argmax(gain))
        return float(candidates[best_share]) if gain[best_share] > 0 else 0.0

    def _reading(self, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row of _all_probabilities(): the confidence in the best label among the labels
        alone (their probabilities scaled to sum to 1), its index, and whether the out-of-scope
        class is the most probable of all."""
        n = len(self.labels)
        labels = proba[:, :n]
        confidence = labels.max(axis=1) / np.maximum(labels.sum(axis=1), 1e-300)
        refused = proba.argmax(axis=1) >= n
        return confidence, labels.argmax(axis=1), refused

    def _slim(self) -> None:
        """Drop what prediction never reads, so the saved model stays small."""
        assert self.pipeline is not None  # noqa: S101 - called right after fitting
        features = self.pipeline.named_steps["features"]
        vectorizers = (
            [v for _name, v in features.transformer_list]
            if isinstance(features, FeatureUnion)
            else [features]
        )
        for vectorizer in vectorizers:
            if hasattr(vectorizer, "stop_words_"):
                vectorizer.stop_words_ = None
        model = self.pipeline.named_steps["model"]
        model.coef_ = model.coef_.astype(np.float32)

    # --- prediction ---------------------------------------------------------------------

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, one column per label (self.labels order), each row summing to 1.

        With a learnt out-of-scope class: how the text divides among the labels, if it is one.
        """
        labels = self._all_probabilities(texts)[:, : len(self.labels)]
        return labels / labels.sum(axis=1, keepdims=True)

    def _all_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """probabilities(), then the out-of-scope column if there is one: rows sum to 1."""
        if self.pipeline is None:
            raise RuntimeError("The classifier has not been trained.")
        return _softmax(self._scores(self.pipeline, texts), self.temperature)

    def predict(self, text: str) -> Prediction:
        """The label of one text, UNKNOWN under the threshold, with the best and the next ones."""
        return self._prediction(self._all_probabilities([text])[0], self.knows_a_word(text))

    def predict_many(self, texts: Iterable[str]) -> list[Prediction]:
        texts = list(texts)
        if not texts:
            return []
        return [
            self._prediction(row, self.knows_a_word(text))
            for row, text in zip(self._all_probabilities(texts), texts, strict=True)
        ]

    def knows_a_word(self, text: str) -> bool:
        """Whether the text has a word the model saw in training (or no word at all).

        Character n-grams give every string some score, so "zzzz qwerty asdf" would otherwise get
        the catch-all label with a middling confidence; a text of only unseen words is UNKNOWN.
        """
        vectorizer = self._word_vectorizer()
        if vectorizer is None:
            return True
        analyzer = _ANALYZERS.get(vectorizer)
        if analyzer is None:
            analyzer = _ANALYZERS[vectorizer] = vectorizer.build_analyzer()
        words = [token for token in analyzer(text) if " " not in token]
        vocabulary = vectorizer.vocabulary_
        return not words or any(word in vocabulary for word in words)

    def _word_vectorizer(self) -> TfidfVectorizer | None:
        if self.pipeline is None:
            return None
        features = self.pipeline.named_steps["features"]
        if isinstance(features, TfidfVectorizer):
            return features
        return dict(features.transformer_list).get("words")

    def _prediction(self, row: np.ndarray, known: bool = True) -> Prediction:
        """Read one row of _all_probabilities(): labels, then out-of-scope if learnt."""
        refused = int(row.argmax()) >= len(self.labels)  # the out-of-scope class is likeliest
        row = row[: len(self.labels)] / row[: len(self.labels)].sum()
        order = np.argsort(row)[::-1]
        best = self.labels[order[0]]
        confidence = float(row[order[0]])
        return Prediction(
            label=best
            if confidence >= self.threshold
            and not refused
            and (known or confidence >= UNSEEN_WORDS_CONFIDENCE)
            else UNKNOWN,
            confidence=confidence,
            best=best,
            alternatives=tuple(
                (self.labels[i], float(row[i])) for i in order[1 : 1 + ALTERNATIVES]
            ),
        )

    # --- files --------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model (compressed joblib) and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".partial")
        joblib.dump(self, partial, compress=3)
        partial.replace(path)  # readers never see a half-written model
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TextClassifier:
        # Our own model files (pickles): never load one a user uploaded.
        model = joblib.load(path)
        if not isinstance(model, cls):
            raise ModelNotFound(f"{path} is not a Concilia text classifier.")
        for name in encoder_names(model.encoder):
            encoders.check_available(name)  # a clear error now, not at the first message
        return model


_cache: dict[tuple[str, int], TextClassifier] = {}
_cache_lock = threading.Lock()


def model_paths(name: str) -> tuple[Path, Path]:
    """Where a model of this name is looked for: the trained one first, then the shipped one."""
    from django.conf import settings

    return Path(settings.NLU_MODEL_DIR) / f"{name}.joblib", SHIPPED_DIR / f"{name}.joblib"


def load_model(name: str) -> TextClassifier:
    """The model called `name`, loaded once per process (again when its file changes)."""
    trained, shipped = model_paths(name)
    for path in (trained, shipped):
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            continue
        key = (str(path), stamp)
        model = _cache.get(key)
        if model is None:
            with _cache_lock:
                model = _cache.get(key) or TextClassifier.load(path)
                for old in [k for k in _cache if k[0] == key[0]]:
                    del _cache[old]
                _cache[key] = model
        return model
    raise ModelNotFound(
        f"No NLU model named {name!r}: neither {trained} nor {shipped} exists. "
        f"Train one with `concilia nlu train DATA.csv --model {name}`."
    )


def forget_models() -> None:
    """Drop every loaded model (tests, and after training in a long-running process)."""
    with _cache_lock:
        _cache.clear()
