"""The in-memory model cache: bounded by bytes, least recently used out, reload on demand."""

from __future__ import annotations

import pickle

import pytest

from model.modelstore import write_model
from model.predictor import ModelCache, estimate_bytes
from tests.support.synthetic import intent_dataset
from model.training import train_model
from model.types import Example


def model_for(seed: int):
    texts, labels = intent_dataset(300, 5, seed=seed)
    return train_model([Example(t, lab) for t, lab in zip(texts, labels)]).model, texts, labels


@pytest.fixture(scope="module")
def models():
    return [model_for(seed) for seed in range(4)]


@pytest.mark.slow
def test_estimate_grows_with_the_model_and_exceeds_the_pickle(models):
    small = models[0][0]
    texts, labels = intent_dataset(3000, 30, seed=9)
    big = train_model([Example(t, lab) for t, lab in zip(texts, labels)]).model
    assert estimate_bytes(big) > 3 * estimate_bytes(small)
    # In memory a dict-based vocabulary is larger than its pickle.
    assert estimate_bytes(big) > len(pickle.dumps(big))


def test_more_models_than_fit_evict_the_least_recently_used_and_reload(tmp_path, models):
    for scope, (model, _, _) in enumerate(models):
        write_model(tmp_path, str(scope), model, {"job_id": f"s{scope}"})
    size = estimate_bytes(models[0][0])
    cache = ModelCache(tmp_path, max_bytes=int(size * 2.5))  # room for two of these models

    for scope in ("0", "1"):
        assert cache.get(scope) is not None
    assert cache.cached_scopes() == ["0", "1"] and cache.evictions == 0
    cache.get("0")  # "0" is now the most recently used
    cache.get("2")
    assert cache.cached_scopes() == ["0", "2"]  # "1" was the least recently used
    assert cache.evictions == 1 and cache.resident_bytes <= cache.max_bytes
    assert cache.loads == 3

    # An evicted scope is reloaded on demand and predicts as before.
    _, texts, labels = models[1]
    first = cache.predict("1", texts[0])
    assert first.label == labels[0] and cache.loads == 4
    assert cache.cached_scopes() == ["2", "1"]
    assert cache.predict("1", texts[0]) == first and cache.loads == 4  # a hit: no new load

    for scope in ("3", "0", "1", "2"):
        cache.get(scope)
        assert cache.resident_bytes <= cache.max_bytes
    assert len(cache.cached_scopes()) == 2


def test_a_model_bigger_than_the_bound_is_still_served(tmp_path, models):
    write_model(tmp_path, "1", models[0][0], {"job_id": "x"})
    write_model(tmp_path, "2", models[1][0], {"job_id": "y"})
    cache = ModelCache(tmp_path, max_bytes=1)
    _, texts, labels = models[0]
    assert cache.predict("1", texts[3]).label == labels[3]
    assert cache.cached_scopes() == ["1"]
    cache.get("2")
    assert cache.cached_scopes() == ["2"]
