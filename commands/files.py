"""Host files: `DATA_DIR/files`, which belongs to the bot's owners and no server.

Both commands are owner-only (`commands.is_owner`): a server's admins rule their own
server's data, never the host's.  Their answers are private: ephemeral for the slash forms, a DM
for typed commands in a server (the channel only hears "sent to your DMs").  Their slash forms are only offered to a server's
administrators (`default_permissions`); the owner check still decides.  The sandbox rules
live in `storage/files.py`.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from storage.attachments import Outgoing
from storage.files import archive_folder, format_size, read_file

from .kit.i18n import words_for
from .kit.replies import respond_privately, upload_limit

if TYPE_CHECKING:
    from bot import ChatBot


class Files(commands.Cog):
    """The host's files folder (bot owners only)."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.hybrid_command()
    @commands.is_owner()
    @app_commands.default_permissions(administrator=True)  # slash: offered to server administrators only
    @app_commands.describe(path="A file inside the bot's files folder, e.g. reports/today.txt")
    async def getfile(self, ctx: commands.Context, *, path: str) -> None:
        """Send a file from the bot's files folder. (bot owners)

        PATH is relative to the files folder, e.g. `!getfile reports/today.txt`."""
        settings = self.bot.settings
        await ctx.defer(ephemeral=True)  # slash: a big file can take longer than Discord's 3 s to read
        file = await asyncio.to_thread(read_file, settings.files_dir, path, max_length=settings.max_path_length,
                                       max_bytes=private_upload_limit(ctx))
        # The host's files are the owners' only: never posted in a server channel.
        _ = await words_for(ctx)
        await respond_privately(ctx, f"`{file.relative_path}` ({_(format_size(len(file.data)))})",
                                [Outgoing(file.name, file.data)])

    @commands.hybrid_command()
    @commands.is_owner()
    @app_commands.default_permissions(administrator=True)
    @app_commands.describe(folder="A folder inside the bot's files folder (. for all of it)")
    async def archive(self, ctx: commands.Context, *, folder: str) -> None:
        """Zip a folder of the files folder and send the zip. (bot owners)

        FOLDER is relative to the files folder, e.g. `!archive reports` (`.` for all of it).
        The newest KEEP_ARCHIVES archives are kept in `archives/`."""
        settings = self.bot.settings
        async with ctx.typing(ephemeral=True):  # slash: this defers (zipping takes a while)
            result = await asyncio.to_thread(archive_folder, settings.files_dir, folder,
                                             max_length=settings.max_path_length,
                                             max_input_bytes=settings.archive_max_bytes, keep=settings.keep_archives)
        _ = await words_for(ctx)
        text = _.n("Archived {count} file from `{folder}` into `{zip}` ({size}).",
                   "Archived {count} files from `{folder}` into `{zip}` ({size}).", result.file_count,
                   folder=folder, zip=f"archives/{result.path.name}", size=format_size(result.size))
        files = []
        if result.size <= private_upload_limit(ctx):
            files = [Outgoing(result.path.name, await asyncio.to_thread(result.path.read_bytes))]
        else:
            text += "\n" + _("The zip is larger than the upload limit, so it stays in the files folder.")
        await respond_privately(ctx, text, files)


def private_upload_limit(ctx: commands.Context) -> int:
    """Largest file for a private answer: the channel's for an ephemeral reply, a DM's otherwise."""
    if ctx.interaction is not None or ctx.guild is None:
        return upload_limit(ctx.channel)
    return discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Files(bot))
