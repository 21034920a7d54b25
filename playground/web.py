"""The playground page's server: static files, actions as HTTP posts, live updates over a WebSocket.

The page is a small Discord client.  What a person does there (send a message with files or
a voice message, use a slash command, a message menu, a modal, join voice) becomes the same
call a test makes on the local server (`FakeDiscord.send`, `slash`, ...), so the bot sees
exactly what Discord would send it.  What the bot does (messages, edits, deletions, typing,
voice) is watched on the local server and pushed to the open pages as JSON; the bot's
voice, decoded by the local voice server, goes as binary frames of 20 ms of 48 kHz stereo
s16le PCM to the pages whose person is in the voice channel.

Threat model (the one place it is written down)
-----------------------------------------------
Whoever drives this page *is the bot's owner*: they can make the bot send files of this host
(`!getfile`, `!archive`), train, select and delete models and datasets, join voice and listen,
and they read every ephemeral answer.  The page is served on 127.0.0.1, but the owner's own
browser can be turned against it: any web page they visit can send requests to 127.0.0.1
(HTML forms, `fetch`, WebSockets, `<img>`), a page on another local port is even the *same
site* (SameSite cookies ignore ports), and a DNS name an attacker points at 127.0.0.1 (DNS
rebinding) makes their page same-origin with us by name.  The world's ids are fixed
(world.py), so an attacker needs no discovery.  So every request passes `_guard` (a middleware):

1. A secret made at each start (`secrets.token_urlsafe`) is in the link the playground prints
   (`http://127.0.0.1:8800/?token=...`, as Jupyter does).  Opening it trades the token for an
   `HttpOnly; SameSite=Strict` cookie named after the port, then redirects to the clean URL.
   `/ws`, `/api/*` and `/files/*` without that cookie get 401 (compared in constant time).
2. `Host` must be 127.0.0.1, localhost or [::1] with our port, or the PLAYGROUND_HOST the owner
   chose with PLAYGROUND_ALLOW_REMOTE (on 0.0.0.0 or :: any name: the token is then the only
   key): a rebound name gets 403.
3. A foreign `Origin` (or a `Sec-Fetch-Site` other than same-origin/none) gets 403: that is
   what stops a page on another local port, which does carry the cookie.
4. Every POST needs the header `X-Playground: 1`, which an HTML form cannot send and a
   cross-origin `fetch` can only send after a CORS preflight that is never granted; the JSON
   endpoints take only `application/json`.
5. Ephemeral messages, DMs (the bot's private answers: `!getfile` typed in a channel sends the
   file by DM), the bot typing in a DM and the bot's notices are sent only to the pages acting
   as their user (the page says who it acts as: `/ws?user=` and `{"type": "as"}`), in history
   too; nothing is hidden in JS.  A page sends DMs only in its own person's DM channel.
6. Input gets real checks (never `assert`, which `python -O` removes): bad input is answered
   400 with the reason, uploads over MAX_ATTACHMENT_BYTES 413.  Uploaded files are served with
   `nosniff`, as downloads (`Content-Disposition: attachment`) unless they are plain images or
   audio, under a sandboxing CSP; the page itself has a strict CSP and cannot be framed.
7. Memory stays bounded for days: the local server keeps no test records
   (`FakeDiscord(record=False)`, `FakeVoiceServer(record=False)`), a page that lags loses
   updates, and the history on disk has a quota (history.py).

Not covered: which of the two people ("you", the owner, or "sam") the page acts as is the
person's choice (one person trying both roles, not two accounts); with PLAYGROUND_ALLOW_REMOTE
the link and its token cross the network in plain HTTP (prefer an SSH tunnel to 127.0.0.1).
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import re
import secrets
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from localdiscord import appcommands as ac
from localdiscord.interactions import Interaction, InteractionRefused
from localdiscord.server import MAX_CONTENT, BotEvent, FakeDiscord
from localdiscord.state import DM_CHANNEL, FLAG_LOADING, FLAG_VOICE_MESSAGE, TEXT_CHANNEL, VOICE_CHANNEL, Message, User
from localdiscord.voice import FakeVoiceServer

from . import slash
from .history import History
from .world import people

log = logging.getLogger("playground")

STATIC = Path(__file__).resolve().parent / "static"
HISTORY_PER_CHANNEL = 200  # messages a page gets per channel when it opens
AUDIO_QUEUE_FRAMES = 250  # 5 s of voice buffered per page; newer frames are dropped when a page lags
PAGE_QUEUE = 2000  # updates buffered per page; a page that stops reading loses them
DEFAULT_MAX_UPLOAD = 25 * 1024 * 1024  # the runner passes MAX_ATTACHMENT_BYTES
FORM_OVERHEAD = 64 * 1024  # a form's fields and multipart headers beside its files
MAX_JSON = 64 * 1024  # bytes of a JSON action
MAX_FILES = 10  # attachments per message, as on Discord
MAX_SLASH_TEXT = 8000  # a typed slash command (options run up to 6000 characters)
MAX_VOICE_SECONDS = 3600.0
WS_MAX_MESSAGE = 4096  # the page only says who it acts as
JSON_ROUTES = {"/api/autocomplete", "/api/menu", "/api/modal", "/api/voice"}
FORM_ROUTES = {"/api/send", "/api/slash"}
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "")
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}  # and audio/*: shown in the page
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; media-src 'self'; sandbox"
SIGNED_OUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Playground: open the link it printed</title></head>
<body>
<h1>Open the link the playground printed</h1>
<p>{reason}</p>
<p>When it starts, the playground prints <code>Playground ready: open http://127.0.0.1:&lt;port&gt;/?token=&hellip;</code>
in the terminal where you ran <code>make run</code>. Open that link: its token changes at every start,
so anyone else (or any other web page) cannot act as the bot's owner here.</p>
</body></html>
"""


