"""SpeechSynthesizer: caching, sentence clips with one-sentence look-ahead, warm-up, errors."""

import asyncio
import logging
import threading
import wave

import pytest

from audio import tts
from audio.errors import AudioError
from audio.synthesis import FIRST_CLIP_CHARS, Clip, SpeechSynthesizer
from audio.tts import EspeakEngine, PiperEngine, SpeechFailed


@pytest.fixture
def synth(tmp_path):
    return SpeechSynthesizer(engines=("piper", "gtts", "espeak"), language="en",
                             cache_dir=tmp_path / "cache", cache_max_bytes=20_000_000, gtts_timeout=5)


def assert_wav_clip(clip: Clip):
    with wave.open(str(clip.path)) as reader:
        assert reader.getnchannels() == 1 and reader.getsampwidth() == 2
        assert reader.getframerate() == clip.sample_rate
        assert reader.getnframes() / reader.getframerate() == pytest.approx(clip.seconds)
    assert clip.seconds > 0.3


def count_piper_calls(monkeypatch) -> list[str]:
    """The texts the real piper engine is asked to speak (it still speaks them)."""
    calls: list[str] = []
    real = PiperEngine.synthesize

    def recording(self, text, language):
        calls.append(text)
        return real(self, text, language)

    monkeypatch.setattr(PiperEngine, "synthesize", recording)
    return calls


async def test_synthesize_then_cache_hit_survives_restart(synth, tmp_path, monkeypatch):
    """A repeated phrase is played from the cache: the engine is not run again (timings: bench/tts_timing.py)."""
    calls = count_piper_calls(monkeypatch)
    text = "Your reminder is set for five o'clock."
    first = await synth.synthesize(text)
    assert first.engine == "piper" and not first.cached and first.text == text
    assert first.sample_rate == 22050
    assert_wav_clip(first)
    assert calls == [text]

    for _ in range(20):
        again = await synth.synthesize(text)
    assert again.cached and again.path == first.path and again.engine == "piper"
    assert calls == [text]

    restarted = SpeechSynthesizer(engines=("piper", "gtts", "espeak"), cache_dir=tmp_path / "cache")
    hit = restarted.cached_clip(text)
    assert hit is not None and hit.cached and hit.path == first.path and hit.seconds == first.seconds


async def test_cache_key_includes_language_and_engine_list(synth, tmp_path):
    text = "Same words."
    made = await synth.synthesize(text)
    other_engines = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "cache")
    assert other_engines.cached_clip(text) is None
    clip = await other_engines.synthesize(text)
    assert clip.engine == "espeak" and clip.path != made.path
    other_language = SpeechSynthesizer(engines=("piper", "gtts", "espeak"), language="de",
                                       cache_dir=tmp_path / "cache")
    assert other_language.cached_clip(text) is None


async def test_gtts_offline_leaves_no_empty_file_and_falls_back(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    synth = SpeechSynthesizer(engines=("gtts", "espeak"), cache_dir=tmp_path / "cache", gtts_timeout=5)
    with caplog.at_level(logging.WARNING, logger="audio.tts"):
        clip = await synth.synthesize("Google is unreachable from here.")
    assert clip.engine == "espeak"
    assert_wav_clip(clip)
    leftovers = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == [clip.path]
    assert any("gtts failed" in r.getMessage() for r in caplog.records)


async def test_all_engines_failing_raises_audio_error_and_caches_nothing(tmp_path):
    synth = SpeechSynthesizer(engines=("gtts",), cache_dir=tmp_path / "cache", gtts_timeout=5)
    with pytest.raises(SpeechFailed) as failure:
        await synth.synthesize("Nobody will say this.")
    assert isinstance(failure.value, AudioError) and failure.value.user_message
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(SpeechFailed):
        async for _clip in synth.speak_clips("Nor this."):
            pass


async def test_unsupported_language_skips_piper(tmp_path):
    synth = SpeechSynthesizer(engines=("piper", "espeak"), language="fr", cache_dir=tmp_path / "c")
    clip = await synth.synthesize("Bonjour tout le monde.")
    assert clip.engine == "espeak"
    assert synth.warm_up().result(timeout=5) is None  # nothing to warm for French


async def test_blank_text_is_rejected_and_empty_messages_yield_nothing(synth):
    with pytest.raises(ValueError):
        await synth.synthesize("   ")
    assert [c async for c in synth.speak_clips("😀 https://example.com ```code```")] == []


async def test_speak_clips_cleans_and_yields_sentences_in_order(synth):
    raw = "**Hi** <@42>! The first point is short. See https://x.y/z for more.\n- And a list item"
    expected = ["Hi alice!", "The first point is short.", "See for more.", "And a list item"]
    assert synth.sentences(raw, names={"42": "alice"}) == expected
    clips = [c async for c in synth.speak_clips(raw, names=lambda i: {"42": "alice"}.get(i))]
    assert [c.text for c in clips] == expected
    for clip in clips:
        assert clip.engine == "piper" and not clip.cached
        assert_wav_clip(clip)
    assert len({c.path for c in clips}) == len(clips)
    again = [c async for c in synth.speak_clips(raw, names={"42": "alice"})]
    assert [c.path for c in again] == [c.path for c in clips] and all(c.cached for c in again)


async def test_long_first_sentence_is_cut_so_the_first_clip_comes_quickly(tmp_path):
    synth = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "c")
    first = ("Well, this opening sentence is rather long, because it keeps adding clauses, one after another, "
             "before it ends.")
    second = "The second sentence can be long too, since it is made while the first one plays, so nobody waits."
    pieces = synth.sentences(f"{first} {second}")
    assert pieces[-1] == second
    assert " ".join(pieces[:-1]) == first and len(pieces) > 2
    assert all(len(p) <= FIRST_CLIP_CHARS for p in pieces[:-1])
    assert [c.text async for c in synth.speak_clips(f"{first} {second}")] == pieces


