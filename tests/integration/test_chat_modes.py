"""Where and how the bot answers chat: mention-only mode, DMs, the confidence threshold."""
from __future__ import annotations

from tests.integration.model_data import csv_bytes, rows

BOT_ENV = {"CHAT_MODE": "mention", "CONFIDENCE_THRESHOLD": "0.99"}


async def test_no_model_yet_a_mention_is_told_how_to_train(fake, bot):
    silent = await fake.send(fake.bob, "will it be sunny tomorrow")  # not addressed: stays quiet
    mention = await fake.send(fake.bob, f"<@{fake.bot.id}> will it be sunny tomorrow")
    reply = await fake.reply_to(silent)
    assert reply.reference_id == mention.id and "haven't been trained" in reply.text


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
    reply = await fake.reply_to(msg)
    # ...but the guild's model is not the DM scope's: nothing trained here
    assert reply.reference_id == msg.id and "haven't been trained" in reply.text
