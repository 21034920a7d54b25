"""The server's language on the playground's page, in Debian's Chromium (headless, Playwright).

The header's language choice types `!language ru` as the person (the owner, a server admin);
from then on the bot answers in Russian: its replies, help, errors, and the slash commands by
their Russian names. The page's own chrome stays English (it is the Discord client's, not the
bot's). The tests run in order on one playground and one page."""
from __future__ import annotations

import pytest
import pytest_asyncio

from tests.browser.test_playground_page import be, send, wait_bot_message

pytestmark = pytest.mark.slow


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(playground, browser):
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(playground.url)
    await page.wait_for_function("() => window.playground.connected")
    await page.click("#channels li:has-text('general')")
    yield page
    assert not errors, f"errors in the page: {errors}"
    await page.close()


async def test_english_until_the_language_is_chosen(page):
    await send(page, "!help")
    await wait_bot_message(page, "Commands work typed")


async def test_choosing_russian_sets_the_servers_language(page):
    await page.select_option("#language", "ru")
    await wait_bot_message(page, "язык этого сервера")


async def test_help_and_errors_come_in_russian(page):
    await send(page, "!help")
    helped = await wait_bot_message(page, "Команды можно набирать")
    text = await page.locator(f'.msg[data-id="{helped}"]').inner_text()
    assert "`/обучить`" in text or "/обучить" in text, text  # the slash form Discord shows a Russian client
    await send(page, "!train")
    await wait_bot_message(page, "Набор данных ещё не выбран", after=helped)


async def test_a_slash_command_by_its_russian_name(page):
    await send(page, "/помощь команда:train")
    await wait_bot_message(page, "Обучить модель")


async def test_a_member_is_refused_in_russian(page):
    await be(page, "sam")
    await page.select_option("#language", "auto")
    await wait_bot_message(page, "только для администраторов")
    await be(page, "you")


async def test_back_to_english(page):
    await page.select_option("#language", "en")
    await wait_bot_message(page, "this server's language is now")
    await send(page, "!train")
    await wait_bot_message(page, "No dataset is selected yet")
