"""Joining, moving and leaving voice channels, through the real bot and the fake voice server."""
from __future__ import annotations

import pytest
import pytest_asyncio

from localdiscord.state import CONNECT
from localdiscord.voice import CLOSE_CALL_TERMINATED, CLOSE_KICKED, MODE, fake_discord_with_voice

BOT_ENV = {"VOICE_IDLE_SECONDS": "120"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice() as server:  # DAVE end-to-end encryption on
        yield server
        server.voice_server.assert_end_to_end_encrypted()


@pytest_asyncio.fixture(loop_scope="module")
async def voice(fake, bot):
    """The voice server, with the bot out of voice and nobody in a channel before and after each test."""
    server = fake.voice_server
    yield server
    for user in (fake.alice, fake.bob):
        if user.id in fake.guild.voice_states:
            await fake.set_voice_state(fake.guild, user, None)
    if server.bot_channel(fake.guild) is not None:
        msg = await fake.send(fake.alice, "!leave")
        await fake.reply_to(msg)
    await server.wait_disconnected(fake.guild)


async def command(fake, user, text: str) -> str:
    msg = await fake.send(user, text)
    reply = await fake.reply_to(msg)
    return reply.text


async def test_join_needs_the_author_in_a_voice_channel(fake, voice):
    assert "not in a voice channel" in await command(fake, fake.bob, "!join")
    assert voice.op4 == [] or voice.bot_channel(fake.guild) is None


async def test_leave_when_not_connected_says_so(fake, voice):
    assert "not in a voice channel" in await command(fake, fake.bob, "!leave")


async def test_join_connects_with_encrypted_voice_then_leave(fake, voice):
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    text = await command(fake, fake.bob, "!join")
    assert "Joined **Voice**" in text
    conn = await voice.wait_connected(fake.guild, fake.voice)
    assert conn.mode == MODE  # picked over the AES-GCM mode it does not support
    assert conn.identify["max_dave_protocol_version"] >= 1
    assert conn.dave_protocol_version == 1  # end-to-end encrypted, as Discord requires
    await voice.wait_dave_ready(fake.guild)
    assert voice.op4[-1]["self_deaf"] is True

    assert "already in **Voice**" in await command(fake, fake.bob, "!join")
    assert voice.connection(fake.guild) is conn and not conn.closed

    assert "Left **Voice**" in await command(fake, fake.bob, "!leave")
    await voice.wait_disconnected(fake.guild)
    assert "not in a voice channel" in await command(fake, fake.bob, "!leave")


async def test_join_from_another_channel_moves_the_bot(fake, voice):
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await command(fake, fake.bob, "!join")
    first = await voice.wait_connected(fake.guild, fake.voice)
    second_channel = fake.voice_channels(fake.guild)[1]
    await fake.set_voice_state(fake.guild, fake.alice, second_channel)
    assert "Moved to **Voice 2**" in await command(fake, fake.alice, "!join")
    moved = await voice.wait_connected(fake.guild, second_channel, after=voice.connections.index(first) + 1)
    assert first.closed and moved is not first
    assert "Left **Voice 2**" in await command(fake, fake.alice, "!leave")


@pytest.mark.parametrize("code", [CLOSE_KICKED, CLOSE_CALL_TERMINATED])
async def test_kicked_bot_can_join_again(fake, bot, voice, code):
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await command(fake, fake.bob, "!join")
    kicked = await voice.wait_connected(fake.guild, fake.voice)
    mark = len(bot.lines)
    await voice.kick(fake.guild, code=code)
    await voice.wait_disconnected(fake.guild)
    assert "not in a voice channel" in await command(fake, fake.bob, "!leave")
    assert "Joined **Voice**" in await command(fake, fake.bob, "!join")
    again = await voice.wait_connected(fake.guild, fake.voice, after=voice.connections.index(kicked) + 1)
    assert again is not kicked
    assert not any("Reconnecting" in line for line in bot.lines[mark:]), "a kick was taken for a network drop"


async def test_bot_leaves_when_the_channel_empties(fake, voice):
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
    await command(fake, fake.bob, "!join")
    await voice.wait_connected(fake.guild, fake.voice)
    await fake.set_voice_state(fake.guild, fake.bob, None)
    assert voice.is_connected(fake.guild, fake.voice)  # alice is still there
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice_channels(fake.guild)[1])
    await voice.wait_disconnected(fake.guild)


async def test_bot_dragged_into_an_empty_channel_leaves(fake, voice):
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await command(fake, fake.bob, "!join")
    await voice.wait_connected(fake.guild, fake.voice)
    await voice.move_bot(fake.guild, fake.voice_channels(fake.guild)[1])
    await voice.wait_disconnected(fake.guild)


async def test_bot_dragged_to_people_stays_connected_there(fake, voice):
    second = fake.voice_channels(fake.guild)[1]
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await fake.set_voice_state(fake.guild, fake.alice, second)
    await command(fake, fake.bob, "!join")
    first = await voice.wait_connected(fake.guild, fake.voice)
    await voice.move_bot(fake.guild, second)
    await voice.wait_connected(fake.guild, second, after=voice.connections.index(first) + 1)
    assert "already in **Voice 2**" in await command(fake, fake.alice, "!join")


async def test_join_without_connect_permission_says_so(fake, voice):
    guild = fake.guild
    saved = {role_id: role.permissions for role_id, role in guild.roles.items()}
    try:
        for role in guild.roles.values():
            role.permissions &= ~CONNECT
            await fake.broadcast("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id), "role": role.payload()})
        await fake.set_voice_state(guild, fake.bob, fake.voice)
        assert "permission to connect to **Voice**" in await command(fake, fake.bob, "!join")
        assert voice.bot_channel(guild) is None
    finally:
        for role_id, permissions in saved.items():
            guild.roles[role_id].permissions = permissions
            await fake.broadcast("GUILD_ROLE_UPDATE", {"guild_id": str(guild.id),
                                                       "role": guild.roles[role_id].payload()})


async def test_shutdown_leaves_voice(fake, bot, voice):
    """Last in this module: stops the bot while it is in a voice channel."""
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await command(fake, fake.bob, "!join")
    await voice.wait_connected(fake.guild, fake.voice)
    assert await bot.stop() == 0
    await voice.wait_disconnected(fake.guild, timeout=1)
    assert voice.op4[-1]["channel_id"] is None
