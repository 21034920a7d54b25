"""A flood from several servers at once: every command is answered or told busy, nothing is
lost, and one server's flood does not starve another."""
from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.integration.model_data import csv_bytes, rows

pytestmark = pytest.mark.slow  # floods of transcriptions and trainings

# The subject is fairness under load, not recognition: English speech heard by the small English
# model (an operator's choice, WHISPER_ENGLISH_MODEL) keeps the file's CPU down.
BOT_ENV = {"STT_ENGINES": "whisper", "STT_WORKERS": "1", "STT_QUEUE_SIZE": "4", "COOLDOWN_SECONDS": "0",
           "STT_LANGUAGE": "en", "WHISPER_ENGLISH_MODEL": "tiny.en"}


@pytest.fixture(scope="module")
def voice_ogg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voice")
    wav, ogg = folder / "s.wav", folder / "s.ogg"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(wav), "hello there"], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus", "-b:a", "24k", "-ar", "48000",
                    "-ac", "1", str(ogg)], check=True)
    return ogg.read_bytes()


def answered(reply_text: str) -> bool:
    return "said" in reply_text or "busy" in reply_text.lower()


async def test_voice_and_commands_from_two_servers_are_all_answered(fake, bot, voice_ogg):
    async def voice(channel):
        return await fake.send(fake.bob, "", channel=channel, attachments=[("v.ogg", voice_ogg, "audio/ogg")],
                               voice_message=True, duration=1.0)

    sends = [voice(fake.general) for _ in range(8)] + [voice(fake.general2) for _ in range(2)]
    sends += [fake.send(fake.bob, "!hi", channel=ch) for ch in (fake.general, fake.general2) for _ in range(15)]
    messages = await asyncio.gather(*sends)

    def reply_for(msg):
        return fake.wait_for_message(lambda m: m.reference_id == msg.id, timeout=120)

    replies = await asyncio.gather(*(reply_for(m) for m in messages))
    voice_replies = replies[:10]
    assert all(answered(r.text) for r in voice_replies), [r.text for r in voice_replies]
    assert all("Hi bob" in r.text for r in replies[10:])
    transcribed_b = [r for r in voice_replies[8:] if "said" in r.text]
    assert transcribed_b, "the quiet server's voice messages were all refused behind the busy server"
    busy = [r.text for r in voice_replies if "busy" in r.text.lower()]
    assert all("try again in" in text for text in busy), busy
    assert bot.running


async def test_uploads_refused_as_busy_are_never_downloaded(fake, bot, voice_ogg):
    """Admission comes before the download: with the CDN held, the queue's places (1 running +
    2 waiting for one server: STT_WORKERS 1, STT_QUEUE_SIZE 4) are taken by the first uploads,
    every other upload is told busy at once, and the CDN never sees a request for it."""
    def replies(to: list) -> dict:
        ids = {m.id for m in to}
        return {m.reference_id: m for m in fake.bot_messages() if m.reference_id in ids}

    fake.cdn_open.clear()  # downloads are counted, then held: nothing can finish and free a place
    try:
        messages = [await fake.send(fake.bob, "", attachments=[("v.ogg", voice_ogg, "audio/ogg")],
                                    voice_message=True, duration=1.0) for _ in range(8)]
        await fake.wait_until(lambda: len(replies(messages)) >= 5, timeout=60)
        busy = replies(messages)
        assert len(busy) == 5 and all("busy" in r.text.lower() and "try again in" in r.text for r in busy.values()), \
            [r.text for r in busy.values()]
        refused = [m for m in messages if m.id in busy]
        admitted = [m for m in messages if m.id not in busy]
        await fake.wait_until(lambda: all(fake.downloads(m) == 1 for m in admitted), timeout=60)
        assert [fake.downloads(m) for m in refused] == [0] * 5
    finally:
        fake.cdn_open.set()
    await fake.wait_until(lambda: len(replies(admitted)) == 3, timeout=120)
    assert all("said" in r.text for r in replies(admitted).values()), [r.text for r in replies(admitted).values()]
    assert [fake.downloads(m) for m in refused] == [0] * 5  # refused for good: never fetched later
    assert [fake.downloads(m) for m in admitted] == [1] * 3


async def test_trainings_from_two_servers_and_a_repeat_are_answered(fake, bot):
    data = csv_bytes(rows())
    first_a = await fake.send(fake.alice, "!train", attachments=[("a.csv", data, "text/csv")])
    first_b = await fake.send(fake.carol, "!train", channel=fake.general2, attachments=[("b.csv", data, "text/csv")])
    again_a = await fake.send(fake.alice, "!train", attachments=[("a.csv", data, "text/csv")])
    status_a = await fake.wait_for_message(lambda m: m.reference_id == first_a.id, timeout=30)
    status_b = await fake.wait_for_message(lambda m: m.reference_id == first_b.id, timeout=30)
    repeat = await fake.wait_for_message(lambda m: m.reference_id == again_a.id, timeout=30)
    assert "already" in repeat.text or "Training job" in repeat.text, repeat.text  # told busy, or queued after
    for status in (status_a, status_b):
        final = await fake.wait_for_edit(status, lambda m: "Training finished" in m.text, timeout=120)
        assert "accuracy" in final.text
