"""Uploaded audio and voice messages are transcribed and answered (issue 5), through the local server."""
from __future__ import annotations

import subprocess

import pytest

from audio.text_normalize import wer

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
    ("notes.mp3", b"just some text pretending to be audio\n" * 20, "couldn't read that file as audio"),
    ("silence.ogg", _silence(), "couldn't hear any speech"),
])
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
