"""festival + festvox-ru, the offline Russian voice: real festival processes (audio/festival.py).

One warm process per voice: speaking Russian, surviving hostile text, being restarted after
it dies, timing out when it hangs, and spelling out numbers and Latin words first."""

import io
import logging
import os
import signal
import time
import wave

import pytest

from tests.support.shared_data import in_ci  # under CI a missing install fails instead of skipping
from hypothesis import given, settings
from hypothesis import strategies as st

from audio import festival
from audio.festival import FestivalError, FestivalProcess, FestivalVoice, scheme_string, spell_out_russian
from audio.tts import EspeakEngine, FestivalEngine, PiperEngine, build_engines, speak

VOICE = festival.VOICES["ru"]
pytestmark = pytest.mark.skipif(not festival.voice_installed(VOICE) and not in_ci(), reason="festival + festvox-ru not installed")


def seconds(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (16_000, 1, 2)
        return reader.getnframes() / reader.getframerate()


@pytest.fixture(scope="module")
def voice():
    warm = FestivalVoice(VOICE, timeout=5)
    warm.load()
    yield warm
    warm.close()


def test_russian_text_becomes_speech_from_one_warm_process(voice):
    starts = voice.starts
    short = seconds(voice.say("Привет, как дела?"))
    longer = seconds(voice.say("Модель обучена: точность девяносто три процента, это заняло двенадцать секунд."))
    assert 1.0 < short < 3.0 and 5.0 < longer < 9.0  # ~1.8 s and ~6.7 s measured
    started = time.perf_counter()
    voice.say("Ещё одна короткая фраза.")
    assert time.perf_counter() - started < 2.0  # no voice loading: ~0.1 s here
    assert voice.starts == starts


@pytest.mark.parametrize("hostile", [
    '") (system "touch {marker}") ("',
    '\\") (system \\"touch {marker}\\") (\\"',
    "Привет\n(system \"touch {marker}\")\n",
    "(begin (system \"touch {marker}\") (exit))",
    "Тест ; комментарий \"\"\" \\\\ \\ ` ' | # { } [ ] \x00 \x1b[31m \ud800 конец",
    "' (exit) '",
])
def test_hostile_text_is_only_ever_spoken(voice, tmp_path, hostile):
    marker = tmp_path / "escaped"
    starts = voice.starts
    wav = voice.say(hostile.replace("{marker}", str(marker)) + " Привет.")
    assert seconds(wav) > 0.3
    assert not marker.exists()
    assert voice.starts == starts  # the same process answered: nothing ended it
    assert seconds(voice.say("Всё ещё работаю.")) > 0.5


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_scheme_string_is_one_closed_literal(text):
    literal = scheme_string(text)
    inner = literal[1:-1]
    assert literal[0] == literal[-1] == '"'
    assert '"' not in inner and "\\" not in inner and "\n" not in inner and "\r" not in inner
    assert all(ch in festival._SPEAKABLE for ch in inner)


def test_characters_the_voice_cannot_read_never_fail_a_reply(voice):
    """Its letter-to-sound rules fail the whole request on any of these (measured)."""
    wav = voice.say("Café über ß α і ї ² ½ ﬁ 中 ٣ — так – нет -- да ... !!! ; конец")
    assert seconds(wav) > 1.0


def test_very_long_text_is_spoken_in_pieces_and_too_long_is_refused(voice):
    sentence = "Это довольно длинное предложение, которое повторяется много раз. "
    wav = voice.say(sentence * 6)  # ~400 characters: two requests of at most 300
    assert seconds(wav) > 20
    one_word = voice.say("а" * 400)  # no space to cut at: cut anyway
    assert seconds(one_word) > 5
    with pytest.raises(FestivalError, match="too long"):
        voice.say("а " * festival.MAX_TEXT_CHARS)
    with pytest.raises(FestivalError, match="nothing"):
        voice.say("!!! ... ???")  # festival's letter-to-sound rules fail on bare punctuation


def test_a_festival_error_keeps_the_process(voice):
    process = voice._running()
    process._send('(bot_say "t1" "!!!")\n')  # unfiltered: its letter-to-sound rules fail
    assert process._expect(("WAV t1", "FAIL t1"), time.monotonic() + 5) == "FAIL t1"
    assert process.alive() and seconds(process.say("Да.")) > 0.2


def test_killed_process_is_restarted(voice):
    starts = voice.starts
    os.kill(voice._running().pid, signal.SIGKILL)
    time.sleep(0.1)
    assert seconds(voice.say("Я снова здесь.")) > 0.5
    assert voice.starts == starts + 1


def test_process_dying_mid_request_is_retried_once(voice, monkeypatch):
    starts = voice.starts
    process = voice._running()
    real_say = FestivalProcess.say

    def dies_first(self, text, timeout):
        if self is process:
            os.kill(self.pid, signal.SIGKILL)
        return real_say(self, text, timeout)

    monkeypatch.setattr(FestivalProcess, "say", dies_first)
    assert seconds(voice.say("Повторяю.")) > 0.3
    assert voice.starts == starts + 1


def test_a_hung_process_times_out_and_is_replaced(voice):
    starts = voice.starts
    stuck = voice._running()
    voice.timeout = 0.5
    os.kill(stuck.pid, signal.SIGSTOP)
    try:
        started = time.perf_counter()
        with pytest.raises(FestivalError, match="took over"):
            voice.say("Алло?")
        assert time.perf_counter() - started < 3.0  # the timeout, plus killing the stopped process
    finally:
        voice.timeout = 5
        if stuck.alive():
            os.kill(stuck.pid, signal.SIGKILL)
    assert not stuck.alive()
    assert seconds(voice.say("Я вернулся.")) > 0.3
    assert voice.starts == starts + 1


def test_unknown_voice_fails_to_start():
    with pytest.raises(FestivalError, match="could not load the voice"):
        FestivalProcess("no_such_voice_clunits")
    with pytest.raises(ValueError):
        FestivalProcess('x") (exit) ("')


def test_numbers_and_latin_words_are_spelled_out():
    assert spell_out_russian("Осталось 25 мест.") == "Осталось двадцать пять мест."
    spelled = spell_out_russian("Бот Discord ответил за 3 секунды.")
    assert not any(ch.isdigit() or "a" <= ch.lower() <= "z" for ch in spelled)


def test_engine_speaks_russian_only_and_takes_russian_from_piper():
    engine = FestivalEngine()
    try:
        assert engine.supports("ru") and engine.supports("ru-RU") and not engine.supports("en")
        engines = [PiperEngine(), engine, EspeakEngine()]
        russian = speak(engines, "Обучение заняло 12 секунд.", "ru")
        assert russian.engine == "festival" and seconds(russian.wav) > 2.0  # the number is spoken
        assert speak([engine, EspeakEngine()], "Hello there.", "en").engine == "espeak"
    finally:
        engine.close()


def test_an_unused_process_is_stopped_and_started_again_when_needed():
    voice = FestivalVoice(VOICE, idle_seconds=0.5)
    try:
        voice.say("Да.")
        assert voice.running()
        time.sleep(0.3)
        voice.say("Нет.")  # used again: the countdown starts over
        time.sleep(0.3)
        assert voice.running()
        deadline = time.monotonic() + 5
        while voice.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not voice.running() and voice.starts == 1
        assert seconds(voice.say("Снова.")) > 0.3 and voice.starts == 2
    finally:
        voice.close()


def test_russian_falls_back_from_festival_to_gtts_then_espeak(monkeypatch, caplog):
    """One TTS_ENGINES list, Russian's own order: festival, gTTS (online: unreachable here), espeak-ng."""
    def broken(self, text):
        raise FestivalError("festival is broken")

    monkeypatch.setattr(FestivalVoice, "say", broken)
    engines = build_engines(("piper", "festival", "gtts", "espeak"), gtts_timeout=3)
    started = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="audio.tts"):
        speech = speak(engines, "Привет, как дела?", "ru")
    assert speech.engine == "espeak" and seconds_any(speech.wav) > 0.5
    assert time.perf_counter() - started < 5  # gTTS gives up within its timeout
    tried = [r.getMessage() for r in caplog.records]
    assert any("piper skipped" in m for m in tried)
    assert [m.split()[2] for m in tried if "failed" in m and m.startswith("tts engine")] == ["festival", "gtts"]


def seconds_any(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav), "rb") as reader:
        return reader.getnframes() / reader.getframerate()
