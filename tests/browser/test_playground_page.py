"""The playground through its real page: Debian's Chromium (headless, Playwright) on the page
that `python bot.py` serves with no DISCORD_TOKEN, the bot answering through the local server.

The tests run in order on one playground and one page, as one person would use it: talk,
upload audio, record a voice message, train on a file and on the shipped sample, test the
model, chat with it, be refused as a plain member, correct an answer, hear the bot in voice,
reload, restart.  The playground runs with default settings (only what a test is about is
set), so the screenshots show what a newcomer sees.  Set SCREENSHOTS_DIR (`make screenshots`
sets it to docs/) to keep the README's screenshots."""
from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import pytest
import pytest_asyncio

pytestmark = pytest.mark.slow

# Transcription offline (whisper only), and the bot stays in voice between the voice tests.
PLAYGROUND_ENV = {"STT_ENGINES": "whisper", "VOICE_IDLE_SECONDS": "60"}
SPOKEN = "the quick brown fox jumps over the lazy dog"
TOPICS = {
    "weather": ["is it going to rain today", "will it be sunny tomorrow", "what is the weather like",
                "how hot is it outside", "is there snow in the forecast", "do i need an umbrella"],
    "food": ["where can i get pizza", "recommend a restaurant", "what should i cook tonight", "i am hungry",
             "find me a good burger place", "what is for dinner"],
    "greeting": ["hello there", "good morning", "hi bot", "hey how are you", "nice to meet you",
                 "greetings friend"],
}


# Everyday messages in the sample's topics (none of them in the sample), to !test it on.
EVERYDAY = {
    "greeting": ["hello there", "hey, good morning!", "hi everyone", "yo what's up"],
    "goodbye": ["ok, see you later", "bye everyone", "goodnight, going to sleep", "I'm off, bye"],
    "thanks": ["thanks a lot!", "thank you, that helped", "cheers mate", "thanks for that"],
    "weather": ["will it rain today?", "is it sunny tomorrow", "how cold is it outside", "what's the weather tomorrow"],
    "joke": ["tell me a joke", "say something funny please", "do you know a good joke?", "make me laugh please"],
    "help": ["what can you do?", "how do I use this", "help!", "what commands do you have"],
    "bot_identity": ["who are you?", "are you a real person", "what's your name?", "who made this bot"],
    "music": ["play a song", "what music do you like?", "recommend me a song", "do you like jazz"],
    "food": ["I'm so hungry", "what should I have for dinner", "I want a burger", "any good recipes?"],
}
# The sample's answers (playground/sample/sample_intents.csv), in part.
WEATHER = "I can't look out of the window"
FOOD = "pizza seems to make everyone happy"
THANKS = "You're welcome! Happy to help."


def labelled_csv(topics: dict[str, list[str]], rounds: int = 1) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "label"])
    for _round in range(rounds):
        for label, examples in topics.items():
            writer.writerows((example, label) for example in examples)
    return out.getvalue().encode()


def dataset_csv() -> bytes:
    return labelled_csv(TOPICS, rounds=4)


