"""Who may do what, and whose data a message belongs to."""
from __future__ import annotations

import discord
from discord.ext import commands


class NotAdmin(commands.CheckFailure):
    """Raised by `admin_only`; the error handler turns it into a visible explanation."""


def scope_of(message: discord.Message) -> str:
    """The data scope of a message: its guild, or the author's own DM scope."""
    if message.guild is not None:
        return str(message.guild.id)
    return f"dm-{message.author.id}"


def is_admin(bot: commands.Bot, author: discord.abc.User, guild: discord.Guild | None) -> bool:
    """Owners (OWNER_IDS) everywhere; members with Manage Server in their own guild."""
    if author.id in bot.settings.owner_ids:  # type: ignore[attr-defined]
        return True
    if guild is None or not isinstance(author, discord.Member):
        return False
    return guild.owner_id == author.id or author.guild_permissions.manage_guild


def admin_only():
    async def predicate(ctx: commands.Context) -> bool:
        if not is_admin(ctx.bot, ctx.author, ctx.guild):
            raise NotAdmin(ctx.command.qualified_name if ctx.command else "")
        return True
    return commands.check(predicate)


def upload_limit(channel: discord.abc.Messageable) -> int:
    """Largest file the bot may attach in this channel."""
    guild = getattr(channel, "guild", None)
    return guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
