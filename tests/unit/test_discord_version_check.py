"""With a discord.py other than the one commands/voice_internals.py was written for, the bot
says so once at start-up and does not listen in voice (instead of failing later)."""
from __future__ import annotations

import logging
from types import SimpleNamespace
from unittest.mock import AsyncMock

import discord
import pytest
from discord.voice_state import VoiceConnectionState

from voice import listening as listen_cog
from voice.internals import (DISCORD_VERSION, DaveReportingVoiceClient, RaceFixedConnectionState,
                                      check_discord_version)


def test_the_pinned_version_is_the_installed_one():
    assert discord.__version__ == DISCORD_VERSION == "2.7.1"
    assert check_discord_version()


def fake_bot() -> SimpleNamespace:
    return SimpleNamespace(add_cog=AsyncMock(), settings=SimpleNamespace())


async def test_listening_is_set_up_with_the_pinned_version(caplog):
    bot = fake_bot()
    with caplog.at_level(logging.WARNING, logger="voice"):
        await listen_cog.setup(bot)
    bot.add_cog.assert_awaited_once()
    assert not caplog.records


async def test_another_version_logs_one_warning_and_turns_listening_off(monkeypatch, caplog):
    monkeypatch.setattr(discord, "__version__", "2.8.0")
    bot = fake_bot()
    with caplog.at_level(logging.WARNING, logger="voice"):
        await listen_cog.setup(bot)
    bot.add_cog.assert_not_awaited()  # no !listen, no receiver: VoiceManager joins deafened
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING
    message = warning.getMessage()
    assert "discord.py 2.8.0" in message and "2.7.1" in message and "listening is turned off" in message


@pytest.mark.parametrize("version, state_class", [("2.7.1", RaceFixedConnectionState), ("2.8.0", VoiceConnectionState)])
def test_the_race_fixes_apply_to_the_pinned_version_only(monkeypatch, version, state_class):
    monkeypatch.setattr(discord, "__version__", version)
    client = SimpleNamespace(_after_voice_message=None)
    state = DaveReportingVoiceClient.create_connection_state(client)
    try:
        assert type(state) is state_class
    finally:
        state._socket_reader.stop()
