"""Fit a classifier, choose the learner and the abstention threshold on held-out rows.

Candidates: TF-IDF (ridge, or SGD on big data), and with the sentence
encoder on: softmax regression on embeddings alone and four TF-IDF/embedding
mixes, plus for non-English data one linear model on TF-IDF and embeddings
together ("joint"). Which encoder: the English one for English data, the
multilingual one otherwise (language.py). Each candidate is scored on the
same held-out rows (k-fold on small data); TF-IDF alone is the baseline, and
another candidate replaces it only when it is right on clearly more of those
rows (``beats_baseline``); the most accurate of those wins. Its held-out
certainties (confidence, discounted by familiarity when embeddings are used;
see hybrid.py) set the threshold below which the model says it isn't sure
(``TrainOptions.target_precision``).
Plain blocking functions: the worker process calls them, and so does the
benchmark, so there's exactly one training code path.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pathlib import Path

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from .embedcache import embed_with_cache
from .encoder import ENGLISH, MULTILINGUAL, shared_encoder
from .hybrid import HybridClassifier, certainty, embedding_scores, familiarity, fit_threshold, pick_reference
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
from .language import profile as language_profile
from .logistic import fit_softmax
from .splits import dedupe, holdout_split, kfold_split
from .types import Example
from .validation import require_trainable, responses_by_label

# Below this many rows a 20 % hold-out (splits.TEST_FRACTION) is too noisy; use k-fold instead.
CV_MAX_ROWS = 500
# With the encoder on, datasets above this many rows get word n-grams only in the TF-IDF branch:
# on CLINC150 (15,100 rows) the best mix lost .1 point (.957 vs .956) and the branch took
# 1.1 s instead of 5.2 s (character n-grams are most of the vectorising and 4/5 of the nonzeros).
WORDS_ONLY_ROWS = 5_000
# Weights of TF-IDF in the mixed candidates (the rest is the embedding model).
MIX_WEIGHTS = (0.2, 0.3, 0.5, 0.7)
# The joint candidate (non-English data): a linear SVM on [TF-IDF | TF-IDF of the encoder's
# SentencePiece pieces | JOINT_SCALE x embedding]. On CEDR (Russian, 7,392 rows) it beat the best mix
# by about a point and a half (held-out .793 vs .778, test .793 vs .770; without the pieces .786 and
# .787; docs/languages.md); scale and C chosen on held-out rows of the train split.
JOINT_SCALE = 0.5
JOINT_C = 0.5
# rows x outputs above which the joint candidate is skipped (liblinear fits one model per class:
# 7,392 x 6 took ~2 s a fit on a busy 2-core host).
JOINT_MAX_WORK = 100_000
# A candidate replaces TF-IDF alone only if it is right on at least MIN_GAIN_ROWS more held-out rows,
# and the gain is at least NOISE_Z standard errors of the paired difference (the square root of the
# rows where exactly one of the two is right): a tie or one row is noise, and so is +5 rows won by
# trading 60 rows right for 55 wrong. TF-IDF alone is what SENTENCE_ENCODER=false would give, the
# floor the encoder must never push the model under. 0.5, not 1: SMS spam's mixes beat TF-IDF by 2-3
# of 892 held-out rows with 4-9 disagreements, and at 1 the choice flipped between runs on float
# noise in the vectors (its test figure moved by a row either way: .989-.992).
NOISE_Z = 0.5
MIN_GAIN_ROWS = 2


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
    candidates: dict[str, float] = field(default_factory=dict)  # held-out accuracy of each learner tried
    threshold: float | None = None  # learned abstention threshold on the confidence
    precision: float | None = None  # held-out precision of the answers at that threshold
    coverage: float | None = None  # share of in-scope held-out rows answered at that threshold
    oos_label: str | None = None
    embedded: int = 0  # rows the encoder had to embed (the rest came from the cache)
    encoder_used: bool = False
    encoder_name: str | None = None  # which encoder embedded the rows (encoder.ENGLISH or MULTILINGUAL)
    language: str = ""  # what the texts looked like (language.LanguageProfile.describe)


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Settings the worker passes in (SENTENCE_ENCODER, TARGET_PRECISION, OOS_LABELS...)."""

    encoder: bool = False
    target_precision: float = 0.9
    oos_labels: tuple[str, ...] = ("oos", "out_of_scope")
    embed_cache: Path | None = None
    embed_cache_bytes: int = 32 * 1024 * 1024


