"""Spoken replies in Russian (issue 21): a reply written in Russian is spoken by festival's Russian
voice in the author's voice channel and heard back by the local voice server (the multilingual
Whisper base, told it is Russian); an English reply in the same server is still spoken in English.

The model's labels are the replies, so what the bot says is what we expect to hear. Numbers are
spelled out before festival speaks (ru-normalizr); Whisper may write them as digits, so both
sides are compared spelled out. The round trip is held to the issue's WER <= .3 here; the target
figure (<= .10) is measured over more sentences by `bench/voice.py --russian` (measured .12:
the voice slurs a few words, "тепло" comes out as "теплоло")."""
from __future__ import annotations

import csv
import io

import pytest

from tests.support.shared_data import in_ci  # under CI a missing install fails instead of skipping
import pytest_asyncio

from audio.festival import VOICES, spell_out_russian, voice_installed
from tests.integration.test_voice_speech import fake, voice  # noqa: F401 - fixtures: DAVE on; bob in voice
from tests.support.transcripts import normalize_text, wer, word_errors

pytestmark = [pytest.mark.slow,  # speech synthesis heard through voice, with Whisper base
              pytest.mark.skipif(not voice_installed(VOICES["ru"]) and not in_ci(), reason="festival + festvox-ru not installed")]

BOT_ENV = {"VOICE_IDLE_SECONDS": "60", "TTS_ENGINES": "piper,festival,espeak"}
FINISHED = "Training finished"

# topic -> (example messages, the reply); five typical bot sentences in Russian, one English
TOPICS = {
    "greeting": (["привет", "здравствуй бот", "добрый день", "привет как дела", "доброе утро", "приветствую"],
                 "Привет, рад тебя слышать."),
    "weather": (["какая будет погода", "будет ли дождь завтра", "нужен ли зонтик", "холодно на улице",
                 "прогноз погоды", "выглянет ли солнце"],
                "Завтра будет солнечно и тепло."),
    "accuracy": (["какая точность модели", "насколько ты точен", "покажи точность", "модель готова",
                  "хорошая ли модель", "проверь качество"],
                 "Модель обучена, точность 93 процента."),
    "duration": (["сколько заняло обучение", "как долго ты учился", "время обучения", "быстро ли учишься",
                  "сколько секунд", "долго ли ждать"],
                 "Обучение заняло 12 секунд."),
    "unsure": (["что такое квазар", "расскажи про кванты", "объясни философию", "кто выиграл матч",
                "в чём смысл жизни", "зачем луна"],
               "Я не уверен, что понял вопрос."),
    "english": (["hello there", "good morning", "hi bot", "hey how are you", "nice to meet you", "greetings friend"],
                "Hello, nice to see you again."),
}
RUSSIAN = ["greeting", "weather", "accuracy", "duration", "unsure"]


def spoken_form(text: str) -> str:
    """Lower case, no punctuation, numbers as Russian words, ё as е (Whisper writes either)."""
    return normalize_text(spell_out_russian(text)).replace("ё", "е")


def dataset() -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    for _round in range(5):
        for examples, reply in TOPICS.values():
            for example in examples:
                writer.writerow([example, reply])
    return buffer.getvalue().encode()


async def ask(fake, user, topic: str):
    msg = await fake.send(user, TOPICS[topic][0][0])
    reply = await fake.reply_to(msg, timeout=15)
    assert reply.content == TOPICS[topic][1], reply.content
    return reply


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):  # what test_voice_speech's `voice` fixture waits for
    msg = await fake.send(fake.alice, "!train", attachments=[("replies.csv", dataset(), "text/csv")])
    status = await fake.reply_to(msg, timeout=15)
    status = await fake.wait_for_edit(status, lambda m: FINISHED in m.text or "Training failed" in m.text,
                                      timeout=120)
    assert FINISHED in status.text, status.text


def cached_engines(data_dir) -> list[str]:
    """The engines that made the bot's cached phrases (file names end in .<engine>.wav)."""
    return sorted(path.name.split(".")[-2] for path in (data_dir / "tts-cache").glob("*.wav"))


async def test_russian_replies_are_spoken_in_russian_and_heard_back(fake, bot, voice, data_dir):
    for topic in RUSSIAN:
        await ask(fake, fake.bob, topic)
    heard = await voice.wait_for_utterances(fake.guild, len(RUSSIAN), timeout=60)
    errors = words = 0
    transcripts = []
    for utterance, topic in zip(heard, RUSSIAN):
        assert utterance.complete and utterance.rms() > 0.01
        transcript = await utterance.transcribe("base", "ru")
        expected = spoken_form(TOPICS[topic][1])
        wrong, count = word_errors(expected, spoken_form(transcript))
        transcripts.append((expected, transcript))
        assert wrong / count <= 0.5, f"expected {expected!r}, heard {transcript!r}"
        errors += wrong
        words += count
    assert errors / words <= 0.3, f"round-trip WER {errors / words:.2f}: {transcripts}"
    # Made by festival, in Russian: the digits were spoken as words.
    assert cached_engines(data_dir) == ["festival"] * len(RUSSIAN)


async def test_an_english_reply_in_the_same_server_is_still_english(fake, bot, voice, data_dir):
    await ask(fake, fake.bob, "english")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    transcript = await heard.transcribe()  # tiny.en
    assert wer(TOPICS["english"][1], transcript) <= 0.3, transcript
    assert "piper" in cached_engines(data_dir)
