"""Uploaded audio and voice messages are transcribed and answered (issue 5), through the local server."""
from __future__ import annotations

import subprocess

import pytest

from tests.support.transcripts import wer

pytestmark = pytest.mark.slow  # transcribes uploads with whisper

SENTENCE = "the quick brown fox jumps over the lazy dog"
BOT_ENV = {"STT_ENGINES": "google,whisper", "MAX_ATTACHMENT_BYTES": "2000000"}


def speech(tmp_path, text: str, codec_args: list[str], suffix: str) -> bytes:
    wav = tmp_path / "speech.wav"
    out = tmp_path / f"speech{suffix}"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec_args, str(out)], check=True)
    return out.read_bytes()


@pytest.fixture(scope="module")
def voice_message(tmp_path_factory):
    return speech(tmp_path_factory.mktemp("voice"), SENTENCE,
                  ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-ac", "1", "-application", "voip"], ".ogg")


def transcript_of(reply_text: str) -> str:
    return " ".join(line[2:] for line in reply_text.splitlines() if line.startswith("> "))


async def test_voice_message_is_transcribed_in_the_reply(fake, bot, voice_message):
    msg = await fake.send(fake.bob, "", attachments=[("voice-message.ogg", voice_message, "audio/ogg")],
                          voice_message=True, duration=3.0)
    reply = await fake.reply_to(msg, timeout=60)
    assert reply.reference_id == msg.id
    assert "bob said" in reply.text
    assert wer(SENTENCE, transcript_of(reply.text)) <= 0.3, reply.text
    assert msg.channel.id in fake.typing  # a typing indicator while it worked
    # Google is unreachable here: the fallback to whisper was taken, and logged.
    await bot.wait_for_log("google")


async def test_audio_detected_by_content_type_with_odd_name(fake, bot, voice_message):
    msg = await fake.send(fake.bob, "what about this", attachments=[("recording.bin", voice_message, "audio/ogg")])
    reply = await fake.reply_to(msg, timeout=60)
    assert wer(SENTENCE, transcript_of(reply.text)) <= 0.3, reply.text


def _silence() -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "2",
                           "-c:a", "libopus", "-f", "ogg", "-"], check=True, capture_output=True).stdout


@pytest.mark.parametrize("name, data, expected", [
    ("broken.ogg", b"OggS" + b"\x00garbage" * 500, "couldn't read that file as audio"),
    ("empty.mp3", b"", "empty"),
    ("notes.mp3", b"just some text pretending to be audio\n" * 20, "not an audio format I accept: that looks like text"),
    ("silence.ogg", _silence(), "couldn't hear any speech"),
], ids=["broken", "empty", "text", "silence"])  # stable ids: the silence is encoded anew by each test worker
async def test_corrupt_audio_gets_a_clear_reply_and_the_bot_keeps_going(fake, bot, name, data, expected):
    msg = await fake.send(fake.bob, "", attachments=[(name, data, "audio/mpeg")])
    reply = await fake.reply_to(msg, timeout=30)
    assert name in reply.text
    assert "Traceback" not in reply.text and "went wrong" not in reply.text
    assert expected.lower() in reply.text.lower()
    hi = await fake.send(fake.bob, "!hi")
    assert "Hi bob" in (await fake.reply_to(hi)).text


async def test_too_big_audio_is_refused_before_download(fake, bot):
    big = b"\0" * 2_100_000
    before = len([r for r in fake.requests if r[1].startswith("/attachments/")])
    msg = await fake.send(fake.bob, "", attachments=[("long.wav", big, "audio/wav")])
    reply = await fake.reply_to(msg)
    assert "too big" in reply.text
    assert len([r for r in fake.requests if r[1].startswith("/attachments/")]) == before


async def test_other_attachments_do_not_take_the_audio_path(fake, bot):
    msg = await fake.send(fake.bob, "", attachments=[("notes.txt", b"hello", "text/plain")])
    hi = await fake.send(fake.bob, "!hi")
    reply = await fake.reply_to(msg)
    assert reply.reference_id == hi.id  # nothing was said about notes.txt


@pytest.fixture(scope="module")
def long_voice_message(tmp_path_factory):
    """About 8 s of speech: transcribing it takes seconds, so server B's message arrives meanwhile."""
    return speech(tmp_path_factory.mktemp("long"), " ".join([SENTENCE] * 3),
                  ["-c:a", "libopus", "-b:a", "24k", "-ar", "48000", "-ac", "1"], ".ogg")


async def test_a_flood_from_one_server_does_not_hold_up_another(fake, bot, long_voice_message, voice_message):
    """Server A sends five voice messages at once, then server B one: A's messages beyond its share
    (one running, two waiting: half of STT_QUEUE_SIZE=4) are told busy at once, B is transcribed
    right after the job that was running when it came (round robin), and none goes unanswered."""
    flood = [await fake.send(fake.bob, "", attachments=[(f"a{i}.ogg", long_voice_message, "audio/ogg")])
             for i in range(5)]
    flood_ids = {m.id for m in flood}
    busy_replies = [await fake.wait_for_message(lambda r: r.reference_id in flood_ids and "busy" in r.text,
                                                timeout=30)]
    busy_replies.append(await fake.wait_for_message(
        lambda r: r.reference_id in flood_ids and "busy" in r.text and r.id != busy_replies[0].id, timeout=30))
    other = await fake.send(fake.bob, "", channel=fake.general2,
                            attachments=[("b.ogg", voice_message, "audio/ogg")])
    replies = {m.id: await fake.wait_for_message(lambda r, m=m: r.reference_id == m.id, timeout=180)
               for m in flood + [other]}
    transcribed = [m for m in flood if "said" in replies[m.id].text]
    busy = [m for m in flood if "busy" in replies[m.id].text]
    assert len(transcribed) == 3 and len(busy) == 2, [replies[m.id].text for m in flood]
    assert all("try again in" in replies[m.id].text and " s." in replies[m.id].text for m in busy)
    assert "said" in replies[other.id].text
    assert wer(SENTENCE, transcript_of(replies[other.id].text)) <= 0.3
    answered_before_b = [m for m in transcribed if replies[m.id].id < replies[other.id].id]
    assert len(answered_before_b) <= 1  # at most the job that was running when B's message came
