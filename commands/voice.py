"""Voice commands: `!join`, `!leave`, and the **Speak this** message menu.

The voice service (`voice/connection.py`, `bot.voice`) does the work; this words the replies."""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from .kit.i18n import words_for
from .kit.joining import join_author
from .kit.replies import respond

if TYPE_CHECKING:
    from bot import ChatBot


class Voice(commands.Cog):
    """Join and leave voice channels."""

    def __init__(self, bot: ChatBot):
        self.bot = bot
        self.speak_menu = app_commands.ContextMenu(name="Speak this", callback=self.speak_this)
        self.speak_menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.speak_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.speak_menu.name, type=self.speak_menu.type)

    @commands.hybrid_command()
    @commands.guild_only()
    async def join(self, ctx: commands.Context) -> None:
        """Join your voice channel (or move to it)."""
        author = ctx.author
        if isinstance(author, discord.Member) and author.voice and author.voice.channel:
            await ctx.defer()  # slash: connecting can take longer than Discord's 3 s (a refusal stays private)
        await join_author(ctx)

    @commands.hybrid_command()
    @commands.guild_only()
    async def leave(self, ctx: commands.Context) -> None:
        """Leave the voice channel."""
        guild = ctx.guild
        assert guild is not None  # guild_only
        if guild.voice_client is not None:
            await ctx.defer()  # slash: disconnecting waits for Discord's confirmation
        name = await self.bot.voice.leave(guild)
        _ = await words_for(ctx)
        await respond(ctx, _("Left **{channel}**.", channel=discord.utils.escape_markdown(name)))

    async def speak_this(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Context menu: say a message aloud in the voice channel of the member who asked."""
        member = interaction.user
        channel = member.voice.channel if isinstance(member, discord.Member) and member.voice else None
        _ = await words_for(interaction)
        if not self.bot.settings.speak_replies:
            text = _("Speaking is turned off on this bot (SPEAK_REPLIES).")
        elif channel is None:
            text = _("Join a voice channel first; I'll say it there.")
        elif not message.content.strip():
            text = _("That message has no text I can say.")
        else:
            await interaction.response.send_message(
                _("Saying it in **{channel}**.", channel=discord.utils.escape_markdown(channel.name)), ephemeral=True)
            await self.bot.voice.speak_reply(message, message.content, listener=member)  # joins, queues; never raises
            return
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Voice(bot))
