"""A local Discord-compatible server: gateway websocket, REST and CDN on 127.0.0.1.

An unmodified discord.py bot connects to it (see `shim/sitecustomize.py`), and tests
act as users through `FakeDiscord`'s methods: send messages (with attachments,
replies, voice messages), use slash commands, context menus and modals (`slash`,
`message_command`, `autocomplete`, `submit_modal`), then await what the bot sends or
edits.  Protocol facts: ../shared/docs/discord-offline-testing.md.

`FakeDiscord` holds the world (users, guilds, channels, messages, files: state.py) and what
tests do and wait for; the wire lives beside it, one part a module: gateway.py (the gateway
websocket), rest.py (the REST routes and the CDN), interaction_server.py (interactions, with
the bot's routes for them in interaction_routes.py and command_routes.py).
"""
from __future__ import annotations

import asyncio
import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Iterable

from aiohttp import web

from .appcommands import CommandRegistry
from .gateway import GatewaySession, Gateway, VoiceHandler
from .interaction_server import InteractionServer
from .interactions import RECENT, Interaction
from .rest import MAX_CONTENT, RestRoutes
from .state import (
    DM_CHANNEL, FLAG_VOICE_MESSAGE, INTENT_MESSAGE_CONTENT, MANAGE_GUILD, MEMBER_PERMISSIONS,
    TEXT_CHANNEL, VOICE_CHANNEL, Attachment, Channel, Guild, Message, Role, User, iso_now, snowflake,
)

__all__ = ["MAX_CONTENT", "BotEvent", "FakeDiscord", "GatewaySession"]

# A server made with record=False (the playground, which runs for days) keeps only the newest
# RECENT entries of each log tests read (events, requests, typing, interactions: interactions.py), and:
KEEP_MESSAGES = 5000  # newest messages (the page shows 200 per channel; its history keeps 500)
KEEP_ATTACHMENT_BYTES = 128 * 1024 * 1024  # newest files' bytes (older ones are forgotten: 404)

MessagePredicate = Callable[[Message], bool]


@dataclass
class BotEvent:
    kind: str  # "create" | "edit" | "delete"
    message: Message


