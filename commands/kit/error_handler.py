"""The bot's one error handler: every failure becomes a short, friendly reply.

Helpers raise `errors.UserError` (bad dataset, path outside the sandbox, corrupt
audio, busy queue...); its `user_message` is shown as it is.  Anything
unexpected is logged with its traceback and answered with an apology, never a
traceback in chat.
"""
from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from errors import UserError

from .checks import NotServerAdmin
from .replies import respond

log = logging.getLogger("commands.errors")


def user_message_of(error: BaseException) -> str | None:
    """The friendly text of a `UserError`, None for anything else (a bug)."""
    return error.user_message if isinstance(error, UserError) else None


def usage(ctx: commands.Context) -> str:
    command = ctx.command
    assert command is not None
    invocation = f"{ctx.clean_prefix}{command.qualified_name} {command.signature}".strip()
    line = f"Usage: `{invocation}`"
    if command.help:
        line += "\n" + command.help.split("\n\n")[0]
    return line


def describe(ctx: commands.Context, error: commands.CommandError) -> str | None:
    """The reply for `error`, or None when it should be ignored."""
    name = f"`{ctx.clean_prefix}{ctx.command.qualified_name}`" if ctx.command else "That command"
    if isinstance(error, commands.CommandNotFound):
        return None
    if isinstance(error, commands.CommandInvokeError):
        original = error.original
        if (text := user_message_of(original)) is not None:
            return text
        return None  # unexpected: handled by the caller (logged + apology)
    if (text := user_message_of(error)) is not None:
        return text
    if isinstance(error, commands.NotOwner):
        return (f"Sorry, {name} is for the bot's owners only: it reaches the machine the bot runs on, "
                "which no server's admins control.")
    if isinstance(error, NotServerAdmin):
        where = "this server's admins" if ctx.guild is not None else "the bot's owners (in direct messages)"
        return (f"Sorry, {name} is for admins only: {where}"
                f"{' (the Manage Server permission)' if ctx.guild is not None else ''}.")
    if isinstance(error, commands.NoPrivateMessage):
        return f"{name} only works in a server, not in direct messages."
    if isinstance(error, commands.CommandOnCooldown):
        return f"{name} is cooling down: try again in {error.retry_after:.1f} s."
    if isinstance(error, commands.MaxConcurrencyReached):
        return f"{name} is already running; please wait for it to finish."
    if isinstance(error, commands.UserInputError):
        detail = ""
        if isinstance(error, commands.BadArgument):
            detail = f"{error}\n"
        return detail + usage(ctx)
    if isinstance(error, commands.CheckFailure):
        return f"You can't use {name} here."
    return None


async def handle_command_error(ctx: commands.Context, error: commands.CommandError) -> None:
    """Reply to a failed `!command` or `/command`; slash replies are ephemeral."""
    if isinstance(error, commands.HybridCommandError):  # raised by the slash side (option conversion...)
        error = _from_app_error(error.original)
    text = describe(ctx, error)
    if text is None:
        if isinstance(error, commands.CommandNotFound):
            return
        original = getattr(error, "original", error)
        log.error("Command %r failed for message %s", ctx.message.content[:100] or ctx.invoked_with, ctx.message.id,
                  exc_info=(type(original), original, original.__traceback__))
        name = ctx.command.qualified_name if ctx.command else "that"
        text = f"Sorry, something went wrong while running `{ctx.clean_prefix}{name}`. It has been logged."
    try:
        await respond(ctx, text, ephemeral=True)
    except discord.HTTPException:
        log.exception("Could not send the error reply for message %s", ctx.message.id)


def _from_app_error(error: app_commands.AppCommandError) -> commands.CommandError:
    """An app-command error as the prefix side would have raised it, so one `describe` serves both."""
    if isinstance(error, app_commands.TransformerError):
        return commands.BadArgument(f"`{str(error.value)[:50]}` isn't a valid {error.type.name.lower()}.")
    if isinstance(error, app_commands.CommandInvokeError):
        return commands.CommandInvokeError(error.original)
    if isinstance(error, app_commands.CheckFailure):
        return commands.CheckFailure(str(error))
    return commands.CommandInvokeError(error)


async def reply_to_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The app-command side of the one handler: context menus, modals and `/help` (tree.on_error)."""
    original = getattr(error, "original", error)
    name = interaction.command.name if interaction.command else "that"
    if isinstance(original, UserError):
        text = original.user_message
    elif isinstance(error, app_commands.CommandOnCooldown):
        text = f"**{name}** is cooling down: try again in {error.retry_after:.1f} s."
    elif isinstance(error, app_commands.CheckFailure):
        text = "You can't use that here."
    else:
        log.error("App command %r failed", name, exc_info=(type(original), original, original.__traceback__))
        text = f"Sorry, something went wrong while running **{name}**. It has been logged."
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.exception("Could not send the error reply for interaction %s", interaction.id)
