"""What the open pages are told, live: one `PageClient` per page and the `Feed` that fills them.

The feed watches the local server (the bot's messages, edits, deletions and typing; voice and
slash-command changes; the bot's voice as PCM) and pushes each change to the pages that may see
it as JSON over their WebSocket (`/ws`), the bot's voice as binary frames.  Who may see what is
decided here, on the server (point 5 of the threat model in web.py): ephemeral messages, DMs,
the bot typing in a DM and the bot's notices go only to the pages acting as their user.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from localdiscord import appcommands as ac
from localdiscord.interactions import Interaction
from localdiscord.server import BotEvent, FakeDiscord
from localdiscord.state import DM_CHANNEL, FLAG_LOADING, FLAG_VOICE_MESSAGE, TEXT_CHANNEL, VOICE_CHANNEL, Message
from localdiscord.voice import FakeVoiceServer
from voice.tasks import BackgroundTasks

from . import slash
from .history import History
from .inputs import Refused, person
from .world import people

log = logging.getLogger("playground")

HISTORY_PER_CHANNEL = 200  # messages a page gets per channel when it opens
AUDIO_QUEUE_FRAMES = 250  # 5 s of voice buffered per page; newer frames are dropped when a page lags
PAGE_QUEUE = 2000  # updates buffered per page; a page that stops reading loses them
WS_MAX_MESSAGE = 4096  # the page only says who it acts as


class PageClient:
    """One open page: its WebSocket, who it acts as, and the queue feeding it (JSON texts and
    PCM bytes; at most AUDIO_QUEUE_FRAMES of them PCM)."""

    def __init__(self, ws: web.WebSocketResponse, user_id: int):
        self.ws = ws
        self.user_id = user_id  # who the page is acting as: its ephemeral messages, its voice
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(maxsize=PAGE_QUEUE)
        self.audio_queued = 0

    def put(self, item: str | bytes) -> None:
        if isinstance(item, bytes):
            if self.audio_queued >= AUDIO_QUEUE_FRAMES:
                return  # a page that lags loses voice, not the server's memory
            self.audio_queued += 1
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # a page that stopped reading loses updates, not the server
            if isinstance(item, bytes):
                self.audio_queued -= 1

    async def pump(self) -> None:
        while not self.ws.closed:
            item = await self.queue.get()
            try:
                if isinstance(item, bytes):
                    self.audio_queued -= 1
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return


class Feed:
    """Every open page of one local server (`fake`, with `voice`), and what they are told.

    Listens to the local server from creation until `close`; `history` (optional) keeps the
    messages on disk.  `tasks` runs the feed's and the actions' background work."""

    def __init__(self, fake: FakeDiscord, voice: FakeVoiceServer, history: History | None = None):
        self.fake = fake
        self.voice = voice
        self.history = history
        self.clients: set[PageClient] = set()
        self.bot_online = False
        self.tasks = BackgroundTasks(log)
        self._watcher: asyncio.Task | None = None
        self._saves: set[asyncio.Task] = set()  # history writes under way
        voice.pcm_listeners.append(self._on_pcm)
        fake.event_listeners.append(self._on_event)
        fake.typing_listeners.append(self._on_typing)

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name="playground-watch")

    async def close(self) -> None:
        """Stop listening, let the last history writes reach the disk, and close every page."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for hooks, hook in ((self.voice.pcm_listeners, self._on_pcm), (self.fake.event_listeners, self._on_event),
                            (self.fake.typing_listeners, self._on_typing)):
            with contextlib.suppress(ValueError):
                hooks.remove(hook)  # type: ignore[arg-type]
        if self._saves:  # the last messages reach the disk before the process ends
            await asyncio.wait(set(self._saves), timeout=10)
        self.tasks.cancel_all()
        for client in list(self.clients):
            await client.ws.close()

    def _save(self, msg: Message) -> None:
        """Write `msg` (made, edited or deleted) to the history on disk, in the background."""
        if self.history is not None:
            task = self.tasks.spawn(self.history.save(msg), name="playground-save")
            self._saves.add(task)
            task.add_done_callback(self._saves.discard)

    # -- what a page is told -----------------------------------------------------------------
    def world(self) -> dict:
        fake = self.fake
        guild = fake.guild
        return {
            "guild": {"id": str(guild.id), "name": guild.name},
            "bot": {"id": str(fake.bot.id), "name": fake.bot.username},
            # "dm": the person's DM channel with the bot (its messages come only to their pages).
            "people": [{"id": str(u.id), "name": u.username, "dm": str(fake.dm_channel(u).id),
                        "role": "owner" if u.id == guild.owner_id else "member"} for u in people(fake)],
            "users": {str(u.id): u.username for u in fake.users.values()},
            "channels": [{"id": str(c.id), "name": c.name, "kind": "voice" if c.type == VOICE_CHANNEL else "text"}
                         for c in guild.channels.values() if c.type in (TEXT_CHANNEL, VOICE_CHANNEL)],
        }

    def registered(self, in_dm: bool) -> list[dict]:
        """The application commands the Discord client offers: in the server, its own
        then the global ones (a global command of the same name is hidden by the server's copy);
        in a DM, the global ones offered in DMs (`contexts` with 1, or `dm_permission` not false)."""
        registry = self.fake.app_commands
        if in_dm:
            return [c for c in registry.list(None)
                    if (1 in c["contexts"] if c.get("contexts") is not None else c.get("dm_permission", True))]
        own = registry.list(self.fake.guild.id)
        names = {(c["name"], c.get("type", ac.CHAT_INPUT)) for c in own}
        return own + [c for c in registry.list(None) if (c["name"], c.get("type", ac.CHAT_INPUT)) not in names
                      and (c.get("contexts") is None or 0 in c["contexts"])]

    def commands(self) -> dict:
        """The commands the page suggests and its Apps menu offers, in the server and in a DM."""
        out: dict[str, Any] = {"type": "commands"}
        for prefix, in_dm in (("", False), ("dm_", True)):
            registered = self.registered(in_dm)
            out[prefix + "commands"] = slash.describe(registered)
            out[prefix + "menus"] = sorted({c["name"] for c in registered if c.get("type") == ac.MESSAGE_COMMAND})
        return out

    def voice_state(self) -> dict:
        guild = self.fake.guild
        return {"type": "voice", "online": self.bot_online,
                "members": [str(uid) for uid, cid in guild.voice_states.items() if cid == self.fake.voice.id]}

    def for_user(self, msg: Message) -> int | None:
        """Who may see `msg`: None for everyone in the server; an ephemeral message, the user of its
        interaction (0, no one, when that interaction is no longer known); a DM, its recipient."""
        if msg.ephemeral:
            record = self.fake.interaction(msg.interaction_id or 0)
            return record.user.id if record is not None else 0
        if msg.channel.type == DM_CHANNEL:
            return msg.channel.recipient.id if msg.channel.recipient is not None else 0
        return None

    def view(self, msg: Message) -> dict:
        """A message as the page draws it."""
        record = self.fake.interaction(msg.interaction_id or 0)
        ref = self.fake.messages.get(msg.reference_id or 0)
        if ref is not None and ref.ephemeral:
            ref = None  # nothing replies to an ephemeral message; its text stays with its user
        for_user = self.for_user(msg)
        return {
            "id": str(msg.id), "channel_id": str(msg.channel.id),
            "author": {"id": str(msg.author.id), "name": msg.author.username, "bot": msg.author.bot},
            "content": msg.content, "timestamp": msg.timestamp, "edited": msg.edited, "deleted": msg.deleted,
            "embeds": [{"title": e.get("title") or "", "description": e.get("description") or "",
                        "fields": [{"name": f.get("name", ""), "value": f.get("value", "")} for f in e.get("fields", [])],
                        "footer": (e.get("footer") or {}).get("text", ""),
                        "image": (e.get("image") or {}).get("url")} for e in msg.embeds],
            "attachments": [{"id": str(a.id), "filename": a.filename, "size": len(a.data),
                             "content_type": a.content_type or "", "url": f"/files/{a.id}/{quote(a.filename)}",
                             "duration": a.duration_secs} for a in msg.attachments],
            "voice_message": bool(msg.flags & FLAG_VOICE_MESSAGE),
            "loading": bool(msg.flags & FLAG_LOADING),
            "ephemeral": msg.ephemeral,
            "for_user": str(for_user) if for_user is not None else None,
            "interaction": _used(record),
            "reference": ({"id": str(ref.id), "author": ref.author.username, "deleted": ref.deleted,
                           "content": ref.text[:200] or ("(voice message)" if ref.flags & FLAG_VOICE_MESSAGE
                                                         else "(attachment)" if ref.attachments else "")}
                          if ref is not None else None),
        }

    def history_for_page(self, user_id: int) -> list[dict]:
        """The newest messages of each channel that `user_id` may see (others' ephemeral ones left out)."""
        by_channel: dict[int, list[Message]] = {}
        for msg in self.fake.messages.values():
            if not msg.deleted and self.for_user(msg) in (None, user_id):
                by_channel.setdefault(msg.channel.id, []).append(msg)
        out = []
        for items in by_channel.values():
            out += [self.view(m) for m in sorted(items, key=lambda m: m.id)[-HISTORY_PER_CHANNEL:]]
        return out

    def broadcast(self, data: dict, *, to_user: int | None = None) -> None:
        """Send `data` to every page, or only to the pages acting as `to_user`."""
        text = json.dumps(data)
        for client in self.clients:
            if to_user is None or client.user_id == to_user:
                client.put(text)

    def announce(self, msg: Message) -> None:
        self.broadcast({"type": "message", "message": self.view(msg)}, to_user=self.for_user(msg))
        self._save(msg)

    def set_bot_online(self, online: bool) -> None:
        self.bot_online = online
        self.broadcast(self.voice_state())
        self.broadcast(self.commands())

    # -- the stream of one page (GET /ws) ------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        given = request.query.get("user", "")
        user = person(self.fake, given) if given else self.fake.owner
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=WS_MAX_MESSAGE)
        await ws.prepare(request)
        client = PageClient(ws, user.id)
        self.clients.add(client)
        client.put(json.dumps({"type": "hello", "world": self.world(), "messages": self.history_for_page(user.id)}))
        client.put(json.dumps(self.commands()))
        client.put(json.dumps(self.voice_state()))
        pump = asyncio.create_task(client.pump())
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(frame.data)
                    if not isinstance(data, dict) or data.get("type") != "as":
                        continue
                    acting = person(self.fake, data.get("user"))
                except (ValueError, RecursionError, Refused):
                    continue  # the page sends nothing else; anything malformed is ignored
                # The page switched person: from now on it gets that person's messages, and
                # their history at once (their ephemeral messages, not the previous person's).
                client.user_id = acting.id
                client.put(json.dumps({"type": "as", "user": str(acting.id),
                                       "messages": self.history_for_page(acting.id)}))
                client.put(json.dumps(self.voice_state()))
        finally:
            self.clients.discard(client)
            pump.cancel()
        return ws

    # -- watching the local server ---------------------------------------------------------------
    def _on_event(self, event: BotEvent) -> None:
        """A message the bot made, edited or deleted (called by the local server at once)."""
        if event.kind == "delete":
            self.broadcast({"type": "delete", "id": str(event.message.id), "channel_id": str(event.message.channel.id)},
                           to_user=self.for_user(event.message))
            self._save(event.message)
        else:
            self.announce(event.message)

    def _on_typing(self, channel_id: int) -> None:
        channel = self.fake.channels.get(channel_id)
        to_user = None
        if channel is not None and channel.type == DM_CHANNEL:  # typing in a DM: only its person sees it
            to_user = channel.recipient.id if channel.recipient is not None else 0
        self.broadcast({"type": "typing", "channel_id": str(channel_id), "user": self.fake.bot.username},
                       to_user=to_user)

    async def _watch(self) -> None:
        """Push voice and slash-command changes to every page (woken by the local server's own
        change notifications, no polling)."""
        voice = self.voice_state()
        commands = self._commands_key()
        while True:
            await self.fake.wait_until(lambda: self.voice_state() != voice or self._commands_key() != commands,
                                       timeout=None)
            if self.voice_state() != voice:
                voice = self.voice_state()
                self.broadcast(voice)
            if self._commands_key() != commands:
                commands = self._commands_key()
                self.broadcast(self.commands())

    def _commands_key(self) -> tuple:
        registry = self.fake.app_commands
        return tuple((c["id"], c.get("version")) for c in registry.list(self.fake.guild.id) + registry.list(None))

    def _on_pcm(self, guild_id: int, pcm: bytes) -> None:
        """A 20 ms frame of the bot's voice (called by the local voice server as it decodes)."""
        if guild_id != self.fake.guild.id:
            return
        listening = {uid for uid, cid in self.fake.guild.voice_states.items() if cid == self.fake.voice.id}
        for client in self.clients:
            if client.user_id in listening:
                client.put(pcm)


def _used(record: Interaction | None) -> dict | None:
    """"you used /name" above an interaction's message (a modal's: the command that opened it)."""
    if record is None:
        return None
    opener = record.parent or record
    return {"name": opener.name, "user": record.user.username, "menu": opener.command_type != ac.CHAT_INPUT}
