"""The voice gateway (v8) of the local voice server: a TLS websocket per voice connection.

The bot comes here with the token its VOICE_SERVER_UPDATE named (voice.py hands those out):
HELLO, IDENTIFY and READY (an SSRC, the UDP port, the offered encryption modes), SELECT_PROTOCOL
and SESSION_DESCRIPTION (the transport key, the DAVE version), heartbeats, SPEAKING, and RESUME
after the server closed with 4015.  With DAVE on, each connection gets a `DaveGroup` (dave.py)
whose JSON and binary messages pass through here, and whose listener members follow the people
in the bot's voice channel (`watch_members`).
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .dave import DaveGroup
from .state import snowflake
from .voice_connection import VoiceConnection

if TYPE_CHECKING:
    from .voice import FakeVoiceServer

log = logging.getLogger("fakediscord.voice")

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


class VoiceGateway:
    """The voice websocket server of one FakeVoiceServer, which holds the connections it makes."""

    def __init__(self, server: "FakeVoiceServer"):
        self.server = server
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    async def start(self) -> int:
        """Serve on 127.0.0.1 with a throwaway certificate; returns the port."""
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-voice-")
        context = await _self_signed_context(Path(self._tmp.name))
        app = web.Application()
        app.router.add_get("/", self._voice_gateway)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()

    async def _voice_gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = VoiceConnection(self.server, ws)
        self.server.connections.append(conn)
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
            if self.server.by_ssrc.get(conn.ssrc) is conn:
                del self.server.by_ssrc[conn.ssrc]
            self.server._changed()
        return ws

    async def _voice_op(self, conn: VoiceConnection, op: int, data: dict) -> None:
        if op == IDENTIFY:
            conn.identify = data
            known = self.server.tokens.get(str(data.get("token")))
            if known is None or known[0] != int(data.get("server_id", 0)) or known[1] != data.get("session_id"):
                await conn.ws.close(code=CLOSE_AUTH_FAILED, message=b"Authentication failed.")
                return
            conn.guild_id = known[0]
            conn.user_id = int(data["user_id"])
            conn.session_id = known[1]
            conn.channel_id = self.server.fake.guilds[known[0]].voice_states.get(conn.user_id)
            if conn.channel_id is None:  # left (or was kicked) while this socket was opening
                await conn.ws.close(code=CLOSE_SESSION_INVALID, message=b"Session is no longer valid.")
                return
            conn.ssrc = snowflake() & 0x7FFFFFFF
            self.server.by_ssrc[conn.ssrc] = conn
            await conn.send(READY, {"ssrc": conn.ssrc, "ip": "127.0.0.1", "port": self.server.udp_port,
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
        conn.dave_protocol_version = 1 if self.server.dave else 0
        await conn.send(SESSION_DESCRIPTION, {"mode": conn.mode, "secret_key": list(conn.secret_key),
                                              "dave_protocol_version": conn.dave_protocol_version})
        conn.connected = True
        if self.server.dave:
            assert conn.user_id is not None and conn.channel_id is not None
            server = self.server
            conn.dave = DaveGroup(server.external_sender, bot_user_id=conn.user_id, channel_id=conn.channel_id,
                                  listener_id=server.listener_id, humans=lambda: self._humans(conn),
                                  send_json=conn.send, send_binary=conn.send_binary, on_change=server._changed)
            if previous is not None and previous.dave is not None:
                conn.dave.adopt(previous.dave)
            await conn.dave.start()
        self.server._changed()
        await self.server.fake.notify()

    async def _resume(self, conn: VoiceConnection, data: dict) -> None:
        """Op 7 after the server closed the websocket with 4015: same SSRC, UDP address and
        key; then, as discord.py 2.7.1 waits for a key on every new websocket, a
        SESSION_DESCRIPTION again, which restarts its DAVE group."""
        known = self.server.tokens.get(str(data.get("token")))
        previous = None
        if known is not None and known[0] == int(data.get("server_id", 0)) and known[1] == data.get("session_id"):
            previous = next((c for c in reversed(self.server.connections)
                             if c.guild_id == known[0] and c.session_id == known[1] and c is not conn), None)
        if previous is None or not previous.interrupted or previous.resumed_by is not None:
            await conn.ws.close(code=CLOSE_SESSION_INVALID, message=b"Session is no longer valid.")
            return
        previous.resumed_by = conn
        conn.identify = previous.identify
        conn.guild_id, conn.user_id, conn.session_id = previous.guild_id, previous.user_id, previous.session_id
        conn.channel_id = self.server.fake.guilds[known[0]].voice_states.get(conn.user_id or 0)
        conn.ssrc, conn.mode, conn.client_address = previous.ssrc, previous.mode, previous.client_address
        conn.secret_key = previous.secret_key
        conn.resumed_from = previous
        self.server.by_ssrc[conn.ssrc] = conn
        await conn.send(RESUMED, None)
        await self._describe_session(conn, previous)

    # -- DAVE membership -------------------------------------------------------------------------
    def _humans(self, conn: VoiceConnection) -> set[int]:
        """Users (not bots) in the voice channel of ``conn``: each gets a listener in its group."""
        fake = self.server.fake
        guild = fake.guilds.get(conn.guild_id or 0)
        if guild is None or conn.channel_id is None:
            return set()
        return {uid for uid, channel in guild.voice_states.items()
                if channel == conn.channel_id and uid in fake.users and not fake.users[uid].bot}

    def _dave_stale(self) -> bool:
        return any(c.dave.needs_sync() for c in self.server.connections if c.dave is not None and not c.closed)

    async def watch_members(self) -> None:
        """Add or remove listeners when people join or leave the bot's voice channel (woken
        by the fake's state changes, e.g. ``FakeDiscord.set_voice_state``)."""
        while True:
            await self.server.fake.wait_until(self._dave_stale, timeout=None)
            for conn in list(self.server.connections):
                if conn.dave is not None and not conn.closed and conn.dave.needs_sync():
                    try:
                        await conn.dave.sync_members()
                    except Exception:  # keep watching; the group records and shows its errors
                        log.exception("DAVE: could not change the members of the bot's group")


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

