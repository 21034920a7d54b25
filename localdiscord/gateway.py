"""The gateway websocket of the local Discord: sessions, IDENTIFY and READY, heartbeats, events.

A bot connects, gets HELLO, IDENTIFYs with its token and intents (a privileged intent the
application lacks is closed with 4014, as Discord does) and receives READY and a GUILD_CREATE per
guild; then every event the fake sends it goes out here (`broadcast`, and `deliver` for messages,
which honours the session's message intents and the Message Content intent).  Gateway op 4
(voice state updates) goes to the voice server's hook, `FakeDiscord.voice_handler` (voice.py).
"""
from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import WSMsgType, web

from .state import INTENT_MESSAGE_CONTENT, Message, User, snowflake

if TYPE_CHECKING:
    from .server import FakeDiscord

INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
HEARTBEAT_INTERVAL_MS = 41_250  # what Discord's HELLO says
# Discord's HEARTBEAT_ACK comes back after a network round trip.  Answering at once (same
# machine, often the same process) loses a race in discord.py's keep-alive thread: it sets
# its send time only after the heartbeat was written, so an instant ACK is measured from the
# previous heartbeat and logged as "Can't keep up, websocket is 41.3s behind" (fixed upstream
# in Rapptz/discord.py#10448).  A round trip's delay keeps discord.py's clock right.
HEARTBEAT_ACK_DELAY = 0.1  # seconds

VoiceHandler = Callable[["GatewaySession", dict], Awaitable[None]]


class GatewaySession:
    """One connected gateway client (the bot)."""

    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws
        self.seq = 0
        self.intents = 0
        self.identified = False
        self.user: User | None = None
        self.pending: set[asyncio.Task] = set()  # HEARTBEAT_ACKs on their way

    def ack_heartbeat(self) -> None:
        """HEARTBEAT_ACK after a round trip's delay (see HEARTBEAT_ACK_DELAY), not inline."""
        async def ack() -> None:
            await asyncio.sleep(HEARTBEAT_ACK_DELAY)
            try:
                await self.send_op(11, None)
            except ConnectionError:
                pass  # closed meanwhile

        task = asyncio.create_task(ack())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def dispatch(self, event: str, data: dict) -> None:
        self.seq += 1
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}))

    async def send_op(self, op: int, data: object) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({"op": op, "d": data}))


class Gateway:
    """The gateway of one FakeDiscord: its websocket route and what it sends on the sessions."""

    def __init__(self, fake: "FakeDiscord"):
        self.fake = fake

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = GatewaySession(ws)
        self.fake.sessions.append(session)
        await session.send_op(10, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op, data = payload.get("op"), payload.get("d")
            if op == 1:
                session.ack_heartbeat()
            elif op == 2:
                await self._identify(session, data)
            elif op == 4 and self.fake.voice_handler is not None:
                await self.fake.voice_handler(session, data)
        for task in list(session.pending):
            task.cancel()
        self.fake.sessions.remove(session)
        await self.fake.notify()
        return ws

    async def _identify(self, session: GatewaySession, data: dict) -> None:
        if data.get("token") != self.fake.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        session.intents = int(data.get("intents", 0))
        if session.intents & INTENT_MESSAGE_CONTENT and not self.fake.message_content_intent:
            self.fake.refused_identifies.append(session.intents)
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            await self.fake.notify()
            return
        session.identified = True
        session.user = self.fake.bot
        await session.dispatch("READY", {
            "v": 10, "user": self.fake.bot.payload(), "session_id": f"session-{snowflake()}",
            "resume_gateway_url": self.fake.url.replace("http", "ws"),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self.fake.guilds.values()],
            "application": {"id": str(self.fake.application_id), "flags": 0},
            "private_channels": [], "relationships": [], "presences": [], "geo_ordered_rtc_regions": [],
        })
        for guild in self.fake.guilds.values():
            await session.dispatch("GUILD_CREATE", guild.payload(self.fake.users))
        await self.fake.notify()

    async def broadcast(self, event: str, data: dict) -> None:
        for session in list(self.fake.sessions):
            if session.identified:
                await session.dispatch(event, data)

    async def deliver(self, event: str, msg: Message) -> None:
        needed = INTENT_GUILD_MESSAGES if msg.channel.guild_id else INTENT_DIRECT_MESSAGES
        for session in list(self.fake.sessions):
            if session.identified and session.intents & needed:
                await session.dispatch(event, self.fake.message_payload(msg, for_intents=session.intents))
