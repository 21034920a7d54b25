"""Fit a classifier, choose the learner and the abstention threshold on held-out rows.

Candidates: TF-IDF (ridge, or SGD on big data), and with the sentence
encoder on: softmax regression on embeddings alone and four TF-IDF/embedding
mixes. Each is scored on the same held-out rows (k-fold on small data); the
most accurate wins, and its held-out certainties (confidence, discounted by
familiarity when embeddings are used; see hybrid.py) set the threshold below
which the model says it isn't sure (``TrainOptions.target_precision``).
Plain blocking functions: the worker process calls them, and so does the
benchmark, so there's exactly one training code path.
"""

from __future__ import annotations

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
from .encoder import shared_encoder
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
from .logistic import fit_softmax
from .types import Example
from .validation import require_trainable, responses_by_label, text_key

TEST_FRACTION = 0.2
# Below this many rows a 20 % hold-out is too noisy; use k-fold instead.
CV_MAX_ROWS = 500
CV_FOLDS = 5
# With the encoder on, datasets above this many rows get word n-grams only in the TF-IDF branch:
# on CLINC150 (15,100 rows) the best mix lost .1 point (.957 vs .956) and the branch took
# 1.1 s instead of 5.2 s (character n-grams are most of the vectorising and 4/5 of the nonzeros).
WORDS_ONLY_ROWS = 5_000
# Weights of TF-IDF in the mixed candidates (the rest is the embedding model).
MIX_WEIGHTS = (0.2, 0.3, 0.5, 0.7)


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


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """Settings the worker passes in (SENTENCE_ENCODER, TARGET_PRECISION, OOS_LABELS...)."""

    encoder: bool = False
    target_precision: float = 0.9
    oos_labels: tuple[str, ...] = ("oos", "out_of_scope")
    embed_cache: Path | None = None
    embed_cache_bytes: int = 32 * 1024 * 1024


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


def _tfidf_part(texts: list[str], y: np.ndarray, splits, classes: np.ndarray, cross_validate: bool,
                chars: bool) -> _Part:
    """Vectorise, score the held-out rows, fit on every row (all of it, whether chosen or not)."""
    # Vocabulary/IDF see all texts (no labels), so one transform serves every fit.
    vectorizer = build_vectorizer(len(texts), chars=chars)
    X = vectorizer.fit_transform(texts).tocsr()
    # Words only means a big dataset beside the embedding model, where TF-IDF is the minor partner:
    # SGD there (0.4 s on 12,750 rows x 78 labels, ridge 3.3 s; the mix lost nothing measurable).
    kind = "sgd" if not chars else choose_learner(X[splits[0][0]].nnz if splits else X.nnz, len(classes))
    part = _Part(vectorizer=vectorizer, kind=kind)
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

    E, embedded, emb = None, 0, None
    encoder = shared_encoder() if options.encoder else None
    if splits:
        say("cross-validation" if cross_validate else "held-out fit")
    with ThreadPoolExecutor(1, thread_name_prefix="tfidf") as pool:
        chars = encoder is None or len(texts) <= WORDS_ONLY_ROWS
        tfidf_future = pool.submit(_tfidf_part, texts, y, splits, classes, cross_validate, chars)
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

    truth = y[tfidf.order]
    candidates = {"tfidf": tfidf.scores}
    sd_t = sd_e = 1.0
    if emb is not None and splits:
        sd_t, sd_e = float(tfidf.scores.std()) or 1.0, float(emb.scores.std()) or 1.0
        candidates["embeddings"] = emb.scores
        for w in MIX_WEIGHTS:
            candidates[f"tfidf+embeddings {w:.1f}"] = w * tfidf.scores / sd_t + (1 - w) * emb.scores / sd_e
    figures = {name: _metrics(truth, classes[scores.argmax(axis=1)]) for name, scores in candidates.items()}
    # Most accurate; ties go to the earlier (simpler) candidate.
    chosen = max(figures, key=lambda k: (figures[k][0], -list(figures).index(k)))
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
    mix = float(chosen.rsplit(" ", 1)[1]) if chosen.startswith("tfidf+embeddings") else 1.0
    tfidf_model = None
    if chosen == "tfidf" or chosen.startswith("tfidf+"):
        strip_for_pickle(tfidf.vectorizer)
        tfidf_model = TextClassifier(tfidf.vectorizer, tfidf.final, tfidf.kind, scale)
    if chosen == "tfidf":
        model = tfidf_model
        model.threshold, model.oos_label = threshold, oos_label
    else:
        W, emb_classes = emb.final
        model = HybridClassifier(
            tfidf_model, W, emb_classes, mix=mix, sd_tfidf=sd_t, sd_emb=sd_e,
            learner=chosen, scale=scale, threshold=threshold, oos_label=oos_label,
            reference=pick_reference(E, y, oos_label, seed),
        )
    kind = tfidf.kind
    return TrainResult(
        model=model,
        accuracy=accuracy,
        macro_f1=macro_f1,
        eval_rows=eval_rows,
        eval_method=method,
        rows=len(unique),
        classes=len(classes),
        seconds=time.perf_counter() - start,
        learner=chosen if chosen != "tfidf" else f"tfidf {kind}",
        responses=responses_by_label(examples),
        duplicates_removed=len(examples) - len(unique),
        candidates={k: round(v[0], 4) for k, v in figures.items()},
        threshold=threshold,
        precision=precision,
        coverage=coverage,
        oos_label=oos_label,
        embedded=embedded,
        encoder_used=E is not None,
    )
