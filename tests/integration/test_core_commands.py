"""The commands driven through the local Discord server, as users would.

People (see localdiscord.server.FakeDiscord): `owner` owns the application (the bot's
owner), `alice` moderates Test Guild (Manage Server), `bob` is a member, `carol` owns
Other Guild."""
from __future__ import annotations

import io
import os
import sqlite3
import zipfile

import pytest

COMMANDS = ["hi", "join", "leave", "train", "test", "archive", "select_dataset", "instruction", "correct",
            "feedback", "getfile", "delete_dataset"]


def db_rows(data_dir, sql, *params):
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


@pytest.fixture(scope="module")
def files_dir(data_dir, bot):
    root = data_dir / "files"
    (root / "reports").mkdir(parents=True, exist_ok=True)
    (root / "reports" / "today.txt").write_text("all systems nominal\n")
    (root / "reports" / "nested").mkdir(exist_ok=True)
    (root / "reports" / "nested" / "deep.csv").write_text("a,b\n1,2\n")
    (root / "notes.md").write_text("# notes\n")
    (data_dir / "secret.txt").write_text("outside the sandbox")
    os.symlink(data_dir / "secret.txt", root / "escape.txt")
    os.symlink(data_dir / "secret.txt", root / "reports" / "escape-link.txt")
    return root


async def test_identifies_with_the_intents_it_needs(fake, bot):
    session = next(s for s in fake.sessions if s.identified)
    guilds, voice, guild_messages, dms, content = 1, 1 << 7, 1 << 9, 1 << 12, 1 << 15
    for bit in (guilds, voice, guild_messages, dms, content):
        assert session.intents & bit


async def test_hi_greets_the_author(fake, bot):
    msg = await fake.send(fake.bob, "!hi")
    reply = await fake.reply_to(msg)
    assert reply.reference_id == msg.id
    assert "Hi bob" in reply.content


async def test_help_lists_every_command_with_usage(fake, bot):
    msg = await fake.send(fake.bob, "!help")
    reply = await fake.reply_to(msg)
    for name in COMMANDS:
        assert name in reply.text, name
    detail = await fake.send(fake.bob, "!help getfile")
    detail_reply = await fake.reply_to(detail)
    assert "!getfile <path>" in detail_reply.text


async def test_unknown_command_is_ignored(fake, bot):
    ignored = await fake.send(fake.bob, "!nosuchcommand")
    hi = await fake.send(fake.bob, "!hi")
    reply = await fake.reply_to(ignored)
    assert reply.reference_id == hi.id, "the bot answered an unknown command"


async def test_instruction_sends_the_instructions_file(fake, bot):
    msg = await fake.send(fake.bob, "!instruction")
    reply = await fake.reply_to(msg)
    assert "!train" in reply.text and "!getfile" in reply.text and "{prefix}" not in reply.text


async def private_answer(fake, msg, user):
    """A typed command's private answer: the channel hears only "sent to your DMs"; the rest is in the DM."""
    note = await fake.reply_to(msg, lambda m: m.reference_id == msg.id, timeout=30)
    assert note.text == "📬 Sent to your DMs." and not note.attachments, note.text
    dm = fake.dm_channel(user)
    return await fake.wait_for_message(lambda m: m.channel.id == dm.id and m.id > msg.id, timeout=30)


async def test_getfile_sends_the_file_to_the_owners_dms_not_the_channel(fake, bot, files_dir):
    msg = await fake.send(fake.owner, "!getfile reports/today.txt")
    reply = await private_answer(fake, msg, fake.owner)
    assert [a.filename for a in reply.attachments] == ["today.txt"]
    assert fake.attachment_data(reply.attachments[0]) == b"all systems nominal\n"
    assert not any(m.attachments for m in fake.bot_messages(fake.general) if m.id > msg.id)


async def test_with_dms_closed_host_files_are_refused_and_never_posted(fake, bot, files_dir):
    (files_dir / "private").mkdir(exist_ok=True)
    (files_dir / "private" / "keys.txt").write_text("nominal keys\n")
    fake.closed_dms.add(fake.owner.id)
    try:
        for command in ("!getfile reports/today.txt", "!archive private"):
            msg = await fake.send(fake.owner, command)
            reply = await fake.reply_to(msg)
            assert "closed" in reply.text and "/" in reply.text and not reply.attachments, reply.text
    finally:
        fake.closed_dms.discard(fake.owner.id)
    assert not any(m.attachments for m in fake.bot_messages(fake.general))
    assert "nominal" not in " ".join(m.text for m in fake.bot_messages(fake.general))


async def test_feedback_list_goes_to_the_admins_dms(fake, bot):
    said = await fake.send(fake.bob, "!feedback the answers about weather are great")
    await fake.reply_to(said)
    msg = await fake.send(fake.alice, "!feedback list")
    reply = await private_answer(fake, msg, fake.alice)
    assert "answers about weather are great" in reply.text
    assert [a.filename for a in reply.attachments] == ["feedback.csv"]
    assert b"answers about weather are great" in fake.attachment_data(reply.attachments[0])


