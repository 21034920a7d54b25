"""The playground's parts without a browser: the slash syntax, the fixed world, history on
disk, modal forms, voice-message conversion, and the page server against a real local
Discord (WebSocket updates, actions, the bot's PCM going only to pages in voice), and its
protections (the threat model at the top of playground/web.py): the link's token and its
cookie, Host and Origin checks, the X-Playground header, ephemeral messages only for their
user, input checked (400 with a reason, never a 500), uploads capped, files served safely,
bounded memory and history."""
from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import struct
import subprocess
import time
from pathlib import Path

import aiohttp
import discord.opus
import pytest

from localdiscord import appcommands as ac
from localdiscord.server import FakeDiscord
from localdiscord.state import Message
from localdiscord.voice import OPUS_SILENCE, FakeVoiceServer, VoiceConnection
from localdiscord.voice_connection import load_opus
from playground import slash, world
from playground.actions import modal_form, to_ogg_opus
from playground.history import History
from playground.runner import banner, is_loopback
from playground.web import PlaygroundPage

ROOT = Path(__file__).resolve().parents[2]

COMMANDS = [
    {"name": "hi", "type": 1, "description": "Say hi", "options": []},
    {"name": "train", "type": 1, "description": "Train", "options": [
        {"name": "file", "type": ac.ATTACHMENT, "description": "CSV"},
        {"name": "label", "type": ac.STRING, "description": "a label"},
        {"name": "epochs", "type": ac.INTEGER, "description": "n"}]},
    {"name": "feedback", "type": 1, "description": "Tell", "options": [
        {"name": "text", "type": ac.STRING, "description": "what", "required": True}]},
    {"name": "model", "type": 1, "description": "Model", "options": [
        {"name": "info", "type": ac.SUBCOMMAND, "description": "info", "options": [
            {"name": "verbose", "type": ac.BOOLEAN, "description": "more"}]}]},
    {"name": "Transcribe", "type": 3},
]


# -- the slash syntax -----------------------------------------------------------------------------
def test_slash_options_values_run_to_the_next_option():
    use = slash.parse("/train label:hello world epochs:3", COMMANDS)
    assert (use.name, use.options, use.subcommand) == ("train", {"label": "hello world", "epochs": 3}, None)


def test_slash_single_text_option_may_omit_its_name_and_files_fill_the_attachment_option():
    assert slash.parse("/feedback nice bot: thanks", COMMANDS).options == {"text": "nice bot: thanks"}
    upload = ("data.csv", b"text,label\n", "text/csv")
    assert slash.parse("/train", COMMANDS, attachment=upload).options == {"file": upload}


def test_slash_subcommands_and_types():
    use = slash.parse("/model info verbose:yes", COMMANDS)
    assert use.subcommand == "info" and use.options == {"verbose": True}


@pytest.mark.parametrize("text, problem", [
    ("/nosuch", "not a registered command"), ("/Transcribe", "not a registered command"),
    ("/feedback", "needs text:"), ("/train epochs:many", "must be a number"),
    ("/model", "needs one of: info"), ("/hi", None),
])
def test_slash_mistakes_are_explained(text, problem):
    if problem is None:
        assert slash.parse(text, COMMANDS).name == "hi"
        return
    with pytest.raises(slash.SlashSyntaxError, match=problem):
        slash.parse(text, COMMANDS)


def test_slash_file_to_a_command_without_a_file_option_is_refused():
    with pytest.raises(slash.SlashSyntaxError, match="takes no file"):
        slash.parse("/hi", COMMANDS, attachment=("a.wav", b"", None))


def test_commands_are_described_for_suggestions():
    described = {c["name"]: c for c in slash.describe(COMMANDS)}
    assert set(described) == {"hi", "train", "feedback", "model"}  # no message menus
    assert [o["kind"] for o in described["train"]["options"]] == ["file", "text", "integer"]


# -- the world --------------------------------------------------------------------------------
def test_world_ids_are_the_same_every_start():
    first, second = FakeDiscord(world=world.build_world), FakeDiscord(world=world.build_world)
    assert first.guild.id == second.guild.id == world.GUILD_ID
    assert sorted(first.channels) == sorted(second.channels)
    assert first.owner.id == first.guild.owner_id == world.YOU_ID and first.bot.id == world.BOT_ID
    assert [u.username for u in world.people(first)] == ["you", "sam"]
    # sam is a plain member: no Manage Server, unlike the owner
    assert not first.guild.permissions(world.MEMBER_ID) & (1 << 5)
    assert first.guild.permissions(world.YOU_ID) & (1 << 5)


def test_the_default_test_world_is_unchanged():
    fake = FakeDiscord()
    assert fake.guild.name == "Test Guild" and fake.guild2.name == "Other Guild"
    assert {fake.owner.username, fake.alice.username, fake.bob.username, fake.carol.username} == \
        {"owner", "alice", "bob", "carol"}