async def test_speak_clips_synthesises_exactly_one_sentence_ahead(tmp_path, monkeypatch):
    synth = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "c")
    started, finished = [], {}
    real = EspeakEngine.synthesize

    def recording(self, text, language):
        started.append(text)
        try:
            return real(self, text, language)
        finally:
            finished.setdefault(text, threading.Event()).set()

    monkeypatch.setattr(EspeakEngine, "synthesize", recording)
    sentences = ["One is first.", "Two comes next.", "Three is third.", "Four ends it."]
    for s in sentences:
        finished[s] = threading.Event()
    clips = synth.speak_clips(" ".join(sentences))

    first = await clips.__anext__()
    assert first.text == sentences[0]
    # While the caller "plays" clip 1, clip 2 is being made...
    assert await asyncio.to_thread(finished[sentences[1]].wait, 10)
    # ...but not clip 3: never more than one sentence ahead.
    assert started == sentences[:2]
    second = await clips.__anext__()
    assert second.text == sentences[1]
    assert await asyncio.to_thread(finished[sentences[2]].wait, 10)
    assert started == sentences[:3]
    await clips.aclose()  # the caller stopped (e.g. left the voice channel)
    assert started == sentences[:3]


async def test_speak_clips_overlaps_synthesis_with_playback(tmp_path, monkeypatch):
    """The first clip comes after one sentence's synthesis, not the whole reply's (timings: bench/tts_timing.py)."""
    calls = count_piper_calls(monkeypatch)
    synth = SpeechSynthesizer(engines=("piper",), cache_dir=tmp_path / "c")
    synth.warm_up().result(timeout=60)
    calls.clear()
    reply = ("This is the first sentence. The second sentence is quite a bit longer than the first one was. "
             "And the third sentence also takes some time to say out loud.")
    clips = synth.speak_clips(reply)
    first = await clips.__anext__()
    assert first.text == "This is the first sentence."
    assert "And the third sentence also takes some time to say out loud." not in calls
    rest = [c async for c in clips]
    assert len(rest) == 2 and len(calls) == 3


async def test_warm_up_loads_piper_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setattr(tts, "_PIPER_VOICES", {})
    synth = SpeechSynthesizer(engines=("piper", "espeak"), cache_dir=tmp_path / "c")
    future = synth.warm_up()
    assert future.result(timeout=60) is None
    assert list(tts._PIPER_VOICES) == [tts.default_piper_voice()]
    assert list((tmp_path / "c").iterdir()) == []  # the warm-up phrase is not cached


async def test_clean_uses_max_chars(tmp_path):
    synth = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "c", max_chars=40)
    text = synth.clean("word " * 50)
    assert len(text) <= 40 and text.endswith("and more.")


async def test_damaged_cache_file_is_synthesised_again(tmp_path):
    synth = SpeechSynthesizer(engines=("espeak",), cache_dir=tmp_path / "c")
    clip = await synth.synthesize("Fix me.")
    clip.path.write_bytes(b"RIFF broken")
    again = await synth.synthesize("Fix me.")
    assert not again.cached and again.seconds > 0.3
