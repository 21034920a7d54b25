"""The local Discord server and languages: command localizations are checked and kept as Discord
does, and a server's primary language (preferred_locale) reaches the bot."""
from __future__ import annotations

import aiohttp
import pytest_asyncio

from localdiscord import FakeDiscord
from localdiscord.appcommands import check_command

TRAIN = {"name": "train", "description": "Train the model.",
         "options": [{"type": 3, "name": "label", "description": "A label"}]}


def test_localized_names_and_descriptions_follow_the_rules_of_the_english_ones():
    good = {**TRAIN, "name_localizations": {"ru": "обучить", "de": None},
            "description_localizations": {"ru": "Обучить модель."},
            "options": [{**TRAIN["options"][0], "name_localizations": {"ru": "метка"},
                         "description_localizations": {"ru": "Метка"}}]}
    assert check_command(good) == {}
    assert check_command({"type": 3, "name": "Speak this", "name_localizations": {"ru": "Произнести вслух"}}) == {}

    # A command's bad localized name is reported on the whole map (as Discord does); an option's per locale.
    spaced = check_command({**TRAIN, "name_localizations": {"ru": "обучить модель"}})
    assert spaced["name_localizations"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    assert "name_localizations" in check_command({**TRAIN, "name_localizations": {"ru": "Обучить"}})  # not lowercase
    option = check_command({**TRAIN, "options": [{**TRAIN["options"][0], "name_localizations": {"ru": "Метка"}}]})
    assert option["options"]["0"]["name_localizations"]["ru"]["_errors"][0]["code"] == "APPLICATION_COMMAND_INVALID_NAME"
    assert "ru" in check_command({**TRAIN, "description_localizations": {"ru": "x" * 101}})["description_localizations"]
    assert "xx" in check_command({**TRAIN, "name_localizations": {"xx": "train"}})["name_localizations"]
    assert "name_localizations" in check_command({"type": 3, "name": "Speak this", "name_localizations": {"ru": "x" * 33}})
    choices = [{"name": "one", "value": "1", "name_localizations": {"ru": ""}}]
    assert "choices" in check_command({**TRAIN, "options": [{**TRAIN["options"][0], "choices": choices}]})["options"]["0"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


async def test_commands_keep_their_localizations_and_the_list_shows_them_when_asked(fake):
    base = f"{fake.url}/api/v10/applications/{fake.application_id}/commands"
    headers = {"Authorization": f"Bot {fake.token}"}
    command = {**TRAIN, "name_localizations": {"ru": "обучить"}, "description_localizations": {"ru": "Обучить."},
               "options": [{**TRAIN["options"][0], "name_localizations": {"ru": "метка"}}]}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.put(base, json=[command]) as response:
            assert response.status == 200
            stored = await response.json()
        assert stored[0]["name_localizations"] == {"ru": "обучить"}
        async with http.get(base) as response:  # discord.py's fetch_commands: no maps
            plain = (await response.json())[0]
        assert "name_localizations" not in plain and "name_localizations" not in plain["options"][0]
        async with http.get(base, params={"with_localizations": "true"}) as response:
            full = (await response.json())[0]
        assert full["description_localizations"] == {"ru": "Обучить."}
        assert full["options"][0]["name_localizations"] == {"ru": "метка"}
        async with http.put(base, json=[{**TRAIN, "name_localizations": {"ru": "Обучить Модель"}}]) as response:
            refused = await response.json()
        assert response.status == 400 and refused["code"] == 50035 and "name_localizations" in refused["errors"]["0"]
    assert fake.app_commands.names() == ["train"]  # the refused overwrite changed nothing


def test_a_servers_primary_language_is_in_its_payloads(fake):
    assert fake.guild.payload(fake.users)["preferred_locale"] == "en-US"
    fake.guild2.preferred_locale = "ru"
    update = fake.guild2.update_payload()
    assert update["preferred_locale"] == "ru" and "members" not in update and "channels" not in update
    assert fake.guild2.payload(fake.users)["preferred_locale"] == "ru"