# -- history ----------------------------------------------------------------------------------
async def test_history_survives_a_restart(tmp_path):
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        history = History(tmp_path)
        first = await fake.send(fake.owner, "hello", attachments=[("a.csv", b"x,y\n", "text/csv")])
        await history.save(first)
        reply = Message(12345678901234567890, fake.general, fake.bot, "hi", reference_id=first.id)
        await history.save(reply)
        reply.content, reply.edited = "hi again", True
        await history.save(reply)  # the last line wins
        gone = await fake.send(fake.member, "oops")
        await history.save(gone)
        gone.deleted = True
        await history.save(gone)
    finally:
        await fake.stop()

    again = FakeDiscord(world=world.build_world)
    await again.start()
    try:
        assert await History(tmp_path).restore(again) == 2
        restored = again.messages[first.id]
        assert restored.content == "hello" and restored.author is again.owner
        assert again.attachment_data(restored.attachments[0]) == b"x,y\n"
        assert str(again.port) in restored.attachments[0].url  # served by the new server
        assert again.messages[reply.id].content == "hi again" and again.messages[reply.id].reference_id == first.id
        assert gone.id not in again.messages
    finally:
        await again.stop()
    # compacted: one line per kept message; the deleted message's line is gone
    lines = (tmp_path / "messages.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted([first.id, reply.id])


async def test_history_keeps_the_newest_messages_of_each_channel_and_their_files(tmp_path, monkeypatch):
    from playground import history as history_module

    monkeypatch.setattr(history_module, "KEEP_PER_CHANNEL", 2)
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        history = History(tmp_path)
        sent = [await fake.send(fake.owner, f"m{i}", attachments=[(f"{i}.txt", b"x", None)]) for i in range(3)]
        for msg in sent:
            await history.save(msg)
    finally:
        await fake.stop()
    again = FakeDiscord(world=world.build_world)
    await again.start()
    try:
        assert await History(tmp_path).restore(again) == 2
        assert [m.content for m in again.messages.values()] == ["m1", "m2"]
        assert sorted(p.name for p in (tmp_path / "files").iterdir()) == \
            sorted(str(m.attachments[0].id) for m in sent[1:])
    finally:
        await again.stop()


async def test_broken_history_lines_are_skipped(tmp_path):
    (tmp_path / "messages.jsonl").write_text(f'{{"id": 1, "channel": {world.TEXT_CHANNELS[0][1]}}}\nnot json\n')
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        assert await History(tmp_path).restore(fake) == 0  # the first lacks its author and text
    finally:
        await fake.stop()


# -- pieces of the page server ----------------------------------------------------------------
def test_modal_form_flattens_rows_and_labels():
    modal = {"title": "Correct", "custom_id": "c", "components": [
        {"type": 1, "components": [{"type": 4, "custom_id": "answer", "label": "Right answer", "style": 2}]},
        {"type": 18, "label": "Why", "component": {"type": 4, "custom_id": "why", "required": False}}]}
    form = modal_form(modal)
    assert form["title"] == "Correct"
    assert [(f["custom_id"], f["label"], f["paragraph"], f["required"]) for f in form["fields"]] == \
        [("answer", "Right answer", True, True), ("why", "Why", False, False)]


async def test_a_browser_recording_becomes_an_ogg_opus_voice_message(tmp_path):
    wav, webm = tmp_path / "s.wav", tmp_path / "s.webm"
    subprocess.run(["espeak-ng", "-w", str(wav), "hello"], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", str(webm)], check=True)
    name, data, content_type = await to_ogg_opus(("rec.webm", webm.read_bytes(), "audio/webm"))
    assert (name, content_type) == ("voice-message.ogg", "audio/ogg") and data[:4] == b"OggS"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
                           input=data, capture_output=True, check=True)
    assert probe.stdout.decode().strip() == "opus"


def test_loopback_hosts_and_the_banner():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    assert "open http://127.0.0.1:8800/?token=abc in your browser" in banner("http://127.0.0.1:8800/?token=abc")


def signed_in(page: PlaygroundPage, **kwargs) -> aiohttp.ClientSession:
    """A client as the page is after opening the printed link: the cookie, and X-Playground on actions."""
    return aiohttp.ClientSession(cookies={page.cookie_name: page.token}, headers={"X-Playground": "1"}, **kwargs)


@contextlib.asynccontextmanager
async def served(tmp_path, **kwargs):
    """The page server on a local Discord with the playground's world (as the runner makes them)."""
    fake = FakeDiscord(world=world.build_world, record=False)
    await fake.start()
    voice = FakeVoiceServer(fake, record=False)  # not started: only its PCM hook is used here
    page = PlaygroundPage(fake, voice, History(tmp_path), **kwargs)
    await page.start("127.0.0.1", 0)
    try:
        yield page
    finally:
        await page.stop()
        await fake.stop()


async def test_page_server_pushes_messages_and_pcm_only_to_pages_in_voice(tmp_path):
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    voice = FakeVoiceServer(fake)  # not started: only its PCM hook is used here
    page = PlaygroundPage(fake, voice, History(tmp_path))
    url = await page.start("127.0.0.1", 0)
    try:
        async with signed_in(page) as session:
            async with session.ws_connect(f"{url}ws?user={world.YOU_ID}") as you, \
                    session.ws_connect(f"{url}ws?user={world.MEMBER_ID}") as sam:
                for ws in (you, sam):
                    assert (await ws.receive_json(timeout=5))["type"] == "hello"
                form = aiohttp.FormData({"user": str(world.MEMBER_ID), "channel": str(fake.general.id),
                                         "content": "hi @ChatBot"})
                async with session.post(f"{url}api/send", data=form) as response:
                    sent = (await response.json())["id"]
                assert fake.messages[int(sent)].mentions == [fake.bot]  # @name became a mention

                async def next_of(ws, kind):
                    while True:
                        frame = await ws.receive(timeout=5)
                        if frame.type == aiohttp.WSMsgType.BINARY:
                            if kind == "pcm":
                                return frame.data
                            continue
                        data = json.loads(frame.data)
                        if data["type"] == kind:
                            return data

                assert (await next_of(you, "message"))["message"]["author"]["name"] == "sam"
                async with session.post(f"{url}api/voice", json={"user": str(world.YOU_ID), "join": True}) as r:
                    assert str(world.YOU_ID) in (await r.json())["members"]
                voice.pcm_listeners[0](fake.guild.id, b"\x01\x00" * 1920)
                voice.pcm_listeners[0](fake.guild.id + 1, b"\x02\x00" * 1920)  # another server: not played
                assert await next_of(you, "pcm") == b"\x01\x00" * 1920
                await sam.send_str(json.dumps({"type": "as", "user": str(world.YOU_ID)}))  # sam's page switches
                assert (await next_of(sam, "as"))["user"] == str(world.YOU_ID)
                voice.pcm_listeners[0](fake.guild.id, b"\x03\x00" * 1920)
                assert await next_of(sam, "pcm") == b"\x03\x00" * 1920
                async with session.post(f"{url}api/slash", data=aiohttp.FormData(
                        {"user": str(world.YOU_ID), "channel": str(fake.general.id), "text": "/hi"})) as r:
                    assert r.status == 400 and "not a registered command" in (await r.json())["error"]
    finally:
        await page.stop()
        await fake.stop()


def test_bot_py_takes_only_the_mode_flags(capsys):
    import bot

    assert bot.main(["--bogus"]) == 2 and "usage: bot.py [--playground | --discord]" in capsys.readouterr().err
    assert bot.main(["--playground", "--discord"]) == 2



async def test_the_page_server_sends_line_breaks_as_discord_does(tmp_path):
    """A form carries line breaks as CRLF; Discord's client sends LF (so `> quote` lines parse)."""
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    page = PlaygroundPage(fake, FakeVoiceServer(fake), History(tmp_path))
    url = await page.start("127.0.0.1", 0)
    try:
        async with signed_in(page) as session:
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(fake.general.id),
                                     "content": "> quoted\r\nnot quoted"})
            async with session.post(f"{url}api/send", data=form) as response:
                sent = (await response.json())["id"]
        assert fake.messages[int(sent)].content == "> quoted\nnot quoted"
    finally:
        await page.stop()
        await fake.stop()


