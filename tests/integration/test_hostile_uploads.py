"""Crafted "audio" uploads, sent by a member through the local server to the real bot (issue 9).

Each upload names something the bot must never open: a loopback listener this test runs
(server-side request forgery) or a real recording on the bot's disk, placed in the bot's
temporary folder where a relative name in a concat list or playlist would find it.  The
bot must answer each with a clear refusal, never fetch or read what it names (the listener
sees no connection, the recording's words appear in no reply), and keep answering.
Real voice messages and M4A uploads still transcribe.
"""
from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.transcripts import wer

SECRET_WORDS = ("secret", "password", "sword", "banana")  # whisper may write "sword fish"
BOT_ENV = {"STT_ENGINES": "whisper", "DECODE_TIMEOUT": "15"}  # + TMPDIR, set before the bot starts
SENTENCE = "the quick brown fox jumps over the lazy dog"


def synthesise(directory: Path, text: str, name: str, codec_args: list[str]) -> Path:
    wav = directory / f"{name}-source.wav"
    out = directory / name
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), *codec_args, str(out)], check=True)
    wav.unlink()
    return out


@pytest.fixture(scope="module", autouse=True)
def bot_tmp() -> Path:
    """The bot's TMPDIR (autouse: set up before the bot starts): its decode folders go here."""
    path = Path(tempfile.mkdtemp(prefix="hostile-uploads-"))
    BOT_ENV["TMPDIR"] = str(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def secret(bot_tmp) -> Path:
    """A real recording beside the bot's decode folders, which the uploads try to make it read."""
    return synthesise(bot_tmp, f"the secret password is {' '.join(SECRET_WORDS)}", "secret.wav", ["-c:a", "pcm_s16le"])


@pytest.fixture(scope="module")
def listener():
    """A loopback TCP listener; `connections()` counts the clients that reached it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)

    def connections() -> int:
        count = 0
        while True:
            try:
                conn, _addr = server.accept()  # the kernel completes handshakes without accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    yield server.getsockname()[1], connections
    server.close()


def hls(*segments: str) -> bytes:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:10"]
    for segment in segments:
        lines += ["#EXTINF:3.0,", segment]
    return ("\n".join(lines + ["#EXT-X-ENDLIST"]) + "\n").encode()


def concat(*paths: str) -> bytes:
    return ("ffconcat version 1.0\n" + "".join(f"file '{p}'\n" for p in paths)).encode()


HOSTILE = {
    # name -> (attachment file name, builder(secret, port) -> bytes)
    "hls-http": ("playlist.m3u8", lambda s, port: hls(f"http://127.0.0.1:{port}/segment0.wav",
                                                       f"http://127.0.0.1:{port}/segment1.ts")),
    "hls-file-url": ("voice-message.ogg", lambda s, port: hls(f"file://{s}")),
    "concat-relative": ("voice-message.ogg", lambda s, port: concat(s.name)),
    "concat-parent": ("voice-message.ogg", lambda s, port: concat(f"../{s.parent.name}/{s.name}")),
    "concat-absolute": ("recording.mp3", lambda s, port: concat(str(s))),
    "subfile": ("recording.wav", lambda s, port: hls(f"subfile,,start,0,end,{s.stat().st_size},,:{s}")),
    "data-uri": ("recording.wav",
                 lambda s, port: f"data:audio/wav;base64,{base64.b64encode(s.read_bytes()).decode()}".encode()),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_hostile_upload_is_refused_and_nothing_is_fetched_or_read(fake, bot, secret, listener, kind):
    port, connections = listener
    filename, build = HOSTILE[kind]
    msg = await fake.send(fake.bob, "", attachments=[(filename, build(secret, port), "audio/ogg")])
    reply = await fake.reply_to(msg, timeout=30)
    assert filename in reply.text and "not an audio format i accept" in reply.text.lower(), reply.text
    assert "said" not in reply.text and not any(word in reply.text.lower() for word in SECRET_WORDS)
    assert connections() == 0
    hi = await fake.send(fake.bob, "!hi")
    assert "Hi bob" in (await fake.reply_to(hi)).text
    assert bot.running


async def test_no_reply_ever_carried_the_secret_and_no_decode_folder_is_left(fake, bot, bot_tmp, secret, listener):
    assert not any(word in m.text.lower() for m in fake.bot_messages() for word in SECRET_WORDS)
    assert listener[1]() == 0
    assert sorted(p.name for p in bot_tmp.iterdir()) == [secret.name]


@pytest.mark.parametrize("name, content_type, codec_args", [
    ("voice-message.ogg", "audio/ogg",
     ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-ac", "1", "-application", "voip"]),
    ("memo.m4a", "audio/mp4", ["-c:a", "aac", "-b:a", "64k"]),
])
async def test_real_recordings_still_transcribe(fake, bot, tmp_path, name, content_type, codec_args):
    data = synthesise(tmp_path, SENTENCE, name, codec_args).read_bytes()
    msg = await fake.send(fake.bob, "", attachments=[(name, data, content_type)],
                          voice_message=name.endswith(".ogg"), duration=3.0)
    reply = await fake.reply_to(msg, timeout=60)
    heard = " ".join(line[2:] for line in reply.text.splitlines() if line.startswith("> "))
    assert "bob said" in reply.text and wer(SENTENCE, heard) <= 0.3, reply.text
