"""Voice commands: `!join` and `!leave`. The voice manager (`commands/voice.py`) does the work."""
from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

if TYPE_CHECKING:
    from bot import ChatBot


class Voice(commands.Cog):
    """Join and leave voice channels."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.command()
    @commands.guild_only()
    async def join(self, ctx: commands.Context) -> None:
        """Join your voice channel (or move to it)."""
        await self.bot.voice.join(ctx)

    @commands.command()
    @commands.guild_only()
    async def leave(self, ctx: commands.Context) -> None:
        """Leave the voice channel."""
        await self.bot.voice.leave(ctx)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Voice(bot))
