"""One bot in two servers with untrusted members: each server's data stays its own.

Test Guild: `owner` (the bot's owner), `alice` (moderator: Manage Server), `bob`.
Other Guild: `carol` (its owner), `alice` and `bob` as plain members.
"""
from __future__ import annotations

import csv
import io
import sqlite3

import pytest_asyncio

from tests.integration.model_data import csv_bytes, rows

BOT_ENV: dict[str, str] = {}  # default settings
FINISHED = "Training finished"


def db_rows(data_dir, sql, *params):
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


async def quiet_after(fake, msg, channel) -> None:
    """Assert the bot did not answer `msg`: the next thing it says answers a later `!hi`."""
    probe = await fake.send(fake.bob, "!hi", channel=channel)
    reply = await fake.reply_to(msg)
    assert reply.reference_id == probe.id, f"the bot answered {msg.content!r}: {reply.text!r}"


async def train(fake, author, channel, name="intents.csv", data=None):
    data = data or csv_bytes(rows())
    msg = await fake.send(author, "!train", channel=channel, attachments=[(name, data, "text/csv")])
    status = await fake.reply_to(msg, timeout=10)
    return await fake.wait_for_edit(status, lambda m: FINISHED in m.text or "failed" in m.text, timeout=120)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def trained_a(fake, bot):
    status = await train(fake, fake.alice, fake.general)
    assert FINISHED in status.text, status.text
    return status


async def test_addressing_an_untrained_bot_gets_told_how_to_train_it(fake, bot):
    mention = await fake.send(fake.bob, f"<@{fake.bot.id}> what's the weather", channel=fake.general2)
    reply = await fake.reply_to(mention)
    assert "haven't been trained" in reply.text and "!train" in reply.text
    dm = await fake.dm(fake.bob, "hello?")
    assert "haven't been trained" in (await fake.reply_to(dm)).text


async def test_unaddressed_chat_in_an_untrained_server_stays_quiet(fake, bot):
    msg = await fake.send(fake.bob, "just talking to friends", channel=fake.general2)
    await quiet_after(fake, msg, fake.general2)


async def test_a_moderator_trains_their_own_server(fake, bot, trained_a):
    msg = await fake.send(fake.bob, "will it be sunny tomorrow in paris")
    assert (await fake.reply_to(msg)).content == "weather"


async def test_the_moderator_is_a_plain_member_elsewhere(fake, bot, trained_a):
    msg = await fake.send(fake.alice, "!train", channel=fake.general2,
                          attachments=[("mine.csv", csv_bytes(rows()), "text/csv")])
    reply = await fake.reply_to(msg)
    assert "for admins only" in reply.text
    listing = await fake.send(fake.alice, "!select_dataset", channel=fake.general2)
    assert "No datasets yet" in (await fake.reply_to(listing)).text


async def test_another_server_sees_none_of_the_first_ones_model(fake, bot, trained_a):
    msg = await fake.send(fake.bob, "will it be sunny tomorrow in paris", channel=fake.general2)
    await quiet_after(fake, msg, fake.general2)  # no model in Other Guild: nothing to answer with
    test = await fake.send(fake.bob, '!test ["will it rain today"]', channel=fake.general2)
    assert "weather" not in (await fake.reply_to(test)).text


async def test_each_server_trains_its_own_model(fake, bot, trained_a):
    flipped = [(text, {"weather": "meteo", "food": "cuisine", "greeting": "salut"}[label]) for text, label in rows()]
    status = await train(fake, fake.carol, fake.general2, "flipped.csv", csv_bytes(flipped))
    assert FINISHED in status.text, status.text
    in_b = await fake.send(fake.bob, "will it be sunny tomorrow in paris", channel=fake.general2)
    in_a = await fake.send(fake.bob, "will it be sunny tomorrow in paris", channel=fake.general)
    assert (await fake.reply_to(in_b)).content == "meteo"
    assert (await fake.reply_to(in_a)).content == "weather"
    listing = await fake.send(fake.carol, "!select_dataset", channel=fake.general2)
    text = (await fake.reply_to(listing)).text
    assert "flipped" in text and "intents" not in text


async def test_feedback_is_read_only_by_its_own_servers_admins(fake, bot, data_dir):
    msg = await fake.send(fake.bob, "!feedback please answer faster")
    await fake.reply_to(msg)
    other = await fake.send(fake.carol, "!feedback list", channel=fake.general2)
    assert "please answer faster" not in (await fake.reply_to(other)).text
    listing = await fake.send(fake.alice, "!feedback list")
    note = await fake.reply_to(listing)
    assert note.text == "📬 Sent to your DMs." and not note.attachments  # members' words: the admin only
    dm = fake.dm_channel(fake.alice)
    reply = await fake.wait_for_message(lambda m: m.channel.id == dm.id and m.id > listing.id)
    assert "please answer faster" in reply.text and f"<@{fake.bob.id}>" in reply.text
    rows_csv = list(csv.reader(io.StringIO(fake.attachment_data(reply.attachments[0]).decode())))
    assert rows_csv[0][:4] == ["created_utc", "author_id", "channel_id", "text"]
    assert any(r[3] == "please answer faster" for r in rows_csv[1:])
    refused = await fake.send(fake.bob, "!feedback clear")
    assert "for admins only" in (await fake.reply_to(refused)).text
    cleared = await fake.send(fake.alice, "!feedback clear")
    assert "Deleted" in (await fake.reply_to(cleared)).text
    assert not db_rows(data_dir, "SELECT * FROM feedback WHERE scope = ?", str(fake.guild.id))


async def test_corrections_stay_in_their_server(fake, bot, trained_a, data_dir):
    question = await fake.send(fake.bob, "what should i cook tonight")
    answer = await fake.reply_to(question)
    fix = await fake.send(fake.bob, "!correct greeting", reply_to=answer)
    await fake.reply_to(fix)
    scopes = {r["scope"] for r in db_rows(data_dir, "SELECT scope FROM corrections")}
    assert scopes == {str(fake.guild.id)}
