"""Spoken replies when the first TTS engine is unreachable, and the bounded playback queue."""
from __future__ import annotations

import pytest
import pytest_asyncio

from localdiscord.voice import fake_discord_with_voice
from tests.integration.test_voice_speech import ask, assert_heard, spoken_text, train

pytestmark = pytest.mark.slow  # speech synthesis fallbacks

# gTTS needs Google, which is unreachable here: every sentence falls back to piper.
BOT_ENV = {"TTS_ENGINES": "gtts,piper", "PLAYBACK_QUEUE_SIZE": "1",
           "VOICE_IDLE_SECONDS": "60"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice() as server:  # DAVE end-to-end encryption on
        yield server
        server.voice_server.assert_end_to_end_encrypted()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def voice(fake, bot):
    await train(fake)
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    return fake.voice_server


async def test_unreachable_gtts_falls_back_to_piper(fake, bot, voice):
    mark = len(bot.lines)
    await ask(fake, fake.bob, "weather")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    await assert_heard(heard, spoken_text(fake, "weather"))
    await bot.wait_for_log("tts engine gtts failed", start=mark)


async def test_replies_beyond_the_queue_bound_are_dropped(fake, bot, voice):
    voice.clear(fake.guild)
    mark = len(bot.lines)
    topics = ["food", "greeting", "weather", "food"]  # one playing, one waiting, two dropped
    for index, topic in enumerate(topics):
        await ask(fake, fake.bob, topic, example=index + 1)
    await bot.wait_for_log("Playback queue", start=mark)
    heard = await voice.wait_for_utterances(fake.guild, 2, timeout=30)
    await ask(fake, fake.bob, "hours")  # spoken next: nothing else was left in the queue
    heard = await voice.wait_for_utterances(fake.guild, 3, timeout=30)
    for utterance, topic in zip(heard, ["food", "greeting", "hours"]):
        await assert_heard(utterance, spoken_text(fake, topic))