async def test_the_local_gateway_acknowledges_heartbeats():
    """After a round trip's delay (see HEARTBEAT_ACK_DELAY), as Discord does."""
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(fake.url + "/") as ws:
            hello = await ws.receive_json(timeout=5)
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] == 41_250
            await ws.send_json({"op": 1, "d": None})
            assert (await ws.receive_json(timeout=5))["op"] == 11
    finally:
        await fake.stop()


# -- the sample dataset (`!train sample`, the page's "Train on the sample") -----------------------
def test_the_sample_dataset_is_ready_to_train_and_answers_in_sentences():
    from commands.training import SAMPLE_DATASET
    from model.parsing import parse_dataset
    from model.validation import responses_by_label

    parsed = parse_dataset(SAMPLE_DATASET.read_bytes(), SAMPLE_DATASET.name)
    examples = parsed.examples
    assert 200 <= len(examples) <= 500 and not parsed.warnings
    assert len({e.text.lower() for e in examples}) == len(examples)  # no repeats
    topics = [e for e in examples if e.label != "out_of_scope"]  # the rest teach "not sure" (OOS_LABELS)
    labels = {e.label for e in topics}
    assert 6 <= len(labels) <= 10 and len(examples) - len(topics) >= 20
    assert all(e.response for e in topics) and not any(e.response for e in examples if e not in topics)
    responses = responses_by_label(examples)
    assert set(responses) == labels and len(set(responses.values())) == len(labels)  # one sentence per topic
    assert all(r.endswith((".", "!", "?")) and " " in r for r in responses.values())