def speech_wav(folder: Path, text: str = SPOKEN) -> Path:
    path = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("uploads")
    speech_wav(folder)
    (folder / "topics.csv").write_bytes(dataset_csv())
    (folder / "everyday.csv").write_bytes(labelled_csv(EVERYDAY))
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A DATA_DIR with a dataset placed by hand, as the README tells owners to do."""
    folder = tmp_path_factory.mktemp("playground-data")
    (folder / "datasets").mkdir()
    (folder / "datasets" / "faq.csv").write_text("text,label\nwhen do you open,hours\nwhere are you,address\n")
    return folder


@pytest.fixture(scope="module")
def fake_microphone(files) -> list[str]:
    # Chromium's fake microphone plays this file (looped): recording it is recording speech.
    return [f"--use-file-for-fake-audio-capture={files / 'speech.wav'}"]


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


def screenshot_dir(tmp_path_factory) -> Path:
    wanted = os.environ.get("SCREENSHOTS_DIR")
    folder = Path(wanted) if wanted else tmp_path_factory.getbasetemp()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def send(page, text: str) -> None:
    """Type into the message box and press Enter, as a person does."""
    await page.fill("#input", text)
    await page.press("#input", "Enter")


async def wait_bot_message(page, contains: str, timeout: float = 30_000, after: str | None = None) -> str:
    """The id of the first bot message in view whose text contains `contains` (newer than `after`)."""
    handle = await page.wait_for_function(
        """([text, after]) => {
            for (const m of document.querySelectorAll('#messages .msg.bot')) {
                if (after && BigInt(m.dataset.id) <= BigInt(after)) continue;
                if (m.innerText.includes(text)) return m.dataset.id;
            }
            return null;
        }""", arg=[contains, after], timeout=timeout)
    return await handle.json_value()


async def last_message_id(page) -> str:
    return await page.evaluate("[...document.querySelectorAll('#messages .msg')].pop()?.dataset.id ?? '0'")


async def at_end(page) -> bool:
    return await page.evaluate(AT_END)


# Predicates for wait_for_function are written as functions: the page's CSP (no 'unsafe-eval')
# stops Playwright re-evaluating a bare expression string at each poll; a function is compiled once.
AT_END_NOW = "(() => { const l = document.querySelector('#messages'); " \
             "return l.scrollHeight - l.scrollTop - l.clientHeight < 4; })()"
AT_END = f"() => {AT_END_NOW}"


async def next_frames(page) -> None:
    """Two animation frames: whatever a DOM change set off (layout, ResizeObserver callbacks) has run."""
    await page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")


async def be(page, name: str) -> None:
    await page.select_option("#person", label=f"{name} ({'owner' if name == 'you' else 'member'})")


async def test_hi_is_answered(page):
    await send(page, "!hi")
    reply = await wait_bot_message(page, "Hi you!")
    item = page.locator(f'.msg[data-id="{reply}"]')
    assert "!hi" in await item.locator(".quote").inner_text()  # a reply, quoting the command
    assert await item.locator(".author").inner_text() == "ChatBot"


async def test_the_printed_link_is_the_way_in(playground, page):
    """`python bot.py` prints the link with its token; the page is then at the clean URL, and
    nothing is served to a client without the cookie, or under another host name."""
    import aiohttp

    assert "/?token=" in playground.url and page.url == playground.base_url
    async with aiohttp.ClientSession() as stranger:
        for path in ("", "ws", "api/session", "api/send"):
            async with stranger.get(playground.base_url + path) as response:
                assert response.status == 401, path
        port = playground.base_url.rsplit(":", 1)[1].strip("/")
        for host in ("evil.example", f"evil.example:{port}"):  # DNS rebinding
            async with stranger.get(playground.url, headers={"Host": host}, allow_redirects=False) as response:
                assert response.status == 403


async def test_text_is_shown_as_text_and_markdown_rendered(page):
    await send(page, "<img src=x onerror=window.pwned=1> **bold** `code` <@1050000000000000001>")
    item = page.locator("#messages .msg:not(.bot)").last
    await item.locator("b", has_text="bold").wait_for()
    assert await item.locator("img").count() == 0 and not await page.evaluate("window.pwned")
    content = await item.locator(".content").inner_text()
    assert "<img src=x" in content and "@ChatBot" in content
    assert await item.locator("code", has_text="code").count() == 1


async def test_quotes_and_code_render_like_discord(page):
    await send(page, "> a quote with `x < y`\nnot quoted **bold**\n```py\n<b>kept</b> **as is**\n```")
    item = page.locator("#messages .msg:not(.bot)").last
    quote = item.locator(".content blockquote")
    await quote.wait_for()
    assert await quote.inner_text() == "a quote with x < y"
    assert await quote.locator("code").inner_text() == "x < y"
    assert await item.locator(".content b", has_text="bold").count() == 1  # after the quote, not in it
    block = item.locator(".content pre")
    assert await block.inner_text() == "<b>kept</b> **as is**"  # verbatim: no HTML, no markdown inside
    assert await block.locator("b").count() == 0
    await send(page, ">>> everything after\nis quoted")
    last = page.locator("#messages .msg:not(.bot)").last
    await last.locator("blockquote", has_text="is quoted").wait_for()
    assert await last.locator("blockquote").count() == 1


async def test_slash_command_with_suggestions(page):
    await page.fill("#input", "/h")
    suggestions = await page.locator("#suggestions li").all_inner_texts()
    assert any(s.startswith("/hi") for s in suggestions) and any(s.startswith("/help") for s in suggestions)
    await page.fill("#input", "/hi")
    await page.press("#input", "Enter")
    reply = await wait_bot_message(page, "used /hi")
    assert "Hi you!" in await page.locator(f'.msg[data-id="{reply}"]').inner_text()


async def test_unknown_slash_command_is_explained(page):
    await send(page, "/nosuch thing")
    await page.wait_for_selector("#error:not([hidden])")
    assert "not a registered command" in await page.locator("#error").inner_text()
    await page.fill("#input", "")


async def test_uploaded_recording_is_transcribed(page, files):
    before = await last_message_id(page)
    await page.set_input_files("#file", files / "speech.wav")
    await page.press("#input", "Enter")  # a file alone is a message
    reply = await wait_bot_message(page, "said:", timeout=60_000, after=before)
    text = (await page.locator(f'.msg[data-id="{reply}"] .content').inner_text()).lower()
    assert "quick brown fox" in text, text
    assert await page.evaluate("window.playground.typingShown") > 0  # "ChatBot is typing…" while it listened
    upload = page.locator(f'.msg[data-id="{before}"] ~ .msg audio').first  # the upload plays in the page
    assert await upload.get_attribute("src")


async def test_voice_message_recorded_from_the_microphone(page):
    before = await last_message_id(page)
    assert await page.locator("#rec-time").is_hidden()
    await page.click("#record")
    await page.wait_for_selector("#record.recording")
    assert await page.inner_text("#record") == "Stop"
    assert await page.locator("#rec-time").is_visible()
    # Record 3 s of the fake microphone, read on the page's running timer.
    await page.wait_for_function("() => document.querySelector('#rec-time').textContent >= '0:03'", timeout=30_000)
    await page.click("#record")
    await page.wait_for_selector("#rec-time", state="hidden")
    assert await page.inner_text("#record") == "Rec"
    voice = await page.wait_for_function(
        """(after) => [...document.querySelectorAll('#messages .msg:not(.bot)')]
            .find(m => BigInt(m.dataset.id) > BigInt(after) && m.innerText.includes('Voice message'))?.dataset.id""",
        arg=before, timeout=15_000)
    reply = await wait_bot_message(page, "said:", timeout=60_000, after=await voice.json_value())
    text = (await page.locator(f'.msg[data-id="{reply}"] .content').inner_text()).lower()
    assert "fox" in text or "lazy dog" in text, text


async def test_slash_command_takes_the_attached_file_and_its_status_is_edited(page, files):
    await page.click("#channels li:has-text('training')")
    before = await last_message_id(page)
    await page.set_input_files("#file", files / "topics.csv")
    await send(page, "/train")  # the file goes to /train's attachment option
    status = await wait_bot_message(page, "used /train", after=before)
    item = page.locator(f'.msg[data-id="{status}"]')
    await item.locator("text=Training finished").wait_for(timeout=120_000)  # the original response, edited
    assert "topics" in await item.inner_text()


async def test_train_on_the_sample_the_status_edited_in_view_then_the_confusion_matrix(page, files,
                                                                                       tmp_path_factory):
    await send(page, "!help")  # a long answer: the list is taller than the window from here on
    before = await wait_bot_message(page, "Commands work typed")
    await page.click("#train-sample")  # the header's button types `!train sample` for you
    status = await wait_bot_message(page, "Training job", after=before)
    sent = page.locator(f'.msg[data-id="{status}"]').locator("xpath=preceding-sibling::li[1]")
    assert await sent.locator(".content").inner_text() == "!train sample"
    item = page.locator(f'.msg[data-id="{status}"]')
    overflowing = "(() => { const l = document.querySelector('#messages'); return l.scrollHeight > l.clientHeight + 100; })()"
    assert await page.evaluate(overflowing) and await at_end(page)
    await item.locator("text=Training finished").wait_for(timeout=120_000)  # the same message, edited
    assert await item.locator(".edited").count() == 1
    # The edit made it taller (one line to five): the list still shows its end.
    await page.wait_for_function(AT_END)
    text = await item.inner_text()
    assert "Saved the sample dataset as sample and selected it (topics: bot_identity, food," in text, text
    assert "examples of 9 topics and of off-topic messages" in text, text
    assert "Accuracy on examples held back from training" in text, text
    assert "Details: Training job" in text and "Learner:" in text, text
    before = await last_message_id(page)
    await page.set_input_files("#file", files / "everyday.csv")
    await send(page, "!test")
    report = await wait_bot_message(page, "ccuracy", timeout=60_000, after=before)
    image = page.locator(f'.msg[data-id="{report}"] img.attachment')
    await image.wait_for()
    assert await image.get_attribute("alt") == "confusion_matrix.png"
    # The image loads after the message is shown and makes it taller: still the end in view.
    await page.wait_for_function(f"(img) => img.complete && img.naturalWidth > 100 && {AT_END_NOW}",
                                 arg=await image.element_handle())
    # The README's picture: a window tall enough for the whole story, from `!train sample` on.
    await page.set_viewport_size({"width": 1200, "height": 1250})
    await page.wait_for_function(AT_END)
    await page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "playground.png"))
    await page.set_viewport_size({"width": 1200, "height": 800})
    await page.wait_for_function(AT_END)


async def test_scrolled_up_the_list_stays_where_it_is(page):
    await page.evaluate("document.querySelector('#messages').scrollTop = 0")
    await page.wait_for_function("() => !window.playground.stuck")  # the page saw the scroll
    before = await last_message_id(page)
    # sam talks in the channel (from another page): the bot answers; this page stays where it was.
    sam = await page.evaluate("[...document.querySelectorAll('#person option')]"
                              ".find(o => o.textContent.startsWith('sam')).value")
    channel = await page.evaluate("document.querySelector('#channels li.active').dataset.id")
    await page.evaluate("""([user, channel]) => { const form = new FormData();
        form.append('user', user); form.append('channel', channel); form.append('content', 'thanks a lot!');
        return fetch('/api/send', {method: 'POST', body: form, headers: {'X-Playground': '1'}})
            .then(r => r.status); }""", [sam, channel])
    await wait_bot_message(page, THANKS, after=before)
    await next_frames(page)
    assert await page.evaluate("document.querySelector('#messages').scrollTop") == 0
    await page.evaluate("document.querySelector('#messages').scrollTop = 1e9")  # back to the end
    await page.wait_for_function("() => window.playground.stuck")


async def test_chat_is_answered_with_the_samples_sentences(page):
    await page.click("#channels li:has-text('general')")
    before = await last_message_id(page)
    await send(page, "is it going to rain this afternoon")  # not in the sample: its meaning is
    answer = await wait_bot_message(page, WEATHER, after=before)
    assert "not sure" not in await page.locator(f'.msg[data-id="{answer}"]').inner_text()
    await send(page, "thank you, that helped")
    thanks = await wait_bot_message(page, THANKS, after=answer)
    await send(page, "what is the capital of france")  # none of the sample's topics
    await wait_bot_message(page, "not sure", after=thanks)


async def test_second_member_is_refused_an_admin_command(page):
    await be(page, "sam")
    try:
        await send(page, "!select_dataset topics")
        reply = await wait_bot_message(page, "for admins only")
        assert "Manage Server" in await page.locator(f'.msg[data-id="{reply}"]').inner_text()
        await send(page, "/select_dataset name:topics")  # the same through the slash command
        await page.wait_for_function(
            "() => document.querySelector('#error:not([hidden])') || "
            "[...document.querySelectorAll('.msg.ephemeral')].some(m => m.innerText.includes('admins'))")
    finally:
        await be(page, "you")


async def test_correct_this_answer_with_its_modal(page):
    await page.click("#channels li:has-text('general')")
    before = await last_message_id(page)
    await send(page, "is it going to rain today")
    answer = await wait_bot_message(page, WEATHER, after=before)
    item = page.locator(f'.msg[data-id="{answer}"]')
    await item.hover()
    await item.locator("button.apps").click()
    await page.locator("#menu button", has_text="Correct this answer").click()
    dialog = page.locator("#modal")
    await dialog.wait_for()
    await dialog.locator("input, textarea").first.fill("rain")
    await dialog.locator("#modal-submit").click()
    thanks = await wait_bot_message(page, "Thanks! Noted", after=answer)
    assert "Only you can see this" in await page.locator(f'.msg[data-id="{thanks}"]').inner_text()


async def test_reply_to_an_answer_with_correct(page):
    answer = page.locator(".msg.bot", has_text=WEATHER).last
    answer_id = await answer.get_attribute("data-id")
    await answer.hover()
    await answer.locator("button.reply").click()
    assert await page.locator("#replying").is_visible()
    await send(page, "!correct sunshine")
    thanks = await wait_bot_message(page, "sunshine", after=answer_id)
    corrected = page.locator(f'.msg[data-id="{thanks}"]').locator("xpath=preceding-sibling::li[1]")
    assert "!correct sunshine" in await corrected.locator(".content").inner_text()
    assert WEATHER in await corrected.locator(".quote").inner_text()  # sent as a reply to the answer
    assert await page.locator("#replying").is_hidden()


async def test_right_click_opens_the_apps_menu(page):
    message = page.locator(".msg.bot", has_text=WEATHER).last
    await message.click(button="right", position={"x": 300, "y": 20})
    menu = page.locator("#menu")
    await menu.wait_for()
    assert {"Transcribe", "Correct this answer", "Speak this"} <= set(await menu.locator("button").all_inner_texts())
    box, spot = await menu.bounding_box(), await message.bounding_box()
    assert abs(box["x"] - (spot["x"] + 300)) < 2  # at the pointer, as on Discord
    await page.keyboard.press("Escape")
    await menu.wait_for(state="hidden")


async def test_transcribe_from_the_message_menu(page):
    upload = page.locator(".msg:not(.bot)", has=page.locator("audio")).first
    await upload.scroll_into_view_if_needed()
    await upload.click(button="right")  # the message's menu, as on Discord
    before = await last_message_id(page)
    await page.locator("#menu button", has_text="Transcribe").click()
    reply = await wait_bot_message(page, "used Transcribe", timeout=60_000, after=before)
    item = page.locator(f'.msg[data-id="{reply}"]')
    await item.locator("text=fox").wait_for(timeout=60_000)  # deferred, then filled in


async def test_joining_voice_plays_the_bots_spoken_answer(page, tmp_path_factory):
    await page.click("#voice-button")
    await page.wait_for_selector("#voice-members li:has-text('you')")
    before = await page.evaluate("window.playground.samplesPlayed")
    last = await last_message_id(page)
    await send(page, "where can i get pizza")
    await wait_bot_message(page, FOOD, after=last)
    await page.wait_for_function(f"() => window.playground.samplesPlayed > {before} + 48000 * 0.3", timeout=60_000)
    await page.wait_for_selector("#voice-members li:has-text('ChatBot')")
    assert await page.evaluate("window.playground.peak") > 0.05  # speech, not silence
    assert await page.evaluate("window.playground.speakingShown")
    await page.screenshot(path=str(screenshot_dir(tmp_path_factory) / "playground-voice.png"))
    # Apps -> Speak this on the bot's answer: heard again.
    heard = await page.evaluate("window.playground.samplesPlayed")
    answer = page.locator(".msg.bot", has_text=FOOD).last
    await answer.hover()
    await answer.locator("button.apps").click()
    await page.locator("#menu button", has_text="Speak this").click()
    await wait_bot_message(page, "Saying it in")
    await page.wait_for_function(f"() => window.playground.samplesPlayed > {heard} + 48000 * 0.2", timeout=60_000)
    await page.click("#voice-button")  # leave
    await page.wait_for_selector("#voice-button:has-text('Join voice')")


async def test_hand_placed_dataset_is_picked_with_autocomplete(page):
    await page.fill("#input", "")
    await page.type("#input", "/select_dataset name:fa")
    choice = page.locator("#suggestions li.choice", has_text="faq")
    await choice.wait_for()  # the bot's own autocomplete answer, through the local server
    await page.press("#input", "Enter")  # picks the choice
    assert await page.input_value("#input") == "/select_dataset name:faq"
    await page.press("#input", "Enter")
    reply = await wait_bot_message(page, "used /select_dataset")
    # Deferred ("ChatBot is thinking…"), then the answer.
    await page.locator(f'.msg[data-id="{reply}"]', has_text="Selected dataset faq").wait_for()


async def test_reload_keeps_history(page):
    before = await page.locator("#messages .msg").all_inner_texts()
    await page.reload()
    await page.wait_for_function("() => window.playground.connected")
    after = await page.locator("#messages .msg").all_inner_texts()
    assert after == before and any("!hi" in text for text in after)


async def test_restart_keeps_the_model_and_the_history(playground, page):
    await playground.restart()
    await page.goto(playground.url)  # the port is new (PLAYGROUND_PORT=0 in tests)
    await page.wait_for_function("() => window.playground.connected")
    assert any("!hi" in text for text in await page.locator("#messages .msg").all_inner_texts())
    before = await last_message_id(page)
    await send(page, "any ideas for dinner tonight?")
    await wait_bot_message(page, FOOD, after=before)  # the model trained before the restart answers
