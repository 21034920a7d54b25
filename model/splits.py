"""Which rows a model is scored on: the held-out split, k folds for small data, and no repeats.

Both splits are per class and seeded, so a retrain on the same data is scored on the same
rows; a class with one example is never tested (it can't be both learned and tested). Used by
training.py (the same rows score every candidate learner) and reported by the worker
(``cv_folds``).
"""

from __future__ import annotations

import numpy as np

from .types import Example
from .validation import text_key

TEST_FRACTION = 0.2
CV_FOLDS = 5


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
