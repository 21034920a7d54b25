"""DAVE end-to-end encrypted voice, as Discord requires it, through the real bot.

The local voice server negotiates DAVE protocol version 1, adds a listener of its own
(and one per person in the channel) to the bot's MLS group and decrypts every frame the
bot sends (localdiscord/dave.py).  These tests change the group while the bot speaks,
make the connection resume, feed the bot an invalid commit, and compare the voice privacy
code the bot logs with the listener's.  Every test ends with nothing sent in plaintext
after the group was ready and every encrypted frame decrypted.
"""
from __future__ import annotations

import re

import pytest
import pytest_asyncio

from localdiscord.voice import fake_discord_with_voice
from tests.integration.test_voice_speech import ask, assert_heard, spoken_text, train

pytestmark = pytest.mark.slow  # DAVE group changes while speaking

BOT_ENV = {"VOICE_IDLE_SECONDS": "60", "TTS_ENGINES": "piper,espeak"}
LOGGED = re.compile(r"DAVE protocol version (\d+), epoch (\d+), voice privacy code (\d+)")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice(dave=True) as server:
        yield server
        server.voice_server.assert_end_to_end_encrypted()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    await train(fake)


@pytest_asyncio.fixture(loop_scope="module")
async def voice(fake, trained):
    """Bob in the voice channel and the bot connected there with a ready DAVE group."""
    server = fake.voice_server
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    if not server.is_connected(fake.guild, fake.voice):
        await fake.reply_to(await fake.send(fake.bob, "!join"))
    await server.wait_dave_ready(fake.guild)
    server.clear(fake.guild)
    yield server
    await fake.set_voice_state(fake.guild, fake.alice, None)
    server.assert_end_to_end_encrypted()


async def logged_state(bot, start: int) -> tuple[int, int, str]:
    """(protocol version, epoch, privacy code) from the bot's next DAVE log line."""
    line = await bot.wait_for_log("DAVE protocol version", start=start)
    match = LOGGED.search(line)
    assert match, line
    return int(match[1]), int(match[2]), match[3]


async def test_group_forms_and_the_bot_logs_the_listeners_privacy_code(fake, bot, voice):
    conn = voice.connection(fake.guild)
    group = conn.dave
    assert conn.identify["max_dave_protocol_version"] >= 1 and group.protocol_version == 1
    assert group.member_ids() == {voice.listener_id, fake.bob.id}
    assert group.epoch >= 1 and group.key_packages >= 1 and group.transitions_executed
    version, epoch, code = await logged_state(bot, 0)
    assert version == 1 and len(code) == 30
    assert group.privacy_codes[epoch] == code  # the bot and the listener are in the same group
    assert group.listeners[fake.bob.id].privacy_code == group.privacy_code


async def test_every_frame_of_a_reply_is_encrypted_and_decrypts(fake, voice):
    group = voice.connection(fake.guild).dave
    encrypted, decrypted = group.encrypted_frames, group.decrypted_frames
    await ask(fake, fake.bob, "weather")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    await assert_heard(heard, spoken_text(fake, "weather"))
    assert group.encrypted_frames - encrypted == heard.frames  # no plaintext voice frame at all
    assert group.decrypted_frames - decrypted == heard.frames
    assert group.listeners[fake.bob.id].failures == 0 and group.plaintext_frames == 0


