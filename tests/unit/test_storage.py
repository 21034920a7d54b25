"""The SQLite store: migrations, persistence and per-scope isolation, on a real file."""
from __future__ import annotations

import sqlite3

import pytest

from storage.database import MIGRATIONS, Database


@pytest.fixture
async def db(tmp_path):
    database = Database(tmp_path / "bot.sqlite3")
    await database.open()
    yield database
    await database.close()


async def test_new_database_is_migrated_and_uses_wal(db, tmp_path):
    assert await db.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_data_survives_a_restart(tmp_path):
    first = Database(tmp_path / "bot.sqlite3")
    await first.open()
    await first.add_feedback("1", 10, 20, "nice bot")
    await first.set_setting("1", "dataset", "faq")
    await first.close()
    second = Database(tmp_path / "bot.sqlite3")
    await second.open()
    assert [f["text"] for f in await second.list_feedback("1")] == ["nice bot"]
    assert await second.get_setting("1", "dataset") == "faq"
    await second.close()


async def test_a_newer_schema_is_refused(tmp_path):
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    db = Database(tmp_path / "bot.sqlite3")
    with pytest.raises(RuntimeError, match="newer than this bot knows"):
        await db.open()
    await db.close()


async def test_scopes_never_see_each_other(db):
    await db.add_feedback("guild-a", 1, 2, "a's feedback")
    await db.add_correction("guild-a", 1, 2, 99, "hello", "negative", "positive")
    await db.record_bot_reply("guild-a", 1, 99, 98, 2, "hello", "negative")
    await db.set_setting("guild-a", "dataset", "a-data")
    await db.add_misclassified("guild-a", [("t", "x", "y")])
    assert await db.list_feedback("guild-b") == []
    assert await db.list_corrections("guild-b") == []
    assert await db.get_bot_reply("guild-b", 99) is None
    assert await db.get_setting("guild-b", "dataset") is None
    assert await db.count_misclassified("guild-b") == 0
    correction = (await db.list_corrections("guild-a"))[0]
    assert (correction.original_text, correction.correction) == ("hello", "positive")
    assert (await db.get_bot_reply("guild-a", 99)).user_text == "hello"
    assert await db.count_misclassified("guild-a") == 1


async def test_settings_are_overwritten(db):
    await db.set_setting("s", "dataset", "one")
    await db.set_setting("s", "dataset", "two")
    assert await db.get_setting("s", "dataset") == "two"
