"""Slash commands and message menus, through the local server's interactions, as a Discord
client would use them after the owner ran `!sync`."""
from __future__ import annotations

import sqlite3
import subprocess

import pytest
import pytest_asyncio

from localdiscord.interactions import CommandUnavailable
from localdiscord.state import ADMINISTRATOR, MANAGE_GUILD
from localdiscord.voice import fake_discord_with_voice
from tests.support.transcripts import wer
from tests.integration.model_data import csv_bytes, rows

# The subject is interactions; English speech by the small English model keeps the file's CPU down.
BOT_ENV = {"AUTO_TRANSCRIBE": "false", "STT_ENGINES": "whisper", "STT_LANGUAGE": "en", "WHISPER_ENGLISH_MODEL": "tiny.en"}
EPHEMERAL = 64
SENTENCE = "the quick brown fox jumps over the lazy dog"


def db_rows(data_dir, sql, *params):
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice() as server:  # /join connects for real
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def synced(fake, bot):
    for channel in (fake.general, fake.general2):
        msg = await fake.send(fake.owner, "!sync", channel=channel)
        assert "Synced" in (await fake.reply_to(msg, timeout=20)).text
    return fake


@pytest.fixture(scope="module")
def voice_ogg(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voice")
    wav, ogg = folder / "s.wav", folder / "s.ogg"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus", "-b:a", "32k", "-ar", "48000",
                    "-ac", "1", str(ogg)], check=True)
    return ogg.read_bytes()


async def test_sync_registers_every_command_and_menu_in_the_server(fake, bot, synced):
    slash = set(fake.app_commands.names(fake.guild.id, type=1))
    assert {"hi", "train", "test", "select_dataset", "delete_dataset", "getfile", "archive", "feedback", "correct",
            "join", "leave", "instruction", "help"} <= slash, slash
    assert {"Transcribe", "Correct this answer", "Speak this"} <= set(fake.app_commands.names(fake.guild.id, type=3))
    assert "sync" not in slash  # typed only, owners only
    assert fake.app_commands.list(None) == []  # nothing global until `!sync global`


async def test_sync_is_for_owners_only(fake, bot, synced):
    msg = await fake.send(fake.alice, "!sync")
    assert "for the bot's owners only" in (await fake.reply_to(msg)).text


async def test_slash_hi_answers_in_the_channel(fake, bot, synced):
    interaction = await fake.slash(fake.bob, "hi")
    original = await interaction.wait_original()
    assert "Hi bob" in original.text and not interaction.ephemeral


async def test_slash_help_lists_both_forms(fake, bot, synced):
    interaction = await fake.slash(fake.bob, "help")
    original = await interaction.wait_original()
    assert interaction.ephemeral
    assert "`!train` `/train`" in original.text and "Correct this answer" in original.text
    detail = await fake.slash(fake.bob, "help", {"command": "train"})
    text = (await detail.wait_original()).text
    assert "Usage: `!train" in text and "Slash: `/train file: label: text:`" in text


async def test_typed_help_shows_the_slash_form_too(fake, bot, synced):
    msg = await fake.send(fake.bob, "!help")
    assert "`!hi` `/hi`" in (await fake.reply_to(msg)).text


async def test_admin_and_owner_commands_carry_default_permissions(fake, bot, synced):
    permissions = {c["name"]: c["default_member_permissions"] for c in fake.app_commands.list(fake.guild.id)}
    assert permissions["train"] == permissions["delete_dataset"] == str(MANAGE_GUILD)  # server admins
    assert permissions["getfile"] == permissions["archive"] == str(ADMINISTRATOR)  # bot owners: hidden from most
    for everyone in ("hi", "help", "test", "select_dataset", "feedback", "correct", "join", "leave", "listen",
                     "instruction", "Transcribe", "Correct this answer", "Speak this"):
        assert permissions[everyone] is None, everyone  # member forms too (select_dataset lists, feedback sends)


