"""Talking in voice: `!listen on|off`, `!listen me on|off`, `!listen me forget`, `!listen`.

Off until a server admin turns it on (LISTEN_DEFAULT changes that); a member can opt out
for themselves. The listening service (voice/listening.py) keeps that state, hears members
and answers them; this cog only words the commands. Not loaded when the bot can't listen
(`bot.listening` is None: another discord.py than the one voice/internals.py was written for).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from errors import Phrase, UserError
from voice.listening import ListenManager

from .kit.checks import is_server_admin
from .kit.i18n import Words, words_for, words_in
from .kit.joining import join_author
from .kit.replies import respond

if TYPE_CHECKING:
    from bot import ChatBot


class Listen(commands.Cog):
    """Let the bot hear and answer the people in its voice channel."""

    def __init__(self, bot: ChatBot, listening: ListenManager):
        self.bot = bot
        self.listening = listening
        # The service's notices ("I'm listening", "NAME said: …") in the place's language, from the catalog.
        listening.words = lambda guild, user_id: words_in(bot, guild, user_id)

    @commands.hybrid_command(usage="[on|off|me on|me off|me forget]")
    @commands.guild_only()
    @app_commands.describe(setting="on or off (admins), me on, me off or me forget (yourself); empty for the status")
    async def listen(self, ctx: commands.Context, *, setting: str = "") -> None:
        """Talk to me in voice: on/off (admins), me on/off/forget (yourself), or nothing for the status."""
        guild = ctx.guild
        assert guild is not None
        words = setting.lower().split()
        _ = await words_for(ctx)
        if words in (["on"], ["off"]):
            if not is_server_admin(self.bot, ctx.author, guild):
                raise UserError(Phrase("Only a server admin (Manage Server) can turn listening on or off."))
            await self._turn(ctx, words[0] == "on", _)
        elif words in (["me", "on"], ["me", "off"]):
            out = words[1] == "off"
            await self.listening.set_opted_out(guild.id, ctx.author.id, out)
            await respond(ctx, _("OK: I won't listen to you in voice here. `{prefix}listen me forget` also deletes "
                                 "what I kept of your words here.", prefix=ctx.clean_prefix) if out
                          else _("OK: I'll listen to you in voice here when listening is on."))
        elif words == ["me", "forget"]:
            await ctx.defer()
            await self.listening.set_opted_out(guild.id, ctx.author.id, True)
            forgotten = await self.listening.forget(guild, ctx.author.id)
            await respond(ctx, _.n("OK: I won't listen to you in voice here, and I deleted what I kept of your words "
                                   "here ({count} message, with my voice transcripts of them).",
                                   "OK: I won't listen to you in voice here, and I deleted what I kept of your words "
                                   "here ({count} messages, with my voice transcripts of them).", forgotten))
        elif not words:
            await respond(ctx, await self._status(ctx, _))
        else:
            raise UserError(Phrase("Use `{prefix}listen on`, `off`, `me on`, `me off`, `me forget`, or `{prefix}listen` "
                                   "for the status.", prefix=ctx.clean_prefix))

    async def _turn(self, ctx: commands.Context, on: bool, _: Words) -> None:
        guild = ctx.guild
        assert guild is not None
        await ctx.defer()  # slash: turning on may join the voice channel, longer than Discord's 3 s
        await self.listening.set_enabled(guild, on)
        if not on:
            await respond(ctx, _("🔇 I've stopped listening in voice here."))
            return
        self.bot.voice.tie_text_channel(guild, ctx.channel)
        client = guild.voice_client
        connected = isinstance(client, discord.VoiceClient) and client.is_connected()
        author = ctx.author
        if not connected and isinstance(author, discord.Member) and author.voice and author.voice.channel:
            await join_author(ctx)  # announces the listening itself
            return
        if connected:
            notice = await self.listening.join_notice(guild)
            await respond(ctx, _("🎙️ Listening on.") + notice)
        else:
            await respond(ctx, _("🎙️ Listening on: when I'm in a voice channel (`{prefix}join`), I'll answer what "
                                 "people say there.", prefix=ctx.clean_prefix))

    async def _status(self, ctx: commands.Context, _: Words) -> str:
        guild = ctx.guild
        assert guild is not None
        state = await self.listening.state(guild.id)
        lines = [_("🎙️ Listening is **on** here (server admins: `{prefix}listen on|off`).", prefix=ctx.clean_prefix)
                 if state.enabled else
                 _("🔇 Listening is **off** here (server admins: `{prefix}listen on|off`).", prefix=ctx.clean_prefix)]
        if ctx.author.id in state.optouts:
            lines.append(_("You opted out: I don't hear you (`{prefix}listen me on` to change that).",
                           prefix=ctx.clean_prefix))
        if self.settings_wake():
            lines.append(_("I only answer what starts with “{wake}”.", wake=self.settings_wake()))
        lines.append(_("Only transcripts are kept (with my other replies), never audio."))
        return "\n".join(lines)

    def settings_wake(self) -> str:
        return self.bot.settings.listen_wake_word


async def setup(bot: ChatBot) -> None:
    if bot.listening is None:  # another discord.py: its voice internals may differ (logged at start)
        return
    await bot.add_cog(Listen(bot, bot.listening))
