"""Which language the bot hears, speaks and writes in, per server and per member.

A server's admins set the server's language (`!language ru`; default `auto`); a member may set
their own (`!language me ru`), which goes with them to every server, since it is theirs: it is
stored under their own scope. The member's choice wins over the server's.

- Speech in: a language code tells Whisper what it will hear; `auto` lets it detect.
- Words out (replies, help, errors): a language with a complete message catalog
  (`UI_LANGUAGES`); otherwise the server's Discord locale; otherwise English.

Codes are ISO 639-1, as Whisper and Discord's locales use them ("ru", "pt" from "pt-BR").
"""
from __future__ import annotations

from dataclasses import dataclass

from .database import Database
from .scopes import scope_key, server_scope

AUTO = "auto"
ENGLISH = "en"
UI_LANGUAGES = ("en", "ru")  # the bot's own words are translated into these
KEY = "language"

# The languages Whisper's multilingual models know (faster_whisper.tokenizer._LANGUAGE_CODES,
# copied: importing it would load the speech stack into the bot for a list of names).
SPEECH_LANGUAGES = frozenset(
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw he hi "
    "hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt my ne nl nn no "
    "oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr tt uk ur uz vi yi yo "
    "yue zh".split())


class UnknownLanguage(ValueError):
    """Not a language code the bot can hear."""


def parse_language(text: str) -> str:
    """A user's or a Discord locale's language as a code: "RU", "ru-RU", "pt_BR" -> "ru", "pt"."""
    code = text.strip().lower().replace("_", "-")
    if code == AUTO:
        return AUTO
    base = code.split("-", 1)[0]
    if code in SPEECH_LANGUAGES:
        return code
    if base in SPEECH_LANGUAGES:
        return base
    raise UnknownLanguage(text)


@dataclass(frozen=True)
class LanguageChoice:
    """What was chosen for one member in one place, and who chose it."""

    speech: str  # a code, or AUTO (detect)
    ui: str  # one of UI_LANGUAGES
    source: str  # "member", "server", "locale" or "default"


class LanguageSettings:
    """The server and member language settings, stored in the database's per-scope settings."""

    def __init__(self, db: Database, default: str = AUTO):
        self.db = db
        self.default = default  # the operator's STT_LANGUAGE: what a server without a setting hears

    async def server(self, guild_id: int) -> str | None:
        return await self.db.get_setting(server_scope(guild_id), KEY)

    async def member(self, user_id: int) -> str | None:
        return await self.db.get_setting(scope_key(None, user_id), KEY)

    async def set_server(self, guild_id: int, language: str | None) -> None:
        """`language` a parsed code or AUTO; None forgets the setting."""
        await self._set(server_scope(guild_id), language)

    async def set_member(self, user_id: int, language: str | None) -> None:
        await self._set(scope_key(None, user_id), language)

    async def choose(self, guild_id: int | None, user_id: int, locale: str | None = None) -> LanguageChoice:
        """The member's setting, else the server's, else (for words) the server's Discord locale."""
        mine = await self.member(user_id)
        theirs = await self.server(guild_id) if guild_id is not None else None
        chosen, source = (mine, "member") if mine else (theirs, "server") if theirs else (None, "default")
        speech = chosen or self.default
        if chosen and chosen != AUTO:
            ui = chosen
        else:
            ui = _locale_language(locale) or ENGLISH
            if locale and ui != ENGLISH and source == "default":
                source = "locale"
        return LanguageChoice(speech=speech, ui=ui if ui in UI_LANGUAGES else ENGLISH, source=source)

    async def _set(self, scope: str, language: str | None) -> None:
        if language is None:
            await self.db.delete_setting(scope, KEY)
        else:
            await self.db.set_setting(scope, KEY, language)


def _locale_language(locale: str | None) -> str | None:
    if not locale:
        return None
    try:
        code = parse_language(str(locale))
    except UnknownLanguage:
        return None
    return None if code == AUTO else code
