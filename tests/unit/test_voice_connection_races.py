"""The two discord.py 2.7.1 voice connection races that voice/internals.py fixes
(RaceFixedConnectionState), each shown on discord.py's own VoiceConnectionState and then
shown fixed. Real connection states, socket reader threads and UDP sockets; the races are
made to happen deterministically (no sleeps, no timing).

When discord.py fixes them, the "bug" tests fail: drop the workaround then.
"""
from __future__ import annotations

import asyncio
import inspect
import select
import socket
import struct
import threading
from types import SimpleNamespace

import pytest

import discord.voice_state
from discord.gateway import DiscordVoiceWebSocket
from discord.voice_state import ConnectionFlowState, SocketReader, VoiceConnectionState

from voice.internals import (IP_DISCOVERY_LISTENER, DaveReportingVoiceClient, RaceFixedConnectionState,
                                      is_ip_discovery_answer)

GUILD, CHANNEL = 111, 222


def new_state(state_class: type[VoiceConnectionState]) -> VoiceConnectionState:
    client = SimpleNamespace(channel=SimpleNamespace(id=CHANNEL), guild=SimpleNamespace(id=GUILD))
    return state_class(client, hook=None)


def close(state: VoiceConnectionState) -> None:
    if state.socket:
        state.socket.close()
    state._socket_reader.stop()


async def run_ready_callbacks() -> None:
    """Let the loop run everything that is ready (a handful of hops; no I/O involved)."""
    for _ in range(20):
        await asyncio.sleep(0)


# -- the lost wake-up ---------------------------------------------------------------------------
async def closed(code: int) -> None:
    """Closing a websocket that is closed already: nothing to wait for."""


async def wait_through_back_to_back_updates(state: VoiceConnectionState, order: str) -> bool:
    """A connect (or a resume) waiting for both voice updates, which land back to back after
    its waiter has checked the state and before its waiting task has started; whether the
    waiter saw them."""
    voice_state = {"channel_id": str(CHANNEL), "session_id": "session"}
    voice_server = {"token": "token", "guild_id": str(GUILD), "endpoint": "127.0.0.1:1"}
    if order == "connect":  # a join: state first, then server
        state.state = ConnectionFlowState.set_guild_voice_state
    else:  # a resume after 4015 (still "connected"): server first, then state
        state.state = ConnectionFlowState.connected
        state.ws = SimpleNamespace(close=closed)  # the websocket the server closed
    waiter = asyncio.create_task(state._wait_for_state(ConnectionFlowState.got_both_voice_updates))
    await asyncio.sleep(0)  # the waiter runs up to its wait: it has checked the state
    if order == "connect":
        await state.voice_state_update(voice_state)
        await state.voice_server_update(voice_server)
    else:
        await state.voice_server_update(voice_server)
        await state.voice_state_update(voice_state)
    assert state.state is ConnectionFlowState.got_both_voice_updates
    await run_ready_callbacks()
    woken = waiter.done()
    waiter.cancel()
    return woken


@pytest.mark.parametrize("order", ["connect", "resume"])
async def test_discord_py_loses_the_wake_up_of_back_to_back_voice_updates(order):
    """The bug: the state is the awaited one, and the waiter still waits (for good: nothing
    else changes the state)."""
    assert "self._state_event.set()\n        self._state_event.clear()" in inspect.getsource(VoiceConnectionState)
    assert "sane_wait_for([self._state_event.wait()]" in inspect.getsource(VoiceConnectionState._wait_for_state)
    state = new_state(VoiceConnectionState)
    try:
        assert not await wait_through_back_to_back_updates(state, order)
    finally:
        close(state)


@pytest.mark.parametrize("order", ["connect", "resume"])
async def test_the_fixed_state_sees_back_to_back_voice_updates(order):
    state = new_state(RaceFixedConnectionState)
    try:
        assert await wait_through_back_to_back_updates(state, order)
    finally:
        close(state)


