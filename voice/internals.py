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
  idle (no callback; see ``RaceFixedConnectionState``) except during IP discovery, when
  the receiver does not read (not connected then);
* ``VoiceClient._connection.dave_session.decrypt(user_id, davey.MediaType.audio, frame)``
  for members' end-to-end encrypted frames;

``VoiceClient.mode``, ``secret_key`` and ``ssrc`` are public properties.

Two races of discord.py 2.7.1's ``VoiceConnectionState`` stall a voice connection for good
after a drag to another channel or a resume; ``RaceFixedConnectionState`` (below) fixes both.
It overrides, of that class:

* the ``state`` property and ``_wait_for_state(state, *others, timeout=None)``: the setter
  does ``_state_event.set(); _state_event.clear()`` and ``_wait_for_state`` waits on that
  event in a *new task* (``sane_wait_for``) after checking the state. A state change that
  lands after the check but before that task first runs sets and clears the event with no
  waiter: the wake-up is lost and the connection waits for the next change, which never
  comes (30 s timeout, or forever). Discord sends VOICE_STATE_UPDATE and
  VOICE_SERVER_UPDATE back to back, so the second often lands there (a resume after
  4015 stalled about 1 time in 20);
* ``add_socket_listener`` / ``remove_socket_listener``: ``DiscordVoiceWebSocket.discover_ip``
  sends its request *before* registering its listener (``get_ip_packet``), and the
  state's ``SocketReader`` thread, after delivering an answer, goes back into a 30 s
  ``select()`` before the event loop unregisters the listener. The next datagram (the IP
  discovery answer of a drag's reconnect, on the same socket) is then read with no listener
  and dropped, and the reconnect waits for it for good (measured here: a drag stalled
  1 time in 13 to 19, the reader having read a 74-byte answer with no listener); after a
  connect it could also take the first member packet from the receiver. The fix
  unregisters the discovery listener in the reader thread as soon as it has its answer,
  so the reader goes idle at once.

``VoiceClient.wait_until_connected(timeout)`` (no underscore, but undocumented) blocks a
thread until the connection is connected.

All of this was written against discord.py ``DISCORD_VERSION`` (2.7.1); with another
version ``check_discord_version()`` logs a warning at start-up and listening is off
(voice/listening.py is not started), and connections use discord.py's own state.

tests/unit/test_dave_voice_internals.py, tests/unit/test_voice_receive_internals.py and
tests/unit/test_voice_connection_races.py fail when discord.py changes any of these.
"""
from __future__ import annotations

import asyncio
import ctypes.util
import logging
from dataclasses import dataclass
from typing import Any, Callable

import discord
from discord.voice_state import ConnectionFlowState, VoiceConnectionState

log = logging.getLogger("voice")
POLL_RETRIES = 3

DISCORD_VERSION = "2.7.1"  # the discord.py whose private voice internals this module reads

# Voice gateway opcodes, defined here only.
SESSION_DESCRIPTION = 4
SPEAKING, CLIENT_DISCONNECT = 5, 13


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


# -- the version these internals were written for -------------------------------------------
def internals_match() -> bool:
    """Whether the installed discord.py is the one this module was written and tested against."""
    return discord.__version__ == DISCORD_VERSION


def check_discord_version() -> bool:
    """At start-up: True for discord.py DISCORD_VERSION; otherwise log why listening is off."""
    if internals_match():
        return True
    log.warning("discord.py %s is installed, but listening in voice channels relies on private voice "
                "internals of discord.py %s (voice/internals.py): listening is turned off. "
                "Install the pinned version (pip install -r requirements.txt) to hear members.",
                discord.__version__, DISCORD_VERSION)
    return False


# -- discord.py 2.7.1 voice connection races (see the module docstring) ----------------------
IP_DISCOVERY_LISTENER = "DiscordVoiceWebSocket.discover_ip.<locals>.get_ip_packet"


def is_ip_discovery_answer(data: bytes) -> bool:
    """An IP discovery response: type 2, 74 bytes (what ``get_ip_packet`` accepts)."""
    return len(data) == 74 and data[1] == 0x02


class RaceFixedConnectionState(VoiceConnectionState):
    """discord.py 2.7.1's voice connection state without its two stalls (module docstring):

    * the lost wake-up: each waiter of ``_wait_for_state`` registers a future *before* it
      yields, right after checking the state, and every state change resolves the futures
      registered so far, so no change between the check and the wait goes unnoticed;
    * the dropped IP discovery answer: the discovery listener is unregistered in discord.py's
      socket reader thread as soon as it has its answer, so that thread goes idle instead of
      reading (and dropping) the next datagram with no listener.
    """

    def __init__(self, voice_client: discord.VoiceClient, *, hook: Any = None) -> None:
        self._state_waiters: list[asyncio.Future[None]] = []
        self._discovery_listeners: dict[Callable[[bytes], Any], Callable[[bytes], Any]] = {}
        super().__init__(voice_client, hook=hook)

    @property
    def state(self) -> ConnectionFlowState:
        return VoiceConnectionState.state.fget(self)  # type: ignore[attr-defined]

    @state.setter
    def state(self, value: ConnectionFlowState) -> None:
        VoiceConnectionState.state.fset(self, value)  # type: ignore[attr-defined]
        waiters, self._state_waiters = self._state_waiters, []
        for changed in waiters:
            if not changed.done():
                changed.set_result(None)

    async def _wait_for_state(self, state: ConnectionFlowState, *other_states: ConnectionFlowState,
                              timeout: float | None = None) -> None:
        # discord.py's own: the same states and the same timeout for each wait (asyncio.TimeoutError).
        states = (state, *other_states)
        while self.state not in states:
            changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._state_waiters.append(changed)  # before yielding: no change can slip past
            await asyncio.wait_for(changed, timeout)

    def add_socket_listener(self, callback: Callable[[bytes], Any]) -> None:
        if getattr(callback, "__qualname__", "") != IP_DISCOVERY_LISTENER:
            super().add_socket_listener(callback)
            return
        discovery = callback

        def deliver_once(data: bytes) -> None:  # on discord.py's socket reader thread
            discovery(data)
            if is_ip_discovery_answer(data):
                VoiceConnectionState.remove_socket_listener(self, deliver_once)  # idle from now on

        self._discovery_listeners[discovery] = deliver_once
        super().add_socket_listener(deliver_once)

    def remove_socket_listener(self, callback: Callable[[bytes], Any]) -> None:
        super().remove_socket_listener(self._discovery_listeners.pop(callback, callback))

    async def _poll_voice_ws(self, reconnect: bool) -> None:
        """A third discord.py 2.7.1 race: it answers DAVE binary messages from inside
        ``poll_event``, and when the voice websocket is already closing (a leave, a move or a
        resume racing the voice server's last MLS message) the send raises aiohttp's
        ``ClientConnectionResetError`` out of its poll loop: the task dies with a traceback
        and the close is never handled. Poll again instead: the close then arrives as
        ``ConnectionClosed`` and discord.py's own handling (disconnect, reconnect after a
        move, resume) runs as usual. Seen in the voice-channel tests' join/leave sequences."""
        for _ in range(POLL_RETRIES):
            try:
                return await super()._poll_voice_ws(reconnect)
            except ConnectionResetError:  # aiohttp.ClientConnectionResetError subclasses it
                log.info("The voice websocket closed while answering a DAVE message; polling for its close")
        await super()._poll_voice_ws(reconnect)  # the same failure again and again: let it surface


def wait_until_connected(client: discord.VoiceClient, timeout: float) -> bool:
    """Block (call it in a worker thread) until ``client`` is connected, at most ``timeout``
    seconds; whether it is connected. ``VoiceClient.wait_until_connected`` is undocumented."""
    return client.wait_until_connected(timeout)


def load_opus() -> bool:
    """Load libopus through discord.py's public ``load_opus``, found as discord.py itself finds
    it off Windows (``ctypes.util.find_library``); whether it is loaded. (discord.py would load
    it on first use through a private function; loading it here lets start-up say it is missing.)"""
    name = None if discord.opus.is_loaded() else ctypes.util.find_library("opus")
    if name is not None:
        try:
            discord.opus.load_opus(name)
        except (OSError, AttributeError):  # not loadable, or not libopus
            pass
    return discord.opus.is_loaded()


class DaveReportingVoiceClient(discord.VoiceClient):
    """A VoiceClient that logs its DAVE state at INFO once per voice websocket (a join, a
    move, a resume): when its group is first ready, or at once when it is plaintext."""

    def create_connection_state(self) -> VoiceConnectionState:
        self._dave_described_ws: int | None = None  # id() of the websocket that sent SESSION_DESCRIPTION
        self._dave_reported_ws: int | None = None  # id() of the websocket already reported
        state_class = RaceFixedConnectionState if internals_match() else VoiceConnectionState
        return state_class(self, hook=self._after_voice_message)

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


# -- receiving (voice/receiver.py uses these) -----------------------------------------------


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
    """Also hands every voice-gateway message to ``on_voice_message`` (the listening service's,
    when the bot has one: voice/listening.py), which registers its receiver on
    SESSION_DESCRIPTION and learns SSRCs from op 5."""

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable, *,
                 on_voice_message: Callable[[discord.VoiceClient, dict], None] | None = None) -> None:
        super().__init__(client, channel)
        self.on_voice_message = on_voice_message

    async def _after_voice_message(self, ws: Any, msg: dict) -> None:
        await super()._after_voice_message(ws, msg)
        if self.on_voice_message is not None:
            try:
                self.on_voice_message(self, msg)
            except Exception:  # never break the voice connection
                log.exception("Voice receive: could not handle op %s", msg.get("op"))
