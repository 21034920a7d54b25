"""The playground page's server: static files, actions as HTTP posts, live updates over a WebSocket.

The page is a small Discord client.  What a person does there (send a message with files or
a voice message, use a slash command, a message menu, a modal, join voice) becomes the same
call a test makes on the local server (`FakeDiscord.send`, `slash`, ...), so the bot sees
exactly what Discord would send it.  What the bot does (messages, edits, deletions, typing,
voice) is watched on the local server and pushed to every open page as JSON; the bot's
voice, decoded by the local voice server, goes as binary frames of 20 ms of 48 kHz stereo
s16le PCM to the pages whose person is in the voice channel.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import WSMsgType, web

from localdiscord import appcommands as ac
from localdiscord.interactions import CommandUnavailable, Interaction
from localdiscord.server import FakeDiscord
from localdiscord.state import FLAG_LOADING, FLAG_VOICE_MESSAGE, TEXT_CHANNEL, VOICE_CHANNEL, Message, User
from localdiscord.voice import FakeVoiceServer

from . import slash
from .history import History
from .world import people

log = logging.getLogger("playground")

STATIC = Path(__file__).resolve().parent / "static"
HISTORY_PER_CHANNEL = 200  # messages a page gets per channel when it opens
AUDIO_QUEUE_FRAMES = 250  # 5 s of voice buffered per page; older frames are dropped when a page lags
MAX_UPLOAD = 100 * 1024 * 1024


class PageClient:
    """One open page: its WebSocket and the queue feeding it (JSON texts and PCM bytes)."""

    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws
        self.user_id = 0  # who the page is acting as (for voice)
        self.queue: asyncio.Queue[str | bytes] = asyncio.Queue(maxsize=2000)

    def put(self, item: str | bytes) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # a page that stopped reading loses updates, not the server
            pass

    async def pump(self) -> None:
        while not self.ws.closed:
            item = await self.queue.get()
            try:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return


class PlaygroundPage:
    """Serves the page for one local server (`fake`, with `voice`) and keeps every page live."""

    def __init__(self, fake: FakeDiscord, voice: FakeVoiceServer, history: History | None = None):
        self.fake = fake
        self.voice = voice
        self.history = history
        self.clients: set[PageClient] = set()
        self.url = ""
        self.bot_online = False
        self._runner: web.AppRunner | None = None
        self._watcher: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._interactions: dict[int, Interaction] = {}
        voice.pcm_listeners.append(self._on_pcm)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> str:
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/files/{attachment}/{filename}", self._file)
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
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound[1]}/"
        self._watcher = asyncio.create_task(self._watch(), name="playground-watch")
        return self.url

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
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

    # -- what the page is told ---------------------------------------------------------------
    def world(self) -> dict:
        fake = self.fake
        guild = fake.guild
        return {
            "guild": {"id": str(guild.id), "name": guild.name},
            "bot": {"id": str(fake.bot.id), "name": fake.bot.username},
            "people": [{"id": str(u.id), "name": u.username,
                        "role": "owner" if u.id == guild.owner_id else "member"} for u in people(fake)],
            "users": {str(u.id): u.username for u in fake.users.values()},
            "channels": [{"id": str(c.id), "name": c.name, "kind": "voice" if c.type == VOICE_CHANNEL else "text"}
                         for c in guild.channels.values() if c.type in (TEXT_CHANNEL, VOICE_CHANNEL)],
        }

    def commands(self) -> dict:
        registered = self.fake.app_commands.list(self.fake.guild.id) + self.fake.app_commands.list(None)
        menus = sorted({c["name"] for c in registered if c.get("type") == ac.MESSAGE_COMMAND})
        return {"type": "commands", "commands": slash.describe(registered), "menus": menus}

    def voice_state(self) -> dict:
        guild = self.fake.guild
        return {"type": "voice", "online": self.bot_online,
                "members": [str(uid) for uid, cid in guild.voice_states.items() if cid == self.fake.voice.id]}

    def view(self, msg: Message) -> dict:
        """A message as the page draws it."""
        record = self._interactions.get(msg.interaction_id or 0)
        ref = self.fake.messages.get(msg.reference_id or 0)
        return {
            "id": str(msg.id), "channel_id": str(msg.channel.id),
            "author": {"id": str(msg.author.id), "name": msg.author.username, "bot": msg.author.bot},
            "content": msg.content, "timestamp": msg.timestamp, "edited": msg.edited, "deleted": msg.deleted,
            "embeds": [{"title": e.get("title") or "", "description": e.get("description") or "",
                        "fields": [{"name": f.get("name", ""), "value": f.get("value", "")} for f in e.get("fields", [])],
                        "footer": (e.get("footer") or {}).get("text", ""),
                        "image": _attachment_ref((e.get("image") or {}).get("url"))} for e in msg.embeds],
            "attachments": [{"id": str(a.id), "filename": a.filename, "size": len(a.data),
                             "content_type": a.content_type or "", "url": f"/files/{a.id}/{quote(a.filename)}",
                             "duration": a.duration_secs} for a in msg.attachments],
            "voice_message": bool(msg.flags & FLAG_VOICE_MESSAGE),
            "loading": bool(msg.flags & FLAG_LOADING),
            "ephemeral": msg.ephemeral,
            "for_user": str(record.user.id) if record is not None and msg.ephemeral else None,
            "interaction": _used(record),
            "reference": ({"id": str(ref.id), "author": ref.author.username, "deleted": ref.deleted,
                           "content": ref.text[:200] or ("(voice message)" if ref.flags & FLAG_VOICE_MESSAGE
                                                         else "(attachment)" if ref.attachments else "")}
                          if ref is not None else None),
        }

    def history_for_page(self) -> list[dict]:
        by_channel: dict[int, list[Message]] = {}
        for msg in self.fake.messages.values():
            if not msg.deleted:
                by_channel.setdefault(msg.channel.id, []).append(msg)
        out = []
        for items in by_channel.values():
            out += [self.view(m) for m in sorted(items, key=lambda m: m.id)[-HISTORY_PER_CHANNEL:]]
        return out

    def broadcast(self, data: dict) -> None:
        text = json.dumps(data)
        for client in self.clients:
            client.put(text)

    def announce(self, msg: Message) -> None:
        self.broadcast({"type": "message", "message": self.view(msg)})
        if self.history is not None:
            self._spawn(self.history.save(msg), "playground-save")

    def set_bot_online(self, online: bool) -> None:
        self.bot_online = online
        self.broadcast(self.voice_state())
        self.broadcast(self.commands())

    # -- watching the local server ---------------------------------------------------------------
    async def _watch(self) -> None:
        """Push the bot's messages, edits, deletions, typing and voice changes to every page
        (woken by the local server's own change notifications, no polling)."""
        fake = self.fake
        events, typing = len(fake.events), len(fake.typing)
        voice = self.voice_state()
        commands = self._commands_key()
        while True:
            await fake.wait_until(lambda: (len(fake.events) > events or len(fake.typing) > typing
                                           or self.voice_state() != voice or self._commands_key() != commands),
                                  timeout=None)
            for interaction in fake.interactions:
                self._interactions[interaction.id] = interaction
            for event in fake.events[events:]:
                if event.kind == "delete":
                    self.broadcast({"type": "delete", "id": str(event.message.id),
                                    "channel_id": str(event.message.channel.id)})
                    if self.history is not None:
                        self._spawn(self.history.save(event.message), "playground-save")
                else:
                    self.announce(event.message)
            events = len(fake.events)
            for channel_id in fake.typing[typing:]:
                self.broadcast({"type": "typing", "channel_id": str(channel_id), "user": fake.bot.username})
            typing = len(fake.typing)
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
        listening = {int(u) for u in self.voice_state()["members"]}
        for client in self.clients:
            if client.user_id in listening:
                client.put(pcm)

    # -- routes --------------------------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        client = PageClient(ws)
        client.user_id = self._person(request.query.get("user", "")).id
        self.clients.add(client)
        for interaction in self.fake.interactions:
            self._interactions[interaction.id] = interaction
        client.put(json.dumps({"type": "hello", "world": self.world(), "messages": self.history_for_page()}))
        client.put(json.dumps(self.commands()))
        client.put(json.dumps(self.voice_state()))
        pump = asyncio.create_task(client.pump())
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                data = json.loads(frame.data)
                if data.get("type") == "as":  # the page switched person (who hears voice)
                    client.user_id = self._person(str(data.get("user", ""))).id
                    client.put(json.dumps({"type": "as", "user": str(client.user_id)}))
                    client.put(json.dumps(self.voice_state()))
        finally:
            self.clients.discard(client)
            pump.cancel()
        return ws

    async def _file(self, request: web.Request) -> web.Response:
        try:
            attachment = self.fake.attachments.get(int(request.match_info["attachment"]))
        except ValueError:
            attachment = None
        if attachment is None:
            raise web.HTTPNotFound()
        inline = (attachment.content_type or "").startswith(("image/", "audio/"))
        disposition = "inline" if inline else f'attachment; filename="{_quote(attachment.filename)}"'
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream",
                            headers={"Content-Disposition": disposition})

    def _person(self, user_id: str) -> User:
        wanted = int(user_id) if user_id.isdigit() else 0
        return next((u for u in people(self.fake) if u.id == wanted), self.fake.owner)

    def _channel(self, channel_id: str):
        channel = self.fake.channels.get(int(channel_id)) if channel_id.isdigit() else None
        if channel is None or channel.type != TEXT_CHANNEL:
            raise web.HTTPBadRequest(text="unknown channel")
        return channel

    async def _form(self, request: web.Request) -> tuple[dict[str, str], list[tuple[str, bytes, str | None]]]:
        """Fields and files of a form post (multipart with files, or url-encoded)."""
        fields: dict[str, str] = {}
        files: list[tuple[str, bytes, str | None]] = []
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                data = await asyncio.to_thread(value.file.read)  # aiohttp spools big uploads to disk
                files.append((_safe_name(value.filename), data, value.content_type or None))
            else:  # a form sends line breaks as CRLF; Discord's client sends them as LF
                fields[name] = str(value).replace("\r\n", "\n")
        return fields, files

    def _mentions(self, content: str) -> str:
        """`@name` typed in the page becomes a Discord mention of that user."""
        names = {u.username.lower(): u.id for u in self.fake.users.values()}
        return re.sub(r"(?<![<\w])@(\w+)", lambda m: f"<@{names[m.group(1).lower()]}>" if m.group(1).lower() in names
                      else m.group(0), content)

    async def _send(self, request: web.Request) -> web.Response:
        fields, files = await self._form(request)
        author = self._person(fields.get("user", ""))
        channel = self._channel(fields.get("channel", ""))
        content = self._mentions(fields.get("content", ""))
        reply_to = self.fake.messages.get(int(fields["reply_to"])) if fields.get("reply_to", "").isdigit() else None
        voice_message = fields.get("voice_message") == "1"
        duration = float(fields.get("duration") or 0) or None
        if voice_message:
            if len(files) != 1:
                raise web.HTTPBadRequest(text="a voice message is one recording")
            files = [await to_ogg_opus(files[0])]
        if not content.strip() and not files:
            raise web.HTTPBadRequest(text="nothing to send")
        msg = await self.fake.send(author, content, channel=channel, attachments=files, reply_to=reply_to,
                                   voice_message=voice_message, duration=duration)
        self.announce(msg)
        return _ok({"id": str(msg.id)})

    async def _slash(self, request: web.Request) -> web.Response:
        fields, files = await self._form(request)
        user = self._person(fields.get("user", ""))
        channel = self._channel(fields.get("channel", ""))
        registered = self.fake.app_commands.list(self.fake.guild.id) + self.fake.app_commands.list(None)
        try:
            use = slash.parse(fields.get("text", ""), registered, attachment=files[0] if files else None,
                              users=self.fake.users.values(), roles=self.fake.guild.roles.values(),
                              channels=self.fake.guild.channels.values())
            record = await self.fake.slash(user, use.name, use.options, channel, use.subcommand)
        except (slash.SlashSyntaxError, CommandUnavailable, AssertionError) as exc:
            return _ok({"error": str(exc)}, status=400)
        self._interactions[record.id] = record
        self._spawn(self._expect_answer(record))
        return _ok({"interaction": str(record.id)})

    async def _expect_answer(self, record: Interaction) -> None:
        """Discord says "The application did not respond" when a bot misses the 3 s."""
        try:
            await record.wait_response(timeout=self.fake.interaction_timeout + 5)
        except AssertionError:
            self.broadcast({"type": "notice", "for_user": str(record.user.id), "channel_id": str(record.channel.id),
                            "text": f"{self.fake.bot.username} did not respond to {record.describe()}."})

    async def _autocomplete(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._person(str(body.get("user", "")))
        channel = self._channel(str(body.get("channel", "")))
        try:
            choices = await self.fake.autocomplete(user, str(body["command"]), str(body["option"]),
                                                   str(body.get("value", "")), channel=channel, timeout=5)
        except (AssertionError, KeyError) as exc:
            return _ok({"error": str(exc), "choices": []}, status=400)
        return _ok({"choices": choices})

    async def _menu(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._person(str(body.get("user", "")))
        target = self.fake.messages.get(_int(body.get("message")))
        if target is None or target.deleted:
            return _ok({"error": "that message is gone"}, status=400)
        try:
            record = await self.fake.message_command(user, str(body.get("name", "")), target)
            self._interactions[record.id] = record
            await record.wait_response(timeout=self.fake.interaction_timeout + 5)
        except AssertionError as exc:
            return _ok({"error": str(exc)}, status=400)
        if record.modal is None:
            return _ok({"interaction": str(record.id)})
        return _ok({"interaction": str(record.id), "modal": modal_form(record.modal)})

    async def _modal(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._person(str(body.get("user", "")))
        record = self._interactions.get(_int(body.get("interaction")))
        if record is None:
            return _ok({"error": "unknown form"}, status=400)
        try:
            submit = await self.fake.submit_modal(user, record, {str(k): str(v) for k, v in (body.get("values") or {}).items()})
        except AssertionError as exc:
            return _ok({"error": str(exc)}, status=400)
        self._interactions[submit.id] = submit
        self._spawn(self._expect_answer(submit))
        return _ok({"interaction": str(submit.id)})

    async def _voice(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self._person(str(body.get("user", "")))
        join = bool(body.get("join"))
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


async def to_ogg_opus(recording: tuple[str, bytes, str | None]) -> tuple[str, bytes, str]:
    """The browser records WebM/Opus (Chromium's MediaRecorder has no Ogg); Discord's voice
    messages are Ogg/Opus: the Opus packets are copied into an Ogg container by ffmpeg."""
    _name, data, _ctype = recording
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-vn", "-c:a", "copy", "-f", "ogg",
        "pipe:1", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(data)
    if proc.returncode != 0 or not out:
        raise web.HTTPBadRequest(text=f"could not read the recording: {err.decode(errors='replace')[:200]}")
    return "voice-message.ogg", out, "audio/ogg"


def _attachment_ref(url: str | None) -> str | None:
    """An embed image given as `attachment://name` stays that (the page finds the file)."""
    return url


def _int(value: Any) -> int:
    return int(value) if str(value).isdigit() else 0


def _safe_name(name: str) -> str:
    name = Path(name.replace("\\", "/")).name
    return re.sub(r"[^\w.\- ]", "_", name)[:100] or "file"


def _quote(name: str) -> str:
    return name.replace('"', "")


def _ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)