async def test_the_fixed_wait_keeps_discord_pys_timeout_and_states():
    state = new_state(RaceFixedConnectionState)
    try:
        state.state = ConnectionFlowState.set_guild_voice_state
        await state._wait_for_state(ConnectionFlowState.connected, ConnectionFlowState.set_guild_voice_state)
        with pytest.raises(asyncio.TimeoutError):  # nothing changes the state: times out as before
            await state._wait_for_state(ConnectionFlowState.connected, timeout=0)
        waiter = asyncio.create_task(state.wait_async(None))  # VoiceClient/move_to use this
        await asyncio.sleep(0)
        state.state = ConnectionFlowState.got_ip_discovery
        await run_ready_callbacks()
        assert not waiter.done()
        state.state = ConnectionFlowState.connected
        await waiter
        assert state.is_connected() and state.wait(0)  # the threading event is discord.py's still
    finally:
        close(state)


# -- the dropped IP discovery answer ------------------------------------------------------------
class ReaderProbe:
    """Counts, for one connection state's socket reader thread, its entries into select()
    and into its idle wait, and lets a test block until one of them happens."""

    def __init__(self, state: VoiceConnectionState, monkeypatch):
        self.selects = 0
        self.idles = 0
        self._changed = threading.Condition()
        real_select, running = select.select, state._socket_reader._running
        real_wait = running.wait

        def counting_select(*args):
            if threading.current_thread() is state._socket_reader:
                self._count("selects")
            return real_select(*args)

        def counting_wait(timeout=None):
            self._count("idles")
            return real_wait(timeout)

        monkeypatch.setattr(discord.voice_state, "select", SimpleNamespace(select=counting_select))
        monkeypatch.setattr(running, "wait", counting_wait)

    def _count(self, name: str) -> None:
        with self._changed:
            setattr(self, name, getattr(self, name) + 1)
            self._changed.notify_all()

    def now(self) -> tuple[int, int]:
        with self._changed:
            return self.selects, self.idles

    def wait_for_next(self, since: tuple[int, int], what: str = "either") -> str:
        """Block until the reader enters select() or goes idle after ``since``; which one."""
        with self._changed:
            self._changed.wait_for(lambda: (self.selects > since[0] and what != "idle")
                                   or (self.idles > since[1] and what != "select"))
            return "select" if self.selects > since[0] and what != "idle" else "idle"


def answer(server: socket.socket) -> None:
    """The voice server answers the IP discovery request waiting in its socket."""
    request, address = server.recvfrom(100)
    reply = bytearray(74)
    struct.pack_into(">HHI", reply, 0, 2, 70, struct.unpack_from(">I", request, 4)[0])
    reply[8:17] = b"127.0.0.1"
    struct.pack_into(">H", reply, 72, address[1])
    server.sendto(bytes(reply), address)


async def two_discoveries(state_class: type[VoiceConnectionState], monkeypatch) -> tuple[str, bool]:
    """A join's IP discovery, then a drag's on the same socket whose answer arrives before
    discover_ip has registered its listener (the loop thread was descheduled right after
    sending: a loaded machine). Returns what discord.py's reader did after the first answer
    ("select": reading on with no listener, or "idle") and whether the second completed."""
    loop = asyncio.get_running_loop()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    state = new_state(state_class)
    probe = ReaderProbe(state, monkeypatch)
    mark = probe.now()
    if state._socket_reader._idle_paused:  # its thread has not paused itself yet: let it first
        probe.wait_for_next(mark, "idle")
    state._create_socket()  # as on VOICE_SERVER_UPDATE: non-blocking, the reader resumable
    state.socket.connect(server.getsockname())  # as initial_connection does
    state.ssrc = 1234
    second: asyncio.Task | None = None
    try:
        # The join: the reader enters select() for the listener; then the answer. The loop is
        # held until the reader is done with it, as when its thread gets there first.
        before = probe.now()
        first = asyncio.create_task(DiscordVoiceWebSocket.discover_ip(SimpleNamespace(_connection=state, loop=loop)))
        await asyncio.sleep(0)  # sent and listening
        probe.wait_for_next(before, "select")
        after_answer = probe.now()
        answer(server)
        reader_after_first = probe.wait_for_next(after_answer)
        assert await first == ("127.0.0.1", state.socket.getsockname()[1])

        # The drag's discovery: the answer lands between sending and registering.
        early = SimpleNamespace(create_future=loop.create_future, call_soon_threadsafe=loop.call_soon_threadsafe)

        async def send_then_answer(sock, data):
            sock.send(data)
            mark = probe.now()
            answer(server)
            if reader_after_first == "select":  # a reader still in select() takes the answer
                probe.wait_for_next(mark, "idle")

        early.sock_sendall = send_then_answer
        second = asyncio.create_task(DiscordVoiceWebSocket.discover_ip(SimpleNamespace(_connection=state, loop=early)))
        if reader_after_first == "idle":
            await second  # the answer waited in the socket for the listener
        else:
            await run_ready_callbacks()  # nothing will ever complete it: the answer was dropped
        return reader_after_first, second.done()
    finally:
        if second is not None:
            second.cancel()
        state._socket_reader.stop()
        server.sendto(b"wake", state.socket.getsockname())  # a reader still in select() ends too
        close(state)
        server.close()


