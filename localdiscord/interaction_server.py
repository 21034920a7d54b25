"""The interaction side of a FakeDiscord: what users do becomes INTERACTION_CREATE for the bot.

`InteractionServer` holds the commands the bot registered and the interactions dispatched (by id
and by token, as the bot's answers name them), builds each INTERACTION_CREATE as Discord would
(after interaction_input.py checked what the client lets the user send), dispatches it on the
gateway and expires it when the bot does not answer in time.  The bot's answers arrive on the
routes in interaction_routes.py, its command registrations on those in command_routes.py.
"""
from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import appcommands as ac
from .appcommands import CommandRegistry
from .command_routes import CommandRoutes
from .interaction_input import ClientInput
from .interaction_routes import InteractionRoutes
from .interactions import (
    APPLICATION_COMMAND, AUTOCOMPLETE, DM_APP_PERMISSIONS, MODAL_SUBMIT, RECENT, Interaction, InteractionRefused,
)
from .rest import upload_limit
from .state import Channel, Message, User, snowflake

if TYPE_CHECKING:
    from .server import FakeDiscord


class InteractionServer:
    """The interaction side of a FakeDiscord: builds INTERACTION_CREATE, serves the routes."""

    def __init__(self, fake: "FakeDiscord"):
        self.fake = fake
        self.commands = CommandRegistry(fake.application_id)
        self.records: dict[int, Interaction] = {}
        self.by_token: dict[str, Interaction] = {}
        self._tasks: set[asyncio.Task] = set()
        self.input = ClientInput(fake, self.commands)
        self.routes = InteractionRoutes(fake, self.records, self.by_token)
        self.command_routes = CommandRoutes(fake, self.commands)

    def add_routes(self, app: web.Application) -> None:
        self.command_routes.add_routes(app)
        self.routes.add_routes(app)

    def close(self) -> None:
        for record in self.records.values():
            if record._timer is not None:
                record._timer.cancel()
        for task in self._tasks:
            task.cancel()

    # -- building and dispatching INTERACTION_CREATE ---------------------------------------------
    def _new(self, itype: int, user: User, channel: Channel, name: str, data: dict,
             command_type: int = ac.CHAT_INPUT) -> Interaction:
        guild = self.input.guild(channel)
        iid = snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(64)
        limit = upload_limit(self.fake, channel)
        payload: dict[str, Any] = {
            "id": str(iid), "application_id": str(self.fake.application_id), "type": itype, "token": token,
            "version": 1, "data": data, "channel_id": str(channel.id), "channel": channel.payload(),
            "locale": user.locale, "entitlements": [], "attachment_size_limit": limit,
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1,
        }
        if guild is not None:
            payload["channel"]["permissions"] = str(guild.permissions(user.id))
            payload.update(guild_id=str(guild.id), guild_locale=guild.preferred_locale,
                           guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                           member=self.input.member_payload(guild, user),
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

    # -- what tests call (through FakeDiscord) ---------------------------------------------------
    async def slash(self, user: User, name: str, options: dict | None = None, channel: Channel | None = None,
                    subcommand: str | None = None) -> Interaction:
        channel = channel or self.fake.general
        data = self.input.chat_input_data(user, name, options, subcommand, channel)
        record = self._new(APPLICATION_COMMAND, user, channel, name, data)
        return await self._dispatch(record)

    async def message_command(self, user: User, name: str, target: Message,
                              channel: Channel | None = None) -> Interaction:
        channel = channel or target.channel
        command = self.input.command(user, name, ac.MESSAGE_COMMAND, channel)
        # Message commands get the target's full content even without the Message Content intent.
        data = self.input.command_data(command, target_id=str(target.id),
                                       resolved={"messages": {str(target.id): self.fake.message_payload(target)}})
        record = self._new(APPLICATION_COMMAND, user, channel, name, data, ac.MESSAGE_COMMAND)
        return await self._dispatch(record)

    async def user_command(self, user: User, name: str, target: User, channel: Channel | None = None) -> Interaction:
        channel = channel or self.fake.general
        command = self.input.command(user, name, ac.USER_COMMAND, channel)
        resolved: dict = {}
        self.input.option_value({"type": ac.USER, "name": "target"}, target, resolved, channel)
        data = self.input.command_data(command, target_id=str(target.id), resolved=resolved)
        record = self._new(APPLICATION_COMMAND, user, channel, name, data, ac.USER_COMMAND)
        return await self._dispatch(record)

    async def autocomplete(self, user: User, name: str, option: str, value: str = "",
                           options: dict | None = None, channel: Channel | None = None,
                           subcommand: str | None = None, timeout: float = 10.0) -> list[dict]:
        channel = channel or self.fake.general
        data = self.input.chat_input_data(user, name, options, subcommand, channel, focused=(option, value))
        record = self._new(AUTOCOMPLETE, user, channel, name, data)
        await self._dispatch(record)
        await record.wait_response(timeout)
        if record.choices is None:
            raise InteractionRefused(f"{record.describe()} was answered with {record.callbacks}, not choices")
        return record.choices

    async def submit_modal(self, user: User, interaction: Interaction, values: dict[str, Any]) -> Interaction:
        components = self.input.modal_submission(user, interaction, values)
        modal = interaction.modal or {}  # not None: modal_submission checked it
        interaction.modal_submitted = True
        record = self._new(MODAL_SUBMIT, user, interaction.channel, modal["custom_id"],
                           {"custom_id": modal["custom_id"], "components": components},
                           interaction.command_type)
        record.parent = interaction
        return await self._dispatch(record)
