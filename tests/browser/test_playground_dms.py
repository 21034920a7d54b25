"""Direct messages on the playground's page, in Debian's Chromium (headless, Playwright).

Private answers go by DM (`!getfile` typed in a channel: the channel reads only "Sent to your
DMs"), so the page has a "Direct messages" entry, the bot, for the person it acts as.  The tests
run in order on one playground and one page: the owner gets a host file by DM (an unread marker,
then the file, downloaded), sam sees none of it, and DMs typed to the bot (text, a command, a
slash command) are answered in the DM view."""
from __future__ import annotations

import pytest
import pytest_asyncio

from tests.browser.test_playground_page import be, send, wait_bot_message

pytestmark = pytest.mark.slow

NOTES = "# Notes\nonly for the owner\n"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A DATA_DIR whose files folder (the host's, for `!getfile`) holds notes.md."""
    folder = tmp_path_factory.mktemp("playground-data")
    (folder / "files").mkdir()
    (folder / "files" / "notes.md").write_text(NOTES)
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(playground, browser):
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(playground.url)
    await page.wait_for_function("() => window.playground.connected")
    yield page
    assert not errors, f"errors in the page: {errors}"
    await page.close()


async def person_id(page, name: str) -> str:
    return await page.evaluate("(name) => [...document.querySelectorAll('#person option')]"
                               ".find(o => o.textContent.startsWith(name + ' ')).value", name)


async def be_and_wait(page, name: str) -> None:
    """Switch person and wait for the server's history for them (`{"type": "as"}`)."""
    await be(page, name)
    await page.wait_for_function("(id) => window.playground.as === id", arg=await person_id(page, name))


async def test_getfile_in_a_channel_arrives_under_direct_messages(page, tmp_path):
    await page.click("#channels li:has-text('general')")
    dm = page.locator("#dms li")
    assert await dm.locator(".name").inner_text() == "ChatBot" and "unread" not in await dm.get_attribute("class")
    await send(page, "!getfile notes.md")
    told = await wait_bot_message(page, "Sent to your DMs")
    # The channel only says so: the file itself is not in #general.
    assert await page.locator(f'.msg[data-id="{told}"] .file').count() == 0
    assert await page.locator("#messages .file", has_text="notes.md").count() == 0
    # The DM arrived while #general was open: the entry is marked, with a count.
    await page.locator("#dms li.unread .badge").wait_for()
    assert await page.inner_text("#dms li .badge") == "1"

    await dm.click()
    assert await page.inner_text("#channel-header #channel-sigil") == "@"
    assert await page.inner_text("#channel-name") == "ChatBot"
    assert await page.get_attribute("#input", "placeholder") == "Message @ChatBot"
    assert "active" in await dm.get_attribute("class")
    assert await page.locator("#dms li .badge").count() == 0  # read now
    answer = page.locator("#messages .msg.bot", has_text="notes.md")
    await answer.wait_for()
    link = answer.locator(".file a", has_text="notes.md")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == "notes.md"
    saved = tmp_path / "notes.md"
    await download.save_as(saved)
    assert saved.read_text() == NOTES
    # Nothing from the server's channels shows in the DM view.
    assert await page.locator("#messages .msg", has_text="Sent to your DMs").count() == 0


async def test_a_dm_typed_to_the_bot_is_answered_there(page):
    await send(page, "hello there")
    await wait_bot_message(page, "haven't been trained here yet")  # a DM is its own scope: no model yet
    await send(page, "!hi")
    await wait_bot_message(page, "Hi you!")
    assert await page.locator("#dms li .badge").count() == 0  # the open channel is never marked unread


async def suggested(page) -> set[str]:
    """The slash commands the page suggests for "/" here (each once)."""
    await page.fill("#input", "/")
    names = await page.locator("#suggestions li b").all_inner_texts()
    await page.fill("#input", "")
    assert len(names) == len(set(names)), names  # a server's copy of a global command is not shown twice
    return set(names)


async def test_slash_commands_work_in_the_dm(page):
    in_dm = await suggested(page)
    await page.click("#channels li:has-text('general')")
    in_server = await suggested(page)
    await page.click("#dms li")
    # The commands offered in DMs: not the server-only ones (voice), each command once.
    assert "/hi" in in_dm and "/join" in in_server and "/join" not in in_dm and in_dm < in_server
    await page.fill("#input", "/hi")
    await page.press("#input", "Enter")
    reply = await wait_bot_message(page, "used /hi")
    assert "Hi you!" in await page.locator(f'.msg[data-id="{reply}"]').inner_text()


async def test_sam_sees_none_of_the_owners_dms(page):
    await be_and_wait(page, "sam")
    # Still in the DM view, now sam's own DM with the bot: empty, unmarked.
    assert await page.inner_text("#channel-name") == "ChatBot"
    assert await page.locator("#dms li .badge").count() == 0
    assert await page.locator("#messages .msg").count() == 0
    await page.click("#channels li:has-text('general')")
    await page.locator("#messages .msg.bot", has_text="Sent to your DMs").wait_for()  # the channel's, public
    assert await page.locator("#messages .file", has_text="notes.md").count() == 0
    await page.click("#dms li")
    await send(page, "!hi")
    await wait_bot_message(page, "Hi sam!")
    texts = " ".join(await page.locator("#messages .msg").all_inner_texts())
    assert "notes.md" not in texts and "Hi you!" not in texts and "hello there" not in texts


async def test_back_to_the_owner_their_dms_are_there_and_sams_are_not(page):
    await be_and_wait(page, "you")
    await page.locator("#messages .msg.bot .file", has_text="notes.md").wait_for()
    texts = " ".join(await page.locator("#messages .msg").all_inner_texts())
    assert "Hi you!" in texts and "Hi sam!" not in texts
    await page.reload()
    await page.wait_for_function("() => window.playground.connected")
    await page.click("#dms li")
    await page.locator("#messages .msg.bot .file", has_text="notes.md").wait_for()  # history, after a reload
