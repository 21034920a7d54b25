"""Sentence-embedding classifiers and learned abstention.

Measured (bench/model.py, held-out): a linear model on all-MiniLM-L6-v2
embeddings beats TF-IDF on sentiment and on CLINC150; a weighted sum of the
two models' scores beats both on CLINC150 (standard test set: .958 against
.952 / .918). Which one a scope gets is decided per dataset by held-out
accuracy at training (training.py), so each is kept here.

The embedding model is softmax regression on the 384-d vectors
(logistic.py); models saved when it was a closed-form ridge have weights of
the same shape and still load.

Abstention: ``threshold`` on the calibrated confidence is learned on held-out
rows for a target precision (``fit_threshold``); a predicted out-of-scope
label abstains too. With embeddings, the confidence is discounted by
familiarity: the cosine similarity to the nearest of a few stored training
rows, squared (``certainty``). A message unlike anything taught is the
typical out-of-scope one, which a softmax alone can still be sure about. On
CLINC150's standard test set, the best out-of-scope recall that keeps
in-scope accuracy >= .95 went from .68 (confidence) to .75-.77 (certainty).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from .encoder import ENGLISH, shared_encoder
from errors import Phrase

from .errors import IncompatibleModelError

# The least share of in-scope held-out rows a learned threshold must still answer. With explicit
# out-of-scope examples the data shows what to refuse, and precision may cost up to half the answers
# (CLINC150 standard protocol: 88 % answered for .956 in-scope). Without them, "not sure" is only for
# what is unlike everything taught: on 80 hand-written reviews the target precision alone refused
# 42 % of held-out rows and 4 of 10 everyday chat messages; at 90 % all 10 were answered right.
MIN_COVERAGE = 0.5
MIN_COVERAGE_WITHOUT_OOS = 0.9
_NEEDS_ENCODER = Phrase("This model was trained with the sentence encoder, which is now turned off or not installed. "
                         "Please retrain it with `!train`.")
_NEEDS_MULTILINGUAL = Phrase("This model was trained with the multilingual sentence encoder, which is now turned off "
                             "or not installed. Please retrain it with `!train`.")


# At most this many training rows per class (and in all) are kept to measure familiarity:
# 20 per class kept nearly all of the gain above (.749 vs .762 with every row), and
# 32 x 150 classes is 7 MB of float32 in the model.
REFERENCE_PER_CLASS = 32
REFERENCE_MAX_ROWS = 8_000
_SIMILARITY_CHUNK = 256


# ----------------------------------------------------------- embeddings --
def pick_reference(E: np.ndarray, y: np.ndarray, oos_label: str | None, seed: int = 0) -> np.ndarray:
    """A few in-scope training rows per class (float32, unit length), for ``familiarity``."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(y, dtype=object)
    classes = [c for c in sorted(set(labels.tolist())) if c != oos_label]
    per_class = max(1, min(REFERENCE_PER_CLASS, REFERENCE_MAX_ROWS // max(1, len(classes))))
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in classes]
    rows = np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=int)
    return np.ascontiguousarray(E[rows], dtype=np.float32)


