"""Talking to the bot in voice (issue 14), through the real bot and the local voice server.

Members speak as Discord relays them (localdiscord/speaker.py): op 5, then RTP packets of
20 ms Opus frames, DAVE-encrypted by the member's own session in the bot's group and then
transport-encrypted, in real time. The bot must hear, transcribe and answer them in text
("🎙️ NAME said: … → answer") and in voice. Speech is made here with espeak-ng; the shared
real recording (jfk.flac) is used too when it is present.

Negative checks ("not transcribed") never wait for nothing: the member who must be
ignored speaks first, another utterance that must be answered follows, and utterances of a
server are transcribed in order, so the ignored one would have been posted before it.
"""
from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from tests.support.shared_data import SPEECH, shared_file
from tests.support.transcripts import wer
from localdiscord.speaker import FakeSpeaker, echo_bot, pcm_of_file, pcm_of_speech
from localdiscord.voice import fake_discord_with_voice
from tests.integration.test_voice_speech import TOPICS, ask, assert_heard, reply_text, spoken_text, train

pytestmark = pytest.mark.slow  # real speech through DAVE voice, whisper

# English heard by tiny.en, as these WER bounds were measured with (the default, base, read the lossy
# synthetic sentence below at .53; it hears the real recordings as well or better).
BOT_ENV = {"VOICE_IDLE_SECONDS": "300", "TTS_ENGINES": "piper,espeak",
           "STT_ENGINES": "whisper", "WHISPER_ENGLISH_MODEL": "tiny.en"}
SAID = "🎙️"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice(dave=True) as server:
        yield server
        server.voice_server.assert_end_to_end_encrypted()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained(fake, bot):
    await train(fake)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def listening(fake, bot, trained):
    """Listening turned on by an admin, bob in voice, the bot joined where `!join` was used."""
    server = fake.voice_server
    refused = await fake.reply_to(await fake.send(fake.bob, "!listen on"))
    assert "server admin" in refused.text
    status = await fake.reply_to(await fake.send(fake.bob, "!listen"))
    assert "off" in status.text
    on = await fake.reply_to(await fake.send(fake.alice, "!listen on"))
    assert "Listening on" in on.text, on.text
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    joined = await fake.reply_to(await fake.send(fake.bob, "!join"))
    assert "listening" in joined.text and "listen me off" in joined.text, joined.text
    conn = await server.wait_dave_ready(fake.guild)
    assert fake.bob.id in conn.dave.member_ids()
    [notice] = await server.wait_for_utterances(fake.guild, 1, timeout=30)  # the spoken line
    await assert_heard(notice, "I'm listening. Talk to me and I'll answer.", max_wer=0.4)
    assert server.op4[-1]["self_deaf"] is False, "not deafened while listening"
    return server


@pytest_asyncio.fixture(loop_scope="module")
async def voice(fake, listening):
    listening.clear(fake.guild)
    yield listening
    for user in (fake.alice,):
        if fake.guild.voice_states.get(user.id) is not None:
            await FakeSpeaker(listening, fake.guild, user).leave()


def said_by(fake, user, start_id: int = 0):
    prefix = f"{SAID} {user.username} said:"
    return lambda m: m.channel.id == fake.general.id and m.text.startswith(prefix) and m.id > start_id


def transcript_of(message) -> str:
    return message.text.split(" said: ", 1)[1].split(" → ", 1)[0]


def answer_of(message) -> str:
    return message.text.split(" → ", 1)[1]


async def in_group(voice, speaker: FakeSpeaker) -> None:
    await voice.wait_until(speaker.in_group, 10, f"{speaker.user.username} in the bot's DAVE group")


def last_message_id(fake) -> int:
    return max(fake.messages, default=0)


async def test_member_is_heard_and_answered_in_text_and_voice(fake, bot, voice):
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=1)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    await bob.say(pcm_of_speech(TOPICS["weather"][0][2]))  # "what is the weather like"
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert wer(TOPICS["weather"][0][2], transcript_of(message)) <= 0.2, message.text
    assert answer_of(message) == reply_text(fake, "weather")
    [spoken] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    await assert_heard(spoken, spoken_text(fake, "weather"))
    assert "Traceback" not in "".join(bot.lines)


async def test_real_recording_is_transcribed_with_five_percent_loss(fake, voice):
    shared_file(SPEECH / "jfk.flac")  # absent: fails under CI, skipped elsewhere (espeak tests cover the path)
    reference = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=2)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    spoken = await bob.say(await asyncio.to_thread(pcm_of_file, SPEECH / "jfk.flac"), loss=0.05)
    assert spoken.frames - spoken.sent >= 10
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=40)
    assert wer(reference, transcript_of(message)) <= 0.2, message.text


