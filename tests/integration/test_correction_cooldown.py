"""The **Correct this answer** menu has the cooldown of `!correct`: the same uses per
COOLDOWN_SECONDS per member, a polite private reply when it is cooling down, none for owners."""
from __future__ import annotations

import pytest_asyncio

from commands.feedback import CORRECT_RATE

BOT_ENV = {"COOLDOWN_SECONDS": "600"}  # long enough that no test run outlasts a window


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def synced(fake, bot):
    msg = await fake.send(fake.owner, "!sync")
    assert "Synced" in (await fake.reply_to(msg, timeout=20)).text
    return fake


async def test_the_menu_cools_down_like_typed_correct(fake, bot, synced):
    target = await fake.send(fake.bob, "just chatting")  # the cooldown is checked before the message is
    for _ in range(CORRECT_RATE):
        menu = await fake.message_command(fake.alice, "Correct this answer", target)
        assert "isn't one of my messages" in (await menu.wait_original()).text
    cooling = await fake.message_command(fake.alice, "Correct this answer", target)
    message = await cooling.wait_original()
    assert "**Correct this answer** is cooling down: try again in" in message.text, message.text
    assert cooling.ephemeral and cooling.modal is None
    for _ in range(CORRECT_RATE):
        typed = await fake.send(fake.alice, f"!correct {target.id} weather")
        assert "cooling down" not in (await fake.reply_to(typed)).text
    typed = await fake.send(fake.alice, f"!correct {target.id} weather")
    assert "`!correct` is cooling down: try again in" in (await fake.reply_to(typed)).text


async def test_owners_have_no_cooldown(fake, bot, synced):
    target = await fake.send(fake.bob, "more chatting")
    for _ in range(CORRECT_RATE + 2):
        menu = await fake.message_command(fake.owner, "Correct this answer", target)
        assert "isn't one of my messages" in (await menu.wait_original()).text
