"""One chat message kept up to date with a background job's progress (training).

Typed `!train`: a reply to the command.  `/train`: the interaction's response (after a
deferral, the first follow-up *is* the original response), edited through its token.
"""
from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

from .replies import respond

log = logging.getLogger("commands.status")


class StatusMessage:
    """Updates may arrive before the message exists or while an edit is in flight:
    only the newest text is ever shown, and edits never overtake each other."""

    def __init__(self, ctx: commands.Context, header: str = ""):
        self.ctx = ctx
        self.header = header
        self.message: discord.Message | None = None
        self.latest: str | None = None
        self._lock = asyncio.Lock()

    def _render(self, text: str) -> str:
        return f"{self.header}\n{text}" if self.header else text

    async def send(self, text: str) -> None:
        async with self._lock:
            text, self.latest = self.latest or text, None
            self.message = (await respond(self.ctx, self._render(text)[:2000]))[0]

    async def update(self, status) -> None:
        self.latest = f"Training job `{status.job_id}`: {status.message}"
        async with self._lock:
            if self.message is None or self.latest is None:
                return
            text, self.latest = self.latest, None
            try:
                await self.message.edit(content=self._render(text)[:2000])
            except discord.HTTPException:
                log.exception("Could not update the status message")