# -- the page's protections (the threat model at the top of playground/web.py) -------------------
async def test_the_printed_link_signs_the_browser_in_then_redirects_to_the_clean_url(tmp_path):
    async with served(tmp_path) as page, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert page.login_url == f"{page.url}?token={page.token}" and len(page.token) >= 40
        async with browser.get(page.url) as response:  # no link opened yet
            assert response.status == 401 and "?token=" in await response.text()
        async with browser.get(f"{page.url}?token=not-{page.token}") as response:
            assert response.status == 401
        async with browser.get(page.login_url, allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"] == "/"
            cookie = response.headers["Set-Cookie"]
        assert cookie.startswith(f"{page.cookie_name}={page.token};")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        async with browser.get(page.url) as response:  # a reload, a second tab: the cookie
            assert response.status == 200 and "<textarea" in await response.text()
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
            assert response.headers["X-Frame-Options"] == "DENY"
        async with browser.ws_connect(f"{page.url}ws") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        async with browser.get(page.login_url) as response:  # the link again (another tab): fine
            assert response.status == 200 and str(response.url) == page.url


async def test_without_the_cookie_nothing_but_the_sign_in_page_is_served(tmp_path):
    async with served(tmp_path) as page, aiohttp.ClientSession(headers={"X-Playground": "1"}) as stranger:
        fake = page.fake
        sent = await fake.send(fake.owner, "a file", attachments=[("a.txt", b"secret", "text/plain")])
        attachment = sent.attachments[0]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await stranger.ws_connect(f"{page.url}ws")
        assert refused.value.status == 401
        for path, body in (("api/send", {"user": str(world.YOU_ID), "channel": str(fake.general.id), "content": "!hi"}),
                           ("api/voice", None)):
            form = aiohttp.FormData(body) if body else None
            async with stranger.post(page.url + path, data=form,
                                     json=None if body else {"user": str(world.YOU_ID), "join": True}) as response:
                assert response.status == 401 and "token" in (await response.json())["error"]
        for path in (f"files/{attachment.id}/a.txt", "api/session"):
            async with stranger.get(page.url + path) as response:
                assert response.status == 401
        async with stranger.get(page.url, cookies={page.cookie_name: "guessed"}) as response:
            assert response.status == 401
        async with stranger.get(page.url + "static/app.js") as response:  # no secrets in the page's code
            assert response.status == 200
        assert [m.content for m in fake.messages.values()] == ["a file"] and not fake.guild.voice_states


async def test_the_page_scripts_are_modules_served_as_javascript_to_the_page_itself(tmp_path):
    """index.html loads app.js as an ES module, which imports the others: the browser fetches
    them in CORS mode, with the page's own Origin, and runs them only with a JavaScript type."""
    static = ROOT / "playground" / "static"
    assert '<script type="module" src="/static/app.js"></script>' in (static / "index.html").read_text()
    scripts = sorted(p.name for p in static.glob("*.js"))
    assert len(scripts) > 1 and all(len((static / name).read_text().splitlines()) < 500 for name in scripts)
    async with served(tmp_path) as page, aiohttp.ClientSession() as browser:
        own = {"Origin": page.url.rstrip("/"), "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "script"}
        for name in scripts:
            async with browser.get(f"{page.url}static/{name}", headers=own) as response:
                assert response.status == 200, name
                assert response.content_type in ("text/javascript", "application/javascript"), name
                assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_another_origin_is_refused_even_with_the_cookie(tmp_path):
    """A page on another local port is the same *site*: the browser sends the SameSite cookie."""
    async with served(tmp_path) as page, signed_in(page) as session:
        fake = page.fake
        for headers in ({"Origin": "http://127.0.0.1:9"}, {"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{page.url}ws", headers=headers)
            assert refused.value.status == 403
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(fake.general.id), "content": "!hi"})
            async with session.post(f"{page.url}api/send", data=form, headers=headers) as response:
                assert response.status == 403 and "other sites" in (await response.json())["error"]
            async with session.post(f"{page.url}api/voice", json={"user": str(world.YOU_ID), "join": True},
                                    headers=headers) as response:
                assert response.status == 403
        assert not fake.messages and not fake.guild.voice_states and not page.clients
        own = {"Origin": page.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}  # the page itself
        async with session.post(f"{page.url}api/voice", json={"user": str(world.YOU_ID), "join": True},
                                headers=own) as response:
            assert response.status == 200
        assert "refused" in " ".join(page.refused) and sum(page.refused.values()) == 15


async def test_only_this_machines_names_for_the_page_are_served(tmp_path):
    """DNS rebinding: evil.example pointed at 127.0.0.1 reaches the port, but with its own Host."""
    async with served(tmp_path) as page, signed_in(page) as session:
        for host in ("evil.example", f"evil.example:{page.port}", f"127.0.0.1:{page.port + 1}", "127.0.0.1"):
            for path in ("", f"?token={page.token}", "api/session", "static/app.js"):
                async with session.get(page.url + path, headers={"Host": host}) as response:
                    assert response.status == 403, (host, path)
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await session.ws_connect(f"{page.url}ws", headers={"Host": host})
        for host in (f"localhost:{page.port}", f"[::1]:{page.port}", f"LOCALHOST:{page.port}"):
            async with session.get(page.url + "api/session", headers={"Host": host}) as response:
                assert response.status == 200, host


async def test_actions_need_the_header_and_json_endpoints_take_only_json(tmp_path):
    async with served(tmp_path) as page, aiohttp.ClientSession(cookies={page.cookie_name: page.token}) as session:
        fake = page.fake
        fields = {"user": str(world.YOU_ID), "channel": str(fake.general.id), "content": "!hi"}
        async with session.post(f"{page.url}api/send", data=aiohttp.FormData(fields)) as response:  # an HTML form
            assert response.status == 403 and "X-Playground" in (await response.json())["error"]
        header = {"X-Playground": "1"}
        # The classic JSON-by-form trick: a text/plain form whose body parses as JSON.
        trick = '{"user": "%d", "join": true, "x": "="}' % world.YOU_ID
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            async with session.post(f"{page.url}api/voice", data=trick,
                                    headers={**header, "Content-Type": content_type}) as response:
                assert response.status == 415 and "JSON" in (await response.json())["error"]
        async with session.post(f"{page.url}api/send", json=fields, headers=header) as response:
            assert response.status == 415
        assert not fake.messages and not fake.guild.voice_states


BAD_JSON = [
    ("api/voice", b"{not json", 400, "malformed JSON"),
    ("api/voice", b"[1, 2]", 400, "JSON object"),
    ("api/voice", b"\xff\xfe", 400, "malformed JSON"),
    ("api/voice", b"[" * 100_000 + b"]" * 100_000, 413, "bytes of JSON"),
    ("api/voice", b"[" * 30_000 + b"]" * 30_000, 400, "malformed JSON"),
    ("api/voice", json.dumps({"user": "9" * 5000, "join": True}).encode(), 400, "unknown user"),
    ("api/voice", json.dumps({"user": "1", "join": True}).encode(), 400, "unknown user"),
    ("api/voice", json.dumps({"user": "\u00b2", "join": True}).encode(), 400, "unknown user"),
    ("api/voice", json.dumps({"user": [world.YOU_ID], "join": True}).encode(), 400, "unknown user"),
    ("api/voice", json.dumps({"user": str(world.YOU_ID), "join": "yes"}).encode(), 400, "join"),
    ("api/voice", json.dumps({"user": str(world.YOU_ID), "join": 1e999}).encode(), 400, "join"),
    ("api/menu", json.dumps({"user": str(world.YOU_ID), "name": "Transcribe", "message": "123"}).encode(), 400,
     "gone"),
    ("api/menu", json.dumps({"user": str(world.YOU_ID), "name": 5, "message": "123"}).encode(), 400, "name"),
    ("api/modal", json.dumps({"user": str(world.YOU_ID), "interaction": "1", "values": {}}).encode(), 400,
     "unknown form"),
    ("api/autocomplete", json.dumps({"user": str(world.YOU_ID), "channel": str(world.TEXT_CHANNELS[0][1])}).encode(),
     400, "command"),
    ("api/autocomplete", json.dumps({"user": str(world.YOU_ID), "channel": str(world.VOICE_CHANNEL_ID),
                                     "command": "x", "option": "y"}).encode(), 400, "unknown channel"),
    ("api/autocomplete", json.dumps({"user": str(world.YOU_ID), "channel": str(world.TEXT_CHANNELS[0][1]),
                                     "command": "nosuch", "option": "y", "value": "v"}).encode(), 400,
     "is registered"),
]


@pytest.mark.parametrize("path, body, status, reason", BAD_JSON, ids=lambda x: str(x)[:30])
async def test_malformed_json_actions_are_refused_with_a_reason(tmp_path, path, body, status, reason):
    async with served(tmp_path) as page, signed_in(page) as session:
        async with session.post(page.url + path, data=body, headers={"Content-Type": "application/json"}) as response:
            assert response.status == status, await response.text()
            assert reason in (await response.json())["error"]
        assert not page.fake.messages and not page.fake.guild.voice_states


def bad_sends(fake) -> list[tuple[dict, list, str]]:
    you, general = str(world.YOU_ID), str(fake.general.id)
    return [
        ({"user": you, "channel": "1", "content": "hi"}, [], "unknown channel"),
        ({"user": you, "channel": str(world.VOICE_CHANNEL_ID), "content": "hi"}, [], "unknown channel"),
        ({"user": you, "channel": "9" * 5000, "content": "hi"}, [], "unknown channel"),
        ({"user": you, "content": "hi"}, [], "unknown channel"),
        ({"user": str(world.BOT_ID), "channel": general, "content": "hi"}, [], "unknown user"),
        ({"channel": general, "content": "hi"}, [], "unknown user"),
        ({"user": you, "channel": general, "content": "x" * 2001}, [], "2000 characters"),
        ({"user": you, "channel": general, "content": "   "}, [], "nothing to send"),
        ({"user": you, "channel": general, "content": "hi", "reply_to": "42"}, [], "reply to"),
        ({"user": you, "channel": general, "content": "hi", "duration": "nan"}, [], "duration"),
        ({"user": you, "channel": general, "content": "hi", "duration": "1e999"}, [], "duration"),
        ({"user": you, "channel": general, "voice_message": "1"}, [("a.webm", b"not a recording")], "WebM or Ogg"),
        ({"user": you, "channel": general, "voice_message": "1"}, [], "one recording"),
        ({"user": you, "channel": general, "content": "hi"}, [(f"{i}.txt", b"x") for i in range(11)], "at most 10"),
    ]


async def test_malformed_forms_are_refused_with_a_reason(tmp_path):
    async with served(tmp_path) as page, signed_in(page) as session:
        fake = page.fake
        for fields, files, reason in bad_sends(fake):
            form = aiohttp.FormData(fields)
            for name, data in files:
                form.add_field("file", data, filename=name, content_type="application/octet-stream")
            async with session.post(f"{page.url}api/send", data=form) as response:
                assert response.status == 400 and reason in (await response.json())["error"], (fields, reason)
        slash_form = {"user": str(world.YOU_ID), "channel": str(fake.general.id), "text": "/nosuch"}
        async with session.post(f"{page.url}api/slash", data=aiohttp.FormData(slash_form)) as response:
            assert response.status == 400 and "not a registered command" in (await response.json())["error"]
        for body in (b"garbage", b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--\r\n"):
            async with session.post(f"{page.url}api/send", data=body,
                                    headers={"Content-Type": "multipart/form-data; boundary=x"}) as response:
                assert response.status == 400 and "malformed form" in (await response.json())["error"]
        async with session.get(f"{page.url}files/{'9' * 5000}/x") as response:
            assert response.status == 404
        for user in ("abc", "9" * 5000, "1"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{page.url}ws?user={user}")
            assert refused.value.status == 400
        async with session.ws_connect(f"{page.url}ws?user={world.YOU_ID}") as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
            for junk in ("{not json", "[]", '{"type": "as", "user": "1"}', '{"type": "as", "user": {}}',
                         "[" * 2000 + "]" * 2000):
                await ws.send_str(junk)  # ignored
            await ws.send_str(json.dumps({"type": "as", "user": str(world.MEMBER_ID)}))
            while (data := await ws.receive_json(timeout=5))["type"] != "as":
                pass
            assert data["user"] == str(world.MEMBER_ID)
        assert not page.fake.messages


async def test_uploads_over_max_attachment_bytes_are_refused_with_413(tmp_path):
    async with served(tmp_path, max_upload=1000) as page, signed_in(page) as session:
        for sizes in ([1001], [600, 600]):
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(page.fake.general.id)})
            for i, size in enumerate(sizes):
                form.add_field("file", b"x" * size, filename=f"{i}.bin")
            async with session.post(f"{page.url}api/send", data=form) as response:
                assert response.status == 413 and "MAX_ATTACHMENT_BYTES" in (await response.json())["error"]
        form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(page.fake.general.id)})
        form.add_field("file", b"x" * 200_000, filename="big.bin")  # over the form's own limit too
        async with session.post(f"{page.url}api/send", data=form) as response:
            assert response.status == 413
        assert not page.fake.messages
        form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(page.fake.general.id)})
        form.add_field("file", b"x" * 1000, filename="fits.bin")
        async with session.post(f"{page.url}api/send", data=form) as response:
            assert response.status == 200