def familiarity(E: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row to its nearest reference row (0 with no reference)."""
    out = np.zeros(len(E), dtype=np.float64)
    if len(reference) == 0:
        return out
    for start in range(0, len(E), _SIMILARITY_CHUNK):
        out[start : start + _SIMILARITY_CHUNK] = (E[start : start + _SIMILARITY_CHUNK] @ reference.T).max(axis=1)
    return out


def certainty(confidence: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """Confidence discounted by familiarity; in [0, 1]."""
    return confidence * np.clip(similarity, 0.0, 1.0) ** 2


def embedding_scores(W: np.ndarray, E: np.ndarray) -> np.ndarray:
    return np.asarray(E @ W[:-1] + W[-1], dtype=np.float64)


# ------------------------------------------------------------ abstention --
def fit_threshold(
    confidence: np.ndarray, correct: np.ndarray, in_scope: np.ndarray, predicted_oos: np.ndarray, target: float,
    min_coverage: float | None = None,
) -> tuple[float, float, float]:
    """(threshold, precision, coverage) on held-out rows.

    An answer is a row with confidence >= threshold whose prediction is not
    out of scope; precision is the share of answers that are right (an
    out-of-scope row answered is wrong). The lowest threshold reaching
    ``target`` wins; if none does, the most precise one that still answers
    at least ``min_coverage`` of the in-scope rows (by default MIN_COVERAGE
    when some held-out rows are out of scope, else MIN_COVERAGE_WITHOUT_OOS).
    """
    if len(confidence) == 0:
        return 0.0, 1.0, 1.0
    candidates = np.unique(np.concatenate([[0.0], confidence]))
    best: tuple[float, float, float] | None = None
    fallback: tuple[float, float, float] | None = None
    n_in = max(1, int(in_scope.sum()))
    if min_coverage is None:
        min_coverage = MIN_COVERAGE if (~in_scope).any() else MIN_COVERAGE_WITHOUT_OOS
    for t in candidates:
        answered = (confidence >= t) & ~predicted_oos
        precision = float(correct[answered].mean()) if answered.any() else 1.0
        coverage = float((answered & in_scope).sum() / n_in)
        if coverage < min_coverage and in_scope.any():
            break  # thresholds only grow from here
        if precision >= target:
            best = (float(t), precision, coverage)
            break
        if fallback is None or precision > fallback[1]:
            fallback = (float(t), precision, coverage)
    return best or fallback or (0.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Decisions:
    """What the model decided for some rows: the one answer/"not sure" rule, in one place.

    ``probability`` is the calibrated (temperature-scaled) probability of the
    best label; ``certainty`` is what the learned threshold applies to (the
    probability, discounted by familiarity when embeddings are used).
    """

    labels: list[str]
    probability: np.ndarray
    certainty: np.ndarray
    abstain: np.ndarray


def decide_rows(classes: np.ndarray, proba: np.ndarray, similarity: np.ndarray | None, *,
                threshold: float | None, oos_label: str | None, floor: float = 0.0) -> Decisions:
    """The single rule every caller uses (chat, voice, the Transcribe menu, ``!test``).

    "Not sure" when any of: the certainty is below the threshold learned at
    training (``TARGET_PRECISION``); the best label is the out-of-scope one;
    the calibrated probability is below the operator's ``floor``
    (``CONFIDENCE_THRESHOLD``). The floor is on the probability, never on the
    certainty, so it means the same for every learner: familiarity has its
    own learned threshold (a floor on certainty made a sentiment model say
    "not sure" to nearly all short chat).
    """
    best = proba.argmax(axis=1)
    labels = [str(c) for c in classes[best]]
    probability = proba[np.arange(len(best)), best]
    sure = probability if similarity is None else certainty(probability, similarity)
    abstain = probability < floor
    if threshold is not None:
        abstain |= sure < threshold
    if oos_label is not None:
        abstain |= np.array([label == oos_label for label in labels], dtype=bool)
    return Decisions(labels, probability, sure, abstain)


class AbstainMixin:
    """Shared decision rule; class defaults keep models pickled before it loadable."""

    threshold: float | None = None
    oos_label: str | None = None
    classes_: np.ndarray

    def decide_proba(self, proba: np.ndarray, similarity: np.ndarray | None = None, floor: float = 0.0
                     ) -> Decisions:
        """Decisions for rows of probabilities (and familiarity, if measured)."""
        return decide_rows(self.classes_, proba, similarity, threshold=self.threshold, oos_label=self.oos_label,
                           floor=floor)

    def decisions(self, texts: list[str], floor: float = 0.0) -> Decisions:
        return self.decide_proba(self.predict_proba(texts), floor=floor)

    def decision_one(self, text: str, floor: float = 0.0) -> Decisions:
        return self.decide_proba(self.proba_one(text)[None, :], floor=floor)

    def decide(self, texts: list[str], floor: float = 0.0) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Labels, certainties and abstentions."""
        d = self.decisions(texts, floor)
        return d.labels, d.certainty, d.abstain

    def decide_one(self, text: str, floor: float = 0.0) -> tuple[str, float, bool]:
        """Best label, its certainty, and whether to say "not sure" instead."""
        d = self.decision_one(text, floor)
        return d.labels[0], float(d.certainty[0]), bool(d.abstain[0])


class HybridClassifier(AbstainMixin):
    """Embedding softmax regression, optionally mixed with a TF-IDF TextClassifier; this is what's saved.

    scores = mix * tfidf / sd_tfidf + (1 - mix) * emb / sd_emb, the scales
    measured on training scores so both parts speak in the same units.
    """

    reference: np.ndarray | None = None  # models saved before familiarity existed load without it
    # Which sentence encoder (encoder.shared_encoder's name) made the vectors; models saved before
    # there were two were all made with the English one.
    encoder_name: str = "all-MiniLM-L6-v2"

    def __init__(self, tfidf, emb_weights: np.ndarray, classes: np.ndarray, *, mix: float, sd_tfidf: float,
                 sd_emb: float, learner: str, scale: float, threshold: float | None, oos_label: str | None,
                 reference: np.ndarray | None = None, encoder_name: str | None = None) -> None:
        self.tfidf = tfidf
        self.emb_weights = np.ascontiguousarray(emb_weights, dtype=np.float32)
        self.classes_ = np.asarray(classes)
        if tfidf is not None and list(tfidf.classes_) != list(self.classes_):
            raise ValueError("TF-IDF and embedding parts disagree on the classes")
        self.mix = mix if tfidf is not None else 0.0
        self.sd_tfidf, self.sd_emb = sd_tfidf, sd_emb
        self.learner = learner
        self.scale = scale
        self.threshold = threshold
        self.oos_label = oos_label
        self.reference = reference
        if encoder_name is not None:
            self.encoder_name = encoder_name

    def _encoder(self):
        encoder = shared_encoder(self.encoder_name)
        if encoder is None:
            raise IncompatibleModelError(_NEEDS_ENCODER if self.encoder_name == ENGLISH else _NEEDS_MULTILINGUAL)
        return encoder

    def combine(self, tfidf_scores: np.ndarray | None, emb_scores: np.ndarray) -> np.ndarray:
        s = (1.0 - self.mix) * emb_scores / self.sd_emb
        if self.tfidf is not None and tfidf_scores is not None:
            s = s + self.mix * tfidf_scores / self.sd_tfidf
        return s

    def _scores(self, texts: list[str], E: np.ndarray) -> np.ndarray:
        t = self.tfidf.scores(texts) if self.tfidf is not None else None
        return self.combine(t, embedding_scores(self.emb_weights, E))

    def scores(self, texts: list[str]) -> np.ndarray:
        return self._scores(texts, self._encoder().encode(texts))

    def _similarity(self, E: np.ndarray) -> np.ndarray | None:
        return None if self.reference is None else familiarity(E, self.reference)

    def decisions(self, texts: list[str], floor: float = 0.0) -> Decisions:
        E = self._encoder().encode(texts)
        return self.decide_proba(softmax(self._scores(texts, E) * self.scale, axis=1), self._similarity(E), floor)

    def decision_one(self, text: str, floor: float = 0.0) -> Decisions:
        e = self._encoder().encode_one(text)[None, :]
        t = self.tfidf.score_one(text)[None, :] if self.tfidf is not None else None
        proba = softmax(self.combine(t, embedding_scores(self.emb_weights, e)) * self.scale, axis=1)
        return self.decide_proba(proba, self._similarity(e), floor)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax(self.scores(texts) * self.scale, axis=1)

    def predict(self, texts: list[str]) -> list[str]:
        return [str(c) for c in self.classes_[self.scores(texts).argmax(axis=1)]]

    def proba_one(self, text: str) -> np.ndarray:
        e = self._encoder().encode_one(text)
        t = self.tfidf.score_one(text) if self.tfidf is not None else None
        return softmax(self.combine(t, embedding_scores(self.emb_weights, e[None, :])[0]) * self.scale)

    def predict_one(self, text: str) -> tuple[str, float]:
        label, confidence, _ = self.decide_one(text)
        return label, confidence