async def test_discord_py_drops_the_ip_discovery_answer_of_a_reconnect(monkeypatch):
    """The bug: after the first discovery discord.py's reader goes back into select() with no
    listener, reads the reconnect's answer and drops it; discover_ip waits for good."""
    source = inspect.getsource(DiscordVoiceWebSocket.discover_ip)
    assert source.index("sock_sendall") < source.index("add_socket_listener(get_ip_packet)")
    assert "remove_socket_listener(get_ip_packet)" in source  # from a done callback, on the loop
    assert await two_discoveries(VoiceConnectionState, monkeypatch) == ("select", False)


async def test_the_fixed_state_keeps_the_ip_discovery_answer_of_a_reconnect(monkeypatch):
    assert await two_discoveries(RaceFixedConnectionState, monkeypatch) == ("idle", True)


def test_the_discovery_listener_is_recognised():
    source = inspect.getsource(DiscordVoiceWebSocket.discover_ip)
    assert "def get_ip_packet(data: bytes):" in source and "data[1] == 0x02 and len(data) == 74" in source
    listener = next(c for c in DiscordVoiceWebSocket.discover_ip.__code__.co_consts
                    if inspect.iscode(c) and c.co_name == "get_ip_packet")
    assert listener.co_qualname == IP_DISCOVERY_LISTENER
    assert is_ip_discovery_answer(b"\x00\x02" + bytes(72)) and not is_ip_discovery_answer(b"\x80\x78" + bytes(72))
    assert {"_callbacks", "_running", "_idle_paused"} <= set(vars(SocketReader(SimpleNamespace())))


def test_voice_clients_get_the_fixed_state_with_the_pinned_discord_py(monkeypatch):
    source = inspect.getsource(DaveReportingVoiceClient.create_connection_state)
    assert "RaceFixedConnectionState if internals_match() else VoiceConnectionState" in source
    assert issubclass(RaceFixedConnectionState, VoiceConnectionState)
    assert isinstance(inspect.getattr_static(VoiceConnectionState, "state"), property)
    assert list(inspect.signature(VoiceConnectionState._wait_for_state).parameters) == \
        list(inspect.signature(RaceFixedConnectionState._wait_for_state).parameters)


class ClosingVoiceWebsocket:
    """A voice websocket caught closing: its first poll answers a DAVE message on a closing transport
    (what aiohttp raises then), the next reads the close (4021: discord.py disconnects and stops)."""

    def __init__(self) -> None:
        self.polls = 0

    async def poll_event(self) -> None:
        import aiohttp

        self.polls += 1
        if self.polls == 1:
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
        raise discord.errors.ConnectionClosed(SimpleNamespace(close_code=4021), shard_id=None, code=4021)


async def test_discord_py_poll_loop_dies_on_a_reply_to_a_closing_websocket():
    import aiohttp

    state = new_state(VoiceConnectionState)
    try:
        state.ws = ClosingVoiceWebsocket()
        with pytest.raises(aiohttp.ClientConnectionResetError):
            await state._poll_voice_ws(False)  # the bug: the close is never read
    finally:
        close(state)


async def test_fixed_poll_loop_polls_again_and_handles_the_close():
    state = new_state(RaceFixedConnectionState)
    try:
        state.ws = ws = ClosingVoiceWebsocket()
        await state._poll_voice_ws(False)  # returns: discord.py handled 4021 as usual
        assert ws.polls == 2
    finally:
        close(state)
