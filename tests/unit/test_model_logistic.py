"""Softmax regression on embeddings (model/logistic.py): learns, warm-starts, and handles new classes."""

from __future__ import annotations

import numpy as np

from model import logistic
from model.hybrid import embedding_scores


def blobs(n_per_class: int, classes: list[str], seed: int = 0, spread: float = 0.35):
    """Unit vectors scattered around one random direction per class, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(classes), 384))
    X, y = [], []
    for c, centre in zip(classes, centres):
        points = centre / np.linalg.norm(centre) + spread * rng.normal(size=(n_per_class, 384)) / np.sqrt(384)
        X.append(points / np.linalg.norm(points, axis=1, keepdims=True))
        y += [c] * n_per_class
    return np.vstack(X).astype(np.float32), np.array(y, dtype=object)


def accuracy(W, classes, X, y) -> float:
    return float(np.mean(classes[embedding_scores(W, X).argmax(axis=1)] == y))


def test_learns_separable_classes_and_generalises():
    X, y = blobs(40, ["a", "b", "c", "d"])
    test_X, test_y = blobs(20, ["a", "b", "c", "d"], seed=0)
    W, classes = logistic.fit_softmax(X, y)
    assert W.shape == (385, 4) and W.dtype == np.float32 and list(classes) == ["a", "b", "c", "d"]
    assert accuracy(W, classes, X, y) == 1.0
    assert accuracy(W, classes, test_X, test_y) > 0.95


def test_two_classes_and_probabilities_follow_the_scores():
    X, y = blobs(30, ["ham", "spam"], seed=3)
    W, classes = logistic.fit_softmax(X, y)
    scores = embedding_scores(W, X)
    assert scores.shape == (60, 2)
    assert accuracy(W, classes, X, y) == 1.0


def test_iterations_are_capped_and_every_class_gets_a_column(monkeypatch):
    X, y = blobs(40, ["a", "b", "c", "new"], seed=1)
    iterations = []
    real = logistic.minimize

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        iterations.append(result.nit)
        return result

    monkeypatch.setattr(logistic, "minimize", counting)
    W, classes = logistic.fit_softmax(X, y)
    assert list(classes) == ["a", "b", "c", "new"] and W.shape == (385, 4)
    assert accuracy(W, classes, X, y) == 1.0
    assert 0 < iterations[0] <= logistic.MAX_ITERATIONS


def test_penalty_shrinks_weights_with_fewer_rows():
    X, y = blobs(10, ["a", "b"], seed=5)
    loose, _ = logistic.fit_softmax(X, y, penalty=1e-6, max_iterations=200)
    tight, _ = logistic.fit_softmax(X, y, penalty=1e-1, max_iterations=200)
    assert np.abs(tight[:-1]).sum() < np.abs(loose[:-1]).sum()
