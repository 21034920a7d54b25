"""The local Discord server's interactions, driven by a real (throwaway, in-process) discord.py bot.

The bot below uses discord.py's public API the way the project's bot does (hybrid commands, a slash
command with an attachment option and autocomplete, a message context menu opening a modal,
deferrals, ephemeral follow-ups, `tree.sync()`), so these tests fail if the server stops speaking
what discord.py 2.7.1 sends and expects.  People: see localdiscord.server.FakeDiscord.
"""
from __future__ import annotations

import asyncio
import contextlib
import io

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from localdiscord import FakeDiscord
from localdiscord.interactions import CommandUnavailable, InteractionRefused
from localdiscord.state import ALL_PERMISSIONS, FLAG_LOADING, MANAGE_GUILD

LABELS = ["car", "cat", "dog"]


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord):
    """discord.py's REST base and gateway URL aimed at `fake` (as localdiscord/shim does for the bot)."""
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.url + "/api/v10"
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.url.replace("http", "ws", 1) + "/")
    try:
        yield
    finally:
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


class CorrectModal(discord.ui.Modal, title="Correct this answer"):
    answer = discord.ui.TextInput(label="Right answer", custom_id="answer", max_length=200)

    def __init__(self, target: discord.Message):
        super().__init__(custom_id="correct-modal")
        self.target = target

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Stored {self.answer.value!r} for {self.target.id}", ephemeral=True)


