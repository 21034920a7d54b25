"""Listening in voice hears the member's language (issue 21): a member speaks a real Russian
phrase in the voice channel (DAVE-encrypted, as Discord relays it) and the bot posts what it heard
in Cyrillic, with the server left at the default `auto`; then, with the member's own language set
to English, Russian speech is still heard as Russian (the unsure English words make Whisper check
the language)."""
from __future__ import annotations

import asyncio
import re

import pytest
import pytest_asyncio

from localdiscord.speaker import FakeSpeaker, pcm_of_file
from localdiscord.voice import fake_discord_with_voice
from tests.support.shared_data import SHARED, shared_file

pytestmark = pytest.mark.slow  # real Russian speech through DAVE voice, Whisper base

BOT_ENV = {"VOICE_IDLE_SECONDS": "300", "TTS_ENGINES": "espeak", "STT_ENGINES": "whisper"}
CROWD = SHARED / "data" / "speech_ml" / "ru"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice(dave=True) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def voice(fake, bot):
    """Listening turned on by an admin, bob in voice, the bot joined."""
    on = await fake.reply_to(await fake.send(fake.alice, "!listen on"))
    assert "Listening on" in on.text, on.text
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await fake.reply_to(await fake.send(fake.bob, "!join"))
    server = fake.voice_server
    await server.wait_dave_ready(fake.guild)
    return server


async def heard_from(fake, voice, clip: str, seed: int) -> str:
    pcm = await asyncio.to_thread(pcm_of_file, shared_file(CROWD / clip))
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=seed)
    await voice.wait_until(bob.in_group, 10, "bob in the bot's DAVE group")
    mark = max(fake.messages, default=0)
    await bob.say(pcm)
    message = await fake.wait_for_message(
        lambda m: m.channel.id == fake.general.id and m.text.startswith("🎙️ bob said:") and m.id > mark, timeout=60)
    return message.text.split(" said: ", 1)[1].split(" → ", 1)[0]


async def test_russian_speech_in_voice_is_heard_in_cyrillic(fake, bot, voice):
    said = await heard_from(fake, voice, "golos_crowd_14.wav", seed=1)  # "у тебя будет лучшая часть пинк"
    assert re.search("[а-я]", said.lower()) and "тебя" in said.lower(), said


async def test_russian_speech_to_an_english_setting_is_still_russian(fake, bot, voice):
    mine = await fake.reply_to(await fake.send(fake.bob, "!language me en"))
    assert "`en`" in mine.text, mine.text
    said = await heard_from(fake, voice, "golos_crowd_11.wav", seed=2)  # "афина чем платят у китайцев"
    assert re.search("[а-я]", said.lower()) and "китай" in said.lower(), said
    await fake.reply_to(await fake.send(fake.bob, "!language me reset"))