async def test_member_joins_and_leaves_while_the_bot_speaks(fake, voice):
    conn = voice.connection(fake.guild)
    group = conn.dave
    epoch, decrypted = group.epoch, group.decrypted_frames
    await ask(fake, fake.bob, "hours")  # several sentences: one utterance of a few seconds
    await voice.wait_until(lambda: conn.current_frames >= 15, 30, "the bot speaking")

    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
    await voice.wait_until(lambda: group.ready and fake.alice.id in group.member_ids(), 10, "alice added")
    assert group.epoch == epoch + 1
    alice = group.listeners[fake.alice.id]
    await voice.wait_until(lambda: alice.decrypted >= 10, 10, "alice hearing the bot")
    await fake.set_voice_state(fake.guild, fake.alice, None)
    await voice.wait_until(lambda: group.ready and fake.alice.id not in group.listeners, 10, "alice removed")
    assert group.epoch == epoch + 2
    assert conn.current_frames > 0, "the changes were meant to happen inside the utterance"

    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    # Nothing stuck: the utterance ended normally with every packet in sequence (its timing is
    # bench/voice.py's business: under CPU load a transition may delay a frame, not lose it).
    assert heard.complete and heard.lost == 0
    assert group.decrypted_frames - decrypted == heard.frames  # every frame, across both changes
    assert alice.failures == 0 and group.undecryptable == 0
    assert group.member_ids() == {voice.listener_id, fake.bob.id}
    await assert_heard(heard, spoken_text(fake, "hours"))


async def test_bot_resumes_into_a_new_dave_group(fake, bot, voice):
    old = voice.connection(fake.guild)
    mark = len(bot.lines)
    await voice.interrupt(fake.guild)
    try:
        conn = await voice.wait_dave_ready(fake.guild, after=voice.connections.index(old) + 1, timeout=20)
    except AssertionError:
        print(bot.log_tail(60), "\nop 4 requests:", voice.op4[-3:])  # why discord.py did not resume
        raise
    assert conn.resumed_from is old and conn.ssrc == old.ssrc
    assert conn.dave is not old.dave and conn.dave.epoch >= 1
    version, epoch, code = await logged_state(bot, mark)
    assert version == 1 and conn.dave.privacy_codes[epoch] == code

    decrypted = conn.dave.decrypted_frames
    await ask(fake, fake.bob, "food")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    await assert_heard(heard, spoken_text(fake, "food"))
    assert conn.dave.decrypted_frames - decrypted == heard.frames
    assert voice.connection(fake.guild) is conn and not any("Traceback" in line for line in bot.lines[mark:])


async def test_invalid_commit_is_answered_with_op_31_and_the_group_recovers(fake, bot, voice):
    conn = voice.connection(fake.guild)
    group = conn.dave
    await ask(fake, fake.bob, "hours")
    await voice.wait_until(lambda: conn.current_frames >= 15, 30, "the bot speaking")
    transition = await voice.inject_invalid_commit(fake.guild)
    await voice.wait_until(lambda: transition in group.invalid_commit_welcomes, 10, "op 31 from the bot")
    await voice.wait_until(lambda: group.ready, 10, "the group formed again")
    assert group.epoch >= 1 and group.member_ids() == {voice.listener_id, fake.bob.id}

    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    assert heard.complete and heard.lost == 0
    await assert_heard(heard, spoken_text(fake, "hours"))  # plaintext only while re-forming

    voice.clear(fake.guild)
    encrypted, decrypted = group.encrypted_frames, group.decrypted_frames
    await ask(fake, fake.bob, "greeting")
    [after] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    assert group.encrypted_frames - encrypted == after.frames == group.decrypted_frames - decrypted


async def test_downgrade_to_plaintext_and_upgrade_again(fake, voice):
    """Op 21 to version 0 (a client without DAVE joined), later op 24 back to version 1."""
    conn = voice.connection(fake.guild)
    group = conn.dave
    transition = await voice.downgrade(fake.guild)
    await voice.wait_until(lambda: transition in group.transitions_executed and group.protocol_version == 0,
                           10, "the downgrade executed")
    plaintext = group.plaintext_frames
    await ask(fake, fake.bob, "weather")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    assert group.plaintext_frames - plaintext == heard.frames  # plaintext, and allowed now
    await assert_heard(heard, spoken_text(fake, "weather"))

    await voice.upgrade(fake.guild)
    await voice.wait_until(lambda: group.protocol_version == 1 and group.ready, 10, "the upgrade")
    voice.clear(fake.guild)
    decrypted = group.decrypted_frames
    await ask(fake, fake.bob, "food")
    [again] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    assert group.decrypted_frames - decrypted == again.frames
    await assert_heard(again, spoken_text(fake, "food"))
