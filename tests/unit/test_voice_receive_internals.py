"""The discord.py internals the voice receiver reads (commands/voice_internals.py); these fail
when discord.py changes them. Driven for real: a connection state's socket reader thread
gets datagrams from a UDP socket, and a davey session decrypts a member's frame."""
from __future__ import annotations

import inspect
import socket
import threading
from types import SimpleNamespace

import davey
import discord
from discord.gateway import DiscordVoiceWebSocket
from discord.voice_state import SocketReader, VoiceConnectionState

from commands.voice_internals import (CLIENT_DISCONNECT, SPEAKING, ListeningVoiceClient, add_socket_listener,
                                      dave_session, drain_socket, remove_socket_listener)


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


def test_socket_listener_gets_datagrams_on_the_reader_thread():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    state = VoiceConnectionState(SimpleNamespace(), hook=None)
    got: list[tuple[bytes, str]] = []
    arrived = threading.Event()

    def callback(data: bytes) -> None:
        got.append((data, threading.current_thread().name))
        arrived.set()

    client = SimpleNamespace(_connection=state)
    # The state's own reader starts paused on its thread, which may run after a registration
    # made at once (in the bot, registration comes seconds later); a reader of the same
    # class started after registering has no such race.
    state._socket_reader.stop()
    state._socket_reader = SocketReader(state, start_paused=False)
    try:
        state.socket = receiver
        add_socket_listener(client, callback)
        add_socket_listener(client, callback)  # idempotent: called once per datagram
        state._socket_reader.start()
        sender.sendto(b"voice", receiver.getsockname())
        assert arrived.wait(10)
        arrived.clear()
        sender.sendto(b"more", receiver.getsockname())
        assert arrived.wait(10)
        assert [d for d, _ in got] == [b"voice", b"more"]
        assert got[0][1].startswith("voice-socket-reader")
        remove_socket_listener(client, callback)
        assert callback not in state._socket_reader._callbacks
    finally:
        state._socket_reader.stop()
        receiver.close()
        sender.close()


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
