"""The playground's parts without a browser: the slash syntax, the fixed world, history on
disk, modal forms, voice-message conversion, and the page server against a real local
Discord (WebSocket updates, actions, the bot's PCM going only to pages in voice)."""
from __future__ import annotations

import asyncio
import json
import subprocess

import aiohttp
import pytest

from localdiscord import appcommands as ac
from localdiscord.server import FakeDiscord
from localdiscord.state import Message
from localdiscord.voice import FakeVoiceServer
from playground import slash, world
from playground.history import History
from playground.runner import banner, is_loopback
from playground.web import PlaygroundPage, modal_form, to_ogg_opus

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
    assert "open http://127.0.0.1:8800/ in your browser" in banner("http://127.0.0.1:8800/")


async def test_page_server_pushes_messages_and_pcm_only_to_pages_in_voice(tmp_path):
    fake = FakeDiscord(world=world.build_world)
    await fake.start()
    voice = FakeVoiceServer(fake)  # not started: only its PCM hook is used here
    page = PlaygroundPage(fake, voice, History(tmp_path))
    url = await page.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
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
        async with aiohttp.ClientSession() as session:
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
