"""Help text that shows both forms of every command: `!name` and `/name`.

Used by the `!help` help command and by the `/help` slash command, so both say the same.
"""
from __future__ import annotations

from discord.ext import commands

from .replies import respond


def is_slash(command: commands.Command) -> bool:
    """Hybrid commands (and their subcommands) also exist as slash commands."""
    return isinstance(command, (commands.HybridCommand, commands.HybridGroup))


def forms(command: commands.Command, prefix: str) -> str:
    text = f"`{prefix}{command.qualified_name}`"
    if is_slash(command):
        text += f" `/{command.qualified_name}`"
    return text


def overview(bot: commands.Bot, prefix: str) -> str:
    """Every visible command, grouped by cog, one line each."""
    lines = [f"Commands work typed (`{prefix}name`) and, where shown, as slash commands (`/name`).", ""]
    for cog_name, cog in sorted(bot.cogs.items()):
        visible = [c for c in cog.get_commands() if not c.hidden]
        if not visible:
            continue
        lines.append(f"**{cog_name}**")
        lines += [f"{forms(c, prefix)}: {c.short_doc}" for c in sorted(visible, key=lambda c: c.name)]
        lines.append("")
    lines.append(f"`{prefix}help COMMAND` (or `/help command:`) for more on one command. Message context menus "
                 "(right-click a message → Apps): **Transcribe**, **Correct this answer**, **Speak this**.")
    return "\n".join(lines)


def detail(command: commands.Command, prefix: str) -> str:
    """Usage of one command in both forms, and its whole description."""
    usage = f"{prefix}{command.qualified_name} {command.signature}".rstrip()
    lines = [f"Usage: `{usage}`"]
    if is_slash(command):
        options = " ".join(f"{name}:" for name in command.clean_params)
        lines.append(f"Slash: `/{command.qualified_name}{' ' + options if options else ''}`")
    if command.help:
        lines += ["", command.help.replace("`!", f"`{prefix}")]
    if isinstance(command, commands.Group):
        lines += ["", "Subcommands:"] + [f"{forms(c, prefix)}: {c.short_doc}" for c in command.commands]
    return "\n".join(lines)


class BotHelp(commands.HelpCommand):
    """`!help` and `!help COMMAND`, with the slash form beside the typed one."""

    def __init__(self) -> None:
        super().__init__(verify_checks=False, command_attrs={"help": "Show the commands, or one command's usage."})

    async def send_bot_help(self, mapping) -> None:
        await respond(self.context, overview(self.context.bot, self.context.clean_prefix))

    async def send_command_help(self, command: commands.Command) -> None:
        await respond(self.context, detail(command, self.context.clean_prefix))

    async def send_group_help(self, group: commands.Group) -> None:
        await self.send_command_help(group)

    async def send_cog_help(self, cog: commands.Cog) -> None:
        await self.send_bot_help({})

    async def send_error_message(self, error: str) -> None:
        await respond(self.context, error, ephemeral=True)