@pytest.mark.parametrize("path", [
    "../secret.txt",
    "reports/../../secret.txt",
    "/etc/passwd",
    "escape.txt",
    "reports/escape-link.txt",
    "~/.bashrc",
    "..%2fsecret.txt",
    "%2e%2e/secret.txt",
    "reports/\x00../../secret.txt",
    "reports/" + "a/" * 300 + "x.txt",
    "..",
    ".",
])
async def test_getfile_never_leaves_the_files_folder(fake, bot, files_dir, path):
    msg = await fake.send(fake.owner, f"!getfile {path}")
    reply = await fake.reply_to(msg)
    assert not reply.attachments
    assert "outside the sandbox" not in reply.text
    assert any(word in reply.text for word in ("outside", "not allowed", "no file", "too long", "folder",
                                                "control characters", "symbolic link")), reply.text


async def test_getfile_missing_file(fake, bot, files_dir):
    msg = await fake.send(fake.owner, "!getfile reports/nothing-here.txt")
    reply = await fake.reply_to(msg)
    assert "There is no file `reports/nothing-here.txt`" in reply.text


async def test_getfile_too_big_for_the_upload_limit(fake, bot, files_dir):
    (files_dir / "big.bin").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    msg = await fake.send(fake.owner, "!getfile big.bin")
    reply = await fake.reply_to(msg)
    assert not reply.attachments
    assert "upload limit" in reply.text
    (files_dir / "big.bin").unlink()


async def test_getfile_without_a_path_shows_usage(fake, bot):
    msg = await fake.send(fake.owner, "!getfile")
    reply = await fake.reply_to(msg)
    assert "Usage: `!getfile <path>`" in reply.text


async def test_archive_zips_the_folder(fake, bot, files_dir):
    msg = await fake.send(fake.owner, "!archive reports")
    reply = await private_answer(fake, msg, fake.owner)
    assert "Archived 2 files" in reply.text
    zipped = zipfile.ZipFile(io.BytesIO(fake.attachment_data(reply.attachments[0])))
    assert sorted(zipped.namelist()) == ["nested/deep.csv", "today.txt"]  # the symlink out is skipped
    assert zipped.read("today.txt") == b"all systems nominal\n"
    assert len(list((files_dir / "archives").glob("reports-*.zip"))) == 1


async def test_archive_too_big_to_attach_stays_in_the_files_folder(fake, bot, files_dir):
    big = files_dir / "big"
    big.mkdir()
    (big / "noise.bin").write_bytes(os.urandom(10 * 1024 * 1024 + 4096))  # incompressible, over 10 MiB
    msg = await fake.send(fake.owner, "!archive big")
    reply = await private_answer(fake, msg, fake.owner)
    assert "Archived 1 file" in reply.text and "larger than the upload limit" in reply.text
    assert not reply.attachments
    assert len(list((files_dir / "archives").glob("big-*.zip"))) == 1


@pytest.mark.parametrize("path, expected", [
    ("no-such-dir", "There is no folder"),
    ("../", "outside"),
    ("/tmp", "absolute paths are not allowed"),
])
async def test_archive_bad_folders(fake, bot, files_dir, path, expected):
    msg = await fake.send(fake.owner, f"!archive {path}")
    reply = await fake.reply_to(msg)
    assert expected in reply.text and not reply.attachments


@pytest.mark.parametrize("command", ["!train", "!select_dataset foo", "!delete_dataset foo", "!feedback list"])
async def test_admin_commands_refuse_members_visibly(fake, bot, files_dir, command):
    msg = await fake.send(fake.bob, command)
    reply = await fake.reply_to(msg)
    assert "for admins only" in reply.text
    assert not reply.attachments


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
@pytest.mark.parametrize("command", ["!getfile notes.md", "!archive reports", "!archive ."])
async def test_host_files_are_for_the_bots_owners_only(fake, bot, files_dir, who, command):
    """A moderator (Manage Server), a member and another server's owner are all refused."""
    user = getattr(fake, who)
    channel = fake.general2 if who == "carol" else fake.general
    archives_before = set((files_dir / "archives").glob("*.zip"))
    msg = await fake.send(user, command, channel=channel)
    reply = await fake.reply_to(msg)
    assert "for the bot's owners only" in reply.text
    assert not reply.attachments
    assert set((files_dir / "archives").glob("*.zip")) == archives_before


async def test_the_bots_owner_gets_host_files(fake, bot, files_dir):
    msg = await fake.send(fake.owner, "!getfile notes.md")
    reply = await private_answer(fake, msg, fake.owner)
    assert [a.filename for a in reply.attachments] == ["notes.md"]


async def test_two_archives_in_the_same_second_are_both_kept(fake, bot, files_dir):
    first = await fake.send(fake.owner, "!archive reports/nested")
    second = await fake.send(fake.owner, "!archive reports/nested")
    for m in (first, second):
        await fake.reply_to(m, lambda r, m=m: r.reference_id == m.id and "DMs" in r.text, timeout=20)
    dm = fake.dm_channel(fake.owner)
    zips = [m for m in fake.bot_messages(dm) if m.id > first.id and m.attachments]
    names = {m.attachments[0].filename for m in zips}
    assert len(names) == 2
    assert {p.name for p in (files_dir / "archives").glob("nested-*.zip")} == names


