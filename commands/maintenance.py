"""Housekeeping on a timer: database rows past their retention are deleted.

The loop must outlive any one failed run: `tasks.loop` ends for good once an exception leaves
its body (it only retries connection errors by itself), so each run catches and logs its own
failure and the next hour tries again. A locked database (another writer holding the lock past
sqlite's busy timeout) is retried a few times with backoff within the run before giving up.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.maintenance")

# Seconds to wait before each retry of a run that found the database locked.
LOCKED_RETRY_DELAYS = (1.0, 5.0, 30.0)


def is_locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error).lower()


class Maintenance(commands.Cog):
    """No commands: prunes expired rows at start and every hour."""

    def __init__(self, bot: ChatBot, locked_retry_delays: Sequence[float] = LOCKED_RETRY_DELAYS):
        self.bot = bot
        self.locked_retry_delays = tuple(locked_retry_delays)

    async def cog_load(self) -> None:
        self.prune.start()

    async def cog_unload(self) -> None:
        self.prune.cancel()

    @tasks.loop(hours=1)
    async def prune(self) -> None:
        try:
            deleted = await self.prune_retrying_locked()
        except Exception:  # noqa: BLE001 - one failed run must not end the loop
            log.exception("Pruning expired rows failed; trying again at the next run")
            return
        if any(deleted.values()):
            log.info("Deleted expired rows: %s", ", ".join(f"{t} {n}" for t, n in deleted.items() if n))

    async def prune_retrying_locked(self) -> dict[str, int]:
        delays = iter(self.locked_retry_delays)
        while True:
            try:
                return await self.bot.db.prune_expired()
            except sqlite3.OperationalError as error:
                delay = next(delays, None)
                if not is_locked(error) or delay is None:
                    raise
                log.warning("Pruning expired rows: database is locked; retrying in %.1f s", delay)
                await asyncio.sleep(delay)

    @prune.error
    async def prune_failed(self, error: BaseException) -> None:
        # Only reached if something escapes the run's own handler (a bug): say the loop stopped.
        log.error("Pruning expired rows stopped", exc_info=error)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Maintenance(bot))
