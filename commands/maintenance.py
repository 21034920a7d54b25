"""Housekeeping on a timer: database rows past their retention are deleted."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.maintenance")


class Maintenance(commands.Cog):
    """No commands: prunes expired rows at start and every hour."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    async def cog_load(self) -> None:
        self.prune.start()

    async def cog_unload(self) -> None:
        self.prune.cancel()

    @tasks.loop(hours=1)
    async def prune(self) -> None:
        deleted = await self.bot.db.prune_expired()
        if any(deleted.values()):
            log.info("Deleted expired rows: %s", ", ".join(f"{t} {n}" for t, n in deleted.items() if n))

    @prune.error
    async def prune_failed(self, error: BaseException) -> None:
        log.error("Pruning expired rows failed", exc_info=error)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Maintenance(bot))
