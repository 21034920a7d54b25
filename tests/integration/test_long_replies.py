"""A missing instructions file, and cooldowns on expensive commands (none for owners)."""
from __future__ import annotations

INSTRUCTIONS = "/nonexistent/instructions.md"
BOT_ENV = {"INSTRUCTIONS_FILE": INSTRUCTIONS, "COOLDOWN_SECONDS": "60"}


async def test_missing_instructions_file_gets_a_clear_reply(fake, bot):
    msg = await fake.send(fake.bob, "!instruction")
    reply = await fake.reply_to(msg)
    assert "instructions file is missing" in reply.text


async def test_cooldown_tells_the_retry_time(fake, bot):
    first = await fake.send(fake.alice, "!test [\"hello\"]")
    await fake.reply_to(first)
    second = await fake.send(fake.alice, "!test [\"hello\"]")
    reply = await fake.reply_to(second)
    assert "cooling down" in reply.text and "try again in" in reply.text and " s." in reply.text


async def test_owners_are_never_cooled_down(fake, bot):
    for _ in range(3):
        msg = await fake.send(fake.owner, "!test [\"hello\"]")
        reply = await fake.reply_to(msg)
        assert "cooling down" not in reply.text, reply.text
        assert "no trained model" in reply.text.lower() or "model" in reply.text.lower()
