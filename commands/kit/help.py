"""Help text that shows both forms of every command: `!name` and `/name`.

Used by the `!help` help command and by the `/help` slash command, so both say the same.
"""
from __future__ import annotations

from discord.ext import commands

from storage.languages import ENGLISH

from .i18n import HELP_SECTION, Words, words, words_for
from .replies import respond


def is_slash(command: commands.Command) -> bool:
    """Hybrid commands (and their subcommands) also exist as slash commands."""
    return isinstance(command, (commands.HybridCommand, commands.HybridGroup))


def forms(command: commands.Command, prefix: str, _: Words) -> str:
    text = f"`{prefix}{command.qualified_name}`"
    if is_slash(command):
        text += f" `/{_.slash_name(command.qualified_name)}`"  # the name Discord shows in this language
    return text


def overview(bot: commands.Bot, prefix: str, _: Words) -> str:
    """Every visible command, grouped by cog, one line each."""
    lines = [_("Commands work typed (`{prefix}name`) and, where shown, as slash commands (`/name`).", prefix=prefix),
             ""]
    for cog_name, cog in sorted(bot.cogs.items()):
        visible = [c for c in cog.get_commands() if not c.hidden]
        if not visible:
            continue
        lines.append(f"**{_.within(HELP_SECTION, cog_name) or cog_name}**")
        lines += [f"{forms(c, prefix, _)}: {_(c.short_doc)}" for c in sorted(visible, key=lambda c: c.name)]
        lines.append("")
    lines.append(_("`{prefix}help COMMAND` (or `/help command:`) for more on one command. Message context menus "
                   "(right-click a message → Apps): **Transcribe**, **Correct this answer**, **Speak this**.",
                   prefix=prefix))
    return "\n".join(lines)


def detail(command: commands.Command, prefix: str, _: Words) -> str:
    """Usage of one command in both forms, and its whole description."""
    usage = f"{prefix}{command.qualified_name} {command.signature}".rstrip()
    lines = [_("Usage: `{invocation}`", invocation=usage)]
    if is_slash(command):
        options = " ".join(f"{_.slash_name(name)}:" for name in command.clean_params)
        slash = f"/{_.slash_name(command.qualified_name)}{' ' + options if options else ''}"
        lines.append(_("Slash: `{invocation}`", invocation=slash))
    if command.help:
        lines += ["", _(command.help).replace("`!", f"`{prefix}")]
    if isinstance(command, commands.Group):
        lines += ["", _("Subcommands:")] + [f"{forms(c, prefix, _)}: {_(c.short_doc)}" for c in command.commands]
    return "\n".join(lines)


class BotHelp(commands.HelpCommand):
    """`!help` and `!help COMMAND`, with the slash form beside the typed one, in the reader's language."""

    def __init__(self) -> None:
        super().__init__(verify_checks=False, command_attrs={"help": "Show the commands, or one command's usage."})
        self.words = words(ENGLISH)

    async def prepare_help_command(self, ctx: commands.Context, command: str | None = None) -> None:
        self.words = await words_for(ctx)
        await super().prepare_help_command(ctx, command)

    def command_not_found(self, string: str) -> str:
        _ = self.words
        return _("There is no command called `{name}`.", name=string[:50])

    def subcommand_not_found(self, command: commands.Command, string: str) -> str:
        _ = self.words
        return _("`{command}` has no subcommand `{name}`.", command=command.qualified_name, name=string[:50])

    async def send_bot_help(self, mapping) -> None:
        await respond(self.context, overview(self.context.bot, self.context.clean_prefix, self.words))

    async def send_command_help(self, command: commands.Command) -> None:
        await respond(self.context, detail(command, self.context.clean_prefix, self.words))

    async def send_group_help(self, group: commands.Group) -> None:
        await self.send_command_help(group)

    async def send_cog_help(self, cog: commands.Cog) -> None:
        await self.send_bot_help({})

    async def send_error_message(self, error: str) -> None:
        await respond(self.context, error, ephemeral=True)
