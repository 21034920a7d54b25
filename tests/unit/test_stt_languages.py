"""The language a clip is heard in: passed from the caller to the engine, `auto` with each
server's recent languages as the prior for unsure detections (audio/spoken_language.py).

The engine here is a stand-in that records what it was asked; the audio is real (espeak
through ffmpeg), so the service's decode, queue and worker threads run as in the bot.
"""
from __future__ import annotations

import threading

import pytest

from audio.decode import DecodedAudio
from audio.spoken_language import AUTO, CONFIDENT, RecentLanguages
from audio.stt import Heard, SpeechEngine, recognise
from audio.transcription import TranscriptionService
from tests.unit.test_stt_decode import encode, espeak


class Recording(SpeechEngine):
    """Hears what it is told to; for auto, the usual language when there is one (sure, as if the
    words came out sure), else what ``detections`` say, in turn (sure above CONFIDENT)."""

    name = "recording"

    def __init__(self, detections: list[tuple[str, float]] | None = None):
        self.asked: list[tuple[str, str | None]] = []
        self.detections = list(detections or [])

    def supports(self, language: str) -> bool:
        return True

    def transcribe(self, audio: DecodedAudio, language: str) -> str:
        return f"heard in {language}"

    def hear(self, audio: DecodedAudio, language: str, usual: str | None = None) -> Heard:
        self.asked.append((language, usual))
        if language != AUTO:
            return Heard(self.transcribe(audio, language), language, True)
        if usual is not None:
            return Heard(self.transcribe(audio, usual), usual, True)
        detected, probability = self.detections.pop(0)
        return Heard(self.transcribe(audio, detected), detected, probability >= CONFIDENT)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("languages")
    return encode(espeak("Hello there, how are you today?", folder / "hello.wav"), "ogg", folder).read_bytes()


async def test_the_callers_language_reaches_the_engine(clip):
    engine = Recording()
    async with TranscriptionService(engines=[engine], language="en") as service:
        said = await service.transcribe(clip, scope="guild-1", language="ru")
        default = await service.transcribe(clip, scope="guild-1")
        regional = await service.transcribe(clip, scope="guild-1", language="pt-BR")
        live = await service.transcribe(clip, scope="guild-1", language="de", live=False)
    assert [language for language, _ in engine.asked] == ["ru", "en", "pt", "de"]
    assert (said.text, said.language) == ("heard in ru", "ru")
    assert default.language == "en" and regional.language == "pt" and live.language == "de"


async def test_auto_hears_in_the_servers_usual_language_once_known(clip):
    engine = Recording([("bg", 0.31), ("ru", 0.97), ("de", 0.9)])
    async with TranscriptionService(engines=[engine], language=AUTO) as service:
        unsure = await service.transcribe(clip, scope="guild-1")  # a short phrase "sounds Bulgarian"
        first = await service.transcribe(clip, scope="guild-1")  # nothing known yet: detected
        usual = await service.transcribe(clip, scope="guild-1")  # now heard in the usual language
        elsewhere = await service.transcribe(clip, scope="guild-2")  # each server its own
        chosen = await service.transcribe(clip, scope="guild-2", language="en")  # a choice is not the server's
    assert unsure.language == "bg" and first.language == "ru" and usual.language == "ru"
    assert elsewhere.language == "de" and chosen.language == "en"
    assert engine.asked == [(AUTO, None), (AUTO, None), (AUTO, "ru"), (AUTO, None), ("en", "de")]
    assert service.recent.usual("guild-1") == "ru"  # the unsure detection was not counted
    assert service.recent.usual("guild-2") == "de"


def test_recent_languages_are_bounded_and_thread_safe():
    recent = RecentLanguages(keep=5, scopes=3)
    assert recent.usual("a") is None
    for language in ["ru", "ru", "en", "en"]:
        recent.add("a", language)
    assert recent.usual("a") == "en"  # a tie: the latest wins
    for language in ["de"] * 5:
        recent.add("a", language)
    assert recent.usual("a") == "de"  # only the last five count
    for scope in "bcd":
        recent.add(scope, "fr")
    assert recent.usual("a") is None and recent.usual("d") == "fr"  # the least recently used scope went

    threads = [threading.Thread(target=lambda i=i: [recent.add(f"s{i % 7}", "es") for _ in range(200)])
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recent._recent) == 3


def test_engines_that_cannot_detect_hear_auto_in_the_usual_language(clip):
    from audio.decode import decode_audio

    class Plain(SpeechEngine):
        name = "plain"

        def __init__(self):
            self.languages: list[str] = []

        def supports(self, language: str) -> bool:
            return True

        def transcribe(self, audio, language):
            self.languages.append(language)
            return "words"

    audio = decode_audio(clip)
    plain = Plain()
    assert recognise([plain], audio, "auto", "ru") == (Heard("words", "ru"), "plain")
    assert recognise([plain], audio, "auto") == (Heard("words", "en"), "plain")
    assert plain.languages == ["ru", "en"]
