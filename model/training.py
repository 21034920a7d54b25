"""Fit a TextClassifier and measure it honestly on held-out rows.

Plain blocking functions: the worker process calls them, and so does the
benchmark, so there's exactly one training code path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from .learner import (
    DEFAULT_TEMPERATURE_SCALE,
    refit_all,
    TextClassifier,
    build_vectorizer,
    choose_learner,
    class_scores,
    fit_estimator,
    fit_temperature,
    strip_for_pickle,
)
from .types import Example
from .validation import require_trainable, responses_by_label, text_key

TEST_FRACTION = 0.2
# Below this many rows a 20 % hold-out is too noisy; use k-fold instead.
CV_MAX_ROWS = 500
CV_FOLDS = 5


@dataclass(slots=True)
class TrainResult:
    """A fitted model plus the numbers we tell the user about it."""

    model: TextClassifier
    accuracy: float
    macro_f1: float
    eval_rows: int
    eval_method: str  # "held-out", "cross-validation" or "training"
    rows: int
    classes: int
    seconds: float
    learner: str
    responses: dict[str, str] = field(default_factory=dict)
    duplicates_removed: int = 0


def dedupe(examples: list[Example]) -> list[Example]:
    """Drop repeated (text, label) pairs so they can't straddle the split."""
    seen: set[tuple[str, str | None]] = set()
    out = []
    for e in examples:
        key = (text_key(e.text), e.label)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def holdout_split(labels: list[str], fraction: float = TEST_FRACTION, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class split: ~fraction of each class with >=2 rows goes to test.

    Classes with a single example stay in training (they can't be both
    learned and tested), so the split works for any dataset.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=object)
    train, test = [], []
    for cls in sorted(set(labels)):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_test = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * fraction)))
        test.extend(idx[:n_test])
        train.extend(idx[n_test:])
    return np.sort(np.asarray(train, dtype=int)), np.sort(np.asarray(test, dtype=int))


def kfold_split(labels: list[str], k: int = CV_FOLDS, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold for small data; single-example classes are never tested."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=object)
    fold = np.full(len(labels), -1)
    offset = 0
    for cls in sorted(set(labels)):
        idx = np.flatnonzero(y == cls)
        if len(idx) < 2:
            continue
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k) if (fold == f).any()]


def _cross_check(learner: str, X, y: np.ndarray, classes: np.ndarray, splits) -> tuple[float, float, float, object]:
    """Accuracy, macro-F1 and confidence scale from out-of-sample predictions.

    Returns the last fitted estimator too, so a single held-out split can
    warm-start the final fit.
    """
    column = {c: i for i, c in enumerate(classes)}
    blocks, rows = [], []
    est = None
    for train_idx, test_idx in splits:
        est = fit_estimator(learner, X[train_idx], y[train_idx])
        scores = np.full((len(test_idx), len(classes)), -1e9)
        scores[:, [column[c] for c in est.classes_]] = class_scores(est, X[test_idx])
        blocks.append(scores)
        rows.append(test_idx)
    scores = np.vstack(blocks)
    truth = y[np.concatenate(rows)]
    pred = classes[scores.argmax(axis=1)]
    accuracy = float(accuracy_score(truth, pred))
    macro_f1 = float(f1_score(truth, pred, average="macro", zero_division=0))
    scale = fit_temperature(scores, np.array([column[t] for t in truth]))
    return accuracy, macro_f1, scale, est


def train_model(
    examples: list[Example],
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
) -> TrainResult:
    """Held-out evaluation (k-fold on small data), then the final fit on every row.

    BLAS is limited to one thread: the solvers make thousands of tiny dense
    calls, and multi-threaded BLAS on a busy 2-core host spins so hard that
    training got 5x slower in measurement.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(examples, progress, seed)


def _train(examples: list[Example], progress: Callable[[str], None] | None, seed: int) -> TrainResult:
    start = time.perf_counter()
    require_trainable(examples)
    unique = dedupe(examples)
    texts = [e.text for e in unique]
    labels = [str(e.label) for e in unique]
    classes = sorted(set(labels))
    if progress:
        progress(f"training {len(unique)} rows, {len(classes)} classes")

    # Vocabulary/IDF see all texts (no labels), so one transform serves every fit.
    vectorizer = build_vectorizer(len(texts))
    X = vectorizer.fit_transform(texts).tocsr()
    y = np.asarray(labels, dtype=object)
    cross_validate = len(unique) <= CV_MAX_ROWS
    splits = kfold_split(labels, seed=seed) if cross_validate else [holdout_split(labels, seed=seed)]
    splits = [(tr, te) for tr, te in splits if len(te) and len(set(y[tr])) >= 2]
    learner = choose_learner(X[splits[0][0]].nnz if splits else X.nnz, len(classes))

    scale = DEFAULT_TEMPERATURE_SCALE
    if splits:
        if progress:
            progress("cross-validation" if cross_validate else "held-out fit")
        check = _cross_check(learner, X, y, np.asarray(classes, dtype=object), splits)
        accuracy, macro_f1, scale, held = check
        eval_rows = sum(len(te) for _, te in splits)
        method = "cross-validation" if cross_validate else "held-out"
        if progress:
            progress("final fit")
        final = refit_all(learner, held, X, y) if not cross_validate else fit_estimator(learner, X, y)
    else:
        final = fit_estimator(learner, X, y)
        pred = np.asarray(final.classes_)[class_scores(final, X).argmax(axis=1)]
        accuracy = float(accuracy_score(y, pred))
        macro_f1 = float(f1_score(y, pred, average="macro", zero_division=0))
        eval_rows, method = len(y), "training"

    strip_for_pickle(vectorizer)
    model = TextClassifier(vectorizer, final, learner, scale)
    return TrainResult(
        model=model,
        accuracy=accuracy,
        macro_f1=macro_f1,
        eval_rows=eval_rows,
        eval_method=method,
        rows=len(unique),
        classes=len(classes),
        seconds=time.perf_counter() - start,
        learner=learner,
        responses=responses_by_label(examples),
        duplicates_removed=len(examples) - len(unique),
    )
