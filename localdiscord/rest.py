"""The REST routes a bot calls for channels and messages, and the CDN its files are fetched from.

Every `/api/` request but the interaction ones (authorised by the token in their path) must
carry the bot's token; each is logged (`FakeDiscord.requests`), and what the fake does not
implement answers 404 and is listed in `FakeDiscord.unhandled`.  Messages are checked as Discord
checks them (`check_message`: length, embeds, the upload limit of the channel's guild); the state
they change lives in the FakeDiscord (server.py), which stores and delivers them.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .responses import error_response, json_response, read_body
from .state import Channel, Message, snowflake

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fakediscord")

MAX_CONTENT = 2000
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024


def check_message(fake: "FakeDiscord", channel: Channel, payload: dict, files: list) -> web.Response | None:
    """Discord's answer to a message it would refuse (too long, too large), else None."""
    content = payload.get("content") or ""
    if len(content) > MAX_CONTENT:
        return error_response(400, 50035, f"Invalid Form Body: content must be {MAX_CONTENT} or fewer in length.")
    for embed in payload.get("embeds") or []:
        if len(embed.get("description") or "") > 4096:
            return error_response(400, 50035, "Invalid Form Body: embed description too long.")
    if sum(len(f[1]) for f in files) > upload_limit(fake, channel):
        return error_response(413, 40005, "Request entity too large")
    return None


def upload_limit(fake: "FakeDiscord", channel: Channel) -> int:
    """Bytes a bot may upload in `channel` (the guild's boost tier raises it)."""
    if channel.guild_id is None:
        return DEFAULT_FILESIZE_LIMIT
    tier = fake.guilds[channel.guild_id].premium_tier
    return {2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}.get(tier, DEFAULT_FILESIZE_LIMIT)