def _out_of_sample(fit, score, splits, n: int, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray, object]:
    """Held-out scores (rows in ``order``) of a learner over the splits, aligned to ``classes``.

    ``fit(train_idx)`` returns a model with ``classes_``; ``score(model,
    test_idx)`` its (len(test), K_model) scores. Classes a fold never saw get
    a score below every other. Returns the last model too (warm start).
    """
    column = {c: i for i, c in enumerate(classes)}
    blocks, rows, model = [], [], None
    for train_idx, test_idx in splits:
        model = fit(train_idx)
        raw = score(model, test_idx)
        block = np.full((len(test_idx), len(classes)), float(raw.min()) - 1.0)
        block[:, [column[c] for c in model.classes_]] = raw
        blocks.append(block)
        rows.append(test_idx)
    return np.vstack(blocks), np.concatenate(rows), model


class _EmbModel:
    """Softmax regression on embeddings with ``classes_`` (for _out_of_sample)."""

    def __init__(self, E: np.ndarray, y: np.ndarray) -> None:
        self.W, self.classes_ = fit_softmax(E, y)


def _metrics(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return float(accuracy_score(truth, pred)), float(f1_score(truth, pred, average="macro", zero_division=0))


def train_model(
    examples: list[Example],
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
    options: TrainOptions | None = None,
) -> TrainResult:
    """Held-out evaluation (k-fold on small data), then the final fit on every row.

    BLAS is limited to one thread: the solvers make thousands of tiny dense
    calls, and multi-threaded BLAS on a busy 2-core host spins so hard that
    training got 5x slower in measurement.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _train(examples, progress, seed, options or TrainOptions())


def _normalise_oos(labels: list[str], oos_labels: tuple[str, ...]) -> tuple[list[str], str | None]:
    """Every label spelled like an out-of-scope label becomes one (the first seen)."""
    wanted = {x.casefold() for x in oos_labels}
    found = next((lab for lab in labels if lab.casefold() in wanted), None)
    if found is None:
        return labels, None
    return [found if lab.casefold() in wanted else lab for lab in labels], found


@dataclass(slots=True)
class _Part:
    """One branch's held-out scores (rows in ``order``) and its final fit."""

    scores: np.ndarray | None = None
    order: np.ndarray | None = None
    final: object = None
    vectorizer: object = None
    kind: str = ""
    features: object = None  # the TF-IDF matrix of every row (for the joint candidate)
    pieces: object = None  # the joint candidate's extra TF-IDF on SentencePiece pieces: (vectorizer, matrix)


def _tfidf_part(texts: list[str], y: np.ndarray, splits, classes: np.ndarray, cross_validate: bool,
                chars: bool, pieces: bool = False) -> _Part:
    """Vectorise, score the held-out rows, fit on every row (all of it, whether chosen or not).

    ``pieces``: also vectorise the multilingual encoder's SentencePiece pieces, for the joint candidate.
    """
    # Vocabulary/IDF see all texts (no labels), so one transform serves every fit.
    vectorizer = build_vectorizer(len(texts), chars=chars)
    X = vectorizer.fit_transform(texts).tocsr()
    # Words only means a big dataset beside the embedding model, where TF-IDF is the minor partner:
    # SGD there (0.4 s on 12,750 rows x 78 labels, ridge 3.3 s; the mix lost nothing measurable).
    kind = "sgd" if not chars else choose_learner(X[splits[0][0]].nnz if splits else X.nnz, len(classes))
    part = _Part(vectorizer=vectorizer, kind=kind, features=X)
    held = None
    if splits:
        part.scores, part.order, held = _out_of_sample(
            lambda tr: fit_estimator(kind, X[tr], y[tr]), lambda est, te: class_scores(est, X[te]),
            splits, len(y), classes)
    if held is not None and not cross_validate:
        part.final = refit_all(kind, held, X, y)
    else:
        part.final = fit_estimator(kind, X, y)
    if not splits:
        part.scores, part.order = class_scores(part.final, X), np.arange(len(y))
    if pieces:
        from sklearn.feature_extraction.text import TfidfVectorizer

        from .multilingual import piece_ngrams

        piece_vectorizer = TfidfVectorizer(analyzer=piece_ngrams, sublinear_tf=True, dtype=np.float64)
        part.pieces = (piece_vectorizer, piece_vectorizer.fit_transform(texts).tocsr())
    return part


def _embedding_part(E: np.ndarray, y: np.ndarray, splits, classes: np.ndarray) -> _Part:
    """Softmax regression's held-out scores, with the final fit on every row in a thread beside them.

    The fits are BLAS-bound and release the GIL: side by side, 1.4 s instead
    of 2.0 s for 12,750 rows x 78 labels.
    """
    part = _Part()
    with ThreadPoolExecutor(1, thread_name_prefix="softmax") as pool:
        final = pool.submit(fit_softmax, E, y)
        if splits:
            part.scores, part.order, _ = _out_of_sample(
                lambda tr: _EmbModel(E[tr], y[tr]), lambda m, te: embedding_scores(m.W, E[te]), splits, len(y),
                classes)
        part.final = final.result()
    return part


class _JointModel:
    """Linear SVM on TF-IDF and scaled embeddings side by side; ``split`` gives each part's weights."""

    def __init__(self, X, E: np.ndarray, y: np.ndarray) -> None:
        from sklearn.svm import LinearSVC

        self.svm = LinearSVC(C=JOINT_C).fit(_joint_features(X, E), y)
        self.classes_ = self.svm.classes_

    def scores(self, X, E: np.ndarray) -> np.ndarray:
        return class_scores(self.svm, _joint_features(X, E))

    def split(self, n_tfidf: int) -> tuple[object, np.ndarray]:
        """(an estimator-like TF-IDF part for TextClassifier, embedding weights with a zero bias row).

        Binary problems have one score d; TextClassifier turns it into
        (-d/2, d/2), and the embedding part does the same, so the parts add up.
        """
        from types import SimpleNamespace

        coef = np.atleast_2d(self.svm.coef_)
        tfidf = SimpleNamespace(coef_=coef[:, :n_tfidf], intercept_=self.svm.intercept_, classes_=self.classes_)
        dense = coef[:, n_tfidf:].T * JOINT_SCALE
        if dense.shape[1] == 1:
            dense = np.hstack([-dense / 2, dense / 2])
        return tfidf, np.vstack([dense, np.zeros((1, dense.shape[1]))])


def _joint_features(X, E: np.ndarray):
    import scipy.sparse as sp

    return sp.hstack([X, sp.csr_matrix(JOINT_SCALE * np.asarray(E, dtype=np.float64))], format="csr")


def _joint_part(X, E: np.ndarray, y: np.ndarray, splits, classes: np.ndarray) -> _Part:
    """Held-out scores, with the final fit in a thread beside them (liblinear releases the GIL)."""
    part = _Part(kind="joint")
    with ThreadPoolExecutor(1, thread_name_prefix="joint") as pool:
        final = pool.submit(_JointModel, X, E, y)
        if splits:
            part.scores, part.order, _ = _out_of_sample(
                lambda tr: _JointModel(X[tr], E[tr], y[tr]), lambda m, te: m.scores(X[te], E[te]), splits,
                len(y), classes)
        part.final = final.result()
    return part


def _joint_affordable(rows: int, n_classes: int) -> bool:
    return rows * (1 if n_classes <= 2 else n_classes) <= JOINT_MAX_WORK


def beats_baseline(right: np.ndarray, baseline: np.ndarray) -> bool:
    """Whether a candidate right on ``right`` (bool per held-out row) clearly beats the baseline's rows.

    Clearly: more rows right by at least MIN_GAIN_ROWS and NOISE_Z standard
    errors of the paired difference (rows where exactly one is right).
    """
    gain = int(right.sum()) - int(baseline.sum())
    disagree = int((right != baseline).sum())
    return gain >= MIN_GAIN_ROWS and gain >= NOISE_Z * math.sqrt(disagree)


def choose_candidate(correct: dict[str, np.ndarray], baseline: str = "tfidf") -> str:
    """The most accurate candidate among those that clearly beat the baseline; else the baseline.

    ``correct`` maps each candidate to whether it was right on each held-out
    row (the same rows for all). Ties go to the earlier candidate. So the
    choice is never less accurate than the baseline on those rows, and a
    gain within noise keeps the baseline.
    """
    chosen = baseline
    for name, right in correct.items():
        if name != baseline and beats_baseline(right, correct[baseline]) and right.sum() > correct[chosen].sum():
            chosen = name
    return chosen


def _held_out_familiarity(E: np.ndarray, y: np.ndarray, splits, oos_label: str | None, seed: int) -> np.ndarray:
    """Each held-out row's familiarity against a reference picked from its own training rows (same order)."""
    return np.concatenate([familiarity(E[te], pick_reference(E[tr], y[tr], oos_label, seed)) for tr, te in splits])


def _train(examples: list[Example], progress: Callable[[str], None] | None, seed: int,
           options: TrainOptions) -> TrainResult:
    """The TF-IDF branch runs in a thread beside embedding and the embedding model.

    Embedding keeps both cores busy and the TF-IDF branch is mostly Python,
    so overlapping them saved ~2 s of a 13,000-row cold training and ~3 s of
    a retrain (bench/model.py): the two branches share nothing until the
    candidates are compared.
    """
    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    require_trainable(examples)
    unique = dedupe(examples)
    texts = [e.text for e in unique]
    labels, oos_label = _normalise_oos([str(e.label) for e in unique], options.oos_labels)
    classes = np.asarray(sorted(set(labels)), dtype=object)
    say(f"training {len(unique)} rows, {len(classes)} classes")

    y = np.asarray(labels, dtype=object)
    cross_validate = len(unique) <= CV_MAX_ROWS
    splits = kfold_split(labels, seed=seed) if cross_validate else [holdout_split(labels, seed=seed)]
    splits = [(tr, te) for tr, te in splits if len(te) and len(set(y[tr])) >= 2]
    method = "cross-validation" if cross_validate else "held-out"

    E, embedded, emb, joint = None, 0, None, None
    encoder, encoder_name, language = None, None, ""
    if options.encoder:
        found = language_profile(texts)
        language = found.describe()
        encoder_name = ENGLISH if found.english else MULTILINGUAL
        encoder = shared_encoder(encoder_name)
        if encoder is None:  # not installed: TF-IDF alone (the English encoder made Russian worse)
            encoder_name = None
        elif encoder_name != ENGLISH:
            say(f"the texts don't look English ({language}): using the multilingual sentence model")
    if splits:
        say("cross-validation" if cross_validate else "held-out fit")
    with ThreadPoolExecutor(1, thread_name_prefix="tfidf") as pool:
        # Character n-grams carry the inflections of Russian and other languages: words only lost
        # 3 points on CEDR (.736 vs .769), so only big English data drops them.
        chars = encoder is None or encoder_name != ENGLISH or len(texts) <= WORDS_ONLY_ROWS
        joint_wanted = (encoder is not None and encoder_name != ENGLISH and bool(splits)
                        and _joint_affordable(len(texts), len(classes)))
        tfidf_future = pool.submit(_tfidf_part, texts, y, splits, classes, cross_validate, chars, joint_wanted)
        if encoder is not None:
            if not encoder.loaded:  # ~1 s; the first time on an install also makes its int8 copy (a few s)
                say("loading the sentence model")
                encoder.model_id  # noqa: B018 - loads it
            say(f"embedding {len(texts)} rows")
            E, embedded = embed_with_cache(texts, encoder.encode, options.embed_cache, options.embed_cache_bytes,
                                           encoder.model_id,
                                           progress=lambda done, total: say(f"embedding {done:,} of {total:,} rows"))
            emb = _embedding_part(E, y, splits, classes)
        tfidf = tfidf_future.result()
    if E is not None and tfidf.pieces is not None:
        import scipy.sparse as sp

        joint = _joint_part(sp.hstack([tfidf.features, tfidf.pieces[1]], format="csr"), E, y, splits, classes)
    tfidf.features = None

    truth = y[tfidf.order]
    candidates = {"tfidf": tfidf.scores}
    sd_t = sd_e = 1.0
    if emb is not None and splits:
        sd_t, sd_e = float(tfidf.scores.std()) or 1.0, float(emb.scores.std()) or 1.0
        candidates["embeddings"] = emb.scores
        for w in MIX_WEIGHTS:
            candidates[f"tfidf+embeddings {w:.1f}"] = w * tfidf.scores / sd_t + (1 - w) * emb.scores / sd_e
        if joint is not None:
            candidates["tfidf+embeddings joint"] = joint.scores
    predicted = {name: classes[scores.argmax(axis=1)] for name, scores in candidates.items()}
    figures = {name: _metrics(truth, pred) for name, pred in predicted.items()}
    chosen = choose_candidate({name: pred == truth for name, pred in predicted.items()})
    accuracy, macro_f1 = figures[chosen]
    scale, threshold, precision, coverage = DEFAULT_TEMPERATURE_SCALE, None, None, None
    if splits:
        scores = candidates[chosen]
        column = {c: i for i, c in enumerate(classes)}
        scale = fit_temperature(scores, np.array([column[t] for t in truth]))
        proba = softmax(scores * scale, axis=1)
        pred = classes[proba.argmax(axis=1)]
        confidence = proba.max(axis=1)
        if chosen != "tfidf":
            confidence = certainty(confidence, _held_out_familiarity(E, y, splits, oos_label, seed))
        threshold, precision, coverage = fit_threshold(
            confidence, pred == truth, truth != oos_label, pred == oos_label if oos_label else
            np.zeros(len(pred), dtype=bool), options.target_precision)
        eval_rows = len(tfidf.order)
    else:
        figures = {}
        eval_rows, method = len(y), "training"
    say("final fit")
    tfidf_model = None
    if chosen == "tfidf" or chosen.startswith("tfidf+"):
        strip_for_pickle(tfidf.vectorizer)
        vectorizer, final = tfidf.vectorizer, tfidf.final
        if chosen.endswith(" joint"):
            from sklearn.pipeline import FeatureUnion

            vectorizer = FeatureUnion([*tfidf.vectorizer.transformer_list, ("pieces", tfidf.pieces[0])])
            final, W = joint.final.split(sum(len(part.vocabulary_) for _, part in vectorizer.transformer_list))
        tfidf_model = TextClassifier(vectorizer, final, tfidf.kind, scale)
    if chosen == "tfidf":
        model = tfidf_model
        model.threshold, model.oos_label = threshold, oos_label
    else:
        if chosen.endswith(" joint"):  # scores = TF-IDF part + embedding part, as the SVM added them
            emb_classes, mix, sd_t, sd_e = joint.final.classes_, 0.5, 0.5, 0.5
        else:
            W, emb_classes = emb.final
            mix = float(chosen.rsplit(" ", 1)[1]) if chosen.startswith("tfidf+embeddings") else 1.0
        model = HybridClassifier(
            tfidf_model, W, emb_classes, mix=mix, sd_tfidf=sd_t, sd_emb=sd_e,
            learner=chosen, scale=scale, threshold=threshold, oos_label=oos_label,
            reference=pick_reference(E, y, oos_label, seed), encoder_name=encoder_name,
        )
    return TrainResult(
        model=model, accuracy=accuracy, macro_f1=macro_f1, eval_rows=eval_rows, eval_method=method,
        rows=len(unique), classes=len(classes), seconds=time.perf_counter() - start,
        learner=chosen if chosen != "tfidf" else f"tfidf {tfidf.kind}",
        responses=responses_by_label(examples), duplicates_removed=len(examples) - len(unique),
        candidates={k: round(v[0], 4) for k, v in figures.items()},
        threshold=threshold, precision=precision, coverage=coverage, oos_label=oos_label,
        embedded=embedded, encoder_used=E is not None, encoder_name=encoder_name, language=language,
    )
