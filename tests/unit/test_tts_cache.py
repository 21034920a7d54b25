"""On-disk phrase cache: hits, misses, LRU eviction by bytes, atomic writes, restarts."""

import os
import threading

import pytest

from audio.tts import pcm_to_wav
from audio.tts_cache import PhraseCache, phrase_key


def wav_of(size_frames: int, value: int = 1) -> bytes:
    return pcm_to_wav(value.to_bytes(2, "little", signed=True) * size_frames, 22050)


def files(directory):
    return sorted(p.name for p in directory.iterdir())


def test_key_depends_on_text_language_and_voice_only():
    key = phrase_key("hello there", "en", "piper:joe,espeak")
    assert key == phrase_key("hello there", "en", "piper:joe,espeak")
    assert key == phrase_key("hello there", "EN", "piper:joe,espeak")
    assert phrase_key("hi", "en-US", "v") == phrase_key("hi", "en_us", "v")
    others = {phrase_key("hello there!", "en", "piper:joe,espeak"),
              phrase_key("hello there", "de", "piper:joe,espeak"),
              phrase_key("hello there", "en", "espeak")}
    assert key not in others and len(others) == 3


def test_miss_then_hit_returns_the_stored_file(tmp_path):
    cache = PhraseCache(tmp_path, 1_000_000)
    key = phrase_key("hello", "en", "v")
    assert cache.get(key) is None
    data = wav_of(100)
    stored = cache.put(key, data, "piper")
    hit = cache.get(key)
    assert hit == stored
    assert hit.engine == "piper"
    assert hit.path.read_bytes() == data
    assert hit.path.parent == tmp_path
    assert cache.total_bytes == len(data) and len(cache) == 1


def test_hits_come_from_the_in_memory_index(tmp_path):
    """Lookups never scan the folder (what keeps a hit cheap; timings: bench/tts_timing.py)."""
    cache = PhraseCache(tmp_path, 10_000_000)
    keys = [phrase_key(f"phrase {i}", "en", "v") for i in range(50)]
    for key in keys:
        cache.put(key, wav_of(2000), "espeak")
    assert all(cache.get(key).path.name == f"{key}.espeak.wav" for key in keys)
    dropped = phrase_key("put there by hand", "en", "v")
    (tmp_path / f"{dropped}.espeak.wav").write_bytes(wav_of(10))
    assert cache.get(dropped) is None  # not in the index: the folder is not read on a lookup
    assert PhraseCache(tmp_path, 10_000_000).get(dropped) is not None  # read once, at start


def test_eviction_removes_least_recently_used_by_total_bytes(tmp_path):
    one = len(wav_of(1000))
    cache = PhraseCache(tmp_path, max_bytes=3 * one)
    a, b, c, d = (phrase_key(t, "en", "v") for t in "abcd")
    for key in (a, b, c):
        cache.put(key, wav_of(1000), "piper")
    assert cache.get(a) is not None  # a is now more recent than b
    cache.put(d, wav_of(1000), "piper")
    assert cache.get(b) is None
    assert all(cache.get(k) is not None for k in (a, c, d))
    assert cache.total_bytes == 3 * one <= cache.max_bytes
    assert len(files(tmp_path)) == 3  # the evicted file is gone from disk too


def test_entry_larger_than_the_limit_is_kept_until_the_next_put(tmp_path):
    small = wav_of(10)
    cache = PhraseCache(tmp_path, max_bytes=len(small) * 2)
    small_key, big_key = phrase_key("s", "en", "v"), phrase_key("b", "en", "v")
    cache.put(small_key, small, "espeak")
    big = cache.put(big_key, wav_of(5000), "espeak")
    assert big.path.exists()  # the caller is about to play it
    assert cache.get(small_key) is None
    cache.put(small_key, small, "espeak")
    assert cache.get(big_key) is None and not big.path.exists()


