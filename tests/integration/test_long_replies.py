"""A missing instructions file, and cooldowns on expensive commands."""
from __future__ import annotations

INSTRUCTIONS = "/nonexistent/instructions.md"
BOT_ENV = {"INSTRUCTIONS_FILE": INSTRUCTIONS, "COOLDOWN_SECONDS": "60"}


async def test_missing_instructions_file_gets_a_clear_reply(fake, bot):
    msg = await fake.send(fake.bob, "!instruction")
    reply = await fake.reply_to(msg)
    assert "instructions file is missing" in reply.text


async def test_cooldown_tells_the_retry_time(fake, bot):
    first = await fake.send(fake.alice, "!getfile nothing.txt")
    await fake.reply_to(first)
    second = await fake.send(fake.alice, "!getfile nothing.txt")
    reply = await fake.reply_to(second)
    assert "try again in" in reply.text and " s." in reply.text