async def test_uploaded_files_are_served_nosniff_and_markup_only_as_downloads(tmp_path):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    async with served(tmp_path) as page, signed_in(page) as session:
        form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": str(page.fake.general.id)})
        for name, data, content_type in (("x.svg", svg, "image/svg+xml"), ("x.html", b"<script>1</script>", "text/html"),
                                         ("x.png", b"\x89PNG\r\n", "image/png"), ("v.ogg", b"OggS", "audio/ogg")):
            form.add_field("file", data, filename=name, content_type=content_type)
        async with session.post(f"{page.url}api/send", data=form) as response:
            sent = page.fake.messages[int((await response.json())["id"])]
        named = await page.fake.send(page.fake.owner, attachments=[("café ünï.txt", b"t", "text/plain")])
        served_as = {}
        for attachment in sent.attachments + named.attachments:
            async with session.get(f"{page.url}files/{attachment.id}/{attachment.filename}") as response:
                assert response.status == 200 and await response.read() == attachment.data
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert "sandbox" in response.headers["Content-Security-Policy"]
                served_as[attachment.filename] = (response.headers["Content-Disposition"].split(";")[0],
                                                  response.headers["Content-Type"].split(";")[0])
        assert served_as == {"x.svg": ("attachment", "image/svg+xml"), "x.html": ("attachment", "text/html"),
                             "x.png": ("inline", "image/png"), "v.ogg": ("inline", "audio/ogg"),
                             "café ünï.txt": ("attachment", "text/plain")}


