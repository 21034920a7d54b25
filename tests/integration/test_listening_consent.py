"""Listening keeps consent (issue 19, section 3), through the real bot and the local voice server:
whoever joins while the bot listens is told once and how to opt out; opting out is atomic;
`!listen me forget` deletes what was kept; joining only to speak never starts listening."""
from __future__ import annotations

import asyncio
import sqlite3

import pytest
import pytest_asyncio

from localdiscord.speaker import FakeSpeaker, pcm_of_speech
from localdiscord.voice import fake_discord_with_voice
from tests.integration.test_voice_listen import SAID, in_group, last_message_id, said_by
from tests.integration.test_voice_speech import TOPICS, ask, train

pytestmark = pytest.mark.slow  # real speech through voice

BOT_ENV = {"VOICE_IDLE_SECONDS": "300", "TTS_ENGINES": "piper,espeak", "STT_ENGINES": "whisper"}
TOLD = "I'm listening in this voice channel"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice(dave=True) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    await train(fake)


def optouts(data_dir) -> set[int]:
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        row = conn.execute("SELECT value FROM scope_settings WHERE key = 'listen_optouts'").fetchone()
    return {int(u) for u in (row[0] if row else "").split(",") if u}


async def test_joining_only_to_speak_does_not_listen(fake, bot, trained):
    """Listening is off: bob's question in chat brings the bot into voice to speak, deafened."""
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    await ask(fake, fake.bob, "weather")
    server = fake.voice_server
    await server.wait_for_utterances(fake.guild, 1, timeout=30)  # it came in and spoke
    assert server.op4[-1]["self_deaf"] is True, "joined to speak: deafened, not listening"
    assert not any(TOLD in m.text for m in fake.bot_messages(fake.general))


async def test_a_member_who_joins_while_listening_is_told_once(fake, bot, trained):
    on = await fake.reply_to(await fake.send(fake.alice, "!listen on"))
    assert "Listening on" in on.text, on.text
    mark = last_message_id(fake)
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
    told = await fake.wait_for_message(lambda m: m.id > mark and TOLD in m.text, timeout=15)
    assert "alice" in told.text and "listen me off" in told.text and "listen me forget" in told.text
    assert told.channel.id == fake.general.id
    # Leaving and coming back: not told again (checked against a later reply, never a wait for nothing).
    await fake.set_voice_state(fake.guild, fake.alice, None)
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
    hi = await fake.send(fake.alice, "!hi")
    await fake.reply_to(hi)
    assert [m for m in fake.bot_messages(fake.general) if m.id > mark and TOLD in m.text] == [told]


async def test_two_opt_outs_at_once_both_stick(fake, bot, trained, data_dir):
    first = await fake.send(fake.alice, "!listen me off")
    second = await fake.send(fake.bob, "!listen me off")  # sent before the first is answered
    replies = await asyncio.gather(*(fake.reply_to(m, lambda r, m=m: r.reference_id == m.id) for m in (first, second)))
    assert all("won't listen to you" in r.text for r in replies), [r.text for r in replies]
    assert {fake.alice.id, fake.bob.id} <= optouts(data_dir)
    for user in (fake.alice, fake.bob):
        status = await fake.reply_to(await fake.send(user, "!listen"))
        assert "You opted out" in status.text, status.text
    for user in (fake.alice, fake.bob):
        await fake.reply_to(await fake.send(user, "!listen me on"))
    assert not {fake.alice.id, fake.bob.id} & optouts(data_dir)


async def test_listen_me_forget_deletes_the_transcripts(fake, bot, trained, data_dir):
    server = fake.voice_server
    bob = FakeSpeaker(server, fake.guild, fake.bob, seed=7)
    await in_group(server, bob)
    mark = last_message_id(fake)
    await bob.say(pcm_of_speech(TOPICS["food"][0][1]))  # "recommend a restaurant"
    transcript = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert transcript.text.startswith(f"{SAID} bob said:")
    forget = await fake.send(fake.bob, "!listen me forget")
    reply = await fake.reply_to(forget, lambda r: r.reference_id == forget.id, timeout=15)
    assert "deleted what I kept" in reply.text, reply.text
    assert fake.messages[transcript.id].deleted
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        left = conn.execute("SELECT COUNT(*) FROM bot_replies WHERE user_id = ?", (fake.bob.id,)).fetchone()[0]
    assert left == 0 and fake.bob.id in optouts(data_dir)