async def test_a_name_longer_than_the_filesystem_allows_is_refused_politely(fake, bot, files_dir):
    msg = await fake.send(fake.owner, "!getfile " + "é" * 130)  # 130 characters, 260 bytes
    reply = await fake.reply_to(msg)
    assert "too long" in reply.text and not reply.attachments


async def test_feedback_is_stored_with_its_context(fake, bot, data_dir):
    msg = await fake.send(fake.bob, "!feedback the answers are great")
    reply = await fake.reply_to(msg)
    assert "Thanks for the feedback" in reply.text
    rows = db_rows(data_dir, "SELECT * FROM feedback WHERE text = ?", "the answers are great")
    assert len(rows) == 1
    row = rows[0]
    assert (row["scope"], row["channel_id"], row["author_id"]) == (str(fake.guild.id), fake.general.id, fake.bob.id)
    assert row["created_at"] > 0 and row["replied_message_id"] is None


async def test_feedback_as_a_reply_records_the_bot_message(fake, bot, data_dir):
    hi = await fake.send(fake.bob, "!hi")
    bot_msg = await fake.reply_to(hi)
    msg = await fake.send(fake.bob, "!feedback too cheerful", reply_to=bot_msg)
    await fake.reply_to(msg)
    row = db_rows(data_dir, "SELECT * FROM feedback WHERE text = ?", "too cheerful")[0]
    assert row["replied_message_id"] == bot_msg.id and "Hi bob" in row["replied_content"]


async def test_empty_feedback_asks_for_text(fake, bot, data_dir):
    before = len(db_rows(data_dir, "SELECT id FROM feedback"))
    msg = await fake.send(fake.bob, "!feedback   ")
    reply = await fake.reply_to(msg)
    assert "Please write your feedback" in reply.text
    assert len(db_rows(data_dir, "SELECT id FROM feedback")) == before


async def test_correct_as_a_reply_stores_the_exchange(fake, bot, data_dir):
    hi = await fake.send(fake.bob, "!hi")
    bot_msg = await fake.reply_to(hi)
    msg = await fake.send(fake.bob, "!correct hello there", reply_to=bot_msg)
    reply = await fake.reply_to(msg)
    assert "hello there" in reply.text
    row = db_rows(data_dir, "SELECT * FROM corrections WHERE bot_message_id = ?", bot_msg.id)[0]
    assert row["original_text"] == "!hi" and "Hi bob" in row["bot_reply"] and row["correction"] == "hello there"
    assert row["scope"] == str(fake.guild.id) and row["author_id"] == fake.bob.id


async def test_correct_by_message_id(fake, bot, data_dir):
    hi = await fake.send(fake.alice, "!hi")
    bot_msg = await fake.reply_to(hi)
    msg = await fake.send(fake.alice, f"!correct {bot_msg.id} good morning")
    await fake.reply_to(msg)
    row = db_rows(data_dir, "SELECT * FROM corrections WHERE bot_message_id = ?", bot_msg.id)[0]
    assert row["correction"] == "good morning" and row["original_text"] == "!hi"


@pytest.mark.parametrize("command, expected", [
    ("!correct", "Reply to one of my messages"),
    ("!correct positive", "Reply to one of my messages"),
    ("!correct 123456789", "Please say what the right answer is"),
    ("!correct 99999999999 positive", "can't find message"),
])
async def test_correct_bad_input(fake, bot, data_dir, command, expected):
    before = len(db_rows(data_dir, "SELECT id FROM corrections"))
    msg = await fake.send(fake.bob, command)
    reply = await fake.reply_to(msg)
    assert expected in reply.text, reply.text
    assert len(db_rows(data_dir, "SELECT id FROM corrections")) == before


async def test_correct_refuses_someone_elses_message(fake, bot, data_dir):
    other = await fake.send(fake.alice, "just chatting")
    msg = await fake.send(fake.bob, "!correct wrong", reply_to=other)
    reply = await fake.reply_to(msg, lambda m: "isn't one of my messages" in m.text)
    assert reply.reference_id == msg.id


async def test_dm_scope_is_separate(fake, bot, data_dir):
    msg = await fake.dm(fake.bob, "!feedback from a dm")
    await fake.reply_to(msg)
    row = db_rows(data_dir, "SELECT * FROM feedback WHERE text = ?", "from a dm")[0]
    assert row["scope"] == f"dm-{fake.bob.id}"


async def test_admin_commands_in_dms_need_an_owner(fake, bot):
    msg = await fake.dm(fake.alice, "!getfile notes.md")  # an admin of the guild, but not an owner
    reply = await fake.reply_to(msg)
    assert "for the bot's owners only" in reply.text
    msg = await fake.dm(fake.alice, "!select_dataset foo")
    reply = await fake.reply_to(msg)
    assert "for admins only" in reply.text


async def test_the_bot_keeps_running_after_bad_input(fake, bot):
    msg = await fake.send(fake.bob, "!hi")
    assert "Hi bob" in (await fake.reply_to(msg)).text
    assert bot.running
    assert not fake.unhandled, fake.unhandled