@contextlib.asynccontextmanager
async def bot_side(fake: FakeDiscord):
    """Just the bot's end of the local gateway (identified, so interactions are sent to it) and REST."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http, \
            http.ws_connect(fake.url + "/") as gateway:
        await gateway.receive_json(timeout=5)  # HELLO
        await gateway.send_json({"op": 2, "d": {"token": fake.token, "intents": (1 << 9) | (1 << 12) | (1 << 15)}})
        await fake.wait_until(lambda: any(s.identified for s in fake.sessions), timeout=5)
        yield http, gateway


async def next_event(gateway, name: str) -> dict:
    while (frame := await gateway.receive_json(timeout=5)).get("t") != name:
        pass
    return frame["d"]


async def messages_until(ws, content: str) -> list[str]:
    """The contents of the messages `ws` gets, up to one with `content`."""
    seen = []
    while True:
        frame = await ws.receive(timeout=5)
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        data = json.loads(frame.data)
        if data["type"] == "message":
            seen.append(data["message"]["content"])
            if data["message"]["content"] == content:
                return seen


async def test_ephemeral_messages_and_dms_go_only_to_the_page_of_their_user(tmp_path):
    async with served(tmp_path) as page, signed_in(page) as session, bot_side(page.fake) as (http, gateway):
        fake = page.fake
        fake.app_commands.overwrite(fake.guild.id, [{"name": "secret", "description": "A secret", "type": 1}])
        general = str(fake.general.id)
        async with session.ws_connect(f"{page.url}ws?user={world.YOU_ID}") as you, \
                session.ws_connect(f"{page.url}ws?user={world.MEMBER_ID}") as sam:
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": general, "text": "/secret"})
            async with session.post(f"{page.url}api/slash", data=form) as response:
                assert response.status == 200
            asked = await next_event(gateway, "INTERACTION_CREATE")
            async with http.post(f"{fake.url}/api/v10/interactions/{asked['id']}/{asked['token']}/callback",
                                 json={"type": 4, "data": {"content": "for your eyes only", "flags": 64}}) as r:
                assert r.status == 204
            async with http.post(f"{fake.url}/api/v10/users/@me/channels",
                                 json={"recipient_id": str(world.YOU_ID)}) as r:
                dm = (await r.json())["id"]
            async with http.post(f"{fake.url}/api/v10/channels/{dm}/messages", json={"content": "a private file"}) as r:
                assert r.status == 200
            # Then something everyone sees: sam's page has had everything before it by then.
            form = aiohttp.FormData({"user": str(world.MEMBER_ID), "channel": general, "content": "public"})
            async with session.post(f"{page.url}api/send", data=form) as response:
                assert response.status == 200
            assert await messages_until(you, "public") == ["for your eyes only", "a private file", "public"]
            assert await messages_until(sam, "public") == ["public"]

            # History when a page opens, and when it switches person, holds only that person's.
            async with session.ws_connect(f"{page.url}ws?user={world.MEMBER_ID}") as late:
                hello = await late.receive_json(timeout=5)
                assert [m["content"] for m in hello["messages"]] == ["public"]
            async with session.ws_connect(f"{page.url}ws?user={world.YOU_ID}") as late:
                hello = await late.receive_json(timeout=5)
                mine = {m["content"]: m for m in hello["messages"]}
                assert set(mine) == {"for your eyes only", "a private file", "public"}
                assert mine["for your eyes only"]["for_user"] == str(world.YOU_ID)
            await sam.send_json({"type": "as", "user": str(world.YOU_ID)})
            while (data := await sam.receive_json(timeout=5))["type"] != "as":
                pass
            assert {m["content"] for m in data["messages"]} == {"for your eyes only", "a private file", "public"}
            await you.send_json({"type": "as", "user": str(world.MEMBER_ID)})
            while (data := await you.receive_json(timeout=5))["type"] != "as":
                pass
            assert [m["content"] for m in data["messages"]] == ["public"]
            # sam cannot submit or target what is not theirs either.
            target = next(m for m in fake.messages.values() if m.content == "for your eyes only")
            async with session.post(f"{page.url}api/menu", json={"user": str(world.MEMBER_ID), "name": "Transcribe",
                                                                 "message": str(target.id)}) as response:
                assert response.status == 400 and "gone" in (await response.json())["error"]


def test_nothing_the_page_reaches_relies_on_assert():
    """`python -O` removes assert statements: checks on what the page sends must be real ones."""
    page_path = ("interactions", "interaction_server", "interaction_input", "interaction_routes", "server",
                 "gateway", "rest", "responses", "state", "appcommands")
    files = sorted((ROOT / "playground").glob("*.py")) + [ROOT / "localdiscord" / f"{name}.py" for name in page_path]
    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in files
             for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert not found, f"assert statements on the page's request path: {found}"


def test_a_remote_playground_host_needs_playground_allow_remote(tmp_path):
    from config import ConfigError, load_settings

    none = tmp_path / "none.env"
    with pytest.raises(ConfigError, match="PLAYGROUND_ALLOW_REMOTE=true"):
        load_settings({"PLAYGROUND_HOST": "0.0.0.0"}, env_file=none)
    allowed = load_settings({"PLAYGROUND_HOST": "0.0.0.0", "PLAYGROUND_ALLOW_REMOTE": "true"}, env_file=none)
    assert allowed.playground_allow_remote and not load_settings({}, env_file=none).playground_allow_remote
    assert load_settings({"PLAYGROUND_HOST": "::1"}, env_file=none).playground_host == "::1"
    # With a token the playground is off: the setting does not stand in Discord's way.
    assert load_settings({"PLAYGROUND_HOST": "0.0.0.0", "DISCORD_TOKEN": "t"}, env_file=none).discord_token


async def test_a_chosen_host_is_accepted_and_the_token_still_needed(tmp_path):
    fake = FakeDiscord(world=world.build_world, record=False)
    await fake.start()
    page = PlaygroundPage(fake, FakeVoiceServer(fake, record=False), History(tmp_path))
    url = await page.start("127.0.0.2", 0)  # as PLAYGROUND_HOST with PLAYGROUND_ALLOW_REMOTE
    try:
        async with aiohttp.ClientSession() as stranger, signed_in(page) as session:
            async with stranger.get(url + "api/session") as response:
                assert response.status == 401
            async with session.get(url + "api/session") as response:
                assert response.status == 200
            async with session.get(url + "api/session", headers={"Host": "evil.example"}) as response:
                assert response.status == 403
    finally:
        await page.stop()
        await fake.stop()


# -- bounded memory and disk ----------------------------------------------------------------------
def rtp_packet(key: bytes, sequence: int, payload: bytes) -> bytes:
    """A voice packet as discord.py sends it (aead_xchacha20_poly1305_rtpsize, no extension)."""
    import nacl.bindings

    header = struct.pack(">BBHII", 0x80, 0x78, sequence, sequence * 960, 1234)
    nonce = struct.pack(">I", sequence)
    return header + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, header, nonce + bytes(20),
                                                                             key) + nonce


@pytest.mark.parametrize("record", [True, False])
def test_a_voice_server_that_does_not_record_keeps_no_pcm(record):
    load_opus()
    fake = FakeDiscord(world=world.build_world, record=record)
    voice = FakeVoiceServer(fake, record=record)
    heard: list[bytes] = []
    voice.pcm_listeners.append(lambda guild_id, pcm: heard.append(pcm))
    conn = VoiceConnection(voice, ws=None)  # type: ignore[arg-type]
    conn.secret_key, conn.guild_id = bytes(range(32)), fake.guild.id
    opus = discord.opus.Encoder().encode(b"\x10\x00" * 1920, 960)
    for sequence in range(100):
        conn.receive_rtp(rtp_packet(conn.secret_key, sequence, opus), time.monotonic())
    conn.receive_rtp(rtp_packet(conn.secret_key, 100, OPUS_SILENCE), time.monotonic())
    assert len(heard) == 100 and conn.decrypt_errors == 0  # the page hears every frame either way
    utterances = voice.utterances(fake.guild)
    assert [u.frames for u in utterances] == ([100] if record else [])


async def test_a_local_server_that_does_not_record_keeps_the_newest_only(monkeypatch):
    from localdiscord import server as server_module

    monkeypatch.setattr(server_module, "RECENT", 5)
    monkeypatch.setattr(server_module, "KEEP_MESSAGES", 10)
    monkeypatch.setattr(server_module, "KEEP_ATTACHMENT_BYTES", 1000)
    fake = FakeDiscord(world=world.build_world, record=False)
    await fake.start()
    try:
        seen: list[str] = []
        fake.event_listeners.append(lambda event: seen.append(event.message.content))
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http:
            sent = [await fake.send(fake.owner, f"m{i}", attachments=[(f"{i}.bin", b"x" * 300, None)])
                    for i in range(20)]
            for i in range(8):
                async with http.post(f"{fake.url}/api/v10/channels/{fake.general.id}/messages",
                                     json={"content": f"bot {i}"}) as response:
                    assert response.status == 200
                async with http.post(f"{fake.url}/api/v10/channels/{fake.general.id}/typing") as response:
                    assert response.status == 204
            oldest = sent[-1].attachments[0]
            async with http.get(f"{fake.url}/attachments/{fake.general.id}/{sent[0].attachments[0].id}/0.bin") as r:
                assert r.status == 404  # forgotten
            async with http.get(f"{fake.url}/attachments/{fake.general.id}/{oldest.id}/x") as r:
                assert r.status == 200
        assert seen == [f"bot {i}" for i in range(8)]  # the listeners saw everything
        assert len(fake.events) == len(fake.typing) == len(fake.requests) == 5
        assert [e.message.content for e in fake.events] == [f"bot {i}" for i in range(3, 8)]
        assert len(fake.messages) == 10 and list(fake.messages.values())[-1].content == "bot 7"
        assert sum(len(a.data) for a in fake.attachments.values()) <= 1000 and not fake.cdn_fetches
    finally:
        await fake.stop()


async def test_history_stays_within_its_quota_dropping_the_oldest(tmp_path):
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        history = History(tmp_path, quota_bytes=20_000)
        sent = []
        for i in range(40):
            msg = await fake.send(fake.owner, f"message {i}", attachments=[(f"{i}.bin", b"x" * 1000, None)])
            await history.save(msg)
            sent.append(msg)
            used = (tmp_path / "messages.jsonl").stat().st_size + sum(p.stat().st_size for p in (tmp_path / "files").iterdir())
            assert used <= 20_000
    finally:
        await fake.stop()
    again = FakeDiscord(world=world.build_world)
    await again.start()
    try:
        restored = await History(tmp_path, quota_bytes=20_000).restore(again)
        contents = [m.content for m in again.messages.values()]
        assert 5 <= restored < 40 and contents == [f"message {i}" for i in range(40 - restored, 40)]  # the newest
        assert all(again.attachment_data(m.attachments[0]) == b"x" * 1000 for m in again.messages.values())
    finally:
        await again.stop()


# -- direct messages with the bot ------------------------------------------------------------------
async def frames_until(ws, content: str) -> list[dict]:
    """Every JSON update `ws` gets, up to a message with `content`."""
    seen = []
    while True:
        frame = await ws.receive(timeout=5)
        if frame.type != aiohttp.WSMsgType.TEXT:
            continue
        seen.append(data := json.loads(frame.data))
        if data["type"] == "message" and data["message"]["content"] == content:
            return seen


def test_each_persons_dm_with_the_bot_has_a_fixed_id():
    first, second = FakeDiscord(world=world.build_world), FakeDiscord(world=world.build_world)
    assert first.dm_channel(first.owner).id == second.dm_channel(second.owner).id == world.YOU_DM_ID
    assert first.dm_channel(first.member).id == world.MEMBER_DM_ID
    assert first.dm_channel(first.owner).recipient is first.owner and first.dm_channel(first.owner).guild_id is None


async def test_dms_come_back_after_a_restart_in_the_same_channel(tmp_path):
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    try:
        history = History(tmp_path)
        asked = await fake.dm(fake.owner, "!getfile notes.md")
        await history.save(asked)
        answer = Message(asked.id + 1, fake.dm_channel(fake.owner), fake.bot, "`notes.md` (5 B)")
        await history.save(answer)
    finally:
        await fake.stop()
    again = FakeDiscord(world=world.build_world)
    await again.start()
    try:
        assert await History(tmp_path).restore(again) == 2
        assert again.messages[answer.id].channel is again.dm_channel(again.owner)
    finally:
        await again.stop()


async def test_a_page_has_its_persons_dm_with_the_bot_and_no_one_elses(tmp_path):
    async with served(tmp_path) as page, signed_in(page) as session, bot_side(page.fake) as (http, gateway):
        fake = page.fake
        fake.app_commands.overwrite(None, [{"name": "hi", "description": "Hi", "type": 1},
                                           {"name": "voiceonly", "description": "In a server", "type": 1,
                                            "contexts": [0]},
                                           {"name": "Transcribe", "type": 3}])
        fake.app_commands.overwrite(fake.guild.id, [{"name": "hi", "description": "Hi", "type": 1}])
        you_dm, sam_dm = str(world.YOU_DM_ID), str(world.MEMBER_DM_ID)
        async with session.ws_connect(f"{page.url}ws?user={world.YOU_ID}") as you, \
                session.ws_connect(f"{page.url}ws?user={world.MEMBER_ID}") as sam:
            hello = await you.receive_json(timeout=5)
            assert {p["name"]: p["dm"] for p in hello["world"]["people"]} == {"you": you_dm, "sam": sam_dm}
            commands = await you.receive_json(timeout=5)
            assert [c["name"] for c in commands["commands"]] == ["hi", "voiceonly"]  # the server's copy once
            assert [c["name"] for c in commands["dm_commands"]] == ["hi"]  # offered in DMs
            assert commands["menus"] == commands["dm_menus"] == ["Transcribe"]

            # The page sends a DM as its person: the bot gets it as a DM (no guild).
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": you_dm, "content": "hello bot"})
            async with session.post(f"{page.url}api/send", data=form) as response:
                assert response.status == 200
            got = await next_event(gateway, "MESSAGE_CREATE")
            assert got["channel_id"] == you_dm and "guild_id" not in got and got["author"]["id"] == str(world.YOU_ID)
            # The bot types and answers there, with a file.
            async with http.post(f"{fake.url}/api/v10/channels/{you_dm}/typing") as r:
                assert r.status == 204
            body = aiohttp.FormData()
            body.add_field("payload_json", json.dumps({"content": "your file"}), content_type="application/json")
            body.add_field("files[0]", b"# notes", filename="notes.md", content_type="text/markdown")
            async with http.post(f"{fake.url}/api/v10/channels/{you_dm}/messages", data=body) as r:
                assert r.status == 200
            # Someone else's DM is refused, even named by its id; one's own works.
            for user, channel, status in ((world.MEMBER_ID, you_dm, 400), (world.YOU_ID, sam_dm, 400),
                                          (world.MEMBER_ID, sam_dm, 200)):
                form = aiohttp.FormData({"user": str(user), "channel": channel, "content": "mine?"})
                async with session.post(f"{page.url}api/send", data=form) as response:
                    assert response.status == status, (user, channel)
                    if status == 400:
                        assert "unknown channel" in (await response.json())["error"]
            form = aiohttp.FormData({"user": str(world.MEMBER_ID), "channel": str(fake.general.id), "content": "public"})
            async with session.post(f"{page.url}api/send", data=form) as response:
                assert response.status == 200

            mine = await frames_until(you, "public")
            assert [f["message"]["content"] for f in mine if f["type"] == "message"] == \
                ["hello bot", "your file", "public"]
            assert {f["channel_id"] for f in mine if f["type"] == "typing"} == {you_dm}
            file = next(f["message"] for f in mine if f["type"] == "message" and f["message"]["content"] == "your file")
            assert file["for_user"] == str(world.YOU_ID) and file["channel_id"] == you_dm
            async with session.get(page.url + file["attachments"][0]["url"].lstrip("/")) as response:
                assert response.status == 200 and await response.read() == b"# notes"
            theirs = await frames_until(sam, "public")
            assert [f["message"]["content"] for f in theirs if f["type"] == "message"] == ["mine?", "public"]
            assert not [f for f in theirs if f["type"] == "typing"]  # not even the bot typing in your DM

            # Slash commands in a DM: the global ones offered there.
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": you_dm, "text": "/hi"})
            async with session.post(f"{page.url}api/slash", data=form) as response:
                assert response.status == 200, await response.text()
            asked = await next_event(gateway, "INTERACTION_CREATE")
            assert asked["channel_id"] == you_dm and "guild_id" not in asked
            form = aiohttp.FormData({"user": str(world.YOU_ID), "channel": you_dm, "text": "/voiceonly"})
            async with session.post(f"{page.url}api/slash", data=form) as response:
                assert response.status == 400 and "not a registered command" in (await response.json())["error"]

            # History, at opening and after switching person, holds only that person's DMs.
            await sam.send_json({"type": "as", "user": str(world.YOU_ID)})
            while (data := await sam.receive_json(timeout=5))["type"] != "as":
                pass
            assert {m["content"] for m in data["messages"] if m["channel_id"] == you_dm} == {"hello bot", "your file"}
            await sam.send_json({"type": "as", "user": str(world.MEMBER_ID)})
            while (data := await sam.receive_json(timeout=5))["type"] != "as":
                pass
            assert {m["channel_id"] for m in data["messages"]} == {sam_dm, str(fake.general.id)}
