"""Who may do what, and whose data a message belongs to.

Three kinds of people, as the README's security section says:
- the bot's **owners** (OWNER_IDS plus the application's owner or team): anything that
  touches the host (its files folder, archives) is theirs alone, through discord.py's
  own `commands.is_owner()`;
- a server's **admins** (Manage Server, or the server's owner): that server's own data
  (training, dataset selection, its feedback), and nothing else;
- **members**: everything else, with cooldowns on the expensive commands.
"""
from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from storage.scopes import scope_key


class NotServerAdmin(commands.CheckFailure):
    """Raised by `server_admin_only`; the error handler turns it into a visible explanation."""


def scope_of(origin: discord.Message | commands.Context | discord.Interaction) -> str:
    """The data scope of a message, command or interaction: its server, or the author's own DM
    scope (storage/scopes.py has the rule; listening in voice uses it too)."""
    if isinstance(origin, discord.Interaction):
        guild_id, author = origin.guild_id, origin.user
    else:
        guild_id, author = (origin.guild.id if origin.guild is not None else None), origin.author
    return scope_key(guild_id, author.id)


def is_owner_id(bot: commands.Bot, user_id: int) -> bool:
    """Owner check without a coroutine; `bot.owner_ids` is filled in `setup_hook`."""
    return user_id in (bot.owner_ids or ())


def is_server_admin(bot: commands.Bot, author: discord.abc.User, guild: discord.Guild | None) -> bool:
    """Owners everywhere; the server's owner and members with Manage Server in their own server.

    Not in DMs: anyone can DM the bot, and training costs the host CPU and disk."""
    if is_owner_id(bot, author.id):
        return True
    if guild is None or not isinstance(author, discord.Member):
        return False
    return guild.owner_id == author.id or author.guild_permissions.manage_guild


def server_admin_only():
    """A check for commands that change a server's own data."""
    async def predicate(ctx: commands.Context) -> bool:
        if not is_server_admin(ctx.bot, ctx.author, ctx.guild):
            raise NotServerAdmin(ctx.command.qualified_name if ctx.command else "")
        return True
    return commands.check(predicate)


def owner_exempt_cooldown(rate: int = 1, per_setting: str = "cooldown_seconds"):
    """A per-user cooldown of `rate` uses per `settings.<per_setting>` seconds; none for owners
    (and none when the setting is 0). Built on `commands.dynamic_cooldown`."""
    def factory(ctx: commands.Context) -> commands.Cooldown | None:
        per = float(getattr(ctx.bot.settings, per_setting))
        if per <= 0 or is_owner_id(ctx.bot, ctx.author.id):
            return None
        return commands.Cooldown(rate, per)
    return commands.dynamic_cooldown(factory, commands.BucketType.user)


def owner_exempt_app_cooldown(rate: int = 1, per_setting: str = "cooldown_seconds"):
    """`owner_exempt_cooldown` for an app command (a context menu): the same rate per
    `settings.<per_setting>` seconds per user, none for owners. Built on
    `app_commands.checks.dynamic_cooldown`; its `CommandOnCooldown` gets a polite reply in
    `error_handler.reply_to_interaction_error`. Use on a `ContextMenu` object: `...(rate=3)(menu)`."""
    def factory(interaction: discord.Interaction) -> app_commands.Cooldown | None:
        bot = interaction.client
        per = float(getattr(bot.settings, per_setting))  # type: ignore[attr-defined]
        if per <= 0 or is_owner_id(bot, interaction.user.id):  # type: ignore[arg-type]
            return None
        return app_commands.Cooldown(rate, per)
    return app_commands.checks.dynamic_cooldown(factory, key=lambda interaction: interaction.user.id)

