"""The playground page's protections in a real browser (Debian's Chromium, headless): the
threat model at the top of playground/web.py, tested the way an attack would come.

The person has opened the printed link (so their browser holds the sign-in cookie), then
visits a page served from another origin: a second small aiohttp server on another local
port (the *same site* as the playground for cookies, which ignore ports: the cookie is sent,
so the Origin check is what must stop it).  That page tries the WebSocket, a cross-site form
POST to /api/send, a text/plain form dressed as JSON to /api/voice, fetches and an <img> of an
attachment: all refused, and the local server's state shows that nothing reached the bot.
The page opened from the printed link keeps working; uploaded SVG/HTML is downloaded, never
rendered.  The page server runs in this process (as the runner makes it, without a bot) so
the local server's state can be read directly; the real `python bot.py` is covered by
test_playground_page.py (it opens the printed link) and test_startup.py."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from localdiscord.server import FakeDiscord
from localdiscord.voice import FakeVoiceServer
from playground import world
from playground.history import History
from playground.web import PlaygroundPage

pytestmark = pytest.mark.slow  # a real browser

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>window.top.pwned = 1</script></svg>'
EVIL = "!hi from another site"

ATTACKER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>cute cats</title></head><body>
<script>
window.results = {};
const TARGET = "%(target)s", YOU = "%(you)s", GENERAL = "%(general)s";
function loaded(frame, form) {  // each iframe loads /blank first, then the form's answer
  frame.loads = (frame.loads || 0) + 1;
  if (frame.loads === 1) document.getElementById(form).submit();
  else results[form] = "answered";
}
</script>
<iframe name="sink-send" src="/blank" onload="loaded(this, 'send')"></iframe>
<iframe name="sink-voice" src="/blank" onload="loaded(this, 'voice')"></iframe>
<form id="send" method="POST" action="%(target)s/api/send" enctype="multipart/form-data" target="sink-send">
  <input name="user" value="%(you)s"><input name="channel" value="%(general)s">
  <input name="content" value="%(evil)s">
</form>
<form id="voice" method="POST" action="%(target)s/api/voice" enctype="text/plain" target="sink-voice">
  <input name='{"user": "%(you)s", "join": true, "x": "' value='"}'>
</form>
<img id="img" src="%(target)s/files/%(attachment)s/cat.png"
     onload="results.img = 'loaded'" onerror="results.img = 'refused'">
<script>
const ws = new WebSocket(TARGET.replace("http", "ws") + "/ws?user=" + YOU);
ws.onopen = () => { results.wsOpened = true; results.ws = "opened"; };
ws.onmessage = (event) => { results.wsData = (results.wsData || "") + String(event.data).slice(0, 200); };
ws.onclose = () => { results.ws = results.wsOpened ? "opened" : "refused"; };
const form = new FormData();
form.append("user", YOU); form.append("channel", GENERAL); form.append("content", %(evil_json)s);
fetch(TARGET + "/api/send", {method: "POST", mode: "no-cors", credentials: "include", body: form})
  .then((r) => { results.noCors = r.type; }, () => { results.noCors = "failed"; });
fetch(TARGET + "/api/voice", {method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json", "X-Playground": "1"},
    body: JSON.stringify({user: YOU, join: true})})
  .then((r) => { results.preflighted = r.status; }, () => { results.preflighted = "blocked"; });
fetch(TARGET + "/api/session", {credentials: "include"})
  .then((r) => r.text()).then((t) => { results.read = t; }, () => { results.read = "blocked"; });
</script>
</body></html>
"""
DONE = "() => ['send', 'voice', 'img', 'ws', 'noCors', 'preflighted', 'read'].every(k => k in window.results)"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(tmp_path_factory):
    """The page server on a local Discord with the playground's world, and the bot's end of the
    local gateway (identified: it is sent every message, as the bot would be)."""
    fake = FakeDiscord(world=world.build_world, record=False)
    await fake.start()
    page = PlaygroundPage(fake, FakeVoiceServer(fake, record=False), History(tmp_path_factory.mktemp("history")))
    await page.start("127.0.0.1", 0)
    delivered: list[str] = []
    arrived = asyncio.Condition()

    async def read(gateway) -> None:
        async for frame in gateway:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(frame.data)
            if data.get("t") == "MESSAGE_CREATE":
                async with arrived:
                    delivered.append(data["d"]["content"])
                    arrived.notify_all()

    async with aiohttp.ClientSession() as http, http.ws_connect(fake.url + "/") as gateway:
        await gateway.receive_json(timeout=5)  # HELLO
        await gateway.send_json({"op": 2, "d": {"token": fake.token, "intents": (1 << 9) | (1 << 15)}})
        await fake.wait_until(lambda: any(s.identified for s in fake.sessions), timeout=5)
        reader = asyncio.create_task(read(gateway))

        async def bot_saw(content: str) -> list[str]:
            async with arrived:
                await asyncio.wait_for(arrived.wait_for(lambda: content in delivered), 10)
            return list(delivered)

        try:
            yield page, bot_saw
        finally:
            reader.cancel()
            await page.stop()
            await fake.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def attacker(served):
    """Another origin on this machine (127.0.0.1, another port), serving the attacker's page."""
    page, _bot_saw = served
    fake = page.fake
    lure = await fake.send(fake.owner, "a picture", attachments=[("cat.png", b"\x89PNG\r\n\x1a\n", "image/png")])
    html = ATTACKER_PAGE % {"target": page.url.rstrip("/"), "you": world.YOU_ID, "general": fake.general.id,
                            "evil": EVIL, "evil_json": json.dumps(EVIL), "attachment": lure.attachments[0].id}

    async def lure_page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def blank(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", lure_page)
    app.router.add_get("/blank", blank)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    await runner.cleanup()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tab(served, browser):
    page, _bot_saw = served
    tab = await browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    await tab.goto(page.login_url)  # the printed link
    await tab.wait_for_function("() => window.playground.connected")
    yield tab
    assert not errors, f"errors in the page: {errors}"
    await tab.close()


async def test_the_printed_link_signs_in_then_reloads_and_second_tabs_work(served, browser, tab):
    page, _bot_saw = served
    assert tab.url == page.url  # redirected to the clean URL: the token is not left in the address bar
    cookie = next(c for c in await browser.cookies(page.url) if c["name"] == page.cookie_name)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await tab.evaluate("document.cookie") == ""  # the page's own scripts cannot read it
    await tab.reload()
    await tab.wait_for_function("() => window.playground.connected")
    for link in (page.login_url, page.url):  # a second tab, with the printed link or the plain address
        second = await browser.new_page()
        await second.goto(link)
        await second.wait_for_function("() => window.playground.connected")
        await second.close()


async def test_a_page_without_the_link_is_not_let_in(served, browser, tab):
    page, _bot_saw = served
    saved = await browser.cookies(page.url)
    await browser.clear_cookies()
    try:
        stranger = await browser.new_page()
        response = await stranger.goto(page.url)
        assert response.status == 401
        assert "Open the link the playground printed" in await stranger.inner_text("h1")
        response = await stranger.goto(f"{page.url}?token=guessed")
        assert response.status == 401
        await stranger.close()
    finally:
        await browser.add_cookies(saved)


async def test_a_page_on_another_origin_gets_nothing_done(served, browser, tab, attacker):
    page, bot_saw = served
    fake = page.fake
    refused_before = Counter(page.refused)
    evil = await browser.new_page()
    await evil.goto(attacker)
    await evil.wait_for_function(DONE, timeout=15_000)
    results = await evil.evaluate("window.results")
    assert results["ws"] == "refused" and "wsData" not in results  # no history, no ephemeral answers
    assert results["img"] == "refused"  # attachments are not served to other sites' pages
    assert results["preflighted"] == "blocked" and results["read"] == "blocked"
    assert results["send"] == results["voice"] == "answered"  # answered 403/415: see below
    await evil.close()

    # Nothing reached the local server: no message made, nobody in voice, no page connected
    # but the person's own; every attempt was refused (and counted).
    assert not any(m.content == EVIL for m in fake.messages.values())
    assert not fake.guild.voice_states and len(page.clients) == 1
    refused = page.refused - refused_before
    assert sum(refused.values()) >= 7 and all(key.startswith("403") for key in refused), refused

    # The page opened from the printed link still works, and the bot got only what it sent.
    await tab.fill("#input", "hello from the real page")
    await tab.press("#input", "Enter")
    await tab.locator(".msg", has_text="hello from the real page").wait_for()
    assert await bot_saw("hello from the real page") == ["a picture", "hello from the real page"]


async def test_uploaded_svg_and_html_are_downloaded_never_rendered(served, browser, tab, tmp_path_factory):
    page, _bot_saw = served
    folder = tmp_path_factory.mktemp("markup")
    (folder / "drawing.svg").write_bytes(SVG)
    (folder / "page.html").write_bytes(b"<script>window.top.pwned = 1</script>")
    for name in ("drawing.svg", "page.html"):
        await tab.set_input_files("#file", folder / name)
        await tab.press("#input", "Enter")
        # An SVG shows as an image in the page (where its script never runs), HTML as a link.
        shown = tab.locator(f".msg img[alt='{name}'], .msg a[download='{name}']")
        await shown.wait_for()
        url = await shown.evaluate("e => e.src || e.href")
        headers = await tab.evaluate("(url) => fetch(url).then(r => Object.fromEntries(r.headers))", url)
        assert headers["content-disposition"].startswith("attachment;"), headers
        assert headers["x-content-type-options"] == "nosniff" and "sandbox" in headers["content-security-policy"]
        opened = await browser.new_page()  # opened straight in a tab: a download, nothing runs
        async with opened.expect_download() as download:
            with contextlib.suppress(Exception):  # Chromium reports the navigation as aborted
                await opened.goto(url)
        assert (await download.value).suggested_filename == name
        await opened.close()
    assert not await tab.evaluate("window.pwned")


async def test_a_page_whose_sign_in_is_gone_says_to_open_the_link(served, browser, tab):
    """After a restart the old cookie opens nothing: the page says what to do, then reconnects
    by itself once the browser is signed in again."""
    page, _bot_saw = served
    saved = await browser.cookies(page.url)
    await browser.clear_cookies()
    try:
        for client in list(page.clients):
            await client.ws.close()
        await tab.wait_for_function("() => window.playground.signedOut === true")
        assert "open the link it printed" in await tab.inner_text("#error")
    finally:
        await browser.add_cookies(saved)
    await tab.wait_for_function("() => window.playground.connected && !window.playground.signedOut",
                                timeout=15_000)
    assert await tab.locator("#error").is_hidden()
