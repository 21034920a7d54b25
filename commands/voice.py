"""Voice channels: joining, leaving and speaking replies (placeholder until the voice issue lands)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from .replies import send_reply

if TYPE_CHECKING:
    from bot import ChatBot


class VoiceManager:
    def __init__(self, bot: ChatBot):
        self.bot = bot

    async def join(self, ctx: commands.Context) -> None:
        await send_reply(ctx.message, "Voice is not available yet.")

    async def leave(self, ctx: commands.Context) -> None:
        await send_reply(ctx.message, "Voice is not available yet.")

    async def speak_reply(self, message: discord.Message, text: str) -> None:
        """Speak `text` in the author's voice channel, if they are in one."""

    async def close(self) -> None:
        """Stop playback and disconnect everywhere."""
