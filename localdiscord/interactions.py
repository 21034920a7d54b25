"""Interactions on the local Discord server: slash commands, context menus, autocomplete, modals.

Tests act as a Discord client would: `FakeDiscord.slash(...)` etc. build an `INTERACTION_CREATE`
from the commands the bot registered (see `appcommands.py`), and refuse what the Discord client
would not let a user send (unregistered commands, missing or mistyped options, commands hidden by
`default_member_permissions` or `contexts`).  The bot answers through the routes here: the
interaction callback (`POST /interactions/{id}/{token}/callback`) and the webhook routes for the
original response and follow-ups.  Discord's rules are kept: one callback per interaction
(40060), 3 s to answer or the interaction expires (10062), ephemeral messages that only the user
sees (no gateway event), a deferral's "thinking" message that the first follow-up fills.
Protocol facts: ../shared/docs/discord-offline-testing.md ("Interactions").
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from aiohttp import web

from . import appcommands as ac
from .appcommands import CommandRegistry, InvalidCommands
from .state import (
    ALL_PERMISSIONS, DM_CHANNEL, FLAG_EPHEMERAL, FLAG_LOADING, Attachment, Channel, Guild,
    Message, Role, User, snowflake,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

# A server made with record=False (the playground) keeps the newest RECENT entries of each log tests
# read (its events, requests, typing indicators) and of its interactions.
RECENT = 500

log = logging.getLogger("fakediscord")

# Interaction types
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
# Callback (response) types
CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
}
RESPONSE_TIMEOUT = 3.0  # seconds Discord gives a bot to answer an interaction
# Message flags a bot may set on an interaction message: suppress embeds, ephemeral, silent,
# voice message, components v2.
SETTABLE_FLAGS = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | (1 << 13) | (1 << 15)
# `app_permissions` in a DM with the bot: ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS.
DM_APP_PERMISSIONS = (1 << 15) | (1 << 14) | (1 << 17) | (1 << 18)

T = TypeVar("T")


def json_response(data: object, status: int = 200) -> web.Response:
    # discord.py needs exactly "application/json" (json_response adds a charset).
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")


def error_response(status: int, code: int, message: str, errors: dict | None = None) -> web.Response:
    body: dict = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status=status)


def _unknown_interaction() -> web.Response:
    return error_response(404, 10062, "Unknown interaction")


def _unknown_webhook() -> web.Response:
    return error_response(404, 10015, "Unknown Webhook")


def _unknown_message() -> web.Response:
    return error_response(404, 10008, "Unknown Message")


def _invalid(message: str) -> web.Response:
    return error_response(400, 50035, "Invalid Form Body", {"data": {"_errors": [{"code": "INVALID", "message": message}]}})


class InteractionRefused(AssertionError):
    """What the Discord client would not let a user send (a missing or mistyped option, another
    user's modal, ...) or Discord would refuse; the message says why.  A real check, kept under
    `python -O` (the playground's page reaches these methods), and an AssertionError so a test
    reads it as a failed expectation."""


class CommandUnavailable(InteractionRefused):
    """The Discord client would not offer this command to this user here (not registered in this
    guild or globally, hidden by `default_member_permissions`, or not allowed in this context)."""


@dataclass(eq=False)
class Interaction:
    """One interaction as the server saw it, and how the bot answered it.

    `callbacks` lists the accepted callback types (at most one); `rejected` the refused callback
    attempts as (type, HTTP status, Discord code); `late_callbacks` the types the bot sent after
    the interaction expired (each answered 404 / 10062).  `original` is the response message (kept
    up to date with edits; a deferral's "thinking" message until filled), `followups` the messages
    sent with the follow-up webhook.  After a deferral, Discord turns the first follow-up into the
    original response: that message is then both `original` and `followups[0]`."""

    id: int
    token: str
    type: int
    user: User
    channel: Channel
    name: str  # the command's name; for a modal submit, the modal's custom_id
    command_type: int = ac.CHAT_INPUT
    payload: dict = field(default_factory=dict, repr=False)  # the INTERACTION_CREATE data sent
    callbacks: list[int] = field(default_factory=list)
    rejected: list[tuple[int, int, int]] = field(default_factory=list)
    late_callbacks: list[int] = field(default_factory=list)
    deferred: bool = False
    ephemeral: bool = False
    modal: dict | None = field(default=None, repr=False)
    choices: list[dict] | None = None
    original: Message | None = field(default=None, repr=False)
    followups: list[Message] = field(default_factory=list, repr=False)
    message: Message | None = field(default=None, repr=False)  # the message an UPDATE_MESSAGE edits
    parent: "Interaction | None" = field(default=None, repr=False)  # a modal submit's opening interaction
    modal_submitted: bool = False
    expired: bool = False
    _fake: "FakeDiscord | None" = field(default=None, repr=False)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def guild_id(self) -> int | None:
        return self.channel.guild_id

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0] if self.callbacks else None

    def describe(self) -> str:
        kind = {APPLICATION_COMMAND: "command", AUTOCOMPLETE: "autocomplete for", MODAL_SUBMIT: "modal submit"}
        prefix = "/" if self.type != MODAL_SUBMIT and self.command_type == ac.CHAT_INPUT else ""
        return f"{kind.get(self.type, 'interaction')} {prefix}{self.name} by {self.user.username}"

    def _state(self) -> str:
        original = None if self.original is None else self.original.text[:200]
        return (f"callbacks {self.callbacks}, rejected {self.rejected}, late {self.late_callbacks}, "
                f"expired {self.expired}, original {original!r}, followups {[m.text[:100] for m in self.followups]}")

    async def _wait(self, found: Callable[[], T | None], what: str, timeout: float) -> T:
        """Wait until `found()` returns something; re-checked whenever the server's state changes."""
        if self._fake is None:
            raise RuntimeError(f"{self.describe()} was not made by a local server")
        changed = self._fake._changed

        async def check() -> T:
            async with changed:
                while True:
                    value = found()
                    if value is not None:
                        return value
                    if self.expired and not self.callbacks:
                        raise AssertionError(f"{self.describe()} expired: the bot did not answer within "
                                             f"{self._fake.interaction_timeout} s ({self._state()})")
                    await changed.wait()
        try:
            return await asyncio.wait_for(check(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.describe()}: no {what} within {timeout}s ({self._state()})") from None

    async def wait_response(self, timeout: float = 10.0) -> "Interaction":
        """Until the bot has answered (any callback type); fails at once if the interaction expired."""
        return await self._wait(lambda: self if self.callbacks else None, "response", timeout)

    async def wait_original(self, predicate: Callable[[Message], bool] = lambda m: True,
                            timeout: float = 10.0) -> Message:
        """The original response message once `predicate` holds for it (e.g. after an edit)."""
        def found() -> Message | None:
            msg = self.original
            return msg if msg is not None and not msg.deleted and predicate(msg) else None
        return await self._wait(found, "original response matching", timeout)

    async def wait_followup(self, predicate: Callable[[Message], bool] = lambda m: True,
                            timeout: float = 10.0) -> Message:
        """The first follow-up message for which `predicate` holds."""
        return await self._wait(lambda: next((m for m in self.followups if predicate(m)), None),
                                "follow-up matching", timeout)


class InteractionServer:
    """The interaction side of a FakeDiscord: builds INTERACTION_CREATE, serves the routes."""

    def __init__(self, fake: "FakeDiscord"):
        self.fake = fake
        self.commands = CommandRegistry(fake.application_id)
        self.records: dict[int, Interaction] = {}
        self.by_token: dict[str, Interaction] = {}
        self._tasks: set[asyncio.Task] = set()

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        for scope in ("/api/v10/applications/{app}", "/api/v10/applications/{app}/guilds/{guild}"):
            r.add_get(scope + "/commands", self._list_commands)
            r.add_put(scope + "/commands", self._overwrite_commands)
            r.add_post(scope + "/commands", self._create_command)
            r.add_get(scope + "/commands/{command}", self._get_command)
            r.add_patch(scope + "/commands/{command}", self._edit_command)
            r.add_delete(scope + "/commands/{command}", self._delete_command)
        r.add_post("/api/v10/interactions/{interaction}/{token}/callback", self._callback)
        r.add_post("/api/v10/webhooks/{app}/{token}", self._followup)
        r.add_get("/api/v10/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message)
        r.add_patch("/api/v10/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message)
        r.add_delete("/api/v10/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message)

    def close(self) -> None:
        for record in self.records.values():
            if record._timer is not None:
                record._timer.cancel()
        for task in self._tasks:
            task.cancel()

    # -- command registration routes -------------------------------------------------------------
    def _scope(self, request: web.Request) -> tuple[int | None, web.Response | None]:
        if int(request.match_info["app"]) != self.fake.application_id:
            return None, error_response(403, 50001, "Missing Access")
        guild = request.match_info.get("guild")
        if guild is None:
            return None, None
        if int(guild) not in self.fake.guilds:
            return None, error_response(404, 10004, "Unknown Guild")
        return int(guild), None

    async def _list_commands(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        return problem or json_response(self.commands.list(scope))

    async def _overwrite_commands(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        if problem:
            return problem
        try:
            stored = self.commands.overwrite(scope, await request.json())
        except InvalidCommands as e:
            log.warning("fake discord: refused command registration: %s", e.errors)
            return error_response(400, 50035, "Invalid Form Body", e.errors)
        await self.fake.notify()
        return json_response(stored)

    async def _create_command(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        if problem:
            return problem
        try:
            stored, created = self.commands.upsert(scope, await request.json())
        except InvalidCommands as e:
            return error_response(400, 50035, "Invalid Form Body", e.errors)
        await self.fake.notify()
        return json_response(stored, status=201 if created else 200)

    async def _get_command(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        if problem:
            return problem
        command = self.commands.get(scope, int(request.match_info["command"]))
        return json_response(command) if command else error_response(404, 10063, "Unknown application command")

    async def _edit_command(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        if problem:
            return problem
        try:
            command = self.commands.edit(scope, int(request.match_info["command"]), await request.json())
        except InvalidCommands as e:
            return error_response(400, 50035, "Invalid Form Body", e.errors)
        await self.fake.notify()
        return json_response(command) if command else error_response(404, 10063, "Unknown application command")

    async def _delete_command(self, request: web.Request) -> web.Response:
        scope, problem = self._scope(request)
        if problem:
            return problem
        if not self.commands.delete(scope, int(request.match_info["command"])):
            return error_response(404, 10063, "Unknown application command")
        await self.fake.notify()
        return web.Response(status=204)

    # -- building INTERACTION_CREATE -------------------------------------------------------------
    def _guild(self, channel: Channel) -> Guild | None:
        return self.fake.guilds[channel.guild_id] if channel.guild_id is not None else None

    def _check_place(self, user: User, channel: Channel) -> Guild | None:
        guild = self._guild(channel)
        if guild is None:
            if channel.type != DM_CHANNEL or channel.recipient is not user:
                raise InteractionRefused(f"{user.username} cannot use a command in someone else's DM")
        elif user.id not in guild.members:
            raise InteractionRefused(f"{user.username} is not a member of {guild.name}")
        return guild

    def _command(self, user: User, name: str, ctype: int, channel: Channel) -> dict:
        """The registered command the Discord client would offer `user` in `channel`."""
        guild = self._check_place(user, channel)
        command = self.commands.find(name, ctype, guild.id if guild else None)
        where = guild.name if guild else "a DM"
        if command is None:
            known = self.commands.names(guild.id if guild else None, ctype) + self.commands.names(None, ctype)
            raise CommandUnavailable(f"no {ac.COMMAND_TYPES[ctype]} command {name!r} is registered for {where} "
                                     f"(registered there or globally: {sorted(set(known))}); "
                                     f"did the bot sync its command tree?")
        contexts = command.get("contexts") if "guild_id" not in command else None  # global commands only
        context = 0 if guild else 1
        if contexts is not None and context not in contexts:
            raise CommandUnavailable(f"{name!r} is not offered in {where} (contexts {contexts})")
        if guild is None and contexts is None and not command.get("dm_permission", True):
            raise CommandUnavailable(f"{name!r} is not offered in DMs (dm_permission false)")
        required = command.get("default_member_permissions")
        if guild is not None and required is not None:
            have = guild.permissions(user.id)
            if have != ALL_PERMISSIONS and (int(required) == 0 or have & int(required) != int(required)):
                raise CommandUnavailable(f"{name!r} is hidden from {user.username} in {where}: "
                                         f"default_member_permissions {required}, they have {have}")
        return command

    def _member_payload(self, guild: Guild, user: User, with_user: bool = True) -> dict:
        member = guild.member_payload(user)
        member["permissions"] = str(guild.permissions(user.id))
        member.update(avatar=None, pending=False, communication_disabled_until=None, premium_since=None)
        if not with_user:
            member.pop("user")
        return member

    def _new(self, itype: int, user: User, channel: Channel, name: str, data: dict,
             command_type: int = ac.CHAT_INPUT) -> Interaction:
        guild = self._guild(channel)
        iid = snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(64)
        limit = self.fake._upload_limit(channel)
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.fake.application_id), "type": itype, "token": token,
            "version": 1, "data": data, "channel_id": str(channel.id), "channel": channel.payload(),
            "locale": "en-US", "entitlements": [], "attachment_size_limit": limit,
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1,
        }
        if guild is not None:
            payload["channel"]["permissions"] = str(guild.permissions(user.id))
            payload.update(guild_id=str(guild.id), guild_locale="en-US",
                           guild={"id": str(guild.id), "locale": "en-US", "features": []},
                           member=self._member_payload(guild, user),
                           app_permissions=str(guild.permissions(self.fake.bot.id)))
        else:
            payload.update(user=user.payload(), app_permissions=str(DM_APP_PERMISSIONS))
        return Interaction(iid, token, itype, user, channel, name, command_type, payload, _fake=self.fake)

    async def _dispatch(self, record: Interaction) -> Interaction:
        session = next((s for s in self.fake.sessions if s.identified and not s.ws.closed), None)
        if session is None:
            raise InteractionRefused("the bot is not connected to the gateway")
        self.records[record.id] = record
        self.by_token[record.token] = record
        self.fake.interactions.append(record)
        while not self.fake.record and len(self.records) > RECENT:  # the playground: the newest only
            old = self.records.pop(next(iter(self.records)))
            self.by_token.pop(old.token, None)
            if old._timer is not None:
                old._timer.cancel()
        loop = asyncio.get_running_loop()
        record._timer = loop.call_later(self.fake.interaction_timeout, self._expire, record)
        await session.dispatch("INTERACTION_CREATE", record.payload)
        return record

    def _expire(self, record: Interaction) -> None:
        if record.callbacks:
            return
        record.expired = True
        task = asyncio.ensure_future(self.fake.notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- options ----------------------------------------------------------------------------------
    def _option_value(self, spec: dict, value: Any, resolved: dict, channel: Channel) -> Any:
        """The wire value of one option, as the Discord client would send it (resolving objects)."""
        otype, name = spec["type"], spec["name"]

        def wrong(expected: str) -> InteractionRefused:
            return InteractionRefused(f"option {name!r} takes {expected}, not {value!r}")

        if otype == ac.STRING:
            if not isinstance(value, str):
                raise wrong("a string")
            lo, hi = spec.get("min_length") or 0, spec.get("max_length") or 6000
            if not lo <= len(value) <= hi:
                raise InteractionRefused(f"option {name!r} must be {lo}..{hi} characters, got {len(value)}")
        elif otype == ac.INTEGER:
            if not isinstance(value, int) or isinstance(value, bool):
                raise wrong("an integer")
        elif otype == ac.NUMBER:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise wrong("a number")
        elif otype == ac.BOOLEAN:
            if not isinstance(value, bool):
                raise wrong("a boolean")
        if otype in (ac.INTEGER, ac.NUMBER):
            lo, hi = spec.get("min_value"), spec.get("max_value")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise InteractionRefused(f"option {name!r} must be within {lo}..{hi}, got {value}")
        if spec.get("choices") and value not in [c["value"] for c in spec["choices"]]:
            raise InteractionRefused(f"option {name!r} must be one of {[c['value'] for c in spec['choices']]}")
        if otype in (ac.STRING, ac.INTEGER, ac.NUMBER, ac.BOOLEAN):
            return value
        guild = self._guild(channel)
        if otype in (ac.USER, ac.MENTIONABLE) and isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = value.payload()
            if guild is not None and value.id in guild.members:
                resolved.setdefault("members", {})[str(value.id)] = self._member_payload(guild, value, with_user=False)
            return str(value.id)
        if otype in (ac.ROLE, ac.MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if otype == ac.CHANNEL and isinstance(value, Channel):
            data = value.payload()
            if guild is not None:
                data["permissions"] = str(guild.permissions(self.fake.bot.id))
            resolved.setdefault("channels", {})[str(value.id)] = data
            return str(value.id)
        if otype == ac.ATTACHMENT:
            if isinstance(value, tuple) and len(value) == 3:
                filename, data, content_type = value
                value = self.fake._store_attachment(channel, filename, data, content_type)
            if not isinstance(value, Attachment):
                raise wrong("(filename, bytes, content_type) or an Attachment")
            resolved.setdefault("attachments", {})[str(value.id)] = {**value.payload(), "ephemeral": True}
            return str(value.id)
        raise wrong({ac.USER: "a User", ac.ROLE: "a Role", ac.CHANNEL: "a Channel",
                     ac.MENTIONABLE: "a User or Role"}.get(otype, "something else"))

    def _options(self, command: dict, given: dict[str, Any], subcommand: str | None, channel: Channel,
                 focused: tuple[str, str] | None = None) -> tuple[list[dict], dict]:
        specs = command.get("options") or []
        path = subcommand.split() if subcommand else []
        wrappers = []
        for part in path:
            spec = next((o for o in specs if o["name"] == part and o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP)),
                        None)
            if spec is None:
                raise InteractionRefused(f"/{command['name']} has no subcommand {part!r}")
            wrappers.append(spec)
            specs = spec.get("options") or []
        if any(o["type"] in (ac.SUBCOMMAND, ac.SUBCOMMAND_GROUP) for o in specs):
            raise InteractionRefused(f"/{' '.join([command['name'], *path])} needs a subcommand: "
                                 f"{[o['name'] for o in specs]}")
        names = {o["name"] for o in specs}
        unknown = set(given) - names - ({focused[0]} if focused else set())
        if unknown or (focused and focused[0] not in names):
            raise InteractionRefused(f"/{command['name']} has no option {sorted(unknown or {focused[0]})}; "
                                 f"its options: {sorted(names)}")
        resolved: dict = {}
        options = []
        for spec in specs:
            name = spec["name"]
            if focused and name == focused[0]:
                if not spec.get("autocomplete"):
                    raise InteractionRefused(f"option {name!r} of /{command['name']} was not registered with "
                                         f"autocomplete, so Discord sends no autocomplete for it")
                options.append({"name": name, "type": spec["type"], "value": focused[1], "focused": True})
            elif given.get(name) is not None:
                options.append({"name": name, "type": spec["type"],
                                "value": self._option_value(spec, given[name], resolved, channel)})
            elif spec.get("required") and focused is None:
                raise InteractionRefused(f"/{command['name']} needs option {name!r} (required)")
        for spec in reversed(wrappers):
            options = [{"name": spec["name"], "type": spec["type"], "options": options}]
        return options, resolved

    def _command_data(self, command: dict, **extra: Any) -> dict:
        data = {"id": command["id"], "name": command["name"], "type": command["type"], **extra}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    # -- what tests call ------------------------------------------------------------------------
    async def slash(self, user: User, name: str, options: dict | None = None, channel: Channel | None = None,
                    subcommand: str | None = None) -> Interaction:
        channel = channel or self.fake.general
        command = self._command(user, name, ac.CHAT_INPUT, channel)
        opts, resolved = self._options(command, options or {}, subcommand, channel)
        data = self._command_data(command, options=opts)
        if resolved:
            data["resolved"] = resolved
        record = self._new(APPLICATION_COMMAND, user, channel, name, data)
        return await self._dispatch(record)

    async def message_command(self, user: User, name: str, target: Message,
                              channel: Channel | None = None) -> Interaction:
        channel = channel or target.channel
        command = self._command(user, name, ac.MESSAGE_COMMAND, channel)
        # Message commands get the target's full content even without the Message Content intent.
        data = self._command_data(command, target_id=str(target.id),
                                  resolved={"messages": {str(target.id): self.fake.message_payload(target)}})
        record = self._new(APPLICATION_COMMAND, user, channel, name, data, ac.MESSAGE_COMMAND)
        return await self._dispatch(record)

    async def user_command(self, user: User, name: str, target: User, channel: Channel | None = None) -> Interaction:
        channel = channel or self.fake.general
        command = self._command(user, name, ac.USER_COMMAND, channel)
        resolved: dict = {}
        self._option_value({"type": ac.USER, "name": "target"}, target, resolved, channel)
        data = self._command_data(command, target_id=str(target.id), resolved=resolved)
        record = self._new(APPLICATION_COMMAND, user, channel, name, data, ac.USER_COMMAND)
        return await self._dispatch(record)

    async def autocomplete(self, user: User, name: str, option: str, value: str = "",
                           options: dict | None = None, channel: Channel | None = None,
                           subcommand: str | None = None, timeout: float = 10.0) -> list[dict]:
        channel = channel or self.fake.general
        command = self._command(user, name, ac.CHAT_INPUT, channel)
        opts, resolved = self._options(command, options or {}, subcommand, channel, focused=(option, value))
        data = self._command_data(command, options=opts)
        if resolved:
            data["resolved"] = resolved
        record = self._new(AUTOCOMPLETE, user, channel, name, data)
        await self._dispatch(record)
        await record.wait_response(timeout)
        if record.choices is None:
            raise InteractionRefused(f"{record.describe()} was answered with {record.callbacks}, not choices")
        return record.choices

    async def submit_modal(self, user: User, interaction: Interaction, values: dict[str, Any]) -> Interaction:
        modal = interaction.modal
        if modal is None:
            raise InteractionRefused(f"{interaction.describe()} was not answered with a modal "
                                     f"({interaction._state()})")
        if user.id != interaction.user.id:
            raise InteractionRefused("only the user who opened a modal can submit it")
        if interaction.modal_submitted:
            raise InteractionRefused("this modal was already submitted (Discord closes it)")
        if not isinstance(values, dict):
            raise InteractionRefused("a modal's values are {custom_id: text}")
        inputs: dict[str, dict] = {}

        def submitted(component: dict) -> dict:
            ctype = component.get("type")
            if ctype == 1:
                return {"type": 1, "id": component.get("id", 0),
                        "components": [submitted(c) for c in component.get("components", [])]}
            if ctype == 18:
                return {"type": 18, "id": component.get("id", 0), "component": submitted(component["component"])}
            out = {"type": ctype, "id": component.get("id", 0)}
            if "custom_id" in component:
                inputs[component["custom_id"]] = component
                out["custom_id"] = component["custom_id"]
                given = values.get(component["custom_id"])
                if ctype == 4:
                    text = "" if given is None else str(given)
                    lo, hi = component.get("min_length") or 0, component.get("max_length") or 4000
                    if component.get("required", True) and not text:
                        raise InteractionRefused(f"modal field {component['custom_id']!r} is required")
                    if text and not lo <= len(text) <= hi:
                        raise InteractionRefused(f"modal field {component['custom_id']!r} takes {lo}..{hi} characters")
                    out["value"] = text
                else:
                    out["values"] = list(given or [])
            return out

        components = [submitted(c) for c in modal.get("components", [])]
        unknown = set(values) - set(inputs)
        if unknown:
            raise InteractionRefused(f"the modal has no field {sorted(unknown)}; its fields: {sorted(inputs)}")
        interaction.modal_submitted = True
        record = self._new(MODAL_SUBMIT, user, interaction.channel, modal["custom_id"],
                              {"custom_id": modal["custom_id"], "components": components},
                              interaction.command_type)
        record.parent = interaction
        return await self._dispatch(record)

    # -- messages made by interactions ----------------------------------------------------------
    def metadata(self, record: Interaction, msg: Message) -> dict:
        """`interaction_metadata` of a message made by `record` (as message payloads carry it)."""
        data: dict[str, Any] = {
            "id": str(record.id), "type": record.type, "user": record.user.payload(),
            "authorizing_integration_owners": record.payload.get("authorizing_integration_owners", {}),
        }
        if record.type == APPLICATION_COMMAND:
            data["name"] = record.name
            data["command_type"] = record.command_type
            target = record.payload.get("data", {}).get("target_id")
            if target and record.command_type == ac.MESSAGE_COMMAND:
                data["target_message_id"] = target
            elif target:
                data["target_user"] = self.fake.users[int(target)].payload()
        if record.original is not None and msg is not record.original:
            data["original_response_message_id"] = str(record.original.id)
        if record.parent is not None:
            data["triggering_interaction_metadata"] = self.metadata(record.parent, msg)
        return data

    def decorate(self, msg: Message, data: dict) -> None:
        """Add what Discord adds to a message an interaction made (called by message_payload)."""
        record = self.records.get(msg.interaction_id or 0)
        data["webhook_id"] = str(self.fake.application_id)
        data["application_id"] = str(self.fake.application_id)
        if record is not None:
            data["interaction_metadata"] = self.metadata(record, msg)
            data["interaction"] = {"id": str(record.id), "type": record.type, "name": record.name,
                                   "user": record.user.payload()}

    async def _create(self, record: Interaction, body: dict, files: list, *, flags: int, followup: bool) -> Message:
        fake = self.fake
        ephemeral = bool(flags & FLAG_EPHEMERAL)
        msg = Message(snowflake(), record.channel, fake.bot, body.get("content") or "",
                      embeds=body.get("embeds") or [])
        msg.flags = flags
        msg.ephemeral = ephemeral
        msg.interaction_id = record.id
        msg.message_type = 0 if followup else (20 if record.command_type == ac.CHAT_INPUT else 23)
        msg.mentions = fake._mentions(msg.content)
        msg.attachments = [fake._store_attachment(record.channel, n, d, c) for n, d, c in files]
        fake.add_message(msg)
        await fake._record_event("create", msg)
        if not ephemeral:
            await fake._deliver("MESSAGE_CREATE", msg)
        return msg

    async def _update(self, msg: Message, body: dict, files: list) -> None:
        fake = self.fake
        msg.edits.append(msg.text)
        if "content" in body:
            msg.content = body["content"] or ""
            msg.mentions = fake._mentions(msg.content)
        if "embeds" in body:
            msg.embeds = body["embeds"] or []
        if "attachments" in body and body["attachments"] is not None:
            keep = {str(a.get("id")) for a in body["attachments"]}
            msg.attachments = [a for a in msg.attachments if str(a.id) in keep]
        msg.attachments += [fake._store_attachment(msg.channel, n, d, c) for n, d, c in files]
        msg.flags &= ~FLAG_LOADING
        msg.edited = True
        await fake._record_event("edit", msg)
        if not msg.ephemeral:
            await fake._deliver("MESSAGE_UPDATE", msg)

    def _check_content(self, channel: Channel, body: dict, files: list, *, creating: bool) -> web.Response | None:
        if (problem := self.fake._check_message(channel, body, files)):
            return problem
        if creating and not (body.get("content") or body.get("embeds") or files or body.get("components")):
            return error_response(400, 50006, "Cannot send an empty message")
        return None

    # -- the callback -----------------------------------------------------------------------------
    async def _callback(self, request: web.Request) -> web.Response:
        record = self.records.get(int(request.match_info["interaction"]))
        if record is None or record.token != request.match_info["token"]:
            return _unknown_interaction()
        body, files = await self.fake._read_body(request)
        ctype = body.get("type")
        data = body.get("data") or {}
        if record.expired:
            record.late_callbacks.append(ctype)
            await self.fake.notify()
            log.warning("fake discord: %s answered after it expired", record.describe())
            return _unknown_interaction()
        if record.callbacks:
            record.rejected.append((ctype, 400, 40060))
            await self.fake.notify()
            return error_response(400, 40060, "Interaction has already been acknowledged.")
        problem = self._check_callback(record, ctype, data, files)
        if problem is not None:
            record.rejected.append((ctype, problem.status, json.loads(problem.body)["code"]))
            await self.fake.notify()
            return problem
        if record._timer is not None:
            record._timer.cancel()
        record.callbacks.append(ctype)
        flags = int(data.get("flags") or 0) & SETTABLE_FLAGS
        message: Message | None = None
        if ctype == CHANNEL_MESSAGE:
            record.ephemeral = bool(flags & FLAG_EPHEMERAL)
            message = record.original = await self._create(record, data, files, flags=flags, followup=False)
        elif ctype == DEFERRED_MESSAGE:
            record.deferred = True
            record.ephemeral = bool(flags & FLAG_EPHEMERAL)
            record.original = await self._create(record, {}, [], flags=(flags & FLAG_EPHEMERAL) | FLAG_LOADING,
                                                 followup=False)
        elif ctype == DEFERRED_UPDATE:
            record.deferred = True
        elif ctype == UPDATE_MESSAGE and record.message is not None:  # checked above
            message = record.message
            await self._update(message, data, files)
        elif ctype == AUTOCOMPLETE_RESULT:
            record.choices = list(data.get("choices") or [])
        elif ctype == MODAL:
            record.modal = data
        await self.fake.notify()
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        answer: dict[str, Any] = {"interaction": {"id": str(record.id), "type": record.type}}
        resource: dict[str, Any] = {"type": ctype}
        if record.original is not None and ctype in (CHANNEL_MESSAGE, DEFERRED_MESSAGE):
            answer["interaction"].update(response_message_id=str(record.original.id),
                                         response_message_loading=ctype == DEFERRED_MESSAGE,
                                         response_message_ephemeral=record.ephemeral)
        if message is not None:
            resource["message"] = self.fake.message_payload(message)
        answer["resource"] = resource
        return json_response(answer)

    def _check_callback(self, record: Interaction, ctype: Any, data: dict, files: list) -> web.Response | None:
        if ctype not in ALLOWED_CALLBACKS.get(record.type, set()):
            return _invalid(f"callback type {ctype!r} is not valid for interaction type {record.type}")
        if ctype == CHANNEL_MESSAGE:
            return self._check_content(record.channel, data, files, creating=True)
        if ctype == UPDATE_MESSAGE:
            if record.message is None:
                return _invalid("this interaction has no message to update")
            return self._check_content(record.channel, data, files, creating=False)
        if ctype == AUTOCOMPLETE_RESULT:
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > 25:
                return _invalid("choices: a list of at most 25")
            if any(not isinstance(c, dict) or not 1 <= len(str(c.get("name", ""))) <= 100 or "value" not in c
                   for c in choices):
                return _invalid("each choice needs a name of 1..100 characters and a value")
        if ctype == MODAL:
            components = data.get("components")
            if not 1 <= len(str(data.get("custom_id") or "")) <= 100:
                return _invalid("modal custom_id: 1..100 characters")
            if not 1 <= len(str(data.get("title") or "")) <= 45:
                return _invalid("modal title: 1..45 characters")
            if not isinstance(components, list) or not 1 <= len(components) <= 5:
                return _invalid("modal components: 1..5")
        return None

    # -- webhook routes: original response and follow-ups ------------------------------------------
    def _webhook_record(self, request: web.Request) -> Interaction | None:
        record = self.by_token.get(request.match_info["token"])
        if (record is None or int(request.match_info["app"]) != self.fake.application_id
                or (record.expired and not record.callbacks)):
            return None
        return record

    def _webhook_message(self, record: Interaction, message_id: str) -> Message | None:
        if message_id == "@original":
            msg = record.original
        else:
            msg = next((m for m in [record.original, *record.followups]
                        if m is not None and str(m.id) == message_id), None)
        return None if msg is None or msg.deleted else msg

    async def _followup(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if record is None or not record.callbacks or record.response_type == AUTOCOMPLETE_RESULT:
            return _unknown_webhook()
        body, files = await self.fake._read_body(request)
        if (problem := self._check_content(record.channel, body, files, creating=True)):
            return problem
        original = record.original
        if original is not None and original.flags & FLAG_LOADING and not original.deleted:
            # Right after a deferral, Discord makes a follow-up edit the "thinking" message instead
            # (deprecated, kept for compatibility); the deferral's ephemerality stays.
            await self._update(original, body, files)
            msg = original
        else:
            flags = int(body.get("flags") or 0) & SETTABLE_FLAGS
            msg = await self._create(record, body, files, flags=flags, followup=True)
        record.followups.append(msg)
        await self.fake.notify()
        return json_response(self.fake.message_payload(msg))  # for follow-ups `wait` is always true

    def _find_webhook_message(self, request: web.Request):
        """(message, None), or (None, the 404 Discord gives for an unknown webhook or message)."""
        record = self._webhook_record(request)
        if record is None:
            return None, _unknown_webhook()
        msg = self._webhook_message(record, request.match_info["message"])
        return (msg, None) if msg is not None else (None, _unknown_message())

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        return problem or json_response(self.fake.message_payload(msg))

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        if problem is not None:
            return problem
        body, files = await self.fake._read_body(request)
        if (problem := self._check_content(msg.channel, body, files, creating=False)):
            return problem
        content = body["content"] if "content" in body else msg.content
        embeds = body["embeds"] if "embeds" in body else msg.embeds
        kept = msg.attachments
        if body.get("attachments") is not None:
            kept = [a for a in msg.attachments if str(a.id) in {str(x.get("id")) for x in body["attachments"]}]
        if not (content or embeds or kept or files or body.get("components")):
            return error_response(400, 50006, "Cannot send an empty message")
        await self._update(msg, body, files)
        await self.fake.notify()
        return json_response(self.fake.message_payload(msg))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        msg, problem = self._find_webhook_message(request)
        if problem is not None:
            return problem
        msg.deleted = True
        await self.fake._record_event("delete", msg)
        return web.Response(status=204)

