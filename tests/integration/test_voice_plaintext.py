"""The plaintext voice path (DAVE protocol version 0), kept for comparison with DAVE.

The voice tests run with DAVE end-to-end encryption on, as Discord requires since March
2026; this module runs a representative subset of them with the local voice server
declining DAVE (``fake_discord_with_voice(dave=False)``), so both paths stay covered.
"""
from __future__ import annotations

import pytest
import pytest_asyncio

from localdiscord.voice import fake_discord_with_voice
from tests.integration.test_voice_speech import BOT_ENV, ask, assert_heard, spoken_text  # noqa: F401
from tests.integration.test_voice_speech import trained, voice  # noqa: F401 - fixtures
# The speech tests, in their module's order (pytest runs them in the order imported here).
from tests.integration.test_voice_speech import test_reply_is_spoken_in_the_authors_channel  # noqa: F401
from tests.integration.test_voice_speech import test_three_replies_are_heard_in_order  # noqa: F401
from tests.integration.test_voice_speech import test_long_reply_plays_as_one_utterance_without_gaps  # noqa: F401

pytestmark = pytest.mark.slow  # speech synthesis heard through voice


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    async with fake_discord_with_voice(dave=False) as server:
        yield server


async def test_voice_is_plaintext_and_the_bot_logs_so(fake, bot, voice):
    mark = len(bot.lines)
    if voice.bot_channel(fake.guild) is not None:  # leave, to see a fresh connection
        await fake.reply_to(await fake.send(fake.bob, "!leave"))
        await voice.wait_disconnected(fake.guild)
    await fake.reply_to(await fake.send(fake.bob, "!join"))
    conn = await voice.wait_connected(fake.guild, fake.voice)
    assert conn.identify["max_dave_protocol_version"] >= 1  # the bot could, the server declines
    assert conn.dave_protocol_version == 0 and conn.dave is None
    await bot.wait_for_log("not end-to-end encrypted (DAVE protocol version 0)", start=mark)
    await ask(fake, fake.bob, "food")
    [heard] = await voice.wait_for_utterances(fake.guild, 1, timeout=30)
    await assert_heard(heard, spoken_text(fake, "food"))
    assert voice.unencrypted_frames == 0  # nothing is expected to be encrypted
    await fake.reply_to(await fake.send(fake.bob, "!leave"))
    await voice.wait_disconnected(fake.guild)