class RestRoutes:
    """The channel, message, user and CDN routes of one FakeDiscord (interactions: interaction_server.py)."""

    def __init__(self, fake: "FakeDiscord"):
        self.fake = fake

    def add_routes(self, app: web.Application) -> None:
        """Every route but the gateway's; `unhandled` (the catch-all) and `record` are added by the server."""
        app.router.add_get("/api/v10/users/@me", self._me)
        app.router.add_get("/api/v10/oauth2/applications/@me", self._application)
        app.router.add_get("/api/v10/gateway", self._gateway_url)
        app.router.add_post("/api/v10/channels/{channel}/messages", self._create_message)
        app.router.add_patch("/api/v10/channels/{channel}/messages/{message}", self._edit_message)
        app.router.add_get("/api/v10/channels/{channel}/messages/{message}", self._get_message)
        app.router.add_delete("/api/v10/channels/{channel}/messages/{message}", self._delete_message)
        app.router.add_post("/api/v10/channels/{channel}/typing", self._typing)
        app.router.add_get("/api/v10/channels/{channel}", self._get_channel)
        app.router.add_post("/api/v10/users/@me/channels", self._create_dm)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._cdn)

    @web.middleware
    async def record(self, request: web.Request, handler):
        # Interaction callbacks and webhook routes are authorised by the token in their path.
        by_path = request.path.startswith(("/api/v10/interactions/", "/api/v10/webhooks/"))
        if (request.path.startswith("/api/") and not by_path
                and request.headers.get("Authorization") != f"Bot {self.fake.token}"):
            response = error_response(401, 0, "401: Unauthorized")
        else:
            response = await handler(request)
        self.fake.requests.append((request.method, request.path, response.status))
        return response

    async def unhandled(self, request: web.Request) -> web.Response:
        log.warning("fake discord: unhandled %s %s", request.method, request.path)
        self.fake.unhandled.append((request.method, request.path))
        return error_response(404, 0, "404: Not Found (not implemented by the fake)")

    async def _me(self, request: web.Request) -> web.Response:
        return json_response(self.fake.bot.payload())

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.url.replace("http", "ws", 1)})

    async def _typing(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        self.fake.typing.append(channel_id)
        for listener in self.fake.typing_listeners:
            listener(channel_id)
        await self.fake.notify()
        return web.Response(status=204)

    async def _application(self, request: web.Request) -> web.Response:
        return json_response({"id": str(self.fake.application_id), "name": self.fake.bot.username, "icon": None,
                              "description": "", "bot_public": True, "bot_require_code_grant": False,
                              "owner": self.fake.owner.payload(), "verify_key": "0" * 64, "flags": 0,
                              "team": self._team_payload(), "summary": ""})

    def _team_payload(self) -> dict | None:
        if not self.fake.team:
            return None
        team_id = str(self.fake.application_id + 1)
        return {"id": team_id, "name": "Team", "icon": None, "owner_user_id": str(self.fake.team[0].id),
                "members": [{"user": u.payload(), "team_id": team_id, "membership_state": 2,
                             "permissions": ["*"], "role": "admin"} for u in self.fake.team]}

    # -- messages and channels ----------------------------------------------------------------
    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self.fake.channels.get(int(request.match_info["channel"]))
        if channel is None:
            return error_response(404, 10003, "Unknown Channel")
        payload, files = await read_body(request)
        if problem := check_message(self.fake, channel, payload, files):
            return problem
        if not (payload.get("content") or payload.get("embeds") or files):
            return error_response(400, 50006, "Cannot send an empty message")
        if channel.recipient is not None and channel.recipient.id in self.fake.closed_dms:
            # Discord's answer when a user does not accept DMs from the server's members (or the bot).
            return error_response(403, 50007, "Cannot send messages to this user")
        ref = (payload.get("message_reference") or {}).get("message_id")
        msg = Message(snowflake(), channel, self.fake.bot, payload.get("content") or "",
                      embeds=payload.get("embeds") or [], reference_id=int(ref) if ref else None)
        msg.attachments = [self.fake._store_attachment(channel, name, data, ctype) for name, data, ctype in files]
        self.fake.add_message(msg)
        await self.fake._record_event("create", msg)
        await self.fake._deliver("MESSAGE_CREATE", msg)
        return json_response(self.fake.message_payload(msg))

    def _find_message(self, request: web.Request) -> Message | None:
        msg = self.fake.messages.get(int(request.match_info["message"]))
        # Ephemeral messages exist only for their user: the channel routes do not know them.
        if (msg is None or msg.deleted or msg.ephemeral
                or msg.channel.id != int(request.match_info["channel"])):
            return None
        return msg

    async def _edit_message(self, request: web.Request) -> web.Response:
        msg = self._find_message(request)
        if msg is None:
            return error_response(404, 10008, "Unknown Message")
        if msg.author.id != self.fake.bot.id:
            return error_response(403, 50005, "Cannot edit a message authored by another user")
        payload, files = await read_body(request)
        if problem := check_message(self.fake, msg.channel, payload, files):
            return problem
        msg.edits.append(msg.text)
        if "content" in payload:
            msg.content = payload["content"] or ""
        if "embeds" in payload:
            msg.embeds = payload["embeds"] or []
        if files:
            msg.attachments += [self.fake._store_attachment(msg.channel, n, d, c) for n, d, c in files]
        msg.edited = True
        await self.fake._record_event("edit", msg)
        await self.fake._deliver("MESSAGE_UPDATE", msg)
        return json_response(self.fake.message_payload(msg))

    async def _get_message(self, request: web.Request) -> web.Response:
        msg = self._find_message(request)
        if msg is None:
            return error_response(404, 10008, "Unknown Message")
        return json_response(self.fake.message_payload(msg))

    async def _delete_message(self, request: web.Request) -> web.Response:
        msg = self._find_message(request)
        if msg is None:
            return error_response(404, 10008, "Unknown Message")
        msg.deleted = True
        await self.fake._record_event("delete", msg)
        return web.Response(status=204)

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.fake.channels.get(int(request.match_info["channel"]))
        return json_response(channel.payload()) if channel else error_response(404, 10003, "Unknown Channel")

    async def _create_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.fake.users.get(int(body["recipient_id"]))
        if user is None:
            return error_response(404, 10013, "Unknown User")
        return json_response(self.fake.dm_channel(user).payload())

    async def _cdn(self, request: web.Request) -> web.Response:
        attachment = self.fake.attachments.get(int(request.match_info["attachment"]))
        if attachment is None:
            return web.Response(status=404, text="not found")
        if self.fake.record:
            async with self.fake._changed:
                self.fake.cdn_fetches[attachment.id] += 1
                self.fake._changed.notify_all()
        await self.fake.cdn_open.wait()
        return web.Response(body=attachment.data, content_type=attachment.content_type or "application/octet-stream")