async def test_admin_commands_are_hidden_from_members(fake, bot, synced):
    with pytest.raises(CommandUnavailable, match="default_member_permissions"):
        await fake.slash(fake.bob, "train", {"file": ("x.csv", csv_bytes(rows()), "text/csv")})
    with pytest.raises(CommandUnavailable, match="default_member_permissions"):
        await fake.slash(fake.alice, "getfile", {"path": "notes.md"})  # Manage Server, not Administrator


async def test_slash_refusals_are_ephemeral(fake, bot, synced):
    refused = await fake.slash(fake.bob, "select_dataset", {"name": "intents"})  # offered: it lists for members
    message = await refused.wait_original()
    assert "for admins only" in message.text and message.flags & EPHEMERAL
    host = await fake.slash(fake.carol, "getfile", {"path": "notes.md"}, channel=fake.general2)  # owns a server
    message = await host.wait_original()
    assert "for the bot's owners only" in message.text and message.flags & EPHEMERAL


async def test_slash_getfile_is_only_shown_to_the_owner(fake, bot, synced, data_dir):
    (data_dir / "files").mkdir(exist_ok=True)
    (data_dir / "files" / "host.txt").write_text("host secret\n")
    got = await fake.slash(fake.owner, "getfile", {"path": "host.txt"})
    message = await got.wait_original(lambda m: bool(m.attachments))
    assert message.flags & EPHEMERAL and got.ephemeral
    assert fake.attachment_data(message.attachments[0]) == b"host secret\n"


async def test_slash_train_defers_then_keeps_the_original_response_up_to_date(fake, bot, synced):
    interaction = await fake.slash(fake.alice, "train", {"file": ("intents.csv", csv_bytes(rows()), "text/csv")})
    await interaction.wait_response()
    assert interaction.deferred
    finished = await interaction.wait_original(lambda m: "Training finished" in m.text, timeout=120)
    assert "Saved dataset `intents`" in finished.text
    assert finished.edits, "the status should have been edited in place"
    assert len(interaction.followups) <= 1  # the first follow-up of a deferral is the original itself


async def test_dataset_names_autocomplete_from_this_server_only(fake, bot, synced):
    choices = await fake.autocomplete(fake.alice, "select_dataset", "name", "int")
    assert [c["value"] for c in choices] == ["intents"]
    elsewhere = await fake.autocomplete(fake.carol, "select_dataset", "name", "", channel=fake.general2)
    assert elsewhere == []


async def test_slash_test_with_a_file_sends_the_report_and_files(fake, bot, synced):
    data = csv_bytes(rows(seed=1, per_class=10))
    interaction = await fake.slash(fake.bob, "test", {"file": ("holdout.csv", data, "text/csv")})
    report = await interaction.wait_original(lambda m: "accuracy" in m.text, timeout=60)
    assert {a.filename for a in report.attachments} >= {"confusion_matrix.png", "predictions.csv"}


async def test_a_bad_option_gets_an_ephemeral_explanation(fake, bot, synced):
    interaction = await fake.slash(fake.bob, "correct", {"message_id": "not-a-number", "answer": "weather"})
    message = await interaction.wait_original()
    assert "is not a message id" in message.text and message.flags & EPHEMERAL


async def test_correct_this_answer_asks_in_a_modal_and_stores_it(fake, bot, synced, data_dir):
    question = await fake.send(fake.bob, "what should i cook tonight")
    answer = await fake.reply_to(question)
    menu = await fake.message_command(fake.bob, "Correct this answer", answer)
    await menu.wait_response()
    assert menu.modal is not None
    field = menu.modal["components"][0]["components"][0]["custom_id"]
    submitted = await fake.submit_modal(fake.bob, menu, {field: "food"})
    thanks = await submitted.wait_original(lambda m: "Thanks" in m.text)  # after a deferral ("thinking")
    assert "food" in thanks.text and submitted.ephemeral
    row = db_rows(data_dir, "SELECT * FROM corrections WHERE bot_message_id = ?", answer.id)[0]
    assert (row["original_text"], row["correction"], row["author_id"]) == ("what should i cook tonight", "food",
                                                                           fake.bob.id)


