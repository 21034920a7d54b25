"""voice/internals.py reads discord.py internals; these fail when discord.py changes them."""
from __future__ import annotations

import inspect
from types import SimpleNamespace

import davey
import discord
from discord.gateway import DiscordVoiceWebSocket
from discord.voice_state import VoiceConnectionState

from voice.internals import DaveReportingVoiceClient, DaveState, dave_state


def test_the_connection_state_factory_and_its_hook_exist():
    assert callable(getattr(discord.VoiceClient, "create_connection_state", None))
    assert "hook" in inspect.signature(VoiceConnectionState.__init__).parameters
    # The hook is awaited with (ws, msg) after each JSON message has been handled.
    assert "await self._hook(self, msg)" in inspect.getsource(DiscordVoiceWebSocket.received_message)
    assert DaveReportingVoiceClient.create_connection_state is not discord.VoiceClient.create_connection_state


def test_connection_state_has_the_dave_attributes_read():
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    try:
        assert state.dave_session is None and state.dave_protocol_version == 0
        client = SimpleNamespace(_connection=state, voice_privacy_code=None)
        assert dave_state(client) == DaveState(0, False, None, None)
        state.dave_protocol_version = 1
        state.dave_session = davey.DaveSession(1, 111, 222)
        assert dave_state(client) == DaveState(1, False, None, None)  # no group yet: not encrypting
    finally:
        state._socket_reader.stop()


def test_privacy_code_is_public_api():
    assert isinstance(inspect.getattr_static(discord.VoiceClient, "voice_privacy_code"), property)


def test_state_description():
    assert "not end-to-end encrypted" in DaveState(0, False, None, None).describe()
    assert DaveState(1, True, 3, "1234").describe() == "DAVE protocol version 1, epoch 3, voice privacy code 1234"
