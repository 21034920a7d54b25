"""The bot's one error handler: every failure becomes a short, friendly reply.

Helpers raise `errors.UserError` (bad dataset, path outside the sandbox, corrupt
audio, busy queue...); its `user_message` is shown in the reader's language: an
`errors.Phrase` (English template + values) is looked up in the catalog and filled
in, so audio/, model/ and storage/ stay free of Discord and of languages.  Anything
unexpected is logged with its traceback and answered with an apology, never a
traceback in chat.
"""
from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from errors import Phrase, UserError

from .checks import NotServerAdmin
from .i18n import Words, words_for
from .replies import respond

log = logging.getLogger("commands.errors")


def user_message_of(error: BaseException) -> str | None:
    """The friendly text of a `UserError` (a Phrase, or a str: in English), None for anything else (a bug)."""
    return error.user_message if isinstance(error, UserError) else None


def usage(ctx: commands.Context, _: Words) -> str:
    command = ctx.command
    assert command is not None
    invocation = f"{ctx.clean_prefix}{command.qualified_name} {command.signature}".strip()
    line = _("Usage: `{invocation}`", invocation=invocation)
    if command.help:
        line += "\n" + _(command.help).split("\n\n")[0].replace("`!", f"`{ctx.clean_prefix}")
    return line


def describe(ctx: commands.Context, error: commands.CommandError, _: Words) -> str | None:
    """The reply for `error` in `_`'s language, or None when it should be ignored."""
    name = f"`{ctx.clean_prefix}{ctx.command.qualified_name}`" if ctx.command else _("That command")
    if isinstance(error, commands.CommandNotFound):
        return None
    if isinstance(error, commands.CommandInvokeError):
        original = error.original
        if (text := user_message_of(original)) is not None:
            return _(text)
        return None  # unexpected: handled by the caller (logged + apology)
    if (text := user_message_of(error)) is not None:
        return _(text)
    if isinstance(error, commands.NotOwner):
        return _("Sorry, {name} is for the bot's owners only: it reaches the machine the bot runs on, "
                 "which no server's admins control.", name=name)
    if isinstance(error, NotServerAdmin):
        if ctx.guild is not None:
            return _("Sorry, {name} is for admins only: this server's admins (the Manage Server permission).",
                     name=name)
        return _("Sorry, {name} is for admins only: the bot's owners (in direct messages).", name=name)
    if isinstance(error, commands.NoPrivateMessage):
        return _("{name} only works in a server, not in direct messages.", name=name)
    if isinstance(error, commands.CommandOnCooldown):
        return _("{name} is cooling down: try again in {seconds:.1f} s.", name=name, seconds=error.retry_after)
    if isinstance(error, commands.MaxConcurrencyReached):
        return _("{name} is already running; please wait for it to finish.", name=name)
    if isinstance(error, commands.UserInputError):
        detail = ""
        if isinstance(error, commands.BadArgument):  # ours are Phrases; discord.py's converters speak English
            reason = error.args[0] if error.args else str(error)
            detail = (_(reason) if isinstance(reason, Phrase) else str(error)) + "\n"
        return detail + usage(ctx, _)
    if isinstance(error, commands.CheckFailure):
        return _("You can't use {name} here.", name=name)
    return None


async def handle_command_error(ctx: commands.Context, error: commands.CommandError) -> None:
    """Reply to a failed `!command` or `/command`; slash replies are ephemeral."""
    if isinstance(error, commands.HybridCommandError):  # raised by the slash side (option conversion...)
        error = _from_app_error(error.original)
    if isinstance(error, commands.CommandNotFound):
        return
    _ = await words_for(ctx)
    text = describe(ctx, error, _)
    if text is None:
        original = getattr(error, "original", error)
        log.error("Command %r failed for message %s", ctx.message.content[:100] or ctx.invoked_with, ctx.message.id,
                  exc_info=(type(original), original, original.__traceback__))
        name = ctx.command.qualified_name if ctx.command else "that"
        text = _("Sorry, something went wrong while running `{command}`. It has been logged.",
                 command=f"{ctx.clean_prefix}{name}")
    try:
        await respond(ctx, text, ephemeral=True)
    except discord.HTTPException:
        log.exception("Could not send the error reply for message %s", ctx.message.id)


def _from_app_error(error: app_commands.AppCommandError) -> commands.CommandError:
    """An app-command error as the prefix side would have raised it, so one `describe` serves both."""
    if isinstance(error, app_commands.TransformerError):
        return commands.BadArgument(Phrase("`{value}` isn't a valid {kind}.", value=str(error.value)[:50],
                                           kind=error.type.name.lower()))
    if isinstance(error, app_commands.CommandInvokeError):
        return commands.CommandInvokeError(error.original)
    if isinstance(error, app_commands.CheckFailure):
        return commands.CheckFailure(str(error))
    return commands.CommandInvokeError(error)


async def reply_to_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The app-command side of the one handler: context menus, modals and `/help` (tree.on_error)."""
    original = getattr(error, "original", error)
    name = interaction.command.name if interaction.command else "that"
    _ = await words_for(interaction)
    if isinstance(original, UserError):
        text = _(original.user_message)
    elif isinstance(error, app_commands.CommandOnCooldown):
        text = _("**{name}** is cooling down: try again in {seconds:.1f} s.", name=_(name), seconds=error.retry_after)
    elif isinstance(error, app_commands.CheckFailure):
        text = _("You can't use that here.")
    else:
        log.error("App command %r failed", name, exc_info=(type(original), original, original.__traceback__))
        text = _("Sorry, something went wrong while running **{name}**. It has been logged.", name=_(name))
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException:
        log.exception("Could not send the error reply for interaction %s", interaction.id)
