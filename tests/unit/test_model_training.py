"""Training on generated data with real scikit-learn (no mocks)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy.special import softmax

from model import learner
from model.errors import DatasetError
from tests.support.synthetic import intent_dataset, sentiment_dataset
from model.splits import CV_FOLDS, holdout_split, kfold_split
from model.training import train_model
from model.types import Example


def examples(texts, labels, responses=None):
    responses = responses or [None] * len(texts)
    return [Example(t, lab, r) for t, lab, r in zip(texts, labels, responses)]


@pytest.fixture(scope="module")
def intents():
    texts, labels = intent_dataset(900, 6, seed=1, confusion=0.15)
    return train_model(examples(texts, labels)), intent_dataset(300, 6, seed=1, confusion=0.15, sample_seed=99)


def test_held_out_metrics_are_reported_and_generalise(intents):
    result, (test_texts, test_labels) = intents
    assert result.eval_method == "held-out"
    assert result.eval_rows == 180  # 20 % of each of the 6 classes
    assert (result.rows, result.classes, result.learner) == (900, 6, "tfidf ridge")
    assert 0.75 <= result.accuracy <= 1.0 and 0.75 <= result.macro_f1 <= 1.0
    predicted = result.model.predict(test_texts)
    fresh_accuracy = np.mean([p == t for p, t in zip(predicted, test_labels)])
    assert fresh_accuracy >= 0.8
    # The held-out estimate is an honest proxy for unseen data.
    assert abs(fresh_accuracy - result.accuracy) < 0.1


def test_single_message_fast_path_matches_batch_scores(intents):
    model = intents[0].model
    texts = intents[1][0][:20] + ["", "!!!", "🙂🙂 wow", "completely unseen words here", "Ä É ß"]
    batch = model.scores(texts)
    for text, row in zip(texts, batch):
        np.testing.assert_allclose(model.score_one(text), row, rtol=1e-4, atol=1e-5)
    label, confidence = model.predict_one(texts[0])
    assert label == model.predict([texts[0]])[0]
    assert 0.0 < confidence <= 1.0
    np.testing.assert_allclose(model.predict_proba(texts).sum(axis=1), 1.0)


def test_model_survives_pickling(intents):
    model = intents[0].model
    model.predict_one("warm the analyzer cache")
    clone = pickle.loads(pickle.dumps(model))
    assert clone._analyzers is None
    texts = intents[1][0][:30]
    assert clone.predict(texts) == model.predict(texts)


def test_binary_sentiment_learns_and_is_confident_when_clear():
    texts, labels = sentiment_dataset(400, seed=2)
    result = train_model(examples(texts, labels))
    assert result.classes == 2 and result.accuracy >= 0.85
    label, confidence = result.model.predict_one("this phone is great, really excellent")
    assert label == "positive" and confidence > 0.8
    assert result.model.predict_one("the battery is awful, so terrible")[0] == "negative"


def test_large_problems_switch_to_sgd_and_still_learn(monkeypatch):
    monkeypatch.setattr(learner, "RIDGE_WORK_LIMIT", 0)
    texts, labels = intent_dataset(600, 5, seed=3)
    result = train_model(examples(texts, labels))
    assert result.learner == "tfidf sgd"
    assert result.accuracy >= 0.85
    test_texts, test_labels = intent_dataset(100, 5, seed=3, sample_seed=7)
    assert result.model.predict(test_texts[:5]) == test_labels[:5]


def test_choose_learner_budget():
    assert learner.choose_learner(1_000_000, 2) == "ridge"  # binary counts as one output
    assert learner.choose_learner(1_000_000, 50) == "sgd"
    assert learner.choose_learner(100_000, 50) == "ridge"


def test_holdout_split_is_stratified_and_keeps_singletons_in_training():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"]
    train, test = holdout_split(labels)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    test_labels = [labels[i] for i in test]
    assert test_labels.count("a") == 2 and test_labels.count("b") == 1 and test_labels.count("c") == 1
    assert "d" not in test_labels
    again_train, again_test = holdout_split(labels)
    assert again_test.tolist() == test.tolist()


def test_tiny_dataset_without_held_out_rows_is_checked_on_training_data():
    result = train_model(examples(["hello there", "goodbye now", "what time is it"], ["greet", "bye", "time"]))
    assert result.eval_method == "training" and result.eval_rows == 3
    assert result.model.predict(["hello there"]) == ["greet"]


def test_one_class_and_empty_are_refused():
    with pytest.raises(DatasetError, match="two classes"):
        train_model(examples(["a", "b"], ["x", "x"]))
    with pytest.raises(DatasetError):
        train_model([])


def test_duplicates_are_removed_and_responses_mapped():
    texts = ["hi", "hi", "HI ", "bye", "see you", "hello"]
    labels = ["greet", "greet", "greet", "leave", "leave", "greet"]
    responses = ["Hello!", "Hello!", None, "Bye!", "Bye!", "Hey"]
    result = train_model(examples(texts, labels, responses))
    assert result.duplicates_removed == 2
    assert result.rows == 4
    assert result.responses == {"greet": "Hello!", "leave": "Bye!"}


def test_progress_reports_in_order():
    seen = []
    texts, labels = intent_dataset(100, 2, seed=4)
    train_model(examples(texts, labels), progress=seen.append)
    assert seen == ["training 100 rows, 2 classes", "cross-validation", "final fit"]
    seen.clear()
    texts, labels = intent_dataset(600, 2, seed=4)
    train_model(examples(texts, labels), progress=seen.append)
    assert seen == ["training 600 rows, 2 classes", "held-out fit", "final fit"]


def test_temperature_fit_recovers_known_scale():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 4))
    probs = softmax(scores * 3.0, axis=1)
    y = np.array([rng.choice(4, p=p) for p in probs])
    scale = learner.fit_temperature(scores, y)
    assert math.isclose(scale, 3.0, rel_tol=0.2)
    assert learner.fit_temperature(scores[:0], y[:0]) == learner.DEFAULT_TEMPERATURE_SCALE


def test_small_data_is_cross_validated_on_every_testable_row():
    texts, labels = intent_dataset(60, 3, seed=6, confusion=0.2)
    texts.append("a lonely example")
    labels.append("singleton")
    result = train_model(examples(texts, labels))
    assert result.eval_method == "cross-validation"
    assert result.eval_rows == 60  # every row except the single-example class
    assert 0.5 <= result.accuracy <= 1.0


def test_kfold_split_is_stratified_and_covers_rows_once():
    labels = ["a"] * 10 + ["b"] * 3 + ["c"] * 2 + ["d"]
    splits = kfold_split(labels)
    assert len(splits) == CV_FOLDS
    tested = np.concatenate([te for _, te in splits])
    assert sorted(tested.tolist()) == list(range(15))  # all but the singleton "d"
    for train, test in splits:
        assert set(train) | set(test) == set(range(16)) and not set(train) & set(test)
        assert {labels[i] for i in train} == {"a", "b", "c", "d"}  # every class still trainable
        assert [labels[i] for i in test].count("a") == 2
