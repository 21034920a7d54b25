"""Speech in the member's language, through the real bot and the local server (issue 21):
a real Russian voice message is heard in Cyrillic with the default `auto`; `!language`
shows, sets and resets the server's and the member's own language; members can't set the
server's; `/language` suggests codes."""
from __future__ import annotations

import csv
import re
import subprocess

import pytest
import pytest_asyncio

from tests.support.shared_data import SHARED, shared_file
from tests.support.transcripts import wer

pytestmark = pytest.mark.slow  # the multilingual whisper model hears real Russian speech

BOT_ENV = {"STT_ENGINES": "whisper"}
CROWD = SHARED / "data" / "speech_ml"
CLIP = "ru/golos_crowd_13.wav"  # "у тебя найдется люк кейдж", 3.2 s


def reference(name: str) -> str:
    with open(shared_file(CROWD / "transcripts.tsv"), newline="", encoding="utf-8") as f:
        return next(row["reference"] for row in csv.DictReader(f, delimiter="\t") if row["file"] == name)


@pytest.fixture(scope="module")
def russian_voice_message() -> bytes:
    """The shared clip as Discord sends a voice message: OGG/Opus, 48 kHz mono."""
    wav = shared_file(CROWD / CLIP)
    return subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", "-b:a", "32k", "-ar", "48000",
                           "-ac", "1", "-application", "voip", "-f", "ogg", "-"],
                          check=True, capture_output=True).stdout


def transcript_of(reply_text: str) -> str:
    return " ".join(line[2:] for line in reply_text.splitlines() if line.startswith("> "))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def synced(fake, bot):
    msg = await fake.send(fake.owner, "!sync")
    assert "Synced" in (await fake.reply_to(msg, timeout=20)).text
    return fake


async def test_the_default_is_auto(fake, bot):
    reply = await fake.reply_to(await fake.send(fake.bob, "!language"))
    assert "auto" in reply.text and "default" in reply.text, reply.text


async def test_a_russian_voice_message_is_heard_in_cyrillic(fake, bot, russian_voice_message):
    msg = await fake.send(fake.bob, "", attachments=[("voice-message.ogg", russian_voice_message, "audio/ogg")],
                          voice_message=True, duration=3.2)
    reply = await fake.reply_to(msg, timeout=120)
    heard = transcript_of(reply.text)
    assert "bob said" in reply.text
    assert re.search("[а-яё]", heard.lower()) and not re.search("[a-z]", heard.lower()), reply.text
    assert wer(reference(CLIP), heard.replace("ё", "е")) <= 0.5, heard  # a hard, crowd-sourced phrase
    await bot.wait_for_log("(ru)")  # heard in Russian, detected


async def test_members_cannot_set_the_servers_language(fake, bot):
    reply = await fake.reply_to(await fake.send(fake.bob, "!language ru"))
    assert "admins only" in reply.text, reply.text
    shown = await fake.reply_to(await fake.send(fake.bob, "!language"))
    assert "This server: auto" in shown.text


async def test_an_admin_sets_the_servers_language_and_a_member_their_own(fake, bot):
    reply = await fake.reply_to(await fake.send(fake.alice, "!language ru"))
    assert "`ru`" in reply.text, reply.text
    shown = await fake.reply_to(await fake.send(fake.bob, "!language"))  # the server's words are Russian now
    assert "(`ru`)" in shown.text and "auto" not in shown.text.split("\n")[1], shown.text

    mine = await fake.reply_to(await fake.send(fake.bob, "!language me en"))
    assert "`en`" in mine.text, mine.text
    shown = await fake.reply_to(await fake.send(fake.bob, "!language"))
    assert "`en`" in shown.text and "your own" in shown.text, shown.text

    await fake.reply_to(await fake.send(fake.bob, "!language me reset"))
    await fake.reply_to(await fake.send(fake.alice, "!language reset"))
    shown = await fake.reply_to(await fake.send(fake.bob, "!language"))
    assert "auto" in shown.text and "default" in shown.text, shown.text


async def test_an_unknown_language_gets_examples(fake, bot):
    for text, unknown in (("!language klingon", "klingon"), ("!language me xx", "xx")):
        reply = await fake.reply_to(await fake.send(fake.bob, text))
        assert f"don't know the language “{unknown}”" in reply.text and "`ru`" in reply.text, reply.text
    usage = await fake.reply_to(await fake.send(fake.bob, "!language me"))
    assert "`!language me ru`" in usage.text, usage.text


async def test_slash_language_suggests_codes_and_sets_mine(fake, bot, synced):
    choices = await fake.autocomplete(fake.bob, "language", "setting", "me r")
    assert "me ru" in [c["value"] for c in choices], choices
    interaction = await fake.slash(fake.bob, "language", {"setting": "me ru"})
    assert "`ru`" in (await interaction.wait_original()).text
    reset = await fake.slash(fake.bob, "language", {"setting": "me reset"})
    await reset.wait_original()