class ThrowawayBot(commands.Bot):
    """Just enough of a bot to exercise every interaction shape the project's bot uses."""

    def __init__(self, intents: discord.Intents):
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05, help_command=None)
        self.gates: dict[str, asyncio.Event] = {}
        self.late_errors: list[int] = []
        self.targets: list[discord.Message] = []
        self.seen: list[discord.Message] = []
        self._seen_changed = asyncio.Condition()

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def on_message(self, message: discord.Message) -> None:
        async with self._seen_changed:
            self.seen.append(message)
            self._seen_changed.notify_all()
        await self.process_commands(message)

    async def saw(self, predicate, timeout: float = 10.0) -> discord.Message:
        async def find():
            async with self._seen_changed:
                while True:
                    for message in self.seen:
                        if predicate(message):
                            return message
                    await self._seen_changed.wait()
        return await asyncio.wait_for(find(), timeout)

    async def setup_hook(self) -> None:
        @self.hybrid_command(description="Say hi")
        async def hi(ctx: commands.Context) -> None:
            await ctx.send(f"Hi {ctx.author.name}")

        @self.hybrid_command(description="Think, then answer")
        async def work(ctx: commands.Context) -> None:
            await ctx.defer(ephemeral=True)
            await ctx.send("finished")

        @self.command(name="sync")
        @commands.is_owner()
        async def sync(ctx: commands.Context, scope: str = "") -> None:
            if scope == "global":
                done = await self.tree.sync()
            elif scope == "clear":
                self.tree.clear_commands(guild=ctx.guild)
                done = await self.tree.sync(guild=ctx.guild)
            else:
                self.tree.copy_global_to(guild=ctx.guild)
                done = await self.tree.sync(guild=ctx.guild)
            await ctx.reply(f"Synced {len(done)} commands")

        async def label_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=f"label {label}", value=label) for label in LABELS
                    if label.startswith(current)]

        @self.tree.command(description="Upload a labelled file")
        @app_commands.describe(file="an audio file", label="its label")
        @app_commands.autocomplete(label=label_choices)
        async def upload(interaction: discord.Interaction, file: discord.Attachment, label: str) -> None:
            data = await file.read()
            await interaction.response.send_message(f"{file.filename}: {len(data)} bytes as {label}")

        @self.tree.command(description="Moderators only")
        @app_commands.default_permissions(manage_guild=True)
        async def admin(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"manage_guild={interaction.permissions.manage_guild}")

        @self.tree.command(description="A public answer, then an ephemeral and a public follow-up")
        async def secret(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("public")
            await interaction.followup.send("only you", ephemeral=True)
            await interaction.followup.send("public again")

        @self.tree.command(description="Defer, then edit when released")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await self.gate("slow").wait()
            await interaction.edit_original_response(content="done at last")

        @self.tree.command(description="Answer only when released")
        async def hold(interaction: discord.Interaction) -> None:
            await self.gate(f"hold-{interaction.id}").wait()
            try:
                await interaction.response.send_message("late answer")
            except discord.HTTPException as e:
                self.late_errors.append(e.code)

        @self.tree.command(description="Answer with a file, fail an over-long follow-up, edit in another file")
        async def files(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("here", file=discord.File(io.BytesIO(b"first"), "first.txt"))
            code = None
            try:
                await interaction.followup.send("x" * 2001)
            except discord.HTTPException as e:
                code = e.code
            await interaction.edit_original_response(
                content=f"too long: {code}", attachments=[discord.File(io.BytesIO(b"second"), "second.txt")])

        dataset = app_commands.Group(name="dataset", description="Datasets")

        @dataset.command(name="show", description="Show one")
        async def show(interaction: discord.Interaction, name: str, rows: app_commands.Range[int, 1, 50] = 5) -> None:
            await interaction.response.send_message(f"{name}: {rows} rows", ephemeral=True)

        self.tree.add_command(dataset)

        @self.tree.context_menu(name="Who is this")
        async def who(interaction: discord.Interaction, member: discord.Member) -> None:
            await interaction.response.send_message(f"{member.name} has {len(member.roles)} roles", ephemeral=True)

        @self.tree.context_menu(name="Correct this answer")
        async def correct(interaction: discord.Interaction, message: discord.Message) -> None:
            self.targets.append(message)
            await interaction.response.send_modal(CorrectModal(message))


async def start_bot(fake: FakeDiscord, intents: discord.Intents) -> tuple[ThrowawayBot, asyncio.Task]:
    bot = ThrowawayBot(intents)
    task = asyncio.create_task(bot.start(fake.token))
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await bot.close()
        raise AssertionError(f"throwaway bot did not get ready: {task.exception() if task.done() else 'timeout'}")
    return bot, task


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake):
    with pointed_at(fake):
        bot, task = await start_bot(fake, discord.Intents.default() | discord.Intents(message_content=True))
        yield bot
        await bot.close()
        await asyncio.wait_for(task, 10)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def synced(fake, bot):
    """Commands registered in Test Guild and globally, as `!sync` and `!sync global` do it."""
    for text in ("!sync", "!sync global"):
        reply = await fake.reply_to(await fake.send(fake.owner, text))
        assert reply.content.startswith("Synced"), reply.content
    return fake.app_commands


async def test_sync_registers_each_scope_and_clear_empties_the_guild(fake, bot, synced):
    guild_id = fake.guild.id
    slash = {"hi", "work", "upload", "admin", "secret", "slow", "hold", "files", "dataset"}
    assert set(synced.names(guild_id, type=1)) == slash
    assert set(synced.names(None, type=1)) == slash
    assert synced.names(None, type=3) == ["Correct this answer"] and synced.names(None, type=2) == ["Who is this"]
    assert synced.syncs[-2:] == [(guild_id, synced.names(guild_id)), (None, synced.names(None))]

    menu = next(c for c in synced.list(None) if c["type"] == 3)
    assert menu["description"] == "" and "options" not in menu and menu["id"].isdigit()
    upload = next(c for c in synced.list(guild_id) if c["name"] == "upload")
    assert upload["guild_id"] == str(guild_id)
    assert [(o["name"], o["type"], o.get("autocomplete", False)) for o in upload["options"]] == [
        ("file", 11, False), ("label", 3, True)]
    admin = next(c for c in synced.list(None) if c["name"] == "admin")
    assert admin["default_member_permissions"] == str(MANAGE_GUILD)

    # discord.py reads them back (GET) and deletes one (DELETE) through the same routes.
    fetched = await bot.tree.fetch_commands(guild=discord.Object(guild_id))
    assert {c.name for c in fetched} == set(synced.names(guild_id))
    await next(c for c in fetched if c.name == "work").delete()
    assert "work" not in synced.names(guild_id)

    # A re-sync keeps the ids of commands that stay.
    ids = {c["name"]: c["id"] for c in synced.list(None)}
    reply = await fake.reply_to(await fake.send(fake.owner, "!sync global"))
    assert reply.content.startswith("Synced")
    assert {c["name"]: c["id"] for c in synced.list(None)} == ids

    reply = await fake.reply_to(await fake.send(fake.owner, "!sync clear"))
    assert reply.content == "Synced 0 commands"
    assert synced.names(guild_id) == [] and synced.syncs[-1] == (guild_id, [])
    assert set(synced.names(None, type=1)) == slash  # the global ones stay


async def test_registration_is_validated_like_discord(fake, synced):
    before = synced.list(None)
    bad = [
        [{"name": "Upper", "description": "x", "type": 1}],
        [{"name": "x", "description": "", "type": 1}],
        [{"name": "x", "description": "x", "options": [
            {"name": "o", "description": "o", "type": 3, "autocomplete": True, "choices": [{"name": "a", "value": "a"}]}]}],
        [{"name": "x", "description": "x", "options": [
            {"name": "a", "description": "a", "type": 3}, {"name": "b", "description": "b", "type": 3, "required": True}]}],
        [{"name": "Menu", "type": 3, "description": "context menus have none"}],
        [{"name": "x", "description": "x", "type": 4}],
        [{"name": "x", "description": "x"}, {"name": "x", "description": "y"}],
        [{"name": f"Menu {i}", "type": 3} for i in range(6)],  # at most 5 message commands per scope
    ]
    url = f"{fake.url}/api/v10/applications/{fake.application_id}/commands"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http:
        for payload in bad:
            async with http.put(url, json=payload) as response:
                body = await response.json()
                assert (response.status, body["code"]) == (400, 50035), payload
                assert body["errors"], payload
        async with http.put(url, json=[]) as response:
            assert response.status == 200
        async with http.put(f"{fake.url}/api/v10/applications/{fake.application_id}/guilds/1/commands",
                            json=[]) as response:
            assert response.status == 404
        async with http.put(url, json=before) as response:  # put the bot's commands back
            assert response.status == 200
    assert [c["name"] for c in synced.list(None)] == [c["name"] for c in before]


async def test_hybrid_command_answers_both_ways(fake, bot, synced):
    reply = await fake.reply_to(await fake.send(fake.bob, "!hi"))
    assert reply.content == "Hi bob" and reply.interaction_id is None

    ix = await fake.slash(fake.bob, "hi")
    msg = await ix.wait_original()
    assert ix.callbacks == [4] and not ix.deferred and not ix.ephemeral
    assert msg.content == "Hi bob" and msg.interaction_id == ix.id and not msg.ephemeral
    assert fake.message_payload(msg)["type"] == 20
    seen = await bot.saw(lambda m: m.id == msg.id)  # delivered to the bot, which parsed the metadata
    assert seen.interaction_metadata.user.id == fake.bob.id and seen.webhook_id == fake.application_id
    assert any(e.kind == "create" and e.message is msg for e in fake.events)
    # discord.py took the message from the callback's answer (with_response), without a GET.
    assert not any("@original" in path for _, path, _ in fake.requests)

    member = ix.payload["member"]
    assert member["user"]["id"] == str(fake.bob.id) and not int(member["permissions"]) & MANAGE_GUILD
    assert ix.payload["attachment_size_limit"] > 0 and ix.payload["context"] == 0


async def test_dm_interactions_carry_a_user_not_a_member(fake, bot, synced):
    ix = await fake.slash(fake.bob, "hi", channel=fake.dm_channel(fake.bob))
    msg = await ix.wait_original()
    assert msg.content == "Hi bob" and msg.channel.recipient is fake.bob
    assert "member" not in ix.payload and ix.payload["user"]["id"] == str(fake.bob.id)
    assert ix.payload["context"] == 1


async def test_slash_command_with_an_attachment_option_and_autocomplete(fake, bot, synced):
    choices = await fake.autocomplete(fake.bob, "upload", option="label", value="ca")
    assert choices == [{"name": "label car", "value": "car"}, {"name": "label cat", "value": "cat"}]

    audio = b"RIFF" + bytes(1000)
    ix = await fake.slash(fake.bob, "upload", {"file": ("clip.wav", audio, "audio/wav"), "label": "cat"})
    option = ix.payload["data"]["options"][0]
    assert option["type"] == 11 and option["value"] in ix.payload["data"]["resolved"]["attachments"]
    msg = await ix.wait_original()
    assert msg.content == f"clip.wav: {len(audio)} bytes as cat"

    with pytest.raises(AssertionError, match="needs option 'file'"):
        await fake.slash(fake.bob, "upload", {"label": "cat"})
    with pytest.raises(AssertionError, match="takes a string"):
        await fake.slash(fake.bob, "upload", {"file": ("a.wav", b"x", "audio/wav"), "label": 3})
    with pytest.raises(AssertionError, match="no option"):
        await fake.slash(fake.bob, "upload", {"file": ("a.wav", b"x", "audio/wav"), "label": "a", "extra": 1})
    with pytest.raises(AssertionError, match="autocomplete"):
        await fake.autocomplete(fake.bob, "upload", option="file", value="")
    with pytest.raises(CommandUnavailable, match="did the bot sync"):
        await fake.slash(fake.bob, "nosuchcommand")


async def test_default_member_permissions_hide_a_command(fake, bot, synced):
    with pytest.raises(CommandUnavailable, match="hidden from bob"):
        await fake.slash(fake.bob, "admin")
    for user in (fake.alice, fake.owner):
        ix = await fake.slash(user, "admin")
        assert (await ix.wait_original()).content == "manage_guild=True"
    owner_ix = fake.interactions[-1]
    assert int(owner_ix.payload["member"]["permissions"]) == ALL_PERMISSIONS
    alice_ix = fake.interactions[-2]
    assert int(alice_ix.payload["member"]["permissions"]) & MANAGE_GUILD


async def test_ephemeral_follow_up_is_not_delivered_to_the_bot(fake, bot, synced):
    ix = await fake.slash(fake.bob, "secret")
    public_again = await ix.wait_followup(lambda m: m.content == "public again")
    hidden = ix.followups[0]
    assert ix.original.content == "public" and not ix.ephemeral
    assert hidden.content == "only you" and hidden.ephemeral and hidden.flags & 64
    assert fake.message_payload(hidden)["interaction_metadata"]["original_response_message_id"] == str(ix.original.id)
    await bot.saw(lambda m: m.id == public_again.id)
    assert not any(m.id == hidden.id for m in bot.seen)
    assert [e.kind for e in fake.events if e.message is hidden] == ["create"]
    # The channel routes do not know an ephemeral message; the interaction's webhook does.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http:
        async with http.get(f"{fake.url}/api/v10/channels/{hidden.channel.id}/messages/{hidden.id}") as response:
            assert response.status == 404
        async with http.get(f"{fake.url}/api/v10/webhooks/{fake.application_id}/{ix.token}/messages/{hidden.id}"
                            ) as response:
            assert (await response.json())["flags"] & 64


async def test_deferred_response_is_edited_later(fake, bot, synced):
    ix = await fake.slash(fake.bob, "slow")
    await ix.wait_response()
    assert ix.deferred and ix.callbacks == [5]
    assert ix.original.flags & FLAG_LOADING and ix.original.content == ""
    bot.gate("slow").set()
    msg = await ix.wait_original(lambda m: "done at last" in m.content)
    assert not msg.flags & FLAG_LOADING and msg.edits == [""]
    assert [e.kind for e in fake.events if e.message is msg] == ["create", "edit"]


async def test_hybrid_deferral_is_filled_by_the_first_follow_up(fake, bot, synced):
    ix = await fake.slash(fake.bob, "work")
    msg = await ix.wait_followup()
    assert msg is ix.original and msg.content == "finished" and msg.ephemeral
    assert ix.deferred and ix.ephemeral and not msg.flags & FLAG_LOADING


async def test_files_and_limits_of_interaction_messages(fake, bot, synced):
    ix = await fake.slash(fake.bob, "files")
    msg = await ix.wait_original(lambda m: m.content.startswith("too long"))
    assert msg.edits == ["here"] and [a.filename for a in fake.attachments.values() if a.data == b"first"] == [
        "first.txt"]  # the multipart callback's file
    assert msg.content == "too long: 50035" and ix.followups == []
    assert [a.filename for a in msg.attachments] == ["second.txt"]
    assert fake.attachment_data(msg.attachments[0]) == b"second"


async def test_subcommands_and_user_commands(fake, bot, synced):
    ix = await fake.slash(fake.bob, "dataset", {"name": "birds", "rows": 7}, subcommand="show")
    assert ix.payload["data"]["options"] == [{"name": "show", "type": 1, "options": [
        {"name": "name", "type": 3, "value": "birds"}, {"name": "rows", "type": 4, "value": 7}]}]
    assert (await ix.wait_original()).content == "birds: 7 rows"
    with pytest.raises(AssertionError, match="needs a subcommand"):
        await fake.slash(fake.bob, "dataset", {"name": "birds"})
    with pytest.raises(AssertionError, match="within 1..50"):
        await fake.slash(fake.bob, "dataset", {"name": "birds", "rows": 99}, subcommand="show")

    ix = await fake.user_command(fake.bob, "Who is this", fake.alice)
    assert (await ix.wait_original()).content == "alice has 2 roles"  # @everyone and Admin


async def test_message_context_menu_opens_a_modal(fake, bot, synced):
    answer = await fake.reply_to(await fake.send(fake.bob, "!hi"))
    ix = await fake.message_command(fake.bob, "Correct this answer", answer)
    await ix.wait_response()
    assert ix.callbacks == [9] and ix.modal["title"] == "Correct this answer" and ix.original is None
    assert bot.targets[-1].id == answer.id and bot.targets[-1].content == "Hi bob"

    with pytest.raises(AssertionError, match="no field"):
        await fake.submit_modal(fake.bob, ix, {"answer": "x", "other": "y"})
    submit = await fake.submit_modal(fake.bob, ix, {"answer": "forty-two"})
    msg = await submit.wait_original()
    assert msg.content == f"Stored 'forty-two' for {answer.id}" and msg.ephemeral
    metadata = fake.message_payload(msg)["interaction_metadata"]
    assert metadata["type"] == 5 and metadata["triggering_interaction_metadata"]["target_message_id"] == str(answer.id)
    with pytest.raises(AssertionError, match="already submitted"):
        await fake.submit_modal(fake.bob, ix, {"answer": "again"})

    plain = await fake.slash(fake.bob, "hi")
    await plain.wait_response()
    with pytest.raises(AssertionError, match="not answered with a modal"):
        await fake.submit_modal(fake.bob, plain, {"answer": "x"})


async def test_callbacks_are_answered_once_and_unanswered_interactions_expire(fake, bot, synced):
    async with aiohttp.ClientSession() as http:
        # Someone else answers first (with_response shape), so the bot's own answer is refused: 40060.
        ix = await fake.slash(fake.bob, "hold")
        url = f"{fake.url}/api/v10/interactions/{ix.id}/{ix.token}/callback"
        async with http.post(url, params={"with_response": "true"},
                             json={"type": 5, "data": {"flags": 64}}) as response:
            body = await response.json()
        assert body["interaction"]["id"] == str(ix.id) and body["interaction"]["response_message_loading"] is True
        assert body["interaction"]["response_message_ephemeral"] is True and body["resource"] == {"type": 5}
        bot.gate(f"hold-{ix.id}").set()
        await fake.wait_until(lambda: ix.rejected)
        assert ix.rejected == [(4, 400, 40060)] and ix.callbacks == [5]
        async with http.post(f"{fake.url}/api/v10/interactions/1/nope/callback", json={"type": 4}) as response:
            assert (response.status, (await response.json())["code"]) == (404, 10062)

    # Not answered in time: expired; the late answer gets 10062, and the helpers say so at once.
    fake.interaction_timeout = 0.2
    try:
        late = await fake.slash(fake.bob, "hold")
        await fake.wait_until(lambda: late.expired)
        with pytest.raises(AssertionError, match="expired"):
            await late.wait_response()
        bot.gate(f"hold-{late.id}").set()
        await fake.wait_until(lambda: late.late_callbacks)
        assert late.late_callbacks == [4] and late.callbacks == []
    finally:
        fake.interaction_timeout = 3.0
    assert bot.late_errors[-1] == 10062 and bot.late_errors.count(40060) == 1


async def test_an_application_without_the_message_content_intent(fake, bot, synced):
    limited = FakeDiscord(message_content_intent=False)
    await limited.start()
    try:
        with pointed_at(limited):
            asking = ThrowawayBot(discord.Intents.default() | discord.Intents(message_content=True))
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(asking.start(limited.token), 15)
            await asking.close()
            assert limited.refused_identifies and limited.refused_identifies[0] & (1 << 15)

            # Without the intent it connects; prefix text is blanked in servers, slash commands still work.
            without, task = await start_bot(limited, discord.Intents.default())
            try:
                await without.tree.sync()
                sent = await limited.send(limited.bob, "!hi")
                seen = await without.saw(lambda m: m.id == sent.id)
                assert seen.content == ""
                ix = await limited.slash(limited.bob, "hi")
                assert (await ix.wait_original()).content == "Hi bob"
            finally:
                await without.close()
                await asyncio.wait_for(task, 10)
    finally:
        await limited.stop()


async def test_modal_submits_are_checked_for_real(fake, bot, synced):
    """The checks on a submit are real ones (kept under `python -O`, as the playground's page
    reaches them): another user, a second submit, a non-dict of values are refused."""
    answer = await fake.reply_to(await fake.send(fake.bob, "!hi"))
    ix = await fake.message_command(fake.bob, "Correct this answer", answer)
    await ix.wait_response()
    for user, values, problem in ((fake.alice, {"answer": "x"}, "only the user who opened"),
                                  (fake.bob, ["answer"], "values are")):
        with pytest.raises(InteractionRefused, match=problem):
            await fake.submit_modal(user, ix, values)
    assert not ix.modal_submitted
    await (await fake.submit_modal(fake.bob, ix, {"answer": "ok"})).wait_original()
    with pytest.raises(InteractionRefused, match="already submitted"):
        await fake.submit_modal(fake.bob, ix, {"answer": "again"})
    assert issubclass(CommandUnavailable, InteractionRefused) and issubclass(InteractionRefused, AssertionError)


async def test_a_server_that_does_not_record_keeps_only_the_newest_interactions(monkeypatch):
    """record=False (the playground, which runs for days): interactions beyond RECENT are
    forgotten (their tokens then answer 10015, as an expired webhook would), the logs are deques."""
    from localdiscord import interaction_server as interactions, server as server_module

    monkeypatch.setattr(interactions, "RECENT", 3)
    monkeypatch.setattr(server_module, "RECENT", 3)
    quiet = FakeDiscord(record=False)
    await quiet.start()
    try:
        with pointed_at(quiet):
            bot, task = await start_bot(quiet, discord.Intents.default() | discord.Intents(message_content=True))
            try:
                await bot.tree.sync()
                used = []
                for _ in range(5):
                    ix = await quiet.slash(quiet.bob, "hi")
                    assert (await ix.wait_original()).content == "Hi bob"
                    used.append(ix)
                assert [quiet.interaction(ix.id) for ix in used] == [None, None, *used[2:]]
                assert list(quiet.interactions) == used[2:] and len(quiet.events) == len(quiet.requests) == 3
                async with aiohttp.ClientSession() as http:
                    url = f"{quiet.url}/api/v10/webhooks/{quiet.application_id}"
                    async with http.post(f"{url}/{used[0].token}", json={"content": "late"}) as response:
                        assert (response.status, (await response.json())["code"]) == (404, 10015)
                    async with http.post(f"{url}/{used[-1].token}", json={"content": "follow-up"}) as response:
                        assert response.status == 200
            finally:
                await bot.close()
                await asyncio.wait_for(task, 10)
    finally:
        await quiet.stop()
