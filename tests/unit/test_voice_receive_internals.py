"""The discord.py internals the voice receiver reads (voice/internals.py); these fail
when discord.py changes them (real connection states, sockets and davey sessions)."""
from __future__ import annotations

import inspect
import socket
from types import SimpleNamespace

import davey
import discord
from discord.gateway import DiscordVoiceWebSocket
from discord.voice_state import SocketReader, VoiceConnectionState

from voice.internals import (CLIENT_DISCONNECT, SPEAKING, ListeningVoiceClient, connection_socket,
                                      dave_session, drain_socket, load_opus, wait_until_connected)


def test_public_properties_read_per_packet():
    for name in ("mode", "secret_key", "ssrc"):
        assert isinstance(inspect.getattr_static(discord.VoiceClient, name), property), name


def test_speaking_and_disconnect_reach_the_hook_unhandled():
    """discord.py 2.7.1 does nothing with op 5 / op 13 but still awaits the hook with them."""
    source = inspect.getsource(DiscordVoiceWebSocket.received_message)
    assert "await self._hook(self, msg)" in source
    assert (DiscordVoiceWebSocket.SPEAKING, DiscordVoiceWebSocket.CLIENT_DISCONNECT) == (SPEAKING, CLIENT_DISCONNECT)
    assert issubclass(ListeningVoiceClient, discord.VoiceClient)
    assert ListeningVoiceClient._after_voice_message is not discord.VoiceClient.__dict__.get("_after_voice_message")


def test_the_connection_socket_and_the_idle_reader():
    """The socket is an attribute of the connection state, made non-blocking on connect; the
    state's own reader thread reads only while a callback is registered (IP discovery), so
    the receiver's reader does not compete with it otherwise."""
    assert "self.socket.setblocking(False)" in inspect.getsource(VoiceConnectionState)
    assert "self._socket_reader.register(callback)" in inspect.getsource(VoiceConnectionState.add_socket_listener)
    reader = SocketReader(SimpleNamespace(socket=None), start_paused=False)
    reader.register(len)
    reader.unregister(len)
    assert reader._idle_paused and not reader._running.is_set()  # no callback: not reading
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    try:
        client = SimpleNamespace(_connection=state)
        assert connection_socket(client) is None  # MISSING before the first connect
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        state.socket = sock
        assert connection_socket(client) is sock
        sock.close()
    finally:
        state._socket_reader.stop()


def test_dave_session_is_read_only_when_dave_is_negotiated():
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    try:
        client = SimpleNamespace(_connection=state)
        assert dave_session(client) is None
        state.dave_session = davey.DaveSession(1, 111, 222)
        assert dave_session(client) is None  # protocol version 0: plaintext call
        state.dave_protocol_version = 1
        session = dave_session(client)
        assert session is state.dave_session
        assert "decrypt" in dir(session) and davey.MediaType.audio is not None
    finally:
        state._socket_reader.stop()


def test_waiting_datagrams_are_drained_from_the_connection_socket():
    """discord.py makes the voice socket non-blocking; what waits in it is dropped, then it is empty."""
    assert "setblocking(False)" in inspect.getsource(VoiceConnectionState)
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        client = SimpleNamespace(_connection=state)
        state.socket = receiver
        assert drain_socket(client) == 0  # a blocking socket is never read (it would block)
        receiver.setblocking(False)
        for _ in range(3):
            sender.sendto(b"old speech", receiver.getsockname())
        sender.sendto(b"last", receiver.getsockname())
        receiver.setblocking(True)
        assert receiver.recv(100) == b"old speech"  # they are all there (loopback delivers in order)
        receiver.setblocking(False)
        assert drain_socket(client) == 3 and drain_socket(client) == 0
    finally:
        state._socket_reader.stop()
        receiver.close()
        sender.close()


def test_opus_loading_and_waiting_for_a_connection():
    """bot.py loads libopus and the voice manager waits for a reconnect through these."""
    assert load_opus() and discord.opus.is_loaded()
    source = inspect.getsource(discord.VoiceClient.wait_until_connected)
    assert "self._connection.wait(timeout)" in source and "return self._connection.is_connected()" in source
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    try:
        client = SimpleNamespace(wait_until_connected=discord.VoiceClient.wait_until_connected.__get__(
            SimpleNamespace(_connection=state)))
        assert wait_until_connected(client, 0) is False  # not connected: returns after the timeout
    finally:
        state._socket_reader.stop()
