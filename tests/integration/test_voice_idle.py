"""The bot leaves a voice channel by itself after VOICE_IDLE_SECONDS with nothing to say."""
from __future__ import annotations

import time

import pytest_asyncio

from localdiscord.voice import fake_discord_with_voice

BOT_ENV = {"VOICE_IDLE_SECONDS": "1"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice() as server:
        yield server


async def test_idle_bot_leaves_and_can_join_again(fake, bot):
    voice = fake.voice_server
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    for attempt in range(2):
        msg = await fake.send(fake.bob, "!join")
        assert "Joined **Voice**" in (await fake.reply_to(msg)).text
        await voice.wait_connected(fake.guild, fake.voice, after=attempt)
        joined = time.monotonic()
        await voice.wait_disconnected(fake.guild, timeout=5)
        idle = time.monotonic() - joined
        assert 0.9 <= idle <= 2.5, idle
    await bot.wait_for_log("idle for 1 s")
