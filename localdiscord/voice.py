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
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable

import discord.opus
import nacl.bindings
import nacl.exceptions
from aiohttp import WSMsgType, web

from . import mls
from .dave import DaveGroup
from .server import FakeDiscord, GatewaySession
from .state import Channel, Guild, snowflake

log = logging.getLogger("fakediscord.voice")

OPUS_SILENCE = b"\xf8\xff\xfe"  # what discord.py sends (5 times) after speech
FRAME_SECONDS = 0.02
SAMPLE_RATE = 48_000
CHANNELS = 2
MODE = "aead_xchacha20_poly1305_rtpsize"
# Real Discord offers AES-GCM first; discord.py 2.7.1 must skip it and pick xchacha20.
OFFERED_MODES = ["aead_aes256_gcm_rtpsize", MODE]
HEARTBEAT_MS = 41_250

# Voice gateway opcodes (v8)
IDENTIFY, SELECT_PROTOCOL, READY, HEARTBEAT, SESSION_DESCRIPTION, SPEAKING = 0, 1, 2, 3, 4, 5
HEARTBEAT_ACK, RESUME, HELLO, RESUMED = 6, 7, 8, 9

# Close codes
CLOSE_KICKED = 4014  # disconnected: kicked, moved, channel deleted
CLOSE_CALL_TERMINATED = 4022
CLOSE_AUTH_FAILED = 4004
CLOSE_SESSION_INVALID = 4006
CLOSE_SERVER_CRASHED = 4015  # the client should resume


