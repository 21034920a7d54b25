"""Language settings: a member's choice wins, then the server's, then (for words) Discord's locale."""
from __future__ import annotations

import pytest

from storage.database import Database
from storage.languages import AUTO, LanguageSettings, UnknownLanguage, parse_language


@pytest.fixture
async def languages(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    yield LanguageSettings(db, default=AUTO)
    await db.close()


@pytest.mark.parametrize("given, code", [("ru", "ru"), ("RU", "ru"), ("ru-RU", "ru"), ("pt_BR", "pt"),
                                         (" auto ", AUTO), ("zh-TW", "zh"), ("uk", "uk")])
def test_codes_and_discord_locales_are_read(given, code):
    assert parse_language(given) == code


@pytest.mark.parametrize("given", ["klingon", "", "../ru", "r"])
def test_unknown_languages_are_refused(given):
    with pytest.raises(UnknownLanguage):
        parse_language(given)


async def test_nothing_set_hears_any_language_and_answers_in_english(languages):
    choice = await languages.choose(1, 7)
    assert (choice.speech, choice.ui, choice.source) == (AUTO, "en", "default")


async def test_the_servers_discord_locale_picks_the_words_when_nothing_is_set(languages):
    choice = await languages.choose(1, 7, locale="ru")
    assert (choice.speech, choice.ui, choice.source) == (AUTO, "ru", "locale")
    assert (await languages.choose(1, 7, locale="de")).ui == "en"  # no German catalog: English


async def test_a_members_choice_wins_over_the_servers_and_follows_them(languages):
    await languages.set_server(1, "ru")
    assert (await languages.choose(1, 7)).speech == "ru"
    await languages.set_member(7, "en")
    assert (await languages.choose(1, 7)).ui == "en" and (await languages.choose(2, 7)).speech == "en"
    assert (await languages.choose(1, 8)).speech == "ru"  # another member: the server's
    await languages.set_member(7, None)
    assert (await languages.choose(1, 7)).source == "server"


async def test_servers_do_not_share_a_setting(languages):
    await languages.set_server(1, "ru")
    assert (await languages.choose(2, 7)).speech == AUTO
    assert (await languages.choose(None, 7)).speech == AUTO  # a DM: only the member's own choice
