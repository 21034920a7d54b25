"""Meta: greeting, instructions, help, and syncing the slash commands."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from errors import Phrase, UserError
from storage.languages import ENGLISH

from .kit import help as help_text
from .kit.i18n import words_for
from .kit.replies import respond

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.meta")


class Meta(commands.Cog):
    """Greeting, help and slash-command syncing."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.hybrid_command()
    async def hi(self, ctx: commands.Context) -> None:
        """Say hello."""
        _ = await words_for(ctx)
        await respond(ctx, _("Hi {name}! 👋 I answer messages, listen to voice messages and can speak in voice "
                             "channels. Try `{prefix}help`.", name=ctx.author.display_name, prefix=ctx.clean_prefix))

    @commands.hybrid_command()
    async def instruction(self, ctx: commands.Context) -> None:
        """Send the bot's instructions (every command, with examples)."""
        path = self.bot.settings.instructions_file
        _ = await words_for(ctx)
        translated = path.with_name(f"{path.stem}.{_.language}{path.suffix}")  # instructions.ru.md beside it
        if _.language != ENGLISH and await asyncio.to_thread(translated.is_file):
            path = translated
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            raise UserError(Phrase("The instructions file is missing; ask the bot's owner to restore it "
                                   "(INSTRUCTIONS_FILE, currently `{name}`).", name=path.name)) from None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("Cannot read instructions file %s: %s", path, exc)
            raise UserError(Phrase("The instructions file cannot be read; ask the bot's owner to check it.")) from None
        if not text.strip():
            raise UserError(Phrase("The instructions file is empty; ask the bot's owner to write some instructions."))
        await respond(ctx, text.replace("{prefix}", self.bot.settings.command_prefix))

    @app_commands.command(name="help")
    @app_commands.describe(command="A command to explain (leave empty for the list)")
    async def slash_help(self, interaction: discord.Interaction, command: str | None = None) -> None:
        """Show the commands, or one command's usage."""
        prefix = self.bot.settings.command_prefix
        _ = await words_for(interaction)
        if command:
            found = self.bot.get_command(command.strip().lstrip("/!"))
            text = (help_text.detail(found, prefix, _) if found
                    else _("There is no command called `{name}`.", name=command[:50]))
        else:
            text = help_text.overview(self.bot, prefix, _)
        await interaction.response.send_message(text[:2000], ephemeral=True)

    @slash_help.autocomplete("command")
    async def help_complete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = sorted(c.qualified_name for c in self.bot.walk_commands() if not c.hidden)
        return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n][:25]

    @commands.command()
    @commands.is_owner()
    @commands.guild_only()
    async def sync(self, ctx: commands.Context, scope: Literal["here", "global", "clear"] = "here") -> None:
        """Register the slash commands with Discord. (bot owners)

        `!sync`: in this server only, at once (the global commands are copied here).
        `!sync global`: everywhere; Discord can take up to an hour to show them.
        `!sync clear`: remove this server's copies (the global ones stay).
        Run it after installing or updating the bot. Discord rate-limits syncing, so the bot
        never does it by itself."""
        tree = self.bot.tree
        _ = await words_for(ctx)
        if scope == "global":
            synced = await tree.sync()
            await respond(ctx, _.n("Synced {count} command globally. Discord may take up to an hour to show it.",
                                   "Synced {count} commands globally. Discord may take up to an hour to show them.",
                                   len(synced)))
        elif scope == "clear":
            tree.clear_commands(guild=ctx.guild)
            await tree.sync(guild=ctx.guild)
            await respond(ctx, _("Removed this server's slash commands (the global ones stay)."))
        else:
            tree.copy_global_to(guild=ctx.guild)
            synced = await tree.sync(guild=ctx.guild)
            await respond(ctx, _.n("Synced {count} command to this server.", "Synced {count} commands to this server.",
                                   len(synced)))


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Meta(bot))
