"""The bot's message catalogs: every message it can say, and each language's .po kept in step.

    .venv/bin/python scripts/messages.py           # add new messages to locales/*/LC_MESSAGES/bot.po
                                                   # (empty, to translate), drop the ones no longer used
    .venv/bin/python scripts/messages.py --check   # list the messages a catalog lacks; exit 1 if any

The messages are found two ways (commands/kit/i18n.py says how they are used):
- in the code, by walking its syntax trees: `_("...")`, `_.n("...", "...", n)` and
  `errors.Phrase("...")` in commands/, voice/, audio/, model/, storage/ and errors.py (an ast walk
  rather than Babel's extractor, which loses a call that follows `def f(x: int) -> Phrase:`);
- in the commands themselves, read from the real bot's cogs: each command's help text and its
  first line (the slash description), the help's section names (msgctxt "help section"), and
  everything discord.py gives a slash-command translator (names under msgctxt "slash name",
  descriptions, option descriptions, message-menu names).
tests/unit/test_catalog.py fails while a message has no translation.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ast

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from commands.kit.i18n import DOMAIN, HELP_SECTION, SLASH_NAME, catalog_path  # noqa: E402
from storage.languages import ENGLISH, UI_LANGUAGES  # noqa: E402

SOURCES = ("commands", "voice", "audio", "model", "storage")
MARKERS = ("_", "Phrase")  # called with the English text first: _("..."), Phrase("...")
PLURAL = "n"  # _.n("one", "many", count)
LANGUAGES = tuple(language for language in UI_LANGUAGES if language != ENGLISH)


@dataclass
class Message:
    msgid: str
    plural: str | None = None
    context: str | None = None
    where: list[tuple[str, int]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.msgid, self.context


def source_files() -> list[Path]:
    files = [ROOT / "errors.py"]
    for package in SOURCES:
        files += sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def marked_calls(tree: ast.AST):
    """(call, is_plural) for every `_(...)`, `Phrase(...)` and `x.n(...)` call."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in MARKERS:
            yield node, False
        elif isinstance(func, ast.Attribute) and func.attr == PLURAL and len(node.args) >= 3:
            yield node, True


def code_messages() -> list[Message]:
    found = []
    for path in source_files():
        where = str(path.relative_to(ROOT))
        for call, plural in marked_calls(ast.parse(path.read_text(encoding="utf-8"))):
            texts = [a.value for a in call.args[:2 if plural else 1] if isinstance(a, ast.Constant)]
            if all(isinstance(t, str) for t in texts) and len(texts) == (2 if plural else 1):
                found.append(Message(texts[0], texts[1] if plural else None, None, [(where, call.lineno)]))
    return found


class _Recorder:
    """A slash-command translator that notes what it is asked and translates nothing."""

    def __init__(self) -> None:
        self.asked: list[Message] = []

    async def translate(self, string, locale, context):
        from discord import app_commands
        from discord.app_commands import TranslationContextLocation as Where

        menu = isinstance(context.data, app_commands.ContextMenu)
        named = context.location in (Where.command_name, Where.group_name, Where.parameter_name) and not menu
        self.asked.append(Message(string.message, None, SLASH_NAME if named else None, [("slash command", 0)]))
        return None


@contextlib.asynccontextmanager
async def loaded_bot():
    """The real bot with every cog loaded, connected to nothing (its data in a temporary folder)."""
    from bot import INITIAL_EXTENSIONS, ChatBot
    from config import load_settings
    from model import encoder

    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings({"DISCORD_TOKEN": "t", "DATA_DIR": data_dir}, env_file=Path(data_dir) / "none.env")
        bot = ChatBot(settings)
        try:
            await bot.db.open()
            for extension in INITIAL_EXTENSIONS:
                await bot.load_extension(extension)
            yield bot
        finally:
            await bot.close()
            encoder.reset()  # its model service set the encoders up process-wide


async def command_messages() -> list[Message]:
    """What the real bot's cogs say about themselves (help, slash names and descriptions)."""
    from discord import app_commands

    recorder = _Recorder()

    class Recording(app_commands.Translator):
        async def translate(self, string, locale, context):
            return await recorder.translate(string, locale, context)

    async with loaded_bot() as bot:
        found = [Message(c.help, where=[("help", 0)]) for c in bot.walk_commands() if c.help]
        found += [Message(c.short_doc, where=[("help", 0)]) for c in bot.walk_commands() if c.short_doc]
        help_help = bot.help_command.command_attrs.get("help") if bot.help_command else None
        found += [Message(help_help, where=[("help", 0)])] if help_help else []
        found += [Message(name, context=HELP_SECTION, where=[("help", 0)]) for name in bot.cogs
                  if any(not c.hidden for c in bot.cogs[name].get_commands())]
        translator = Recording()
        for command in bot.tree.get_commands():
            await command.get_translated_payload(bot.tree, translator)
    return found + _once_per_locale(recorder.asked)


def _once_per_locale(asked: list[Message]) -> list[Message]:
    seen: dict[tuple[str, str | None], Message] = {}
    for message in asked:
        seen.setdefault(message.key, message)
    return list(seen.values())


def all_messages() -> list[Message]:
    """Every message the bot can say, once each (the first place it is found)."""
    merged: dict[tuple[str, str | None], Message] = {}
    for message in code_messages() + asyncio.run(command_messages()):
        if message.key in merged:
            merged[message.key].where += message.where
            merged[message.key].plural = merged[message.key].plural or message.plural
        else:
            merged[message.key] = message
    return list(merged.values())


def template(messages: list[Message]) -> Catalog:
    catalog = Catalog(domain=DOMAIN, project="chatbot", charset="utf-8")
    for message in messages:
        msgid = (message.msgid, message.plural) if message.plural else message.msgid
        catalog.add(msgid, locations=[w for w in message.where if w[1]], context=message.context)
    return catalog


def read_catalog(language: str) -> Catalog:
    path = catalog_path(language)
    if not path.is_file():
        return Catalog(locale=language, domain=DOMAIN, project="chatbot", charset="utf-8")
    with path.open("rb") as file:
        return read_po(file, locale=language, domain=DOMAIN)


def missing(language: str, messages: list[Message]) -> list[Message]:
    catalog = read_catalog(language)
    lacking = []
    for message in messages:
        entry = catalog.get(message.msgid, context=message.context)
        strings = entry.string if entry is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if entry is None or entry.fuzzy or not all(strings):
            lacking.append(message)
    return lacking


def update(language: str, messages: list[Message]) -> None:
    catalog = read_catalog(language)
    catalog.update(template(messages), no_fuzzy_matching=True, update_header_comment=False)
    out = io.BytesIO()
    write_po(out, catalog, width=120, ignore_obsolete=True, include_previous=False, sort_by_file=False)
    path = catalog_path(language)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only list what the catalogs lack")
    args = parser.parse_args()
    messages = all_messages()
    status = 0
    for language in LANGUAGES:
        if not args.check:
            update(language, messages)
        lacking = missing(language, messages)
        print(f"{language}: {len(messages) - len(lacking)} of {len(messages)} messages translated "
              f"({catalog_path(language).relative_to(ROOT)})")
        for message in lacking[:50]:
            print(f"  missing: {message.msgid[:100]!r}" + (f" (msgctxt {message.context!r})" if message.context else ""))
        status = status or (1 if lacking else 0)
    return status if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
