"""Joining the author's voice channel and saying so: `!join`, and `!listen on` when the bot
is in no voice channel yet. The voice service connects; this words the reply."""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from errors import Phrase, UserError

from .i18n import words_for
from .replies import respond

if TYPE_CHECKING:
    from bot import ChatBot


def _bold(name: str) -> str:
    return f"**{discord.utils.escape_markdown(name)}**"


async def join_author(ctx: commands.Context[ChatBot]) -> None:
    """Connect to (or move to) the author's voice channel; the reply says where, and that the bot
    listens there when it does. Answers to what is heard go to this channel."""
    author = ctx.author
    voice = author.voice if isinstance(author, discord.Member) else None
    if ctx.guild is None or voice is None or voice.channel is None:
        raise UserError(Phrase("You're not in a voice channel. Join one first, then use `{prefix}join`.",
                               prefix=ctx.clean_prefix))
    channel = voice.channel
    joined = await ctx.bot.voice.join(channel, ctx.channel)
    _ = await words_for(ctx)
    if joined == "already":
        await respond(ctx, _("I'm already in {channel}.", channel=_bold(channel.name)))
        return
    text = (_("Moved to {channel}.", channel=_bold(channel.name)) if joined == "moved"
            else _("Joined {channel}.", channel=_bold(channel.name)))
    if ctx.bot.settings.speak_replies:
        text += " " + _("I'll read my answers aloud here; `{prefix}leave` to make me go.", prefix=ctx.clean_prefix)
    if ctx.bot.listening is not None:
        text += await ctx.bot.listening.join_notice(ctx.guild)
    await respond(ctx, text)
