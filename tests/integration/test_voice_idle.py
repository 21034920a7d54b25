"""The bot leaves a voice channel by itself after VOICE_IDLE_SECONDS with nothing to say."""
from __future__ import annotations

import pytest_asyncio

from localdiscord.voice import fake_discord_with_voice

BOT_ENV = {"VOICE_IDLE_SECONDS": "1"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice() as server:  # DAVE end-to-end encryption on
        yield server
        server.voice_server.assert_end_to_end_encrypted()


async def test_idle_bot_leaves_and_can_join_again(fake, bot):
    voice = fake.voice_server
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    for attempt in range(2):
        msg = await fake.send(fake.bob, "!join")
        assert "Joined **Voice**" in (await fake.reply_to(msg)).text
        await voice.wait_connected(fake.guild, fake.voice, after=attempt)
        joined_at_line = len(bot.lines)
        await voice.wait_disconnected(fake.guild, timeout=5)
        # It left because it was idle, after this join (how long it waits is bench/voice.py's to time).
        await bot.wait_for_log("(idle for 1 s)", start=joined_at_line)