async def test_two_members_talking_at_once_are_transcribed_separately(fake, voice):
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=3)
    alice = FakeSpeaker(voice, fake.guild, fake.alice, seed=4)
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)  # a second member: a new epoch
    await in_group(voice, alice)
    mark = last_message_id(fake)
    food, hours = "i am hungry what is for dinner", TOPICS["hours"][0][3]  # "when does the shop close"
    await asyncio.gather(bob.say(pcm_of_speech(food)), alice.say(pcm_of_speech(hours, voice="en-gb")))
    from_bob = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=40)
    from_alice = await fake.wait_for_message(said_by(fake, fake.alice, mark), timeout=40)
    assert wer(food, transcript_of(from_bob)) <= 0.2, from_bob.text
    assert wer(hours, transcript_of(from_alice)) <= 0.2, from_alice.text
    assert answer_of(from_bob) == reply_text(fake, "food")
    assert answer_of(from_alice) == reply_text(fake, "hours")


async def test_five_percent_packet_loss_is_concealed(fake, voice):
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=5)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    sentence = "the shop opens early and it closes late tonight but sunday is a day off"
    spoken = await bob.say(pcm_of_speech(sentence), loss=0.05)
    assert spoken.frames - spoken.sent >= 3  # the loss really happened
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    # Synthetic speech with tiny.en reads a few words differently once packets are lost (0.0-0.4
    # measured); the real recording above is held to 0.2. The answer must still be the right one.
    assert wer(sentence, transcript_of(message)) <= 0.4, message.text
    assert answer_of(message) == reply_text(fake, "hours")


async def test_packets_before_op_5_are_kept_and_replayed(fake, voice):
    late = FakeSpeaker(voice, fake.guild, fake.bob, seed=6)  # a new SSRC, unknown to the bot
    await in_group(voice, late)
    mark = last_message_id(fake)
    sentence = "good morning how are you today"
    await late.say(pcm_of_speech(sentence), op5_after=25)  # half a second of speech first
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert wer(sentence, transcript_of(message)) <= 0.2, message.text


async def test_a_member_who_opted_out_is_ignored(fake, voice):
    opted = await fake.reply_to(await fake.send(fake.bob, "!listen me off"))
    assert "won't listen to you" in opted.text
    status = await fake.reply_to(await fake.send(fake.bob, "!listen"))
    assert "opted out" in status.text
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=7)
    alice = FakeSpeaker(voice, fake.guild, fake.alice, seed=8)
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)
    await in_group(voice, alice)
    mark = last_message_id(fake)
    await bob.say(pcm_of_speech("is it going to rain today"))
    await alice.say(pcm_of_speech("nice to meet you"))
    from_alice = await fake.wait_for_message(said_by(fake, fake.alice, mark), timeout=30)
    assert not [m for m in fake.bot_messages(fake.general) if said_by(fake, fake.bob, mark)(m)]
    assert from_alice.id > mark
    back = await fake.reply_to(await fake.send(fake.bob, "!listen me on"))
    assert "I'll listen to you" in back.text


async def test_listening_off_ignores_everyone(fake, voice):
    off = await fake.reply_to(await fake.send(fake.alice, "!listen off"))
    assert "stopped listening" in off.text
    assert voice.op4[-1]["self_deaf"] is True
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=9)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    await bob.say(pcm_of_speech("where can i get pizza"))
    on = await fake.reply_to(await fake.send(fake.alice, "!listen on"))
    assert "Listening on" in on.text
    await bob.say(pcm_of_speech("hello there"))
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert "pizza" not in message.text.lower() and "hello" in message.text.lower(), message.text
    assert len([m for m in fake.bot_messages(fake.general) if said_by(fake, fake.bob, mark)(m)]) == 1


async def test_the_bots_own_voice_is_never_transcribed(fake, bot, voice):
    echoed = echo_bot(voice, fake.guild)  # the bot's packets come back, op 5 naming the bot
    try:
        mark = last_message_id(fake)
        await fake.reply_to(await fake.send(fake.bob, TOPICS["hours"][0][0]))  # a long spoken reply
        [reply] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
        assert reply.complete and len(echoed) >= reply.frames // 2
        bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=10)
        await bob.say(pcm_of_speech("do i need an umbrella"))  # after the echo: its turn comes later
        await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
        heard = [m for m in fake.bot_messages(fake.general) if m.id > mark and m.text.startswith(SAID)]
        assert len(heard) == 1, [m.text for m in heard]
    finally:
        voice.rtp_taps.clear()