class Refused(Exception):
    """A request the page server does not do: answered `status` with `{"error": reason}`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


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


class PlaygroundPage:
    """Serves the page for one local server (`fake`, with `voice`) and keeps every page live.

    `token`: the secret of the link (made here when not given); `max_upload`: bytes of files per
    message (MAX_ATTACHMENT_BYTES); `host`: the address served (PLAYGROUND_HOST), accepted as a
    `Host` besides the loopback names."""

    def __init__(self, fake: FakeDiscord, voice: FakeVoiceServer, history: History | None = None, *,
                 token: str | None = None, max_upload: int = DEFAULT_MAX_UPLOAD):
        self.fake = fake
        self.voice = voice
        self.history = history
        self.token = token or secrets.token_urlsafe(32)
        self.max_upload = max_upload
        self.clients: set[PageClient] = set()
        self.url = ""  # the page's address, without the token (see login_url)
        self.port = 0
        self.cookie_name = ""
        self.refused: Counter[str] = Counter()  # refusals by reason (each new reason is logged once)
        self.bot_online = False
        self._hosts: set[str] = set()
        self._any_host = False
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        voice.pcm_listeners.append(self._on_pcm)
        fake.event_listeners.append(self._on_event)
        fake.typing_listeners.append(self._on_typing)

    @property
    def login_url(self) -> str:
        """The link to print: opening it signs the browser in (a cookie), then shows the page."""
        return f"{self.url}?token={self.token}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> str:
        """Serve on `host`:`port` (0: any free port); returns the page's URL (without the token)."""
        app = web.Application(client_max_size=self.max_upload + FORM_OVERHEAD, middlewares=[self._guard])
        app.on_response_prepare.append(self._security_headers)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/files/{attachment}/{filename}", self._file)
        app.router.add_get("/api/session", self._session)
        app.router.add_post("/api/send", self._send)
        app.router.add_post("/api/slash", self._slash)
        app.router.add_post("/api/autocomplete", self._autocomplete)
        app.router.add_post("/api/menu", self._menu)
        app.router.add_post("/api/modal", self._modal)
        app.router.add_post("/api/voice", self._voice)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self.cookie_name = f"playground-{self.port}"  # cookies ignore ports: one per playground
        self._hosts = {f"{name}:{self.port}" for name in LOOPBACK_NAMES}
        self._any_host = host in ANY_ADDRESS  # every address of the machine (PLAYGROUND_ALLOW_REMOTE)
        if not self._any_host:
            self._hosts.add(f"{shown.lower()}:{self.port}")
        self._watcher = asyncio.create_task(self._watch(), name="playground-watch")
        return self.url

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for hooks, hook in ((self.voice.pcm_listeners, self._on_pcm), (self.fake.event_listeners, self._on_event),
                            (self.fake.typing_listeners, self._on_typing)):
            with contextlib.suppress(ValueError):
                hooks.remove(hook)  # type: ignore[arg-type]
        saves = [t for t in self._tasks if t.get_name() == "playground-save"]
        if saves:  # the last messages reach the disk before the process ends
            await asyncio.wait(saves, timeout=10)
        for task in list(self._tasks):
            task.cancel()
        for client in list(self.clients):
            await client.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _spawn(self, coro, name: str | None = None) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- who may ask what (see the threat model above) -------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        problem = self._refusal(request)
        if problem is not None:
            status, reason = problem
            return self._refuse(request, status, reason)
        try:
            return await handler(request)
        except Refused as exc:
            return self._refuse(request, exc.status, exc.reason)

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        host = request.headers.get("Host", "").lower()
        if not self._any_host and host not in self._hosts:
            return 403, f"unknown Host {host!r}: open the playground at {self.url}"
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{host}":
            return 403, f"requests from other sites ({origin}) are refused"
        path = request.path
        if path == "/" or path.startswith("/static/"):
            return None  # the page checks its token or cookie itself; static files are public
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return 403, "requests from other sites are refused"
        if not self._signed_in(request):
            return 401, "not signed in: open the link the playground printed (…/?token=…)"
        if request.method == "POST":
            if request.headers.get("X-Playground") != "1":
                return 403, "actions need the header X-Playground: 1 (the page sends it; HTML forms cannot)"
            if path in JSON_ROUTES and request.content_type != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
            if path in FORM_ROUTES and request.content_type not in FORM_TYPES:
                return 415, "send a form (multipart/form-data)"
        return None

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        key = f"{status} {request.method} {request.path.split('/')[1] if request.path != '/' else '/'}: {reason}"
        if key not in self.refused and status in (401, 403):
            log.warning("Playground refused %s %s (%s; Origin %s)", request.method, request.path, reason,
                        request.headers.get("Origin", "none"))
        if len(self.refused) < 200 or key in self.refused:
            self.refused[key] += 1
        if request.path == "/" and request.method == "GET":
            return web.Response(status=status, text=SIGNED_OUT.format(reason=_escape(reason)),
                                content_type="text/html")
        return _ok({"error": reason}, status=status)

    def _token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def _signed_in(self, request: web.Request) -> bool:
        return self._token_ok(request.cookies.get(self.cookie_name, ""))

    async def _security_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        if isinstance(response, web.WebSocketResponse):
            return
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")  # the token never leaves in a Referer
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("Content-Security-Policy", PAGE_CSP if request.path == "/" else FILE_CSP)

    # -- what the page is told ---------------------------------------------------------------
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
        if self.history is not None:
            self._spawn(self.history.save(msg), "playground-save")

    def set_bot_online(self, online: bool) -> None:
        self.bot_online = online
        self.broadcast(self.voice_state())
        self.broadcast(self.commands())

    # -- watching the local server ---------------------------------------------------------------
    def _on_event(self, event: BotEvent) -> None:
        """A message the bot made, edited or deleted (called by the local server at once)."""
        if event.kind == "delete":
            self.broadcast({"type": "delete", "id": str(event.message.id), "channel_id": str(event.message.channel.id)},
                           to_user=self.for_user(event.message))
            if self.history is not None:
                self._spawn(self.history.save(event.message), "playground-save")
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

    # -- routes --------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None:
            if not self._token_ok(given):
                raise Refused(401, "this link's token is not this playground's (a new one is made at every "
                                   "start): open the link it printed last")
            response = web.Response(status=303, headers={"Location": "/"})  # the clean URL
            response.set_cookie(self.cookie_name, self.token, path="/", httponly=True, samesite="Strict")
            return response
        if not self._signed_in(request):
            raise Refused(401, "this browser is not signed in to the playground (or it was restarted).")
        return web.FileResponse(STATIC / "index.html")

    async def _session(self, request: web.Request) -> web.Response:
        """What the page asks when its WebSocket closed: still signed in? (401 from _guard if not)."""
        return _ok({"ok": True})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        given = request.query.get("user", "")
        user = self._person(given) if given else self.fake.owner
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
                    person = self._person(data.get("user"))
                except (ValueError, RecursionError, Refused):
                    continue  # the page sends nothing else; anything malformed is ignored
                # The page switched person: from now on it gets that person's messages, and
                # their history at once (their ephemeral messages, not the previous person's).
                client.user_id = person.id
                client.put(json.dumps({"type": "as", "user": str(person.id),
                                       "messages": self.history_for_page(person.id)}))
                client.put(json.dumps(self.voice_state()))
        finally:
            self.clients.discard(client)
            pump.cancel()
        return ws

    async def _file(self, request: web.Request) -> web.Response:
        attachment = self.fake.attachments.get(_id(request.match_info["attachment"]))
        if attachment is None:
            raise Refused(404, "no such file (or no longer kept)")
        content_type = _content_type(attachment.content_type) or "application/octet-stream"
        bare = content_type.split(";")[0].strip().lower()
        inline = bare in INLINE_TYPES or bare.startswith("audio/")
        # Anything else (SVG, HTML, ...) is a download when opened; in the page an <img> of an SVG
        # still shows (and runs nothing): its type is kept, the CSP sandboxes it anyway.
        return web.Response(body=attachment.data, headers={
            "Content-Type": content_type,
            "Content-Disposition": _disposition("inline" if inline else "attachment", attachment.filename)})

    def _person(self, value: Any) -> User:
        wanted = _id(value)
        person = next((u for u in people(self.fake) if u.id == wanted), None)
        if person is None:
            raise Refused(400, f"unknown user {_shown(value)}: the page acts as one of "
                               f"{', '.join(f'{u.username} ({u.id})' for u in people(self.fake))}")
        return person

    def _channel(self, value: Any, user: User):
        """A text channel of the server, or `user`'s own DM channel with the bot (never another's)."""
        channel = self.fake.channels.get(_id(value))
        if channel is not None and channel.type == TEXT_CHANNEL and channel.guild_id == self.fake.guild.id:
            return channel
        if channel is not None and channel.type == DM_CHANNEL and channel.recipient is not None \
                and channel.recipient.id == user.id:
            return channel
        raise Refused(400, f"unknown channel {_shown(value)} (for {user.username}: the server's text channels "
                           f"and their own DM with {self.fake.bot.username})")

    async def _form(self, request: web.Request) -> tuple[dict[str, str], list[tuple[str, bytes, str | None]]]:
        """Fields and files of a form post (multipart with files, or url-encoded)."""
        too_big = (413, f"files are limited to {self.max_upload / 2**20:.0f} MB per message (MAX_ATTACHMENT_BYTES)")
        if (request.content_length or 0) > self.max_upload + FORM_OVERHEAD:
            raise Refused(*too_big)
        try:
            posted = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise Refused(*too_big) from None
        except ValueError as exc:
            raise Refused(400, f"malformed form: {exc}") from None
        fields: dict[str, str] = {}
        files: list[tuple[str, bytes, str | None]] = []
        for name, value in posted.items():
            if isinstance(value, web.FileField):
                data = await asyncio.to_thread(value.file.read)  # aiohttp spools big uploads to disk
                files.append((_safe_name(value.filename or "file"), data, _content_type(value.content_type)))
            else:  # a form sends line breaks as CRLF; Discord's client sends them as LF
                fields[name] = str(value).replace("\r\n", "\n")
        if len(files) > MAX_FILES:
            raise Refused(400, f"at most {MAX_FILES} files per message")
        if sum(len(data) for _name, data, _type in files) > self.max_upload:
            raise Refused(*too_big)
        return fields, files

    async def _json(self, request: web.Request) -> dict:
        """The JSON object of an action (at most MAX_JSON bytes)."""
        raw = bytearray()
        async for chunk in request.content.iter_chunked(16384):
            raw += chunk
            if len(raw) > MAX_JSON:
                raise Refused(413, f"an action is at most {MAX_JSON} bytes of JSON")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise Refused(400, f"malformed JSON: {str(exc)[:100]}") from None
        if not isinstance(body, dict):
            raise Refused(400, "send a JSON object")
        return body

    def _mentions(self, content: str) -> str:
        """`@name` typed in the page becomes a Discord mention of that user."""
        names = {u.username.lower(): u.id for u in self.fake.users.values()}
        return re.sub(r"(?<![<\w])@(\w+)", lambda m: f"<@{names[m.group(1).lower()]}>" if m.group(1).lower() in names
                      else m.group(0), content)

    async def _send(self, request: web.Request) -> web.Response:
        fields, files = await self._form(request)
        author = self._person(fields.get("user"))
        channel = self._channel(fields.get("channel"), author)
        content = self._mentions(fields.get("content", ""))
        if len(content) > MAX_CONTENT:
            raise Refused(400, f"a message is at most {MAX_CONTENT} characters")
        reply_to = None
        if fields.get("reply_to"):
            reply_to = self.fake.messages.get(_id(fields["reply_to"]))
            if reply_to is None or reply_to.deleted or reply_to.ephemeral or reply_to.channel.id != channel.id:
                raise Refused(400, "the message to reply to is not in this channel (or is gone)")
        voice_message = fields.get("voice_message") == "1"
        duration = _duration(fields.get("duration"))
        if voice_message:
            if len(files) != 1:
                raise Refused(400, "a voice message is one recording")
            files = [await to_ogg_opus(files[0])]
        if not content.strip() and not files:
            raise Refused(400, "nothing to send")
        msg = await self.fake.send(author, content, channel=channel, attachments=files, reply_to=reply_to,
                                   voice_message=voice_message, duration=duration)
        self.announce(msg)
        return _ok({"id": str(msg.id)})

    async def _slash(self, request: web.Request) -> web.Response:
        fields, files = await self._form(request)
        user = self._person(fields.get("user"))
        channel = self._channel(fields.get("channel"), user)
        text = fields.get("text", "")
        if len(text) > MAX_SLASH_TEXT:
            raise Refused(400, f"a slash command is at most {MAX_SLASH_TEXT} characters")
        if len(files) > 1:
            raise Refused(400, "a slash command takes one file")
        registered = self.registered(channel.type == DM_CHANNEL)
        try:
            use = slash.parse(text, registered, attachment=files[0] if files else None,
                              users=self.fake.users.values(), roles=self.fake.guild.roles.values(),
                              channels=self.fake.guild.channels.values())
            record = await self.fake.slash(user, use.name, use.options, channel, use.subcommand)
        except (slash.SlashSyntaxError, InteractionRefused) as exc:
            raise Refused(400, str(exc)) from None
        self._spawn(self._expect_answer(record))
        return _ok({"interaction": str(record.id)})

    async def _expect_answer(self, record: Interaction) -> None:
        """Discord says "The application did not respond" when a bot misses the 3 s."""
        try:
            await record.wait_response(timeout=self.fake.interaction_timeout + 5)
        except AssertionError:
            self.broadcast({"type": "notice", "for_user": str(record.user.id), "channel_id": str(record.channel.id),
                            "text": f"{self.fake.bot.username} did not respond to {record.describe()}."},
                           to_user=record.user.id)

    async def _autocomplete(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        user = self._person(body.get("user"))
        channel = self._channel(body.get("channel"), user)
        command, option = _text(body, "command", 32), _text(body, "option", 32)
        value = _text(body, "value", 6000, required=False)
        try:
            choices = await self.fake.autocomplete(user, command, option, value, channel=channel, timeout=5)
        except InteractionRefused as exc:
            raise Refused(400, str(exc)) from None
        except AssertionError:  # the bot did not answer in time
            raise Refused(504, f"{self.fake.bot.username} did not answer the autocomplete") from None
        return _ok({"choices": choices})

    async def _menu(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        user = self._person(body.get("user"))
        name = _text(body, "name", 32)
        target = self.fake.messages.get(_id(body.get("message")))
        if target is None or target.deleted or self.for_user(target) not in (None, user.id):
            raise Refused(400, "that message is gone")
        try:
            record = await self.fake.message_command(user, name, target)
        except InteractionRefused as exc:
            raise Refused(400, str(exc)) from None
        try:
            await record.wait_response(timeout=self.fake.interaction_timeout + 5)
        except AssertionError:
            raise Refused(504, f"{self.fake.bot.username} did not respond to {name}") from None
        if record.modal is None:
            return _ok({"interaction": str(record.id)})
        return _ok({"interaction": str(record.id), "modal": modal_form(record.modal)})

    async def _modal(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        user = self._person(body.get("user"))
        record = self.fake.interaction(_id(body.get("interaction")))
        values = body.get("values")
        if record is None:
            raise Refused(400, "unknown form")
        if not isinstance(values, dict) or not all(isinstance(v, str) and len(v) <= 4000 for v in values.values()):
            raise Refused(400, "values: an object of texts (at most 4000 characters each)")
        try:
            submit = await self.fake.submit_modal(user, record, values)
        except InteractionRefused as exc:
            raise Refused(400, str(exc)) from None
        self._spawn(self._expect_answer(submit))
        return _ok({"interaction": str(submit.id)})

    async def _voice(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        user = self._person(body.get("user"))
        join = body.get("join")
        if not isinstance(join, bool):
            raise Refused(400, "join: true or false")
        await self.fake.set_voice_state(self.fake.guild, user, self.fake.voice if join else None)
        return _ok(self.voice_state())


def _used(record: Interaction | None) -> dict | None:
    """"you used /name" above an interaction's message (a modal's: the command that opened it)."""
    if record is None:
        return None
    opener = record.parent or record
    return {"name": opener.name, "user": record.user.username, "menu": opener.command_type != ac.CHAT_INPUT}


def modal_form(modal: dict) -> dict:
    """A modal's text inputs, flattened for the page (action rows and labels unwrapped)."""
    fields: list[dict] = []

    def walk(component: dict, label: str = "") -> None:
        ctype = component.get("type")
        if ctype == 1:
            for child in component.get("components", []):
                walk(child)
        elif ctype == 18:  # a label wrapping one component
            walk(component["component"], component.get("label", ""))
        elif ctype == 4:
            fields.append({"custom_id": component["custom_id"], "label": component.get("label") or label,
                           "paragraph": component.get("style") == 2, "value": component.get("value") or "",
                           "placeholder": component.get("placeholder") or "",
                           "required": component.get("required", True),
                           "min": component.get("min_length") or 0, "max": component.get("max_length") or 4000})

    for component in modal.get("components", []):
        walk(component)
    return {"title": modal.get("title", ""), "fields": fields}


RECORDING_FORMATS = ((b"\x1a\x45\xdf\xa3", "matroska"), (b"OggS", "ogg"))  # WebM is Matroska


async def to_ogg_opus(recording: tuple[str, bytes, str | None]) -> tuple[str, bytes, str]:
    """The browser records WebM/Opus (Chromium's MediaRecorder has no Ogg); Discord's voice
    messages are Ogg/Opus: the Opus packets are copied into an Ogg container by ffmpeg, which
    reads only the pipe, with the one demuxer the recording's first bytes name."""
    _name, data, _ctype = recording
    demuxer = next((name for magic, name in RECORDING_FORMATS if data.startswith(magic)), None)
    if demuxer is None:
        raise Refused(400, "a voice message is a WebM or Ogg recording")
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", "pipe", "-f", demuxer,
        "-i", "pipe:0", "-vn", "-c:a", "copy", "-f", "ogg", "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(data)
    if proc.returncode != 0 or not out:
        raise Refused(400, f"could not read the recording: {err.decode(errors='replace')[:200]}")
    return "voice-message.ogg", out, "audio/ogg"


def _id(value: Any) -> int:
    """A snowflake given as digits (or a JSON number); 0 for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value < 2**64 else 0
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,20}", value):
        return int(value)
    return 0


def _shown(value: Any) -> str:
    return repr(value)[:40]


def _text(body: dict, key: str, limit: int, *, required: bool = True) -> str:
    value = body.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value) or len(value) > limit:
        raise Refused(400, f"{key}: {'a' if required else 'an optional'} text of at most {limit} characters")
    return value


def _duration(raw: str | None) -> float | None:
    """A voice message's length in seconds, as the page measured it."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_VOICE_SECONDS:
        raise Refused(400, f"duration: seconds, more than 0 and at most {MAX_VOICE_SECONDS:.0f}")
    return seconds


def _content_type(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if re.fullmatch(r"[\w.+-]+/[\w.+-]+(;[\w ;=\"'.+-]*)?", value) and len(value) <= 100 else None


def _safe_name(name: str) -> str:
    name = Path(name.replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", name)[:100].strip(" .") or "file"


def _disposition(kind: str, filename: str) -> str:
    """`inline` or `attachment` with the file's name (RFC 6266: an ASCII one, then UTF-8)."""
    plain = re.sub(r"[^A-Za-z0-9._ -]", "_", filename)[:100] or "file"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)
