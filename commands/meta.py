"""Meta: greeting and instructions."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from errors import UserError

from .replies import send_reply

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.meta")


class Meta(commands.Cog):
    """Greeting and help."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.command()
    async def hi(self, ctx: commands.Context) -> None:
        """Say hello."""
        await send_reply(ctx.message, f"Hi {ctx.author.display_name}! 👋 I answer messages, listen to voice "
                                      f"messages and can speak in voice channels. Try `{ctx.clean_prefix}help`.")

    @commands.command()
    async def instruction(self, ctx: commands.Context) -> None:
        """Send the bot's instructions (every command, with examples)."""
        path = self.bot.settings.instructions_file
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            raise UserError("The instructions file is missing; ask the bot's owner to restore it "
                            f"(INSTRUCTIONS_FILE, currently `{path.name}`).") from None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("Cannot read instructions file %s: %s", path, exc)
            raise UserError("The instructions file cannot be read; ask the bot's owner to check it.") from None
        if not text.strip():
            raise UserError("The instructions file is empty; ask the bot's owner to write some instructions.")
        await send_reply(ctx.message, text.replace("{prefix}", ctx.clean_prefix))


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Meta(bot))