async def test_members_joining_and_leaving_mid_utterance(fake, voice):
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=11)
    alice = FakeSpeaker(voice, fake.guild, fake.alice, seed=12)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    sentence = "the shop opens early and it closes late tonight but sunday is a day off"
    speech = asyncio.create_task(bob.say(pcm_of_speech(sentence, speed=130)))
    conn = voice.connection(fake.guild)
    epoch = conn.dave.epoch
    await fake.set_voice_state(fake.guild, fake.alice, fake.voice)  # joins while bob talks: a new epoch
    await in_group(voice, alice)
    assert conn.dave.epoch > epoch and not speech.done(), "meant to happen inside bob's utterance"
    await alice.say(pcm_of_speech("what time do you close on sunday", speed=110), stop_after=60)
    await alice.leave()  # op 13 and out of the group, in the middle of her sentence
    await speech
    from_bob = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=40)
    assert wer(sentence, transcript_of(from_bob)) <= 0.25, from_bob.text
    from_alice = await fake.wait_for_message(said_by(fake, fake.alice, mark), timeout=40)
    assert "what time" in transcript_of(from_alice).lower(), from_alice.text  # what she said before leaving



async def test_still_listening_after_being_dragged_to_another_channel(fake, bot, voice):
    second = fake.voice_channels(fake.guild)[1]
    before = len(voice.connections)
    group = voice.connection(fake.guild).dave
    await fake.set_voice_state(fake.guild, fake.bob, second)
    # The group change for bob leaving settles first (a commit racing the drag's close makes
    # discord.py 2.7.1 log a traceback of its own).
    await voice.wait_until(lambda: group.ready and fake.bob.id not in group.member_ids(), 10, "bob out of the group")
    mark = len(bot.lines)
    await voice.move_bot(fake.guild, second)  # a moderator drags the bot after bob: a new connection
    try:
        await voice.wait_connected(fake.guild, second, after=before, timeout=30)
    except AssertionError:
        print("\n".join(bot.lines[mark:]))  # what the bot's voice connection did after the drag
        raise
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=13)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    await bob.say(pcm_of_speech("good morning how are you today"))
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert wer("good morning how are you today", transcript_of(message)) <= 0.2, message.text


async def test_still_listening_after_the_voice_server_asks_for_a_resume(fake, bot, voice):
    """The voice websocket closes with 4015: discord.py resumes, asks for its channel again and
    gets VOICE_SERVER_UPDATE and VOICE_STATE_UPDATE back to back, as Discord sends them (2.7.1
    lost the second one's wake-up about 1 time in 20: voice/internals.py RaceFixedConnectionState)."""
    old = voice.connection(fake.guild)
    mark = len(bot.lines)
    await voice.interrupt(fake.guild)
    try:
        conn = await voice.wait_dave_ready(fake.guild, after=voice.connections.index(old) + 1, timeout=30)
    except AssertionError:
        print("\n".join(bot.lines[mark:]))  # what the bot's voice connection did after the 4015
        raise
    assert conn.resumed_from is old and conn.ssrc == old.ssrc
    bob = FakeSpeaker(voice, fake.guild, fake.bob, seed=14)
    await in_group(voice, bob)
    mark = last_message_id(fake)
    sentence = TOPICS["weather"][0][2]  # "what is the weather like"
    await bob.say(pcm_of_speech(sentence))
    message = await fake.wait_for_message(said_by(fake, fake.bob, mark), timeout=30)
    assert wer(sentence, transcript_of(message)) <= 0.2, message.text


async def test_listen_as_a_slash_command(fake, voice):
    synced = await fake.reply_to(await fake.send(fake.owner, "!sync"), timeout=15)
    assert "Synced" in synced.text, synced.text
    status = await (await fake.slash(fake.bob, "listen")).wait_original()
    assert "Listening is **on**" in status.text, status.text
    refused = await (await fake.slash(fake.bob, "listen", {"setting": "off"})).wait_original()
    assert "server admin" in refused.text


async def test_joining_by_itself_to_speak_an_answer_says_it_is_listening(fake, voice):
    await fake.reply_to(await fake.send(fake.bob, "!leave"))
    await voice.wait_disconnected(fake.guild)
    voice.clear(fake.guild)
    mark = last_message_id(fake)
    await ask(fake, fake.bob, "food")  # bob is in voice: the bot joins him to say the answer
    notice = await fake.wait_for_message(lambda m: m.id > mark and "listening in this channel" in m.text, timeout=20)
    assert "listen me off" in notice.text
    first, second = await voice.wait_for_utterances(fake.guild, 2, timeout=40)
    await assert_heard(first, "I'm listening. Talk to me and I'll answer.", max_wer=0.4)  # said first
    await assert_heard(second, spoken_text(fake, "food"))
