"""The hallucination guard: Whisper's text for noise, silence or speech it can't follow is
dropped and the clip reads as "no speech"; real speech is kept.

The rules are checked on segments with the signals Whisper reports; the slow tests run the real
models on real noise (numpy and ffmpeg's noise sources), near-silence and a real Russian phrase.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from audio.decode import SAMPLE_RATE, DecodedAudio, decode_audio
from audio.errors import NoSpeech
from audio.speech_guard import MIN_SPEECH_SECONDS, judge, speech_in
from audio.stt import WhisperEngine, recognise
from tests.support.shared_data import SHARED, shared_file


@dataclass
class Seg:
    text: str
    avg_logprob: float = -0.2
    no_speech_prob: float = 0.05
    compression_ratio: float = 1.3


def test_confident_speech_is_kept():
    assert judge(Seg(" Hello there, how are you?")).kept
    assert judge(Seg("Привет, как дела?", avg_logprob=-0.6)).kept
    # a stock line said surely is speech: someone may thank the bot
    assert judge(Seg("Thank you for watching!", avg_logprob=-0.2)).kept


@pytest.mark.parametrize("segment, reason", [
    (Seg("Thank you for watching!", avg_logprob=-0.7), "stock line"),
    (Seg("Продолжение следует...", avg_logprob=-0.6), "stock line"),
    (Seg("I'm going to go to the store.", avg_logprob=-1.3), "very unsure"),
    (Seg("Okay.", avg_logprob=-0.9, no_speech_prob=0.7), "no speech"),
    (Seg("the the the the the the the the the the the the the the", compression_ratio=3.1), "a loop"),
    (Seg(" ... "), "empty"),
])
def test_what_whisper_writes_without_speech_is_dropped(segment, reason):
    verdict = judge(segment)
    assert not verdict.kept and reason in verdict.reason


def test_a_clip_keeps_only_its_speech():
    text, verdicts, logprob = speech_in([Seg("Hello."), Seg("Thank you for watching.", avg_logprob=-0.9)], 2.0)
    assert text == "Hello." and [v.kept for v in verdicts] == [True, False]
    assert logprob == pytest.approx((-0.2 - 0.9) / 2)  # how sure Whisper was of all it wrote


def test_too_little_voice_is_not_even_decoded():
    def never():
        raise AssertionError("decoded")
        yield  # pragma: no cover

    assert speech_in(never(), MIN_SPEECH_SECONDS / 2) == ("", [], None)


# ------------------------------------------------------------------ the real models


def copies_dir(tmp_path_factory) -> Path:
    shared = os.environ.get("MODEL_COPIES_DIR")  # tests/conftest.py: one folder for the whole run
    return Path(shared) / "speech-models" if shared else tmp_path_factory.mktemp("speech-models")


@pytest.fixture(scope="module")
def whisper(tmp_path_factory) -> WhisperEngine:
    engine = WhisperEngine("base", english_model="tiny.en", cache_dir=copies_dir(tmp_path_factory))
    engine.warm_up()
    return engine


def ffmpeg_noise(color: str, seconds: float = 3.0, amplitude: float = 0.3) -> DecodedAudio:
    ogg = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                          f"anoisesrc=color={color}:amplitude={amplitude}:duration={seconds}:sample_rate=48000",
                          "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "-"], check=True, capture_output=True).stdout
    return decode_audio(ogg)


def numpy_noise(kind: str, seconds: float = 3.0) -> DecodedAudio:
    rng = np.random.default_rng(7)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    if kind == "hum":  # mains hum with its harmonics
        signal = sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 8)) * 3000
    else:  # room tone: faint white noise, just above the decoder's silence floor
        signal = rng.standard_normal(n) * 90
    return DecodedAudio(signal.astype("<i2").tobytes())


@pytest.mark.slow
@pytest.mark.parametrize("language", ["auto", "en", "ru"])
@pytest.mark.parametrize("noise", ["white", "pink", "brown", "hum", "room tone"])
def test_noise_is_no_speech(whisper, noise, language):
    audio = numpy_noise(noise) if noise in ("hum", "room tone") else ffmpeg_noise(noise)
    with pytest.raises(NoSpeech):
        recognise([whisper], audio, language)


@pytest.mark.slow
def test_real_russian_speech_is_heard_in_cyrillic(whisper):
    clip = shared_file(SHARED / "data" / "speech_ml" / "ru" / "golos_crowd_11.wav")  # "афина чем платят у китайцев"
    heard, engine = recognise([whisper], decode_audio(clip.read_bytes()), "auto")
    assert engine == "whisper" and heard.language == "ru"
    assert re.search("[а-я]", heard.text.lower()) and "thank" not in heard.text.lower(), heard


@pytest.mark.slow
def test_russian_spoken_to_an_english_setting_is_heard_as_russian(whisper):
    """A member set to English speaks Russian: tiny.en's unsure English words (the old "nonsense"
    answers) make the base model detect the language, sure of Russian (.93)."""
    clip = shared_file(SHARED / "data" / "speech_ml" / "ru" / "golos_crowd_11.wav")
    heard, _ = recognise([whisper], decode_audio(clip.read_bytes()), "en")
    assert heard.language == "ru" and re.search("[а-я]", heard.text.lower()), heard


@pytest.mark.slow
def test_english_in_a_server_that_usually_speaks_russian_is_heard_as_english(whisper, tmp_path):
    """Heard in Russian first, Whisper writes English words for English speech: the wrong script
    for the language, so it is detected (English) and heard by the English model."""
    from tests.support.transcripts import wer
    from tests.unit.test_stt_decode import espeak

    sentence = "Please read the rules first, and welcome to the server."
    audio = decode_audio(espeak(sentence, tmp_path / "en.wav").read_bytes())
    heard, _ = recognise([whisper], audio, "auto", usual="ru")
    assert heard.language == "en" and wer(sentence, heard.text) <= 0.3, heard


def test_a_sentence_really_said_three_times_is_kept():
    """Whisper's window-wide compression ratio is high when a member repeats themselves; the words
    were heard surely and do not loop within the segment, so they stay."""
    said = Seg("The quick brown fox jumps over the lazy dog", compression_ratio=2.45, avg_logprob=-0.3)
    assert judge(said).kept
    assert not judge(Seg("no no no no no no no no", compression_ratio=2.6, avg_logprob=-0.3)).kept
    assert not judge(Seg("The quick brown fox", compression_ratio=2.6, avg_logprob=-0.9)).kept  # unsure: a loop
