"""With a discord.py other than the one voice/internals.py was written for, the bot
says so once at start-up and does not listen in voice (instead of failing later)."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import discord
import pytest
from discord.voice_state import VoiceConnectionState

from bot import ChatBot
from commands import listen
from config import load_settings
from model import encoder
from voice.internals import (DISCORD_VERSION, DaveReportingVoiceClient, RaceFixedConnectionState,
                             check_discord_version)
from voice.listening import ListenManager


def test_the_pinned_version_is_the_installed_one():
    assert discord.__version__ == DISCORD_VERSION == "2.7.1"
    assert check_discord_version()


async def started_bot(tmp_path) -> ChatBot:
    """The real bot's services and cogs, not connected to anything (`stop` it after)."""
    settings = load_settings({"DISCORD_TOKEN": "t", "DATA_DIR": str(tmp_path)}, env_file=tmp_path / "none.env")
    bot = ChatBot(settings)
    await listen.setup(bot)
    return bot


async def stop(bot: ChatBot) -> None:
    await bot.close()
    encoder.reset()  # its model service set the encoders up process-wide


async def test_listening_is_set_up_with_the_pinned_version(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="voice"):
        bot = await started_bot(tmp_path)
    try:
        assert isinstance(bot.listening, ListenManager) and bot.voice.listener is bot.listening
        assert bot.get_cog("Listen") is not None
        assert not caplog.records
    finally:
        await stop(bot)


async def test_another_version_logs_one_warning_and_turns_listening_off(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(discord, "__version__", "2.8.0")
    with caplog.at_level(logging.WARNING, logger="voice"):
        bot = await started_bot(tmp_path)
    try:
        # No !listen, no receiver: VoiceManager joins deafened.
        assert bot.listening is None and bot.voice.listener is None and bot.get_cog("Listen") is None
    finally:
        await stop(bot)
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
