"""The text classifier: TF-IDF word+char features and a linear model.

The TF-IDF candidate of training.py (hybrid.py has the embedding ones).
Chosen by measurement (an earlier bench/model.py --compare): on word
1-2-gram + char_wb 2-5-gram TF-IDF, ridge regression matched or beat
logistic regression (C=10) and LinearSVC on both sample datasets and on
generated intent data, and was the only one over the sentiment target on
the fixed split; logistic regression was 5-10x slower with many classes.
On large problems (rows x classes) every exact solver needs 25-70 s, so a
3-epoch SGD hinge model takes over there (about 1 point less accurate).
Confidence is softmax(scores x scale) with the scale fitted on held-out data.
"""

from __future__ import annotations

import copy
import math
import os
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeClassifier, SGDClassifier
from sklearn.pipeline import FeatureUnion

from .hybrid import AbstainMixin

# Word tokens, or single symbols so "!!!" and emoji still count as words.
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"
# nnz(train) x outputs above which ridge is too slow and SGD takes over.
RIDGE_WORK_LIMIT = 20_000_000
SGD_EPOCHS = 3
DEFAULT_TEMPERATURE_SCALE = 5.0
MAX_TEMPERATURE_SCALE = 30.0


def build_vectorizer(n_rows: int, chars: bool = True) -> FeatureUnion:
    """Word and character n-gram TF-IDF; rare n-grams dropped on big data.

    ``chars=False`` keeps the word n-grams only (see training.WORDS_ONLY_ROWS).
    """
    min_df = 1 if n_rows < 10_000 else 2
    parts = [(
        "word",
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, token_pattern=TOKEN_PATTERN,
                        min_df=min_df, dtype=np.float64),
    )]
    if chars:
        parts.append((
            "char",
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df,
                            dtype=np.float64),
        ))
    return FeatureUnion(parts)


def choose_learner(nnz: int, n_classes: int) -> str:
    """'ridge' unless the estimated solver work exceeds the time budget."""
    outputs = 1 if n_classes <= 2 else n_classes
    return "ridge" if nnz * outputs <= RIDGE_WORK_LIMIT else "sgd"


def make_estimator(kind: str):
    """A fresh, unfitted estimator of the chosen kind."""
    if kind == "ridge":
        return RidgeClassifier(alpha=1.0, solver="lsqr", tol=1e-3)
    if kind == "sgd":
        return SGDClassifier(
            loss="hinge", alpha=1e-4, max_iter=SGD_EPOCHS, tol=None,
            n_jobs=min(2, os.cpu_count() or 1), random_state=0,
        )
    raise ValueError(f"unknown learner {kind!r}")


def fit_estimator(kind: str, X, y):
    """Fit quietly (SGD with a fixed epoch budget always 'fails to converge')."""
    est = make_estimator(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


def refit_all(kind: str, held, X, y):
    """Final model on every row.

    Ridge is refitted from scratch. SGD continues from the held-out model
    with one more epoch over all rows: a third of the cost of a fresh fit,
    and within ~0.3 accuracy points of it on the 25k x 150 benchmark.
    """
    if kind == "sgd" and set(held.classes_) == set(y):
        est = copy.deepcopy(held)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.partial_fit(X, y)
        return est
    return fit_estimator(kind, X, y)


def class_scores(est, X) -> np.ndarray:
    """Decision scores as an (n, K) matrix, also for binary problems."""
    s = np.asarray(est.decision_function(X), dtype=np.float64)
    if s.ndim == 1:
        s = np.column_stack([-s / 2, s / 2])
    return s


def fit_temperature(scores: np.ndarray, y_idx: np.ndarray, smoothing: float = 0.02) -> float:
    """Scale for softmax(scores * scale) minimising held-out log-loss.

    Targets are label-smoothed and the scale capped, because a small
    held-out set with no mistakes would otherwise push the scale to
    infinity and make every guess (even gibberish) look ~100 % certain.
    """
    if len(y_idx) == 0:
        return DEFAULT_TEMPERATURE_SCALE
    rows = np.arange(len(y_idx))

    def loss(log_scale: float) -> float:
        z = scores * math.exp(log_scale)
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        true = log_p[rows, y_idx]
        return float(-np.mean((1 - smoothing) * true + smoothing * log_p.mean(axis=1)))

    grid = np.linspace(math.log(0.5), math.log(MAX_TEMPERATURE_SCALE), 41)
    best = min(grid, key=loss)
    fine = np.linspace(best - 0.1, best + 0.1, 11)
    return float(min(math.exp(min(fine, key=loss)), MAX_TEMPERATURE_SCALE))


def strip_for_pickle(vectorizer: FeatureUnion) -> None:
    """Drop pruned-term lists sklearn keeps only for introspection."""
    for _, part in vectorizer.transformer_list:
        if hasattr(part, "stop_words_"):
            part.stop_words_ = None


class TextClassifier(AbstainMixin):
    """Fitted features + linear weights + confidence scale; this is what's saved.

    ``threshold`` and ``oos_label`` (see hybrid.AbstainMixin) are set after
    training; models saved before they existed read the class defaults.

    Only the vectorisers and a plain weight matrix are kept (not the sklearn
    estimator), so scoring one chat message is a dictionary lookup per
    n-gram plus a small dot product: well under the 5 ms budget.
    """

    def __init__(self, vectorizer: FeatureUnion, estimator, learner: str, scale: float) -> None:
        self.parts = [part for _, part in vectorizer.transformer_list]
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        bias = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
        if coef.shape[0] == 1:  # binary: one score d becomes (-d/2, d/2)
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
            bias = np.array([-bias[0] / 2, bias[0] / 2])
        self.weights = np.ascontiguousarray(coef.T, dtype=np.float32)  # (features, classes)
        self.bias = bias
        self.classes_ = np.asarray(estimator.classes_)
        self.learner = learner
        self.scale = scale
        self._analyzers = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_analyzers"] = None
        return state

    def _features(self, texts: list[str]):
        return sp.hstack([part.transform(texts) for part in self.parts], format="csr", dtype=np.float32)

    def scores(self, texts: list[str]) -> np.ndarray:
        """(n, K) raw class scores for a batch of texts."""
        return np.asarray(self._features(texts) @ self.weights, dtype=np.float64) + self.bias

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.scores(texts) * self.scale, axis=1)

    def predict(self, texts: list[str]) -> list[str]:
        return [str(c) for c in self.classes_[self.scores(texts).argmax(axis=1)]]

    def score_one(self, text: str) -> np.ndarray:
        """Same numbers as ``scores([text])[0]`` without sklearn's per-call overhead."""
        if self._analyzers is None:
            self._analyzers = [part.build_analyzer() for part in self.parts]
        total = self.bias.copy()
        offset = 0
        for part, analyze in zip(self.parts, self._analyzers):
            vocab = part.vocabulary_
            counts: dict[int, int] = {}
            for gram in analyze(text):
                j = vocab.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if counts:
                idx = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                if part.sublinear_tf:
                    tf = 1.0 + np.log(tf)
                values = tf * part.idf_[idx]
                values /= np.sqrt(values @ values)
                total += values @ self.weights[idx + offset]
            offset += len(vocab)
        return total

    def proba_one(self, text: str) -> np.ndarray:
        return softmax(self.score_one(text) * self.scale)

    def predict_one(self, text: str) -> tuple[str, float]:
        """Best label and its softmax confidence for one message."""
        proba = self.proba_one(text)
        i = int(proba.argmax())
        return str(self.classes_[i]), float(proba[i])