async def test_correct_this_answer_on_someone_elses_message_is_refused(fake, bot, synced):
    other = await fake.send(fake.alice, "just chatting")
    menu = await fake.message_command(fake.bob, "Correct this answer", other)
    message = await menu.wait_original()
    assert "isn't one of my messages" in message.text and menu.ephemeral and menu.modal is None


async def test_transcribe_on_demand_when_automatic_transcription_is_off(fake, bot, synced, voice_ogg):
    voice = await fake.send(fake.bob, "", attachments=[("voice-message.ogg", voice_ogg, "audio/ogg")],
                            voice_message=True, duration=3.0)
    menu = await fake.message_command(fake.alice, "Transcribe", voice)
    result = await menu.wait_original(lambda m: "said" in m.text, timeout=90)
    transcript = " ".join(line[2:] for line in result.text.splitlines() if line.startswith("> "))
    assert wer(SENTENCE, transcript) <= 0.3, result.text
    assert menu.deferred and menu.ephemeral
    # AUTO_TRANSCRIBE=false: no automatic answer. One transcription worker serves this server in
    # order, so an automatic transcription of the message would have been done before the menu's.
    assert not [m for m in fake.bot_messages(fake.general) if m.reference_id == voice.id]


async def test_transcribe_on_a_message_without_audio(fake, bot, synced):
    plain = await fake.send(fake.bob, "no audio here")
    menu = await fake.message_command(fake.bob, "Transcribe", plain)
    assert "no audio" in (await menu.wait_original()).text


async def test_speak_this_outside_voice_says_what_to_do(fake, bot, synced):
    plain = await fake.send(fake.bob, "say this please")
    menu = await fake.message_command(fake.bob, "Speak this", plain)
    message = await menu.wait_original()
    assert "Join a voice channel first" in message.text and menu.ephemeral


async def test_feedback_by_slash_and_listed_by_an_admin(fake, bot, synced):
    sent = await fake.slash(fake.bob, "feedback", {"text": "slash feedback works"})
    await sent.wait_original(lambda m: "Thanks" in m.text)  # after a private deferral
    assert sent.deferred and sent.ephemeral
    listing = await fake.slash(fake.alice, "feedback", {"text": "list"})
    shown = await listing.wait_original(lambda m: "slash feedback works" in m.text)
    assert listing.deferred and listing.ephemeral and shown.flags & EPHEMERAL  # members' words: the admin only
    assert [a.filename for a in shown.attachments] == ["feedback.csv"]


async def test_slash_listen_on_and_off_defer(fake, bot, synced):
    on = await fake.slash(fake.alice, "listen", {"setting": "on"})
    await on.wait_response()
    assert on.deferred
    assert "Listening on" in (await on.wait_original(lambda m: "Listening" in m.text)).text
    off = await fake.slash(fake.alice, "listen", {"setting": "off"})
    await off.wait_response()
    assert off.deferred
    assert "stopped listening" in (await off.wait_original(lambda m: "listening" in m.text)).text


async def test_slash_join_defers_and_leave_too(fake, bot, synced):
    refused = await fake.slash(fake.alice, "join")  # not in voice: refused at once, privately
    assert "not in a voice channel" in (await refused.wait_original()).text
    assert refused.ephemeral and not refused.deferred
    await fake.set_voice_state(fake.guild, fake.bob, fake.voice)
    try:
        joined = await fake.slash(fake.bob, "join")
        await joined.wait_response()
        assert joined.deferred  # connecting may take longer than Discord's 3 s
        assert "Joined **Voice**" in (await joined.wait_original(lambda m: "Joined" in m.text, timeout=30)).text
        await fake.voice_server.wait_connected(fake.guild, fake.voice)
        left = await fake.slash(fake.bob, "leave")
        await left.wait_response()
        assert left.deferred
        assert "Left **Voice**" in (await left.wait_original(lambda m: "Left" in m.text, timeout=30)).text
    finally:
        await fake.set_voice_state(fake.guild, fake.bob, None)
    await fake.voice_server.wait_disconnected(fake.guild)
