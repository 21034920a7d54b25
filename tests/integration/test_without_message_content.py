"""An application without the privileged Message Content intent: Discord closes the gateway
with 4014; under MESSAGE_CONTENT=auto the bot reconnects without it and serves what it can."""
from __future__ import annotations

import asyncio
import sys

import pytest
import pytest_asyncio

from localdiscord import BotProcess, FakeDiscord
from localdiscord.botprocess import ROOT
from tests.integration.test_startup import exit_output

pytestmark = pytest.mark.slow  # several bot starts

BOT_ENV = {"MESSAGE_CONTENT": "auto"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeDiscord(message_content_intent=False)
    await server.start()
    yield server
    await server.stop()


async def test_it_warns_once_saying_what_is_lost(fake, bot):
    warnings = [line for line in bot.lines if "refused the MESSAGE CONTENT intent" in line]
    assert len(warnings) == 1
    assert "typed commands" in warnings[0] and "slash commands" in warnings[0]
    session = next(s for s in fake.sessions if s.identified)
    assert not session.intents & (1 << 15)


async def test_typed_commands_go_unanswered_but_mentions_work(fake, bot):
    typed = await fake.send(fake.bob, "!hi")  # Discord blanks its content for this bot
    mention = await fake.send(fake.bob, f"<@{fake.bot.id}> hi")
    reply = await fake.reply_to(typed)
    assert reply.reference_id == mention.id and "Hi bob" in reply.text


async def test_dms_and_slash_commands_keep_working(fake, bot):
    dm = await fake.dm(fake.bob, "!hi")
    assert "Hi bob" in (await fake.reply_to(dm)).text
    sync = await fake.send(fake.owner, f"<@{fake.bot.id}> sync")
    assert "Synced" in (await fake.reply_to(sync, timeout=20)).text
    interaction = await fake.slash(fake.bob, "hi")
    assert "Hi bob" in (await interaction.wait_original()).text


async def test_on_means_exit_with_instructions(fake, tmp_path):
    process = BotProcess(fake, tmp_path, env={"MESSAGE_CONTENT": "on"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=process.environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await exit_output(proc, 60)
    text = out.decode()
    assert proc.returncode == 1, text
    assert "Turn on the MESSAGE CONTENT intent" in text and "Traceback" not in text
