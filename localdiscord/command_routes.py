"""The routes a bot registers its application commands with (global and per guild).

discord.py's `tree.sync()` PUTs the whole list; single commands can be created, read, edited and
deleted.  What arrives is checked and stored by `CommandRegistry` (appcommands.py); a refused
registration answers 400 / 50035 with the errors, as Discord does.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from .appcommands import CommandRegistry, InvalidCommands
from .responses import error_response, json_response

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fakediscord")


class CommandRoutes:
    """`/applications/{app}[/guilds/{guild}]/commands[/{command}]` for one FakeDiscord."""

    def __init__(self, fake: "FakeDiscord", commands: CommandRegistry):
        self.fake = fake
        self.commands = commands

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        for scope in ("/api/v10/applications/{app}", "/api/v10/applications/{app}/guilds/{guild}"):
            r.add_get(scope + "/commands", self._list_commands)
            r.add_put(scope + "/commands", self._overwrite_commands)
            r.add_post(scope + "/commands", self._create_command)
            r.add_get(scope + "/commands/{command}", self._get_command)
            r.add_patch(scope + "/commands/{command}", self._edit_command)
            r.add_delete(scope + "/commands/{command}", self._delete_command)

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
        """The list leaves the localization maps out unless `?with_localizations=true`, as Discord does."""
        scope, problem = self._scope(request)
        if problem:
            return problem
        commands = self.commands.list(scope)
        if request.query.get("with_localizations", "false").lower() != "true":
            commands = [_without_localizations(c) for c in commands]
        return json_response(commands)

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


def _without_localizations(item: dict) -> dict:
    """A command (or option, or choice) without its name_localizations / description_localizations maps."""
    kept = {k: v for k, v in item.items() if k not in ("name_localizations", "description_localizations")}
    for key in ("options", "choices"):
        if isinstance(kept.get(key), list):
            kept[key] = [_without_localizations(o) if isinstance(o, dict) else o for o in kept[key]]
    return kept
