"""Embedding in chunks with progress (a big upload's status hears from training every few seconds)."""
from __future__ import annotations

import numpy as np

from model.embedcache import FIRST_CHUNK, embed_with_cache


def length_vectors(texts: list[str]) -> np.ndarray:
    """A stand-in with the encoder's contract: one row per text, in order."""
    return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_chunks_report_progress_and_give_the_same_vectors_in_order():
    texts = [("a" * (i % 37)) + "b" * (i % 11) + str(i) for i in range(1000)]
    calls: list[int] = []
    seen: list[tuple[int, int]] = []

    def encode(batch: list[str]) -> np.ndarray:
        calls.append(len(batch))
        return length_vectors(batch)

    vectors, embedded = embed_with_cache(texts, encode, None, 0, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(vectors, length_vectors(texts))
    assert embedded == 1000 and len(calls) > 1 and min(calls[:-1]) >= FIRST_CHUNK
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1] == (1000, 1000)


def test_without_a_progress_callback_it_is_one_call():
    calls = []
    embed_with_cache(["x", "y"] * 300, lambda b: calls.append(len(b)) or length_vectors(b), None, 0)
    assert calls == [600]


def test_a_text_whose_digest_ends_in_a_zero_byte_comes_from_the_cache(tmp_path):
    """numpy's "S20" keys drop trailing NUL bytes: such a row used to be embedded again at every training."""
    from model.embedcache import text_digest

    texts = ["переключи на следующий трек", "закажи обед в офис", "play some jazz"]
    assert text_digest(texts[0]).endswith(b"\0") and text_digest(texts[1]).endswith(b"\0")
    path = tmp_path / "1" / "embeddings.cache"
    first, embedded = embed_with_cache(texts, length_vectors, path, 1_000_000, model_id="m")
    again, embedded = embed_with_cache(texts, length_vectors, path, 1_000_000, model_id="m")
    assert embedded == 0
    np.testing.assert_array_equal(again, first)
