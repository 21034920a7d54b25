"""What a page can do, each a POST under /api/: the same calls a test makes on the local server.

Send a message (with files, a reply, or a voice message recorded in the browser), use a slash
command (typed, parsed as Discord's client would), ask for autocomplete choices, use a message
menu, submit a modal, join or leave voice.  Each reads its request with the checks of inputs.py;
web.py has already let it through its guard (the threat model), with the body kind each route
declares here (`routes`).  What the bot answers reaches the pages through the feed.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from localdiscord.interactions import Interaction, InteractionRefused
from localdiscord.server import MAX_CONTENT, FakeDiscord
from localdiscord.state import DM_CHANNEL

from . import slash
from .feed import Feed
from .inputs import Refused, Upload, channel, duration, person, read_form, read_json, snowflake, text

MAX_SLASH_TEXT = 8000  # a typed slash command (options run up to 6000 characters)
FORM = "form"  # multipart/form-data (or url-encoded): a message and its files
JSON = "json"  # application/json: the other actions
RECORDING_FORMATS = ((b"\x1a\x45\xdf\xa3", "matroska"), (b"OggS", "ogg"))  # WebM is Matroska

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Actions:
    """The actions of the pages of one local server (`fake`), told to them through `feed`;
    `max_upload`: bytes of files per message (MAX_ATTACHMENT_BYTES)."""

    def __init__(self, fake: FakeDiscord, feed: Feed, max_upload: int):
        self.fake = fake
        self.feed = feed
        self.max_upload = max_upload

    def routes(self) -> dict[str, tuple[str, Handler]]:
        """Each action's path, the body it takes (FORM or JSON) and its handler."""
        return {"/api/send": (FORM, self.send), "/api/slash": (FORM, self.slash),
                "/api/autocomplete": (JSON, self.autocomplete), "/api/menu": (JSON, self.menu),
                "/api/modal": (JSON, self.modal), "/api/voice": (JSON, self.voice)}

    def _mentions(self, content: str) -> str:
        """`@name` typed in the page becomes a Discord mention of that user."""
        names = {u.username.lower(): u.id for u in self.fake.users.values()}
        return re.sub(r"(?<![<\w])@(\w+)", lambda m: f"<@{names[m.group(1).lower()]}>" if m.group(1).lower() in names
                      else m.group(0), content)

    async def send(self, request: web.Request) -> web.Response:
        fields, files = await read_form(request, self.max_upload)
        author = person(self.fake, fields.get("user"))
        where = channel(self.fake, fields.get("channel"), author)
        content = self._mentions(fields.get("content", ""))
        if len(content) > MAX_CONTENT:
            raise Refused(400, f"a message is at most {MAX_CONTENT} characters")
        reply_to = None
        if fields.get("reply_to"):
            reply_to = self.fake.messages.get(snowflake(fields["reply_to"]))
            if reply_to is None or reply_to.deleted or reply_to.ephemeral or reply_to.channel.id != where.id:
                raise Refused(400, "the message to reply to is not in this channel (or is gone)")
        voice_message = fields.get("voice_message") == "1"
        seconds = duration(fields.get("duration"))
        if voice_message:
            if len(files) != 1:
                raise Refused(400, "a voice message is one recording")
            files = [await to_ogg_opus(files[0])]
        if not content.strip() and not files:
            raise Refused(400, "nothing to send")
        msg = await self.fake.send(author, content, channel=where, attachments=files, reply_to=reply_to,
                                   voice_message=voice_message, duration=seconds)
        self.feed.announce(msg)
        return web.json_response({"id": str(msg.id)})

    async def slash(self, request: web.Request) -> web.Response:
        fields, files = await read_form(request, self.max_upload)
        user = person(self.fake, fields.get("user"))
        where = channel(self.fake, fields.get("channel"), user)
        typed = fields.get("text", "")
        if len(typed) > MAX_SLASH_TEXT:
            raise Refused(400, f"a slash command is at most {MAX_SLASH_TEXT} characters")
        if len(files) > 1:
            raise Refused(400, "a slash command takes one file")
        registered = self.feed.registered(where.type == DM_CHANNEL)
        try:
            use = slash.parse(typed, registered, attachment=files[0] if files else None,
                              users=self.fake.users.values(), roles=self.fake.guild.roles.values(),
                              channels=self.fake.guild.channels.values())
            record = await self.fake.slash(user, use.name, use.options, where, use.subcommand)
        except (slash.SlashSyntaxError, InteractionRefused) as exc:
            raise Refused(400, str(exc)) from None
        self.feed.tasks.spawn(self._expect_answer(record), name="playground-answer")
        return web.json_response({"interaction": str(record.id)})

    async def _expect_answer(self, record: Interaction) -> None:
        """Discord says "The application did not respond" when a bot misses the 3 s."""
        try:
            await record.wait_response(timeout=self.fake.interaction_timeout + 5)
        except AssertionError:
            self.feed.broadcast({"type": "notice", "for_user": str(record.user.id),
                                 "channel_id": str(record.channel.id),
                                 "text": f"{self.fake.bot.username} did not respond to {record.describe()}."},
                                to_user=record.user.id)

    async def autocomplete(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        user = person(self.fake, body.get("user"))
        where = channel(self.fake, body.get("channel"), user)
        command, option = text(body, "command", 32), text(body, "option", 32)
        value = text(body, "value", 6000, required=False)
        try:
            choices = await self.fake.autocomplete(user, command, option, value, channel=where, timeout=5)
        except InteractionRefused as exc:
            raise Refused(400, str(exc)) from None
        except AssertionError:  # the bot did not answer in time
            raise Refused(504, f"{self.fake.bot.username} did not answer the autocomplete") from None
        return web.json_response({"choices": choices})

    async def menu(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        user = person(self.fake, body.get("user"))
        name = text(body, "name", 32)
        target = self.fake.messages.get(snowflake(body.get("message")))
        if target is None or target.deleted or self.feed.for_user(target) not in (None, user.id):
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
            return web.json_response({"interaction": str(record.id)})
        return web.json_response({"interaction": str(record.id), "modal": modal_form(record.modal)})

    async def modal(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        user = person(self.fake, body.get("user"))
        record = self.fake.interaction(snowflake(body.get("interaction")))
        values = body.get("values")
        if record is None:
            raise Refused(400, "unknown form")
        if not isinstance(values, dict) or not all(isinstance(v, str) and len(v) <= 4000 for v in values.values()):
            raise Refused(400, "values: an object of texts (at most 4000 characters each)")
        try:
            submit = await self.fake.submit_modal(user, record, values)
        except InteractionRefused as exc:
            raise Refused(400, str(exc)) from None
        self.feed.tasks.spawn(self._expect_answer(submit), name="playground-answer")
        return web.json_response({"interaction": str(submit.id)})

    async def voice(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        user = person(self.fake, body.get("user"))
        join = body.get("join")
        if not isinstance(join, bool):
            raise Refused(400, "join: true or false")
        await self.fake.set_voice_state(self.fake.guild, user, self.fake.voice if join else None)
        return web.json_response(self.feed.voice_state())


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


async def to_ogg_opus(recording: Upload) -> tuple[str, bytes, str]:
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
