"""Familiarity (model/hybrid.py): how close a message is to what was taught discounts the confidence."""

from __future__ import annotations

import numpy as np

from model import hybrid


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_reference_keeps_a_few_in_scope_rows_per_class(monkeypatch):
    monkeypatch.setattr(hybrid, "REFERENCE_PER_CLASS", 3)
    rng = np.random.default_rng(0)
    E = unit(rng.normal(size=(30, 384)))
    y = np.array(["a"] * 10 + ["b"] * 2 + ["oos"] * 18, dtype=object)
    ref = hybrid.pick_reference(E, y, "oos")
    assert ref.dtype == np.float32 and len(ref) == 3 + 2  # capped per class, out-of-scope rows never kept
    assert all(any(np.allclose(r, e) for e in E[:12]) for r in ref)
    monkeypatch.setattr(hybrid, "REFERENCE_MAX_ROWS", 2)
    assert len(hybrid.pick_reference(E, y, "oos")) == 2  # at least one per class, at most the bound


def test_familiarity_is_the_nearest_cosine_in_chunks():
    rng = np.random.default_rng(1)
    ref = unit(rng.normal(size=(50, 384)))
    queries = np.vstack([ref[7], -ref[3], unit(rng.normal(size=(600, 384)))])  # more than one chunk
    sim = hybrid.familiarity(queries, ref)
    assert sim.shape == (602,)
    assert abs(sim[0] - 1.0) < 1e-5
    np.testing.assert_allclose(sim, (queries @ ref.T).max(axis=1), atol=1e-5)
    assert (hybrid.familiarity(queries, ref[:0]) == 0).all()


def test_certainty_discounts_unfamiliar_messages_and_drives_abstention():
    confidence = np.array([0.95, 0.95, 0.95])
    similarity = np.array([1.0, 0.5, -0.2])
    np.testing.assert_allclose(hybrid.certainty(confidence, similarity), [0.95, 0.2375, 0.0])

    class Model(hybrid.AbstainMixin):
        classes_ = np.array(["greet", "weather"])
        threshold = 0.5

    proba = np.array([[0.95, 0.05], [0.95, 0.05]])
    d = Model().decide_proba(proba, np.array([0.9, 0.3]))
    assert d.labels == ["greet", "greet"] and list(d.abstain) == [False, True]
    assert list(Model().decide_proba(proba).abstain) == [False, False]  # without familiarity: confidence alone


def test_the_operator_floor_is_on_the_probability_never_on_the_certainty():
    """CONFIDENCE_THRESHOLD means the same for every learner: a sure but little-familiar short message
    (certainty 0.09, as "great" on a sentiment model) is answered under a 0.3 floor."""
    class Model(hybrid.AbstainMixin):
        classes_ = np.array(["negative", "positive"])
        threshold = 0.05  # what training learned on held-out certainties

    proba = np.array([[0.02, 0.98], [0.45, 0.55], [0.9, 0.1]])
    similarity = np.array([0.3, 0.9, 0.2])  # certainty .088, .446, .036
    d = Model().decide_proba(proba, similarity, floor=0.6)
    np.testing.assert_allclose(d.probability, [0.98, 0.55, 0.9])
    np.testing.assert_allclose(d.certainty, [0.98 * 0.09, 0.55 * 0.81, 0.9 * 0.04])
    # row 0: sure and above the learned threshold -> answered although certainty < floor;
    # row 1: probability under the floor -> not sure; row 2: certainty under the learned threshold -> not sure
    assert list(d.abstain) == [False, True, True]
    assert list(Model().decide_proba(proba, similarity).abstain) == [False, False, True]  # no floor


def test_an_out_of_scope_label_is_never_answered():
    class Model(hybrid.AbstainMixin):
        classes_ = np.array(["oos", "weather"])
        threshold = 0.0
        oos_label = "oos"

    d = Model().decide_proba(np.array([[0.99, 0.01], [0.01, 0.99]]))
    assert d.labels == ["oos", "weather"] and list(d.abstain) == [True, False]
