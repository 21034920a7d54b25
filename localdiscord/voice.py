"""The fake Discord voice server: voice gateway v8 (TLS websocket) plus a UDP RTP receiver.

It answers the bot's gateway op 4 (voice state update) with VOICE_STATE_UPDATE and
VOICE_SERVER_UPDATE, runs the voice handshake (HELLO, READY, IP discovery,
SESSION_DESCRIPTION), then decrypts every RTP packet the bot sends
(aead_xchacha20_poly1305_rtpsize) and decodes the Opus inside, so tests can check what
was *heard*: utterances with their 20 ms frame counts, packet timing, loudness and a
local speech-to-text transcript.  Protocol facts: ../shared/docs/discord-offline-testing.md.

Like Discord since March 2026, it negotiates DAVE (end-to-end encrypted voice, protocol
version 1) by default: the server is the MLS group's external sender and adds members of
its own to the bot's group, which decrypt every frame (dave.py).  ``dave=False`` keeps the
old plaintext mode (version 0) for comparison.  Frames the bot should have encrypted and
did not are counted (``FakeVoiceServer.unencrypted_frames``).

Enable it for a test module by overriding the ``fake`` fixture::

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def fake():
        async with fake_discord_with_voice() as server:
            yield server

then use ``fake.voice_server`` (a ``FakeVoiceServer``).

Its parts: this module is the server tests hold (what was heard, waiting, acting as Discord)
and the main gateway's side of voice (op 4: voice states and voice server assignments);
voice_connection.py one voice connection and what it hears, voice_gateway.py the voice
websocket and its DAVE groups, voice_udp.py IP discovery and RTP.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import AsyncIterator, Callable

from . import mls
from .server import FakeDiscord, GatewaySession
from .state import Channel, Guild, snowflake
from .voice_connection import CHANNELS, FRAME_SECONDS, OPUS_SILENCE, SAMPLE_RATE, Utterance, VoiceConnection, load_opus
from .voice_gateway import (
    CLOSE_AUTH_FAILED, CLOSE_CALL_TERMINATED, CLOSE_KICKED, CLOSE_SERVER_CRASHED, CLOSE_SESSION_INVALID, MODE,
    OFFERED_MODES, VoiceGateway,
)
from .voice_udp import VoiceUdp

__all__ = [
    "CHANNELS", "CLOSE_AUTH_FAILED", "CLOSE_CALL_TERMINATED", "CLOSE_KICKED", "CLOSE_SERVER_CRASHED",
    "CLOSE_SESSION_INVALID", "FRAME_SECONDS", "MODE", "OFFERED_MODES", "OPUS_SILENCE", "SAMPLE_RATE",
    "FakeVoiceServer", "Utterance", "VoiceConnection", "fake_discord_with_voice",
]


class FakeVoiceServer:
    """Voice for a ``FakeDiscord``: plugs into its ``voice_handler`` hook (gateway op 4)."""

    def __init__(self, fake: FakeDiscord, dave: bool = True, record: bool = True):
        self.fake = fake
        self.dave = dave  # negotiate DAVE protocol version 1 (else plaintext, version 0)
        # Keep what was heard (utterances with their PCM) for tests; False (the playground): each
        # frame goes to the PCM listeners only, so hours of voice keep no memory.
        self.record = record
        self.external_sender = mls.ExternalSenderKey(identity=b"fake-discord-voice")
        self.listener_id = snowflake()  # the user id of the server's own member of each group
        self.port = 0  # voice websocket (TLS)
        self.udp_port = 0
        self.connections: list[VoiceConnection] = []  # every voice websocket, oldest first
        self.op4: list[dict] = []  # every voice state update the bot sent on the main gateway
        self.unknown_packets = 0
        self.discoveries: list[tuple[int, tuple[str, int]]] = []  # (ssrc, client address) per request
        # Called with (guild id, 20 ms of decoded 48 kHz stereo s16le PCM) as each frame arrives.
        self.pcm_listeners: list[Callable[[int, bytes], None]] = []
        # Called with (connection, raw datagram) for each RTP packet from the bot (speaker.py's echo).
        self.rtp_taps: list[Callable[["VoiceConnection", bytes], None]] = []
        self._utterances: dict[int, list[Utterance]] = {}
        self.tokens: dict[str, tuple[int, str]] = {}  # token -> (guild id, session id), for the voice gateway
        self.by_ssrc: dict[int, VoiceConnection] = {}  # open connections, for routing RTP
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._gateway = VoiceGateway(self)
        self._udp = VoiceUdp(self)
        self._watcher: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        load_opus()
        self.port = await self._gateway.start()
        self.udp_port = await self._udp.start()
        self.fake.voice_handler = self._on_voice_state_request
        self.fake.voice_server = self  # type: ignore[attr-defined]
        self._watcher = asyncio.create_task(self._gateway.watch_members(), name="fake-voice-dave-members")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close()
        self._udp.close()
        await self._gateway.stop()
        for _predicate, future in self._waiters:
            if not future.done():
                future.cancel()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- what tests look at ------------------------------------------------------------------
    def bot_channel(self, guild: Guild) -> int | None:
        """The voice channel id the bot is in, as the fake Discord sees it."""
        return guild.voice_states.get(self.fake.bot.id)

    def connection(self, guild: Guild) -> VoiceConnection | None:
        """The bot's latest voice websocket in ``guild`` (open or not)."""
        return next((c for c in reversed(self.connections) if c.guild_id == guild.id), None)

    def is_connected(self, guild: Guild, channel: Channel | None = None) -> bool:
        conn = self.connection(guild)
        in_channel = self.bot_channel(guild)
        return (conn is not None and conn.connected and not conn.closed and in_channel is not None
                and (channel is None or in_channel == channel.id))

    @property
    def unencrypted_frames(self) -> int:
        """Voice frames the bot sent in plaintext although its DAVE group was ready (all
        connections); must stay 0 for a bot that does end-to-end encryption."""
        return sum(c.dave.unencrypted_after_ready for c in self.connections if c.dave is not None)

    @property
    def undecryptable_frames(self) -> int:
        """Encrypted voice frames the server's listener could not decrypt (all connections)."""
        return sum(c.dave.undecryptable for c in self.connections if c.dave is not None)

    def assert_end_to_end_encrypted(self) -> None:
        """Every DAVE connection so far: nothing sent in plaintext after its group was
        ready, every encrypted frame decrypted, no MLS error on the server side."""
        for conn in self.connections:
            group = conn.dave
            if group is None:
                continue
            assert group.unencrypted_after_ready == 0, f"plaintext voice after DAVE was ready: {group.describe()}"
            assert group.undecryptable == 0, f"voice the listener could not decrypt: {group.describe()}"
            late_failures = sum(l.failures for l in group.listeners.values())
            assert late_failures == 0, f"a member could not decrypt: {group.describe()}"
            assert not group.errors, f"DAVE errors: {group.describe()}"

    async def wait_dave_ready(self, guild: Guild, timeout: float = 10.0, epoch: int | None = None,
                              after: int = 0) -> VoiceConnection:
        """Wait until the bot's latest connection (newer than the first ``after``) has a ready
        DAVE group (at ``epoch`` or later, if given); returns the connection."""
        def ok() -> bool:
            conn = self.connection(guild)
            return (conn is not None and not conn.closed and self.connections.index(conn) >= after
                    and conn.dave is not None and conn.dave.ready
                    and (epoch is None or (conn.dave.epoch or 0) >= epoch))
        await self.wait_until(ok, timeout, f"DAVE group ready in {guild.name}" + (f" at epoch {epoch}" if epoch else ""))
        conn = self.connection(guild)
        assert conn is not None
        return conn

    def utterances(self, guild: Guild) -> list[Utterance]:
        """Finished utterances heard in ``guild``, in the order they started."""
        return list(self._utterances.get(guild.id, []))

    def clear(self, guild: Guild) -> None:
        self._utterances.pop(guild.id, None)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Wait until ``condition()`` holds; checked whenever voice state changes (no polling)."""
        if condition():
            return
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        entry = (condition, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"voice: {what or 'condition'} not reached within {timeout}s; "
                                 f"{self.describe()}") from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    async def wait_connected(self, guild: Guild, channel: Channel | None = None, timeout: float = 10.0,
                             after: int = 0) -> VoiceConnection:
        """Wait until the bot has a working voice connection (in ``channel``, if given) that is
        newer than the first ``after`` connections; returns it."""
        def ok() -> bool:
            conn = self.connection(guild)
            return (self.is_connected(guild, channel) and conn is not None
                    and self.connections.index(conn) >= after)
        await self.wait_until(ok, timeout, f"bot connected in {channel.name if channel else guild.name}")
        conn = self.connection(guild)
        assert conn is not None
        return conn

    async def wait_disconnected(self, guild: Guild, timeout: float = 10.0) -> None:
        """Wait until the bot is in no voice channel of ``guild`` and its voice websocket is closed."""
        def gone() -> bool:
            conn = self.connection(guild)
            return self.bot_channel(guild) is None and (conn is None or conn.closed)
        await self.wait_until(gone, timeout, f"bot disconnected from {guild.name}")

    async def wait_for_utterances(self, guild: Guild, count: int, timeout: float = 20.0) -> list[Utterance]:
        """The first ``count`` finished utterances in ``guild`` (waits for them)."""
        await self.wait_until(lambda: len(self._utterances.get(guild.id, [])) >= count, timeout,
                              f"{count} utterance(s) in {guild.name}")
        return self.utterances(guild)[:count]

    def describe(self) -> str:
        parts = []
        for conn in self.connections[-4:]:
            parts.append(f"[guild {conn.guild_id} channel {conn.channel_id} ssrc {conn.ssrc} connected={conn.connected} "
                         f"closed={conn.closed} code={conn.close_code} packets={conn.packets} "
                         f"decrypt_errors={conn.decrypt_errors}"
                         + (f" {conn.dave.describe()}" if conn.dave is not None else "") + "]")
        heard = {g: len(u) for g, u in self._utterances.items()}
        return (f"connections: {' '.join(parts) or 'none'}; utterances: {heard}; "
                f"IP discoveries: {self.discoveries[-4:]}")

    # -- acting as Discord ---------------------------------------------------------------------
    async def kick(self, guild: Guild, code: int = CLOSE_KICKED) -> None:
        """A moderator disconnects the bot: its voice state goes to no channel and the voice
        websocket closes with ``code`` (4014; 4022 when the call is terminated)."""
        bot = self.fake.bot
        guild.voice_states.pop(bot.id, None)
        self._revoke_tokens(guild)
        await self.fake.broadcast("VOICE_STATE_UPDATE", guild.voice_state_payload(bot, None, self._session_id()))
        conn = self.connection(guild)
        if conn is not None and not conn.ws.closed:
            await conn.ws.close(code=code, message=b"Disconnected.")
        self._changed()
        await self.fake.notify()

    async def move_bot(self, guild: Guild, channel: Channel) -> None:
        """A moderator drags the bot into another voice channel."""
        await self._place_bot(guild, channel, self._session_id(), {})

    async def interrupt(self, guild: Guild) -> VoiceConnection:
        """The voice server "crashes": the bot's voice websocket closes with 4015, after which
        the bot resumes (op 7); returns the interrupted connection."""
        conn = self.connection(guild)
        assert conn is not None and not conn.closed, "the bot has no open voice connection"
        conn.interrupted = True
        await conn.ws.close(code=CLOSE_SERVER_CRASHED, message=b"Voice server crashed.")
        return conn

    async def inject_invalid_commit(self, guild: Guild) -> int:
        """Announce (op 29) a commit the bot can't process; it should answer op 31 and the
        group forms again. Returns the transition id."""
        conn = self.connection(guild)
        assert conn is not None and conn.dave is not None, "no DAVE connection"
        return await conn.dave.inject_invalid_commit()

    async def downgrade(self, guild: Guild) -> int:
        """Op 21 to DAVE protocol version 0 (as when a client without DAVE joins the call):
        after op 23 and op 22 the bot sends plaintext. Returns the transition id."""
        conn = self.connection(guild)
        assert conn is not None and conn.dave is not None, "no DAVE connection"
        return await conn.dave.downgrade()

    async def upgrade(self, guild: Guild) -> None:
        """Op 24 (epoch 1, version 1) after a downgrade: the bot forms a new group."""
        conn = self.connection(guild)
        assert conn is not None and conn.dave is not None, "no DAVE connection"
        await conn.dave.upgrade()

    # -- main gateway op 4 ---------------------------------------------------------------------
    def _session_id(self, session: GatewaySession | None = None) -> str:
        session = session or next((s for s in self.fake.sessions if s.identified), None)
        return f"voice-session-{id(session):x}"

    async def _on_voice_state_request(self, session: GatewaySession, data: dict) -> None:
        self.op4.append(data)
        guild = self.fake.guilds.get(int(data["guild_id"]))
        if guild is None or session.user is None:
            return
        bot = session.user
        session_id = self._session_id(session)
        channel_id = data.get("channel_id")
        if channel_id is None:
            guild.voice_states.pop(bot.id, None)
            self._revoke_tokens(guild)
            await self.fake.broadcast("VOICE_STATE_UPDATE", self._state_payload(guild, None, session_id, data))
            self._changed()
            await self.fake.notify()
            return
        channel = self.fake.channels.get(int(channel_id))
        if channel is None or channel.guild_id != guild.id:
            return
        conn = self.connection(guild)
        if (guild.voice_states.get(bot.id) == channel.id and conn is not None and conn.channel_id == channel.id
                and conn.connected and not conn.closed and not conn.interrupted):
            # Same channel, working connection: only the bot's mute/deaf flags change (as on
            # Discord: a voice state update alone, no new voice server).
            await self.fake.broadcast("VOICE_STATE_UPDATE", self._state_payload(guild, channel.id, session_id, data))
            await self.fake.notify()
            return
        await self._place_bot(guild, channel, session_id, data)

    async def _place_bot(self, guild: Guild, channel: Channel, session_id: str, request: dict) -> None:
        """Put the bot in ``channel`` and hand it a voice server; a move closes the old voice
        websocket with 4014, as Discord does. The two updates go back to back, as Discord
        sends them (discord.py 2.7.1 could lose the second one's wake-up: the bot fixes that
        in voice/internals.py, so no gap here hides it)."""
        bot = self.fake.bot
        previous = guild.voice_states.get(bot.id)
        guild.voice_states[bot.id] = channel.id
        token = secrets.token_hex(12)
        self.tokens[token] = (guild.id, session_id)
        state = self._state_payload(guild, channel.id, session_id, request)
        server = {"token": token, "guild_id": str(guild.id), "endpoint": self.endpoint}
        if previous == channel.id:
            # The bot asks again for the channel it is in: it is resuming after its voice
            # websocket closed with 4015. A voice server (re)assignment comes first, which is
            # the order discord.py 2.7.1's resume needs to get both updates while connected.
            await self.fake.broadcast("VOICE_SERVER_UPDATE", server)
            await self.fake.broadcast("VOICE_STATE_UPDATE", state)
        else:
            await self.fake.broadcast("VOICE_STATE_UPDATE", state)
            await self.fake.broadcast("VOICE_SERVER_UPDATE", server)
        old = self.connection(guild)
        if previous is not None and previous != channel.id and old is not None and not old.ws.closed:
            await old.ws.close(code=CLOSE_KICKED, message=b"Moved.")
        self._changed()
        await self.fake.notify()

    def _revoke_tokens(self, guild: Guild) -> None:
        """Out of voice: the voice servers handed out for this guild no longer accept the bot."""
        for token, (guild_id, _session) in list(self.tokens.items()):
            if guild_id == guild.id:
                del self.tokens[token]

    def _state_payload(self, guild: Guild, channel_id: int | None, session_id: str, request: dict) -> dict:
        payload = guild.voice_state_payload(self.fake.bot, channel_id, session_id)
        payload["self_deaf"] = bool(request.get("self_deaf", False))
        payload["self_mute"] = bool(request.get("self_mute", False))
        return payload

    # -- shared with the parts -------------------------------------------------------------------
    def send_udp(self, data: bytes, address: tuple[str, int]) -> None:
        """A datagram from the voice server's UDP port (members' voice, speaker.py)."""
        self._udp.send(data, address)

    def _utterance_done(self, utterance: Utterance) -> None:
        self._utterances.setdefault(utterance.guild_id, []).append(utterance)
        self._changed()

    def _changed(self) -> None:
        for condition, future in list(self._waiters):
            if not future.done():
                try:
                    if condition():
                        future.set_result(None)
                except Exception as exc:  # a broken predicate fails its waiter, not the server
                    future.set_exception(exc)


@contextlib.asynccontextmanager
async def fake_discord_with_voice(*, dave: bool = True, **kwargs) -> AsyncIterator[FakeDiscord]:
    """A started ``FakeDiscord`` with voice enabled (``fake.voice_server``); DAVE end-to-end
    encryption on unless ``dave=False``."""
    server = FakeDiscord(**kwargs)
    await server.start()
    voice = FakeVoiceServer(server, dave=dave)
    try:
        await voice.start()
        yield server
    finally:
        await voice.stop()
        await server.stop()
