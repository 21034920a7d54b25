"""The language I hear (and answer in): `!language`, `!language ru|auto|reset` (server admins),
`!language me ru|auto|reset` (yourself); `/language` the same, with the codes suggested.

The settings are storage/languages.py's (`bot.languages`): a member's own wins over the server's,
which wins over STT_LANGUAGE. This cog only words them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from babel import Locale, UnknownLocaleError
from discord import app_commands
from discord.ext import commands

from errors import Phrase, UserError
from storage.languages import AUTO, UnknownLanguage, parse_language

from .kit.checks import NotServerAdmin, is_server_admin
from .kit.i18n import Words, words_for
from .kit.replies import respond

if TYPE_CHECKING:
    from bot import ChatBot

# Offered first by the slash command's autocomplete (all of Whisper's languages are accepted).
COMMON = ("auto", "en", "ru", "uk", "de", "es", "fr", "it", "pt", "pl", "tr", "nl", "sv", "cs", "ja", "zh",
          "ko", "ar", "hi", "id", "vi")
RESET = "reset"


def language_name(code: str, _: Words) -> str:
    """"Russian (`ru`)" in the reader's language; "auto (detect)" for auto."""
    if code == AUTO:
        return _("auto (I detect the language)")
    try:
        name = Locale.parse(code).get_display_name(_.language) or code
    except (UnknownLocaleError, ValueError):
        name = code
    return f"{name} (`{code}`)"


def unknown(text: str) -> UserError:
    return UserError(Phrase("I don't know the language “{text}”. Use a language code such as `en`, `ru`, `de`, `es` "
                            "or `fr`, or `auto` to let me detect it.", text=text[:40]))


def parse(text: str) -> str | None:
    """A code, AUTO, or None for reset."""
    if text.lower() == RESET:
        return None
    try:
        return parse_language(text)
    except UnknownLanguage:
        raise unknown(text) from None


class Language(commands.Cog):
    """The language I hear speech in: for the whole server, or just for you."""

    def __init__(self, bot: ChatBot):
        self.bot = bot

    @commands.hybrid_command(usage="[auto|ru|en|de|…|reset] | me [auto|ru|en|…|reset]")
    @app_commands.describe(setting="auto, a language code (ru, en, de…) or reset for the server; "
                                   "me ru / me auto / me reset for yourself; empty: show")
    async def language(self, ctx: commands.Context, *, setting: str = "") -> None:
        """The language I hear speech in: show it, set the server's (admins) or your own (`me ru`).

        `!language` shows the current choice; `!language ru` (or `auto`, or `reset`) sets the server's,
        for its admins; `!language me ru` (or `me auto`, `me reset`) sets your own, which wins."""
        words = setting.split()
        if not words:
            await respond(ctx, await self._status(ctx))
        elif words[0].lower() == "me" and len(words) == 2:
            await self._set_mine(ctx, parse(words[1]))
        elif len(words) == 1 and words[0].lower() != "me":
            code = parse(words[0])
            if ctx.guild is None:  # a DM has no server: the setting is the member's own
                await self._set_mine(ctx, code)
                return
            if not is_server_admin(self.bot, ctx.author, ctx.guild):
                raise NotServerAdmin("language")
            await self.bot.languages.set_server(ctx.guild.id, code)
            _ = await words_for(ctx)
            shown = language_name(code or self.bot.languages.default, _)
            await respond(ctx, _("OK: this server's language is now {language}. Members can still choose their "
                                 "own with `{prefix}language me <code>`.", language=shown, prefix=ctx.clean_prefix)
                          if code else _("OK: this server's language is back to the default, {language}.",
                                         language=shown))
        else:
            raise UserError(Phrase("Use `{prefix}language` to see it, `{prefix}language ru` (or `auto`, `reset`) for "
                                   "the server, or `{prefix}language me ru` (or `me auto`, `me reset`) for yourself.",
                                   prefix=ctx.clean_prefix))

    @language.autocomplete("setting")
    async def _suggest(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        _ = await words_for(interaction)
        typed = current.strip().lower()
        mine = typed.startswith("me")
        stem = typed[2:].strip() if mine else typed
        codes = [c for c in COMMON + (RESET,) if c.startswith(stem)] or list(COMMON[:5])
        choices = []
        for code in codes[:25]:
            label = _("reset (back to the default)") if code == RESET else language_name(code, _).replace("`", "")
            value = f"me {code}" if mine else code
            choices.append(app_commands.Choice(name=(f"me: {label}" if mine else label)[:100], value=value))
        return choices

    async def _set_mine(self, ctx: commands.Context, code: str | None) -> None:
        await self.bot.languages.set_member(ctx.author.id, code)
        _ = await words_for(ctx)
        if code is None:
            await respond(ctx, _("OK: you no longer have your own language; you get the server's."))
        else:
            await respond(ctx, _("OK: I'll hear your speech in {language}, in every server.",
                                 language=language_name(code, _)))

    async def _status(self, ctx: commands.Context) -> str:
        languages = self.bot.languages
        guild = ctx.guild
        locale = str(guild.preferred_locale) if guild is not None else None
        choice = await languages.choose(guild.id if guild is not None else None, ctx.author.id, locale)
        _ = await words_for(ctx)
        source = {"member": _("your own setting"), "server": _("this server's setting")}.get(
            choice.source, _("the bot's default"))
        lines = [_("🗣️ I hear your speech in {language}: {source}.",
                   language=language_name(choice.speech, _), source=source)]
        if guild is not None:
            server = await languages.server(guild.id)
            lines.append(_("This server: {language}.", language=language_name(server or languages.default, _)))
        lines.append(_("Change it: `{prefix}language me <code>` for yourself (`me reset` to forget it), "
                       "`{prefix}language <code>` for the server (admins). Codes: `auto`, `en`, `ru`, `de`, `es`, "
                       "`fr`…", prefix=ctx.clean_prefix))
        return "\n".join(lines)


async def setup(bot: ChatBot) -> None:
    await bot.add_cog(Language(bot))
