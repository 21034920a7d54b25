"""The one place that reads discord.py's private voice internals (discord.py 2.7.1).

discord.py has public API for the voice privacy code (``VoiceClient.voice_privacy_code``)
and nothing else about DAVE, the end-to-end encryption Discord requires for voice.  To log
the DAVE state of each connection (so a log shows whether the bot's voice really is
end-to-end encrypted, and with which epoch and code users can compare), this module reads:

* ``VoiceClient.create_connection_state()`` (undocumented, overridden here): the factory
  of the connection state; overriding it is the only way to pass a ``hook``.
* ``discord.voice_state.VoiceConnectionState(voice_client, hook=...)`` (internal class):
  ``hook(ws, msg)`` is awaited after each JSON voice-gateway message has been handled
  (``DiscordVoiceWebSocket.received_message``), which is when the DAVE state changes.
* ``VoiceClient._connection.dave_protocol_version`` (int, 0 = no E2EE): the negotiated
  DAVE version, set from SESSION_DESCRIPTION and transitions.
* ``VoiceClient._connection.dave_session`` (``davey.DaveSession`` or None): its public
  ``ready`` and ``epoch`` say whether frames are encrypted now, and for which MLS epoch.

To hear members (discord.py has no receive API; see ../shared/docs/voice-receive.md) it
also reads:

* the same ``hook``, for op 5 ``SPEAKING`` (which user an SSRC is) and op 13
  ``CLIENT_DISCONNECT``; they reach the hook as raw dicts (discord.py ignores them);
* ``VoiceClient._connection.socket``: the connection's non-blocking UDP socket (replaced on
  each reconnect). The receiver reads it in a thread of its own, only while the connection
  is connected. It does not use discord.py's ``add_socket_listener``: with a callback
  registered, discord.py's reader thread sits in ``select()`` (30 s) on the socket, and when
  a reconnect (a drag to another channel) replaces the socket, that reader misses the IP
  discovery answer on the new one and the reconnect stalls. discord.py's own reader stays
  idle (no callback) except during IP discovery, when the receiver does not read (not
  connected then);
* ``VoiceClient._connection.dave_session.decrypt(user_id, davey.MediaType.audio, frame)``
  for members' end-to-end encrypted frames;

``VoiceClient.mode``, ``secret_key`` and ``ssrc`` are public properties.

tests/unit/test_dave_voice_internals.py and tests/unit/test_voice_receive_internals.py fail
when discord.py changes any of these.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import discord
from discord.voice_state import VoiceConnectionState

log = logging.getLogger("voice")

SESSION_DESCRIPTION = 4  # voice gateway opcode


@dataclass(frozen=True)
class DaveState:
    """The end-to-end encryption state of one voice connection."""

    protocol_version: int  # 0: not end-to-end encrypted
    ready: bool  # frames are being encrypted
    epoch: int | None
    privacy_code: str | None

    def describe(self) -> str:
        if not self.protocol_version:
            return "not end-to-end encrypted (DAVE protocol version 0)"
        return (f"DAVE protocol version {self.protocol_version}, epoch {self.epoch}, "
                f"voice privacy code {self.privacy_code}")


def dave_state(client: discord.VoiceClient) -> DaveState:
    """What discord.py's voice connection knows about DAVE right now."""
    connection = client._connection  # private: see the module docstring
    session = connection.dave_session
    version = int(connection.dave_protocol_version or 0)
    ready = bool(version and session is not None and session.ready)
    return DaveState(version, ready, session.epoch if session is not None else None, client.voice_privacy_code)


class DaveReportingVoiceClient(discord.VoiceClient):
    """A VoiceClient that logs its DAVE state at INFO once per voice websocket (a join, a
    move, a resume): when its group is first ready, or at once when it is plaintext."""

    def create_connection_state(self) -> VoiceConnectionState:
        self._dave_described_ws: int | None = None  # id() of the websocket that sent SESSION_DESCRIPTION
        self._dave_reported_ws: int | None = None  # id() of the websocket already reported
        return VoiceConnectionState(self, hook=self._after_voice_message)

    async def _after_voice_message(self, ws: Any, msg: dict) -> None:
        if msg.get("op") == SESSION_DESCRIPTION:  # a new key and DAVE version: a new group
            self._dave_described_ws = id(ws)
        if self._dave_reported_ws == id(ws) or self._dave_described_ws != id(ws):
            return  # reported already, or the state is still the previous websocket's (resume)
        try:
            state = dave_state(self)
        except AttributeError:  # discord.py changed (the unit test says so): never break voice
            return
        if state.ready or not state.protocol_version:
            self._dave_reported_ws = id(ws)
            self.on_dave_state(state)

    def on_dave_state(self, state: DaveState) -> None:
        guild = getattr(self.channel, "guild", None)
        log.info("Voice in %s (guild %s): %s", self.channel, getattr(guild, "id", None), state.describe())


# -- receiving (commands/voice_receiver.py uses these) ---------------------------------------
SPEAKING, CLIENT_DISCONNECT = 5, 13  # voice gateway opcodes


def connection_socket(client: discord.VoiceClient) -> Any | None:
    """The connection's UDP socket (non-blocking), or None before the first connect."""
    sock = getattr(client._connection, "socket", None)  # private: see the module docstring
    return sock if hasattr(sock, "recv") else None


def drain_socket(client: discord.VoiceClient, limit: int = 10_000) -> int:
    """Drop the datagrams waiting in the connection's socket (what arrived while not
    listening); returns how many."""
    sock = connection_socket(client)
    dropped = 0
    if sock is None or not hasattr(sock, "gettimeout") or sock.gettimeout() != 0.0:
        return 0  # not connected yet, or not the non-blocking socket discord.py makes
    try:
        while dropped < limit:
            sock.recv(4096)
            dropped += 1
    except (BlockingIOError, InterruptedError, OSError, ValueError):
        pass
    return dropped


def dave_session(client: discord.VoiceClient) -> Any | None:
    """The connection's ``davey.DaveSession`` when end-to-end encryption is on, else None."""
    connection = client._connection  # private: see the module docstring
    if not connection.dave_protocol_version:
        return None
    return connection.dave_session


class ListeningVoiceClient(DaveReportingVoiceClient):
    """Also hands every voice-gateway message to ``client.voice_listening`` (the bot's
    listen manager, when it has one), which registers its receiver on SESSION_DESCRIPTION and
    learns SSRCs from op 5."""

    async def _after_voice_message(self, ws: Any, msg: dict) -> None:
        await super()._after_voice_message(ws, msg)
        manager = getattr(self.client, "voice_listening", None)
        if manager is not None:
            try:
                manager.on_voice_message(self, msg)
            except Exception:  # never break the voice connection
                log.exception("Voice receive: could not handle op %s", msg.get("op"))
