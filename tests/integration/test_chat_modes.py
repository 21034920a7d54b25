"""Where and how the bot answers chat: mention-only mode, DMs, the confidence threshold."""
from __future__ import annotations

from tests.integration.model_data import csv_bytes, rows

BOT_ENV = {"CHAT_MODE": "mention", "CONFIDENCE_THRESHOLD": "0.99"}


async def test_no_model_means_no_chat_reply(fake, bot):
    silent = await fake.send(fake.bob, f"<@{fake.bot.id}> will it be sunny tomorrow")
    hi = await fake.send(fake.bob, "!hi")
    assert (await fake.reply_to(silent)).reference_id == hi.id


async def test_mention_mode_answers_only_when_mentioned(fake, bot):
    train = await fake.send(fake.alice, "!train", attachments=[("topics.csv", csv_bytes(rows()), "text/csv")])
    status = await fake.reply_to(train)
    await fake.wait_for_edit(status, lambda m: "Training finished" in m.text, timeout=120)

    ignored = await fake.send(fake.bob, "will it be sunny tomorrow")
    mentioned = await fake.send(fake.bob, f"<@{fake.bot.id}> will it be sunny tomorrow")
    reply = await fake.reply_to(ignored)
    assert reply.reference_id == mentioned.id, "answered a message that did not mention the bot"


async def test_low_confidence_says_not_sure(fake, bot):
    msg = await fake.send(fake.bob, f"<@{fake.bot.id}> zorblax quux")
    reply = await fake.reply_to(msg)
    assert "not sure" in reply.text


async def test_dm_scope_has_its_own_model(fake, bot):
    msg = await fake.dm(fake.bob, "will it be sunny tomorrow")  # DMs need no mention...
    hi = await fake.dm(fake.bob, "!hi")
    reply = await fake.reply_to(msg)
    assert reply.reference_id == hi.id  # ...but the guild's model is not the DM scope's: no answer
