"""The bot's own words in Russian, through the real bot and the local Discord: after an admin's
`!language ru` the help, the refusals and errors (the cogs' own and model/'s, with their values),
the training status, "not trained" and "not sure" come in Russian; a server whose Discord language
(preferred_locale) is Russian gets Russian with no setting; the slash commands are registered
with Russian names and descriptions, and a Russian /help answers in Russian.

People: see localdiscord.server.FakeDiscord (alice moderates Test Guild, bob is a member there and
in Other Guild, carol owns Other Guild)."""
from __future__ import annotations

import pytest_asyncio

from tests.integration.model_data import csv_bytes, rows

BOT_ENV = {"CHAT_MODE": "mention", "CONFIDENCE_THRESHOLD": "0.99", "SENTENCE_ENCODER": "false"}


async def said(fake, author, text: str, **kwargs) -> str:
    msg = await fake.send(author, text, **kwargs)
    return (await fake.reply_to(msg, timeout=30)).text


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def russian(fake, bot):
    """Test Guild set to Russian by its admin."""
    answer = await said(fake, fake.alice, "!language ru")
    assert "ru" in answer, answer
    return fake


async def test_help_is_in_russian_with_the_russian_slash_names(fake, bot, russian):
    text = await said(fake, fake.bob, "!help")
    assert "Команды можно набирать" in text and "**Модель**" in text, text
    assert "`!train` `/обучить`: Обучить модель." in text, text
    detail = await said(fake, fake.bob, "!help train")
    assert "Использование: `!train" in detail and "Слеш-команда: `/обучить файл: метка: текст:`" in detail, detail


async def test_refusals_and_errors_are_in_russian(fake, bot, russian):
    assert "только для администраторов этого сервера" in await said(fake, fake.bob, "!train")
    assert "Набор данных ещё не выбран" in await said(fake, fake.alice, "!train")
    # model/'s refusal, a Phrase with a value filled in after translation
    no_text = await said(fake, fake.alice, "!train", attachments=[("plain.csv", b"foo,bar\n1,2\n", "text/csv")])
    assert "Не нашёл столбец с текстом" in no_text and "'foo,bar'" in no_text, no_text
    assert "Ответьте на одно из моих сообщений" in await said(fake, fake.bob, "!correct")


async def test_not_trained_then_trained_then_not_sure_in_russian(fake, bot, russian):
    assert "Меня здесь ещё не обучили" in await said(fake, fake.bob, f"<@{fake.bot.id}> привет")
    train = await fake.send(fake.alice, "!train", attachments=[("topics.csv", csv_bytes(rows()), "text/csv")])
    status = await fake.reply_to(train, timeout=30)
    assert "Сохранил набор данных `topics`" in status.text, status.text
    done = await fake.wait_for_edit(status, lambda m: "Обучение закончено" in m.text or "не удалось" in m.text,
                                    timeout=180)
    assert "Обучение закончено: я выучил 90 примеров по 3 темам" in done.text, done.text
    assert "Точность" in done.text
    assert "Не уверен, что понял вас" in await said(fake, fake.bob, f"<@{fake.bot.id}> zorblax quux")


async def test_a_server_whose_discord_language_is_russian_answers_in_russian(fake, bot):
    assert "Commands work typed" in await said(fake, fake.bob, "!help", channel=fake.general2)
    await fake.set_guild_locale(fake.guild2, "ru")  # its admin picked Russian in Server Settings
    try:  # GUILD_UPDATE reaches the bot before the next message, on the same gateway connection
        text = await said(fake, fake.bob, "!help", channel=fake.general2)
        assert "Команды можно набирать" in text, text
        # a member's own language wins over the server's locale
        await said(fake, fake.carol, "!language me en", channel=fake.general2)
        assert "Commands work typed" in await said(fake, fake.carol, "!help", channel=fake.general2)
    finally:
        await fake.set_guild_locale(fake.guild2, "en-US")
    assert "Commands work typed" in await said(fake, fake.bob, "!help", channel=fake.general2)


async def test_slash_commands_are_registered_with_russian_names_and_answer_in_russian(fake, bot, russian):
    assert "Синхронизирова" in await said(fake, fake.owner, "!sync")
    registered = {c["name"]: c for c in fake.app_commands.list(fake.guild.id)}
    train = registered["train"]
    assert train["name_localizations"] == {"ru": "обучить"}
    assert train["description_localizations"] == {"ru": "Обучить модель. (администраторы сервера)"}
    assert {o["name"]: o["name_localizations"]["ru"] for o in train["options"]} == {
        "file": "файл", "label": "метка", "text": "текст"}
    assert registered["Transcribe"]["name_localizations"] == {"ru": "Расшифровать"}
    assert all(c.get("name_localizations", {}).get("ru") for c in registered.values()), registered.keys()
    interaction = await fake.slash(fake.bob, "help", {"command": "train"})
    text = (await interaction.wait_original()).text
    assert "Использование: `!train" in text and "`/обучить" in text, text


async def test_the_instructions_come_in_russian(fake, bot, russian):
    text = await said(fake, fake.bob, "!instruction")
    assert text.startswith("# Как пользоваться ботом") and "`!train`" in text and "{prefix}" not in text, text
    assert "# How to use the bot" in await said(fake, fake.bob, "!instruction", channel=fake.general2)
