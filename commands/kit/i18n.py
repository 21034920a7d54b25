"""The bot's own words in the reader's language: gettext message catalogs, read with Babel.

Where the words live: one catalog for the whole bot, `locales/<language>/LC_MESSAGES/bot.po`
at the top of the project. Not one per cog as Red has (its cogs are installed one by one): these
cogs ship together, share the kit's words (help, errors, "not sure"), and the errors raised in
audio/, model/ and storage/ are worded here too, so one file holds everything a translator
works through, once. English needs no catalog: the English text is the msgid. The .po files are
read as they are at first use (Babel compiles them in memory), so nothing is generated at build
time and a fresh clone works. `python scripts/messages.py` adds new msgids to the catalogs;
tests/unit/test_catalog.py fails while one has no translation.

Which language: `bot.languages.choose(...)` (storage/languages.py) for the member and server of
what is being answered: the member's own setting, else the server's, else the server's Discord
locale (`preferred_locale`), else English. Its `.ui` is one of UI_LANGUAGES.

In a cog:

    _ = await words_for(ctx)                       # a Context or an Interaction; words_in(bot, guild, user_id)
    await respond(ctx, _("Deleted dataset `{name}`.", name=name))   # placeholders, never concatenation
    _.n("{count} file", "{count} files", count)   # plural by the language's rules; {count} filled in
    _(error.user_message)                          # a Phrase (errors.py) from audio/model/storage: its
                                                   # English template translated, then its values filled in

Slash commands: `SlashTranslator`, discord.py's `app_commands.Translator`, gives Discord the
Russian names and descriptions when the commands are synced; Discord shows them to the members
whose client is in Russian (`discord.Locale.russian`).
"""
from __future__ import annotations

import functools
import gettext
import io
import logging
from pathlib import Path
from string import Formatter
from typing import TYPE_CHECKING, Any

import discord
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where
from discord.ext import commands

from errors import Phrase
from storage.languages import ENGLISH

if TYPE_CHECKING:
    from bot import ChatBot

log = logging.getLogger("commands.i18n")

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"
DOMAIN = "bot"
SLASH_NAME = "slash name"  # the msgctxt of a slash command's or option's name (lowercase, no spaces)
HELP_SECTION = "help section"  # the msgctxt of a cog's name as the help lists it
DISCORD_LOCALES = {discord.Locale.russian: "ru"}  # the client languages the slash commands are translated to


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def placeholders(text: str) -> set[str]:
    """The names of a message's {placeholders} ("{count:,}" -> "count")."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in Formatter().parse(text) if name}
    except ValueError:  # a lone brace: literal text, no placeholders
        return set()


class Words:
    """One language's words: call it with the English text (and its values) to get that language's."""

    def __init__(self, language: str, translations: gettext.NullTranslations):
        self.language = language
        self._translations = translations

    def __call__(self, message: str, /, **params: Any) -> str:
        """`message` in this language, its {placeholders} filled from `params` (a Phrase brings its own)."""
        if isinstance(message, Phrase):
            english, params = message.template, {**message.params, **params}
        else:
            english = str(message)
        return self._fill(self._translations.gettext(english), english, params)

    def n(self, singular: str, plural: str, count: int, /, **params: Any) -> str:
        """The form for `count` ("1 file", "2 files"; Russian has three forms); `{count}` is filled in."""
        text = self._translations.ngettext(singular, plural, count)
        return self._fill(text, singular if count == 1 else plural, {"count": count, **params})

    def within(self, context: str, message: str) -> str | None:
        """A message in a context (msgctxt), or None when the catalog has no translation for it."""
        if self.language == ENGLISH:
            return message
        text = self._translations.pgettext(context, message)
        return text if text != message else None

    def slash_name(self, name: str) -> str:
        """A slash command's name as members reading this language see it in Discord."""
        return " ".join(self.within(SLASH_NAME, part) or part for part in name.split(" "))

    def _fill(self, text: str, english: str, params: dict[str, Any]) -> str:
        if not params:
            return text
        values = {key: self(value) if isinstance(value, Phrase) else value for key, value in params.items()}
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):  # a broken translation: the English is better than nothing
            log.warning("The %s translation of %r does not fit its values %s", self.language, english, sorted(values))
            return english.format(**values)


@functools.cache
def words(language: str) -> Words:
    """The words of one of UI_LANGUAGES (English, or any other language without a catalog: the msgids)."""
    path = catalog_path(language)
    if language == ENGLISH or not path.is_file():
        return Words(ENGLISH, gettext.NullTranslations())
    with path.open("rb") as file:
        catalog = read_po(file, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return Words(language, gettext.GNUTranslations(compiled))


async def words_in(bot: ChatBot, guild: discord.Guild | None, user_id: int | None) -> Words:
    """The words for answering `user_id` in `guild` (a DM: None); `user_id` None: everyone there (the server's)."""
    locale = str(guild.preferred_locale) if guild is not None and guild.preferred_locale else None
    try:  # user 0 is nobody: no member's own setting, so the server's
        choice = await bot.languages.choose(guild.id if guild is not None else None, user_id or 0, locale)
    except Exception:  # noqa: BLE001 - the database failing must not silence the answer (or its error reply)
        log.exception("Could not read the language settings; answering in English")
        return words(ENGLISH)
    return words(choice.ui)


async def words_for(origin: commands.Context[ChatBot] | discord.Interaction[ChatBot]) -> Words:
    """The words for answering a command (typed or slash) or an interaction (a menu, a modal)."""
    if isinstance(origin, discord.Interaction):
        return await words_in(origin.client, origin.guild, origin.user.id)
    return await words_in(origin.bot, origin.guild, origin.author.id)


class SlashTranslator(app_commands.Translator):
    """The slash commands' names, descriptions and options for Discord's Russian clients, from the catalog.

    A command's or option's name is looked up in the "slash name" context (`train` -> `обучить`: Discord's
    rules for names hold for translations too); descriptions and message-menu names are plain msgids, the
    same the help shows. None (Discord then shows the English) for anything untranslated."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        language = DISCORD_LOCALES.get(locale)
        if language is None:
            return None
        chosen = words(language)
        menu = isinstance(context.data, app_commands.ContextMenu)
        if context.location in (Where.command_name, Where.group_name, Where.parameter_name) and not menu:
            return chosen.within(SLASH_NAME, string.message)
        text = chosen(string.message)
        return text if text != string.message else None