@dataclass
class Utterance:
    """One stretch of speech from the bot: voice frames until its trailing silence frames."""

    guild_id: int
    channel_id: int | None
    started: float  # time.monotonic() when the first packet arrived (this process)
    pcm: bytearray = field(default_factory=bytearray)  # 48 kHz stereo s16le
    arrivals: list[float] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    ended: float | None = None
    complete: bool = False  # ended by silence frames (not cut off by a disconnect)

    @property
    def frames(self) -> int:
        """Voice frames received (each 20 ms of audio)."""
        return len(self.arrivals)

    @property
    def seconds(self) -> float:
        return self.frames * FRAME_SECONDS

    @property
    def max_gap(self) -> float:
        """Largest time between two consecutive packets, in seconds."""
        return max((b - a for a, b in zip(self.arrivals, self.arrivals[1:])), default=0.0)

    @property
    def lost(self) -> int:
        """Packets missing from the RTP sequence (wrapping at 2**16)."""
        return sum(((b - a) % 65536) - 1 for a, b in zip(self.sequences, self.sequences[1:]))

    def samples(self):
        """Mono float32 samples in [-1, 1] at 48 kHz."""
        import numpy as np

        stereo = np.frombuffer(bytes(self.pcm), dtype="<i2").astype(np.float32).reshape(-1, CHANNELS)
        return stereo.mean(axis=1) / 32768.0

    def rms(self) -> float:
        """Root mean square level (0 = digital silence, 1 = full scale)."""
        import numpy as np

        samples = self.samples()
        return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0

    def samples_16k(self):
        """Mono float32 at 16 kHz (what Whisper takes): 3-tap average, then every third sample."""
        import numpy as np

        samples = self.samples()
        usable = samples[: samples.size - samples.size % 3]
        return usable.reshape(-1, 3).mean(axis=1).astype(np.float32)

    def transcribe_blocking(self, model: str = "tiny.en") -> str:
        """What local speech-to-text (faster-whisper, packaged tiny.en) hears; blocks ~0.3 s."""
        from audio.stt import load_whisper_model

        whisper = load_whisper_model(model)
        segments, _info = whisper.transcribe(self.samples_16k(), language="en", beam_size=5,
                                             condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()

    async def transcribe(self, model: str = "tiny.en") -> str:
        """``transcribe_blocking`` in a worker thread, so the loop keeps receiving packets."""
        return await asyncio.to_thread(self.transcribe_blocking, model)


class VoiceConnection:
    """One voice websocket session of the bot in one guild (a new one per connect or move)."""

    def __init__(self, server: "FakeVoiceServer", ws: web.WebSocketResponse):
        self.server = server
        self.ws = ws
        self.guild_id: int | None = None
        self.channel_id: int | None = None
        self.user_id: int | None = None
        self.session_id: str | None = None
        self.ssrc = 0
        self.secret_key: bytes | None = None
        self.mode: str | None = None
        self.client_address: tuple[str, int] | None = None
        self.connected = False  # SESSION_DESCRIPTION sent: the bot may send audio
        self.closed = False
        self.close_code: int | None = None
        self.speaking: list[int] = []  # SPEAKING flags the bot sent, in order
        self.heartbeats = 0
        self.packets = 0
        self.silence_frames = 0
        self.decrypt_errors = 0
        self.identify: dict = {}
        self.dave: DaveGroup | None = None  # DAVE state, when negotiated
        self.dave_protocol_version = 0
        self.resumed_from: VoiceConnection | None = None
        self.resumed_by: VoiceConnection | None = None
        self.interrupted = False  # closed by the server with 4015: may be resumed
        self._seq = 0
        self._decoder: discord.opus.Decoder | None = None
        self._current: Utterance | None = None

    async def send(self, op: int, data: object) -> None:
        if not self.ws.closed:
            self._seq += 1
            await self.ws.send_str(json.dumps({"op": op, "d": data, "seq": self._seq}))

    async def send_binary(self, op: int, payload: bytes) -> None:
        """A binary (DAVE/MLS) message: 2-byte sequence number, opcode, payload."""
        if not self.ws.closed:
            self._seq += 1
            await self.ws.send_bytes(struct.pack(">HB", self._seq & 0xFFFF, op) + payload)

    @property
    def current_frames(self) -> int:
        """Voice frames of the utterance being received now (0 between utterances)."""
        return self._current.frames if self._current is not None else 0

    # -- RTP ------------------------------------------------------------------------------
    def receive_rtp(self, packet: bytes, now: float) -> None:
        if self.secret_key is None:
            self.decrypt_errors += 1
            return
        header_len = 12 + 4 * (packet[0] & 0x0F)
        extension = bool(packet[0] & 0x10)
        if extension:  # rtpsize modes: the 4-byte extension header is associated data
            header_len += 4
        header, ciphertext, nonce = packet[:header_len], packet[header_len:-4], packet[-4:] + bytes(20)
        try:
            payload = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, header, nonce,
                                                                             self.secret_key)
        except nacl.exceptions.CryptoError:
            self.decrypt_errors += 1
            return
        if extension:
            words = struct.unpack_from(">H", packet, header_len - 2)[0]
            payload = payload[4 * words:]
        self.packets += 1
        sequence = struct.unpack_from(">H", packet, 2)[0]
        if payload == OPUS_SILENCE:
            self.silence_frames += 1
            self.end_utterance(complete=True, now=now)
            return
        if self.dave is not None:
            opus = self.dave.receive_frame(payload, now)
            if opus is None:  # counted by the DAVE group; the listener heard nothing
                return
            payload = opus
        if self._decoder is None:
            self._decoder = discord.opus.Decoder()
        pcm = self._decoder.decode(payload, fec=False)
        for listener in self.server.pcm_listeners:  # e.g. the playground page, which plays it
            listener(self.guild_id or 0, pcm)
        if not self.server.record:
            return
        if self._current is None:
            self._current = Utterance(self.guild_id or 0, self.channel_id, started=now)
        self._current.pcm += pcm
        self._current.arrivals.append(now)
        self._current.sequences.append(sequence)
        self.server._changed()  # tests may wait for a point inside an utterance

    def end_utterance(self, *, complete: bool, now: float | None = None) -> None:
        utterance, self._current = self._current, None
        if utterance is None:
            return
        utterance.ended = now if now is not None else time.monotonic()
        utterance.complete = complete
        self.server._utterance_done(utterance)


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
        self._tokens: dict[str, tuple[int, str]] = {}  # token -> (guild id, session id)
        self._by_ssrc: dict[int, VoiceConnection] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self._runner: web.AppRunner | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._watcher: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if not discord.opus.is_loaded():
            discord.opus._load_default()
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-voice-")
        context = await _self_signed_context(Path(self._tmp.name))
        app = web.Application()
        app.router.add_get("/", self._voice_gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=("127.0.0.1", 0))
        self.udp_port = self._transport.get_extra_info("sockname")[1]
        self.fake.voice_handler = self._on_voice_state_request
        self.fake.voice_server = self  # type: ignore[attr-defined]
        self._watcher = asyncio.create_task(self._watch_members(), name="fake-voice-dave-members")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close()
        if self._transport is not None:
            self._transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
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
        in commands/voice_internals.py, so no gap here hides it)."""
        bot = self.fake.bot
        previous = guild.voice_states.get(bot.id)
        guild.voice_states[bot.id] = channel.id
        token = secrets.token_hex(12)
        self._tokens[token] = (guild.id, session_id)
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
        for token, (guild_id, _session) in list(self._tokens.items()):
            if guild_id == guild.id:
                del self._tokens[token]

    def _state_payload(self, guild: Guild, channel_id: int | None, session_id: str, request: dict) -> dict:
        payload = guild.voice_state_payload(self.fake.bot, channel_id, session_id)
        payload["self_deaf"] = bool(request.get("self_deaf", False))
        payload["self_mute"] = bool(request.get("self_mute", False))
        return payload

    # -- voice websocket -----------------------------------------------------------------------
    async def _voice_gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = VoiceConnection(self, ws)
        self.connections.append(conn)
        await conn.send(HELLO, {"heartbeat_interval": HEARTBEAT_MS})
        try:
            async for frame in ws:
                if frame.type == WSMsgType.BINARY:  # DAVE/MLS: opcode, payload
                    if conn.dave is not None:
                        await conn.dave.on_binary(frame.data)
                    continue
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op, data = message.get("op"), message.get("d") or {}
                if conn.dave is not None and await conn.dave.on_json(op, data):
                    continue
                await self._voice_op(conn, op, data)
        finally:
            conn.closed = True
            conn.close_code = ws.close_code
            conn.end_utterance(complete=False)
            if self._by_ssrc.get(conn.ssrc) is conn:
                del self._by_ssrc[conn.ssrc]
            self._changed()
        return ws

    async def _voice_op(self, conn: VoiceConnection, op: int, data: dict) -> None:
        if op == IDENTIFY:
            conn.identify = data
            known = self._tokens.get(str(data.get("token")))
            if known is None or known[0] != int(data.get("server_id", 0)) or known[1] != data.get("session_id"):
                await conn.ws.close(code=CLOSE_AUTH_FAILED, message=b"Authentication failed.")
                return
            conn.guild_id = known[0]
            conn.user_id = int(data["user_id"])
            conn.session_id = known[1]
            conn.channel_id = self.fake.guilds[known[0]].voice_states.get(conn.user_id)
            if conn.channel_id is None:  # left (or was kicked) while this socket was opening
                await conn.ws.close(code=CLOSE_SESSION_INVALID, message=b"Session is no longer valid.")
                return
            conn.ssrc = snowflake() & 0x7FFFFFFF
            self._by_ssrc[conn.ssrc] = conn
            await conn.send(READY, {"ssrc": conn.ssrc, "ip": "127.0.0.1", "port": self.udp_port,
                                    "modes": OFFERED_MODES, "heartbeat_interval": HEARTBEAT_MS})
        elif op == SELECT_PROTOCOL:
            mode = (data.get("data") or {}).get("mode")
            if mode not in OFFERED_MODES or mode != MODE:
                await conn.ws.close(code=4016, message=b"Unknown encryption mode.")
                return
            conn.mode = mode
            info = data.get("data") or {}
            conn.client_address = (info.get("address"), info.get("port"))
            conn.secret_key = secrets.token_bytes(32)
            await self._describe_session(conn)
        elif op == HEARTBEAT:
            conn.heartbeats += 1
            await conn.send(HEARTBEAT_ACK, {"t": data.get("t")})
        elif op == SPEAKING:
            conn.speaking.append(int(data.get("speaking", 0)))
        elif op == RESUME:
            await self._resume(conn, data)

    async def _describe_session(self, conn: VoiceConnection, previous: VoiceConnection | None = None) -> None:
        """SESSION_DESCRIPTION (the transport key and the DAVE version), then DAVE's handshake."""
        assert conn.secret_key is not None
        conn.dave_protocol_version = 1 if self.dave else 0
        await conn.send(SESSION_DESCRIPTION, {"mode": conn.mode, "secret_key": list(conn.secret_key),
                                              "dave_protocol_version": conn.dave_protocol_version})
        conn.connected = True
        if self.dave:
            assert conn.user_id is not None and conn.channel_id is not None
            conn.dave = DaveGroup(self.external_sender, bot_user_id=conn.user_id, channel_id=conn.channel_id,
                                  listener_id=self.listener_id, humans=lambda: self._humans(conn),
                                  send_json=conn.send, send_binary=conn.send_binary, on_change=self._changed)
            if previous is not None and previous.dave is not None:
                conn.dave.adopt(previous.dave)
            await conn.dave.start()
        self._changed()
        await self.fake.notify()

    async def _resume(self, conn: VoiceConnection, data: dict) -> None:
        """Op 7 after the server closed the websocket with 4015: same SSRC, UDP address and
        key; then, as discord.py 2.7.1 waits for a key on every new websocket, a
        SESSION_DESCRIPTION again, which restarts its DAVE group."""
        known = self._tokens.get(str(data.get("token")))
        previous = None
        if known is not None and known[0] == int(data.get("server_id", 0)) and known[1] == data.get("session_id"):
            previous = next((c for c in reversed(self.connections)
                             if c.guild_id == known[0] and c.session_id == known[1] and c is not conn), None)
        if previous is None or not previous.interrupted or previous.resumed_by is not None:
            await conn.ws.close(code=CLOSE_SESSION_INVALID, message=b"Session is no longer valid.")
            return
        previous.resumed_by = conn
        conn.identify = previous.identify
        conn.guild_id, conn.user_id, conn.session_id = previous.guild_id, previous.user_id, previous.session_id
        conn.channel_id = self.fake.guilds[known[0]].voice_states.get(conn.user_id or 0)
        conn.ssrc, conn.mode, conn.client_address = previous.ssrc, previous.mode, previous.client_address
        conn.secret_key = previous.secret_key
        conn.resumed_from = previous
        self._by_ssrc[conn.ssrc] = conn
        await conn.send(RESUMED, None)
        await self._describe_session(conn, previous)

    # -- DAVE membership -------------------------------------------------------------------------
    def _humans(self, conn: VoiceConnection) -> set[int]:
        """Users (not bots) in the voice channel of ``conn``: each gets a listener in its group."""
        guild = self.fake.guilds.get(conn.guild_id or 0)
        if guild is None or conn.channel_id is None:
            return set()
        return {uid for uid, channel in guild.voice_states.items()
                if channel == conn.channel_id and uid in self.fake.users and not self.fake.users[uid].bot}

    def _dave_stale(self) -> bool:
        return any(c.dave.needs_sync() for c in self.connections if c.dave is not None and not c.closed)

    async def _watch_members(self) -> None:
        """Add or remove listeners when people join or leave the bot's voice channel (woken
        by the fake's state changes, e.g. ``FakeDiscord.set_voice_state``)."""
        while True:
            await self.fake.wait_until(self._dave_stale, timeout=None)
            for conn in list(self.connections):
                if conn.dave is not None and not conn.closed and conn.dave.needs_sync():
                    try:
                        await conn.dave.sync_members()
                    except Exception:  # keep watching; the group records and shows its errors
                        log.exception("DAVE: could not change the members of the bot's group")

    # -- UDP -----------------------------------------------------------------------------------
    def _datagram(self, data: bytes, address: tuple[str, int]) -> None:
        now = time.monotonic()
        if len(data) == 74 and data[:4] == b"\x00\x01\x00\x46":  # IP discovery request
            ssrc = struct.unpack_from(">I", data, 4)[0]
            self.discoveries.append((ssrc, address))
            answer = bytearray(74)
            struct.pack_into(">HHI", answer, 0, 2, 70, ssrc)
            ip = address[0].encode("ascii")
            answer[8:8 + len(ip)] = ip
            struct.pack_into(">H", answer, 72, address[1])
            assert self._transport is not None
            self._transport.sendto(bytes(answer), address)
            return
        if len(data) < 16 or data[0] >> 6 != 2:
            self.unknown_packets += 1
            return
        conn = self._by_ssrc.get(struct.unpack_from(">I", data, 8)[0])
        if conn is None:
            self.unknown_packets += 1
            return
        for tap in self.rtp_taps:
            tap(conn, data)
        conn.receive_rtp(data, now)

    def send_udp(self, data: bytes, address: tuple[str, int]) -> None:
        """A datagram from the voice server's UDP port (members' voice, speaker.py)."""
        assert self._transport is not None, "the voice server is not started"
        self._transport.sendto(data, address)

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


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: FakeVoiceServer):
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._datagram(data, addr)


async def _self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a throwaway self-signed certificate for 127.0.0.1 (openssl)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    proc = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"openssl could not make a certificate: {err.decode(errors='replace')}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


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