class FakeDiscord:
    """The server plus a small world of two guilds.

    - ``owner`` owns the application (so the bot's owner) and the first guild, "Test Guild".
    - ``alice`` is a moderator there (a role with Manage Server), not an owner of anything.
    - ``bob`` is a plain member of both guilds.
    - ``carol`` owns the second guild, "Other Guild", where alice is a plain member.
    Pass ``team`` to make the application team-owned by those users instead, and
    ``message_content_intent=False`` for an application without the privileged Message Content
    intent (IDENTIFY asking for it is then closed with 4014, as Discord does).

    Interactions (slash commands, context menus, autocomplete, modals): see `interaction_server.py`;
    `app_commands` holds what the bot registered, `interactions` every interaction dispatched.

    ``world`` replaces that test world with another: a function that fills in the empty server
    and sets at least ``bot``, ``application_id``, ``owner``, ``guild``, ``general`` and ``voice``
    (the playground's, with ids fixed across restarts: playground/world.py).

    ``record`` (tests, the default): every request, bot event, typing indicator, interaction and
    CDN download is kept for tests to read, and every message and file.  ``record=False`` (the
    playground, which runs for days): those logs keep only their newest ``RECENT`` entries (a
    ``deque``), downloads are not counted, and only the newest ``KEEP_MESSAGES`` messages and
    ``KEEP_ATTACHMENT_BYTES`` of files stay; ``event_listeners``/``typing_listeners`` are how a
    long-running watcher follows the bot instead of reading the logs."""

    def __init__(self, token: str = "fake-bot-token", *, team: Iterable[str] = (),
                 message_content_intent: bool = True,
                 world: Callable[["FakeDiscord"], None] | None = None, record: bool = True) -> None:
        self.token = token
        self.record = record
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.attachments: dict[int, Attachment] = {}
        self.closed_dms: set[int] = set()  # users whose DMs are closed to the bot: sending there gets 50007
        self.cdn_fetches: Counter[int] = Counter()  # attachment id -> CDN downloads asked for
        self.cdn_open = asyncio.Event()  # cleared: CDN downloads are counted, then held until set
        self.cdn_open.set()
        self.sessions: list[GatewaySession] = []
        self.events: list[BotEvent] = self._log()
        self.requests: list[tuple[str, str, int]] = self._log()
        self.unhandled: list[tuple[str, str]] = self._log()
        self.typing: list[int] = self._log()  # channel ids, one per typing indicator
        # Called at once with each bot event / the channel id of each typing indicator.
        self.event_listeners: list[Callable[[BotEvent], None]] = []
        self.typing_listeners: list[Callable[[int], None]] = []
        self._attachment_bytes = 0
        self.voice_handler: VoiceHandler | None = None
        self.message_content_intent = message_content_intent
        self.refused_identifies: list[int] = self._log()  # intents of each IDENTIFY closed with 4014
        self.interaction_timeout = 3.0  # seconds before an unanswered interaction expires
        self.interactions: list[Interaction] = self._log()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

        if world is not None:
            world(self)
        else:
            self.bot = self.add_user("TestBot", bot=True)
            self.application_id = snowflake()
            self.owner = self.add_user("owner")
            self.alice = self.add_user("alice")
            self.bob = self.add_user("bob")
            self.carol = self.add_user("carol")
            self.team = [self.add_user(name) for name in team]
            self.guild = self.add_guild("Test Guild", owner=self.owner, admins=[self.alice], members=[self.bob])
            self.general = self.text_channel(self.guild, "general")
            self.voice = next(c for c in self.guild.channels.values() if c.type == VOICE_CHANNEL)
            self.guild2 = self.add_guild("Other Guild", owner=self.carol, members=[self.alice, self.bob])
            self.general2 = self.text_channel(self.guild2, "general")
        self._gateway = Gateway(self)
        self._rest = RestRoutes(self)
        self._interactions = InteractionServer(self)
        self.app_commands: CommandRegistry = self._interactions.commands

    def _log(self) -> list:
        """A list that keeps everything, or (record=False) a deque of the newest RECENT."""
        return [] if self.record else deque(maxlen=RECENT)  # type: ignore[return-value]

    # -- the world ---------------------------------------------------------------------------
    def add_user(self, name: str, bot: bool = False, user_id: int | None = None) -> User:
        user = User(user_id or snowflake(), name, bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner: User, admins: Iterable[User] = (), members: Iterable[User] = ()) -> Guild:
        guild = Guild(snowflake(), name, owner.id)
        guild.roles[guild.id] = Role(guild.id, "@everyone", MEMBER_PERMISSIONS)
        admin_role = Role(snowflake(), "Admin", MEMBER_PERMISSIONS | MANAGE_GUILD, position=1)
        bot_role = Role(snowflake(), "Bot", MEMBER_PERMISSIONS, position=2)
        guild.roles[admin_role.id] = admin_role
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot.id] = [bot_role.id]
        guild.members[owner.id] = []
        for user in admins:
            guild.members[user.id] = [admin_role.id]
        for user in members:
            guild.members[user.id] = []
        for cname, ctype in (("general", TEXT_CHANNEL), ("other", TEXT_CHANNEL), ("Voice", VOICE_CHANNEL),
                             ("Voice 2", VOICE_CHANNEL)):
            channel = Channel(snowflake(), cname, ctype, guild_id=guild.id)
            guild.channels[channel.id] = channel
            self.channels[channel.id] = channel
        self.guilds[guild.id] = guild
        return guild

    def text_channel(self, guild: Guild, name: str) -> Channel:
        return next(c for c in guild.channels.values() if c.name == name and c.type == TEXT_CHANNEL)

    def voice_channels(self, guild: Guild) -> list[Channel]:
        return [c for c in guild.channels.values() if c.type == VOICE_CHANNEL]

    def dm_channel(self, user: User) -> Channel:
        for channel in self.channels.values():
            if channel.type == DM_CHANNEL and channel.recipient is user:
                return channel
        channel = Channel(snowflake(), "", DM_CHANNEL, recipient=user)
        self.channels[channel.id] = channel
        return channel

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        """Serve on 127.0.0.1 (``port`` 0: any free port, read back from ``self.port``)."""
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_get("/", self._gateway.handle)
        self._rest.add_routes(app)
        self._interactions.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._rest.unhandled)
        app.middlewares.append(self._rest.record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._interactions.close()
        for session in self.sessions:
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def broadcast(self, event: str, data: dict) -> None:
        """Send a gateway event to every identified session (the bot)."""
        await self._gateway.broadcast(event, data)

    async def set_guild_locale(self, guild: Guild, locale: str) -> None:
        """A server's admin changes its primary language (preferred_locale): the bot gets GUILD_UPDATE."""
        guild.preferred_locale = locale
        await self.broadcast("GUILD_UPDATE", guild.update_payload())

    # -- message payloads --------------------------------------------------------------------
    def message_payload(self, msg: Message, *, for_intents: int | None = None, nested: bool = False) -> dict:
        data: dict = {
            "id": str(msg.id), "channel_id": str(msg.channel.id), "author": msg.author.payload(),
            "content": msg.content, "timestamp": msg.timestamp,
            "edited_timestamp": iso_now() if msg.edited else None, "tts": False,
            "mention_everyone": False, "mentions": [u.payload() for u in msg.mentions], "mention_roles": [],
            "attachments": [a.payload() for a in msg.attachments], "embeds": msg.embeds, "pinned": False,
            "type": 19 if msg.reference_id else 0, "flags": msg.flags, "components": [],
        }
        if msg.message_type is not None:
            data["type"] = msg.message_type
        if msg.interaction_id is not None:
            self._interactions.routes.decorate(msg, data)
        guild_id = msg.channel.guild_id
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
            guild = self.guilds[guild_id]
            if msg.author.id in guild.members:
                member = guild.member_payload(msg.author)
                member.pop("user")
                data["member"] = member
        if msg.reference_id:
            ref = self.messages.get(msg.reference_id)
            data["message_reference"] = {"message_id": str(msg.reference_id), "channel_id": str(msg.channel.id),
                                         "guild_id": str(guild_id) if guild_id else None, "type": 0}
            if not nested:
                data["referenced_message"] = (self.message_payload(ref, nested=True)
                                              if ref is not None and not ref.deleted else None)
        if for_intents is not None and not msg.author.bot:
            mentioned = any(u.id == self.bot.id for u in msg.mentions)
            if not (for_intents & INTENT_MESSAGE_CONTENT) and guild_id is not None and not mentioned:
                data.update(content="", attachments=[], embeds=[], components=[])
        return data

    async def _deliver(self, event: str, msg: Message) -> None:
        """Send a message event to the sessions whose intents ask for it."""
        await self._gateway.deliver(event, msg)

    # -- acting as a user ----------------------------------------------------------------------
    async def send(self, author: User, content: str = "", *, channel: Channel | None = None,
                   attachments: Iterable[tuple[str, bytes, str | None]] = (), reply_to: Message | None = None,
                   voice_message: bool = False, duration: float | None = None) -> Message:
        """Post a message as `author` (default channel: #general) and deliver it to the bot."""
        channel = channel or self.general
        msg = Message(snowflake(), channel, author, content, reference_id=reply_to.id if reply_to else None)
        msg.mentions = self._mentions(content)
        for filename, data, content_type in attachments:
            msg.attachments.append(self._store_attachment(channel, filename, data, content_type,
                                                          duration if voice_message else None))
        if voice_message:
            msg.flags |= FLAG_VOICE_MESSAGE
        self.add_message(msg)
        await self._deliver("MESSAGE_CREATE", msg)
        return msg

    async def dm(self, author: User, content: str = "", **kwargs) -> Message:
        return await self.send(author, content, channel=self.dm_channel(author), **kwargs)

    def _mentions(self, content: str) -> list[User]:
        ids = {int(m) for m in re.findall(r"<@!?(\d+)>", content)}
        return [self.users[i] for i in ids if i in self.users]

    def _store_attachment(self, channel: Channel, filename: str, data: bytes, content_type: str | None,
                          duration: float | None = None) -> Attachment:
        att_id = snowflake()
        url = f"{self.url}/attachments/{channel.id}/{att_id}/{filename}"
        attachment = Attachment(att_id, filename, data, content_type, url, duration)
        self.add_attachment(attachment)
        return attachment

    def add_message(self, msg: Message) -> None:
        """Store `msg` (record=False: the oldest beyond KEEP_MESSAGES are forgotten, with their files)."""
        self.messages[msg.id] = msg
        while not self.record and len(self.messages) > KEEP_MESSAGES:
            oldest = self.messages.pop(next(iter(self.messages)))
            for attachment in oldest.attachments:
                self._forget_attachment(attachment.id)

    def add_attachment(self, attachment: Attachment) -> None:
        """Serve `attachment` on the CDN (record=False: the oldest files beyond
        KEEP_ATTACHMENT_BYTES are forgotten, their bytes dropped; their links then get 404)."""
        self.attachments[attachment.id] = attachment
        self._attachment_bytes += len(attachment.data)
        while not self.record and self._attachment_bytes > KEEP_ATTACHMENT_BYTES and len(self.attachments) > 1:
            oldest = self._forget_attachment(next(iter(self.attachments)))
            if oldest is not None:
                oldest.data = b""  # a message still showing it keeps the name, not the bytes

    def _forget_attachment(self, attachment_id: int) -> Attachment | None:
        attachment = self.attachments.pop(attachment_id, None)
        if attachment is not None:
            self._attachment_bytes -= len(attachment.data)
        return attachment

    def interaction(self, interaction_id: int) -> Interaction | None:
        """The interaction with this id (record=False: one of the newest RECENT)."""
        return self._interactions.records.get(interaction_id)

    # -- waiting for the bot -----------------------------------------------------------------
    async def wait_for_event(self, predicate: Callable[[BotEvent], bool], timeout: float = 10.0,
                             start: int = 0) -> BotEvent:
        """The first bot event (from index `start`) matching `predicate`; no polling."""
        async def find() -> BotEvent:
            async with self._changed:
                index = start
                while True:
                    while index < len(self.events):
                        event = self.events[index]
                        index += 1
                        if predicate(event):
                            return event
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            seen = "\n".join(f"  {e.kind}: {e.message.text[:200]!r}" for e in self.events[-10:])
            raise AssertionError(f"the bot sent nothing matching within {timeout}s; last bot events:\n{seen}") from None

    async def wait_for_message(self, predicate: MessagePredicate = lambda m: True, timeout: float = 10.0,
                               start: int = 0) -> Message:
        event = await self.wait_for_event(lambda e: e.kind == "create" and predicate(e.message), timeout, start)
        return event.message

    async def reply_to(self, msg: Message, predicate: MessagePredicate = lambda m: True,
                       timeout: float = 10.0) -> Message:
        """The bot's reply to `msg`: a message referencing it, or in its DM / channel right after it."""
        return await self.wait_for_message(
            lambda m: m.channel.id == msg.channel.id and m.id > msg.id and predicate(m), timeout)

    async def wait_for_edit(self, message: Message, predicate: MessagePredicate, timeout: float = 30.0) -> Message:
        if predicate(message):
            return message
        event = await self.wait_for_event(
            lambda e: e.kind == "edit" and e.message.id == message.id and predicate(e.message), timeout)
        return event.message

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `condition()` holds; re-checked whenever the fake's state changes."""
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)
        await asyncio.wait_for(check(), timeout)

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def bot_messages(self, channel: Channel | None = None) -> list[Message]:
        return [m for m in self.messages.values()
                if m.author.id == self.bot.id and not m.deleted and (channel is None or m.channel.id == channel.id)]

    def attachment_data(self, attachment: Attachment) -> bytes:
        return self.attachments[attachment.id].data

    def downloads(self, message: Message) -> int:
        """How many times the bot asked the CDN for this message's attachments."""
        return sum(self.cdn_fetches[a.id] for a in message.attachments)

    async def _record_event(self, kind: str, msg: Message) -> None:
        event = BotEvent(kind, msg)
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        for listener in self.event_listeners:
            listener(event)

    # -- acting as a user: interactions (see interaction_server.py) -------------------------------------
    async def slash(self, user: User, name: str, options: dict | None = None, channel: Channel | None = None,
                    subcommand: str | None = None) -> Interaction:
        """Use `/name` (default channel: #general) as the Discord client would; returns at once.

        Options by name: str/int/float/bool, a User, Role or Channel, and for an attachment option
        `(filename, bytes, content_type)`.  `subcommand` is "sub" or "group sub".  Raises
        `CommandUnavailable` (an AssertionError) for a command the client would not offer."""
        return await self._interactions.slash(user, name, options, channel, subcommand)

    async def message_command(self, user: User, name: str, target: Message,
                              channel: Channel | None = None) -> Interaction:
        """Use the message context menu `name` on `target` (Apps > name)."""
        return await self._interactions.message_command(user, name, target, channel)

    async def user_command(self, user: User, name: str, target: User, channel: Channel | None = None) -> Interaction:
        """Use the user context menu `name` on `target`."""
        return await self._interactions.user_command(user, name, target, channel)

    async def autocomplete(self, user: User, name: str, option: str = "name", value: str = "",
                           options: dict | None = None, channel: Channel | None = None,
                           subcommand: str | None = None, timeout: float = 10.0) -> list[dict]:
        """Type `value` into `option` of `/name`; the choices the bot answered ({name, value} dicts)."""
        return await self._interactions.autocomplete(user, name, option, value, options, channel, subcommand,
                                                     timeout)

    async def submit_modal(self, user: User, interaction: Interaction, values: dict) -> Interaction:
        """Fill in and submit the modal the bot answered `interaction` with ({custom_id: text})."""
        return await self._interactions.submit_modal(user, interaction, values)

    # -- voice states (the voice server fills in the rest) ---------------------------------------
    async def set_voice_state(self, guild: Guild, user: User, channel: Channel | None,
                              session_id: str = "") -> None:
        """Move a user into a voice channel (or out with None) and tell the bot."""
        if channel is None:
            guild.voice_states.pop(user.id, None)
        else:
            guild.voice_states[user.id] = channel.id
        await self.broadcast("VOICE_STATE_UPDATE",
                             guild.voice_state_payload(user, channel.id if channel else None, session_id))
        await self.notify()
