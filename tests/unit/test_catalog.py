"""The message catalogs stay complete: everything the bot can say has a Russian translation that
fits its values, and the slash commands' Russian names follow Discord's rules.

The messages are collected as `scripts/messages.py` does (which adds new ones to the .po): the
`_()`, `_.n()` and `Phrase()` calls in the code, and the real bot's commands (help texts, slash
names, descriptions, menus)."""
from __future__ import annotations

import ast
import asyncio
import re

import discord
import pytest
from babel.messages.pofile import read_po

from commands.kit.i18n import SLASH_NAME, SlashTranslator, Words, catalog_path, placeholders, words
from errors import Busy, Phrase, format_wait
from scripts.messages import LANGUAGES, all_messages, loaded_bot, marked_calls, source_files
from storage.files import format_size

# Discord's rule for command and option names (and their localisations), lowercase where a letter has a case.
NAME = re.compile(r"^[-_\w]{1,32}$")


@pytest.fixture(scope="module")
def messages():
    return all_messages()


@pytest.fixture(scope="module")
def slash_payloads():
    async def payloads():
        async with loaded_bot() as bot:
            return [await c.get_translated_payload(bot.tree, SlashTranslator()) for c in bot.tree.get_commands()]
    return asyncio.run(payloads())


def catalog(language: str):
    with catalog_path(language).open("rb") as file:
        return read_po(file, locale=language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_has_a_translation_with_the_same_placeholders(messages, language):
    entries = catalog(language)
    lacking, misfit = [], []
    for message in messages:
        entry = entries.get(message.msgid, context=message.context)
        forms = entry.string if entry is not None and isinstance(entry.string, tuple) else (
            (entry.string,) if entry is not None else ("",))
        if entry is None or entry.fuzzy or not all(forms):
            lacking.append(message.msgid[:80])
            continue
        wanted = placeholders(message.msgid) | placeholders(message.plural or "")
        misfit += [f"{message.msgid[:60]!r} -> {form[:60]!r}" for form in forms if placeholders(form) != wanted]
    assert not lacking, f"{len(lacking)} messages lack a translation (run scripts/messages.py, then translate): {lacking[:10]}"
    assert not misfit, f"translations whose placeholders differ: {misfit[:10]}"
    assert len(messages) > 200


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalog_holds_no_message_the_bot_no_longer_says(messages, language):
    used = {(m.msgid, m.context) for m in messages}
    unused = [m.id for m in catalog(language) if m.id and ((m.id if isinstance(m.id, str) else m.id[0]), m.context) not in used]
    assert not unused, f"run scripts/messages.py to drop these: {unused[:10]}"


def test_messages_are_literals_the_catalog_can_find():
    """An f-string or a concatenation in `_()`, `_.n()` or `Phrase()` is never found in the catalog: use {placeholders}."""
    bad, unseen = [], []
    for path in source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call, plural in marked_calls(tree):
            for arg in call.args[:2 if plural else 1]:
                if isinstance(arg, (ast.JoinedStr, ast.BinOp)):
                    bad.append(f"{path.name}:{call.lineno}")
        for node in ast.walk(tree):  # `self.words("...")` is translated but never collected: `_ = self.words` first
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "words"
                    and node.args and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))):
                unseen.append(f"{path.name}:{node.lineno}")
    assert not bad, bad
    assert not unseen, unseen


def test_slash_commands_have_russian_names_and_descriptions_discord_accepts(slash_payloads):
    assert len(slash_payloads) >= 12
    for payload in slash_payloads:
        ru = payload.get("name_localizations", {}).get(discord.Locale.russian.value)
        assert ru, f"/{payload['name']} has no Russian name"
        if payload.get("type", 1) == 1:  # a slash command: Discord's name rule; menus may have spaces
            assert NAME.match(ru) and ru == ru.lower(), ru
            assert 1 <= len(payload["description_localizations"]["ru"]) <= 100, payload["name"]
        else:
            assert len(ru) <= 32
        for option in payload.get("options", []):
            assert NAME.match(option["name_localizations"]["ru"]), option
            assert 1 <= len(option["description_localizations"]["ru"]) <= 100, option
        assert set(payload.get("name_localizations", {})) == {"ru"}  # other clients get the English


def test_words_fill_placeholders_plurals_and_phrases():
    ru, en = words("ru"), words("en")
    assert [ru.n("{count} row", "{count} rows", n) for n in (1, 3, 5, 21)] == [
        "1 строка", "3 строки", "5 строк", "21 строка"]
    assert en.n("{count} row", "{count} rows", 1) == "1 row" and en.n("{count} row", "{count} rows", 2) == "2 rows"
    busy = Busy(retry_after=100).user_message  # a Phrase holding a Phrase: both translated
    assert busy == "I'm busy right now; please try again in 2 min."
    assert ru(busy) == "Я сейчас занят; попробуйте ещё раз через 2 мин." and en(busy) == busy
    assert ru(format_size(3 * 2**20)) == "3.0 МБ"
    assert ru("a message nobody translated, {x}", x=1) == "a message nobody translated, 1"
    assert ru.slash_name("select_dataset") == "выбрать_набор" and en.slash_name("select_dataset") == "select_dataset"
    assert ru.within(SLASH_NAME, "no such name") is None


def test_a_translation_that_does_not_fit_its_values_falls_back_to_english():
    import gettext

    class Broken(gettext.NullTranslations):
        def gettext(self, message):
            return "{missing} сломано"

    assert Words("ru", Broken())("fine {x}", x=1) == "fine 1"


def test_phrases_pickle_with_their_template_and_values():
    import pickle

    phrase = Phrase("wait {wait}", wait=format_wait(5))
    again = pickle.loads(pickle.dumps(phrase))
    assert again == "wait 5 s" and again.template == "wait {wait}" and again.params["wait"].template == "{seconds} s"
