"""Versioned model files: pruning, compatibility refusal, cache reloads."""

from __future__ import annotations

import json
import struct

import pytest

from model import modelstore
from storage import atomic
from model.errors import IncompatibleModelError, ModelError
from model.modelstore import (
    MAGIC, encode_model, latest_version, list_versions, load_model, read_meta,
    remove_stale_temp_files, write_model,
)
from model.predictor import ModelCache
from model.training import train_model
from model.types import Example


def tiny_model(labels=("greet", "leave")):
    a, b = labels
    rows = [("hello there", a), ("hi friend", a), ("good morning", a), ("bye now", b), ("see you later", b), ("goodbye", b)]
    return train_model([Example(t, lab) for t, lab in rows]).model


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_versions_are_kept_and_pruned(tmp_path, model):
    paths = [write_model(tmp_path, "1", model, {"job_id": f"j{i}"}, keep=2) for i in range(4)]
    assert list_versions(tmp_path, "1") == paths[-2:]
    assert latest_version(tmp_path, "1") == paths[-1]
    assert latest_version(tmp_path, "2") is None
    meta = read_meta(paths[-1])
    assert meta["job_id"] == "j3"
    assert {"sklearn", "numpy", "python", "created_ns"} <= set(meta)


def test_temp_files_are_ignored_and_cleaned(tmp_path, model):
    good = write_model(tmp_path, "1", model, {"job_id": "ok"})
    (good.parent / f"{atomic.TMP_PREFIX}half-written").write_bytes(MAGIC + b"\x00" * 3)
    assert latest_version(tmp_path, "1") == good
    assert remove_stale_temp_files(tmp_path, "1") == 1
    assert [p.name for p in good.parent.iterdir()] == [good.name]


def test_failed_write_keeps_previous_model(tmp_path, model, monkeypatch):
    good = write_model(tmp_path, "1", model, {"job_id": "old"})

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        write_model(tmp_path, "1", model, {"job_id": "new"})
    monkeypatch.undo()
    assert list_versions(tmp_path, "1") == [good]
    assert [p.name for p in good.parent.iterdir()] == [good.name]
    loaded, meta = load_model(good)
    assert meta["job_id"] == "old" and loaded.predict_one("hello there")[0] == "greet"


def _rewrite_meta(path, **changes):
    raw = path.read_bytes()
    (length,) = struct.unpack(">Q", raw[len(MAGIC) : len(MAGIC) + 8])
    start = len(MAGIC) + 8
    meta = json.loads(raw[start : start + length])
    meta.update(changes)
    header = json.dumps(meta).encode()
    path.write_bytes(MAGIC + struct.pack(">Q", len(header)) + header + raw[start + length :])


@pytest.mark.parametrize("version", ["0.24.2", "1.8.0", "2.9.1", "unknown"])
def test_other_sklearn_version_is_refused_clearly(tmp_path, model, version):
    path = write_model(tmp_path, "1", model, {"job_id": "x"})
    _rewrite_meta(path, sklearn=version)
    with pytest.raises(IncompatibleModelError) as info:
        load_model(path)
    assert version in info.value.user_message and "retrain" in info.value.user_message.lower()
    assert isinstance(info.value, ModelError)


def test_same_minor_version_is_accepted(tmp_path, model):
    path = write_model(tmp_path, "1", model, {"job_id": "x"})
    major, minor, *_ = modelstore.library_versions()["sklearn"].split(".")
    _rewrite_meta(path, sklearn=f"{major}.{minor}.99")
    assert load_model(path)[0].predict_one("hello there")[0] == "greet"


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-50],  # truncated pickle
        lambda raw: raw[: len(MAGIC) + 8 + 10],  # truncated header
        lambda raw: b"NOT A MODEL" + raw,  # wrong magic
        lambda raw: raw.replace(b"TextClassifier", b"TextClassifiex"),  # class renamed
    ],
)
def test_damaged_files_are_refused_not_crashing(tmp_path, model, damage):
    path = write_model(tmp_path, "1", model, {"job_id": "x"})
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IncompatibleModelError) as info:
        load_model(path)
    assert info.value.user_message


def test_cache_reloads_newer_versions_and_remembers_refusals(tmp_path, model):
    cache = ModelCache(tmp_path)
    assert cache.predict("1", "hello") is None
    write_model(tmp_path, "1", model, {"job_id": "a", "responses": {"greet": "Hi there!"}})
    first = cache.get("1")
    assert cache.get("1") is first  # cached
    pred = cache.predict("1", "hello there")
    assert (pred.label, pred.reply) == ("greet", "Hi there!")
    assert cache.predict("1", "bye now").reply == "leave"  # no response: the label
    write_model(tmp_path, "1", tiny_model(("hallo", "tschuess")), {"job_id": "b"})
    assert cache.predict("1", "hello there").label == "hallo"
    bad = write_model(tmp_path, "1", model, {"job_id": "c"})
    _rewrite_meta(bad, sklearn="0.1.0")
    for _ in range(2):
        with pytest.raises(IncompatibleModelError):
            cache.get("1")


def test_encode_model_header_is_readable_without_unpickling(tmp_path, model):
    raw = encode_model(model, {"dataset": "faq"})
    path = tmp_path / "m.model"
    path.write_bytes(raw)
    assert read_meta(path)["dataset"] == "faq"