def test_rewriting_a_key_replaces_the_old_file(tmp_path):
    cache = PhraseCache(tmp_path, 1_000_000)
    key = phrase_key("x", "en", "v")
    cache.put(key, wav_of(10), "gtts")
    cache.put(key, wav_of(20), "espeak")
    assert cache.get(key).engine == "espeak"
    assert files(tmp_path) == [f"{key}.espeak.wav"]
    assert cache.total_bytes == len(wav_of(20))


def test_index_survives_a_restart_with_lru_order(tmp_path):
    one = len(wav_of(100))
    cache = PhraseCache(tmp_path, max_bytes=3 * one)
    a, b, c, d = (phrase_key(t, "en", "v") for t in "abcd")
    for key in (a, b, c):
        cache.put(key, wav_of(100), "piper")
    cache.get(a)
    restarted = PhraseCache(tmp_path, max_bytes=3 * one)
    assert len(restarted) == 3 and restarted.total_bytes == 3 * one
    assert restarted.get(c).engine == "piper"  # order now: b, a, c
    restarted.put(d, wav_of(100), "espeak")
    assert restarted.get(b) is None
    assert all(restarted.get(k) is not None for k in (a, c, d))


def test_restart_with_a_smaller_limit_evicts_and_cleans_leftovers(tmp_path):
    cache = PhraseCache(tmp_path, 1_000_000)
    keys = [phrase_key(str(i), "en", "v") for i in range(4)]
    for key in keys:
        cache.put(key, wav_of(100), "piper")
    (tmp_path / f".{keys[0]}.abc.tmp").write_bytes(b"partial")  # a crash mid-write
    (tmp_path / f"{'0' * 40}.gtts.wav").write_bytes(b"")  # an empty file never counts
    (tmp_path / "notes.txt").write_text("not ours")
    restarted = PhraseCache(tmp_path, max_bytes=2 * len(wav_of(100)))
    assert len(restarted) == 2
    assert [restarted.get(k) is not None for k in keys] == [False, False, True, True]
    assert files(tmp_path) == sorted([f"{keys[2]}.piper.wav", f"{keys[3]}.piper.wav", "notes.txt"])


def test_failed_write_leaves_no_file_and_keeps_the_old_entry(tmp_path, monkeypatch):
    cache = PhraseCache(tmp_path, 1_000_000)
    key = phrase_key("x", "en", "v")
    good = wav_of(50)
    cache.put(key, good, "piper")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        cache.put(key, wav_of(60), "piper")
    with pytest.raises(OSError):
        cache.put(phrase_key("y", "en", "v"), wav_of(60), "piper")
    assert files(tmp_path) == [f"{key}.piper.wav"]
    assert cache.get(key).path.read_bytes() == good
    assert len(cache) == 1


def test_file_deleted_behind_the_cache_is_a_miss(tmp_path):
    cache = PhraseCache(tmp_path, 1_000_000)
    key = phrase_key("x", "en", "v")
    cache.put(key, wav_of(50), "piper").path.unlink()
    assert cache.get(key) is None
    assert len(cache) == 0 and cache.total_bytes == 0


def test_concurrent_puts_keep_the_byte_count_right(tmp_path):
    size = len(wav_of(100))
    cache = PhraseCache(tmp_path, max_bytes=10 * size)

    def writer(prefix):
        for i in range(25):
            cache.put(phrase_key(f"{prefix}{i}", "en", "v"), wav_of(100), "espeak")

    threads = [threading.Thread(target=writer, args=(p,)) for p in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    on_disk = [p for p in tmp_path.iterdir()]
    assert len(cache) == len(on_disk) <= 10
    assert cache.total_bytes == sum(p.stat().st_size for p in on_disk) <= 10 * size


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        PhraseCache(tmp_path, 0)
    cache = PhraseCache(tmp_path, 100)
    with pytest.raises(ValueError):
        cache.put("../escape", b"x", "piper")
    with pytest.raises(ValueError):
        cache.put(phrase_key("x", "en", "v"), b"x", "../bad")
