"""The SQLite store: migrations, persistence and per-scope isolation, on a real file."""
from __future__ import annotations

import sqlite3

import pytest

from storage.scopes import scope_key, server_scope
from storage.database import MIGRATIONS, Database, Retention


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
    assert await db.list_feedback("guild-b") == []
    assert await db.list_corrections("guild-b") == []
    assert await db.get_bot_reply("guild-b", 99) is None
    assert await db.get_setting("guild-b", "dataset") is None
    correction = (await db.list_corrections("guild-a"))[0]
    assert (correction.original_text, correction.correction) == ("hello", "positive")
    assert (await db.get_bot_reply("guild-a", 99)).user_text == "hello"


async def test_settings_are_overwritten(db):
    await db.set_setting("s", "dataset", "one")
    await db.set_setting("s", "dataset", "two")
    assert await db.get_setting("s", "dataset") == "two"


async def test_row_caps_keep_each_scopes_newest_rows(tmp_path):
    db = Database(tmp_path / "bot.sqlite3", {"feedback": Retention(rows=3), "bot_replies": Retention(rows=2),
                                             "corrections": Retention(rows=2)})
    await db.open()
    for i in range(5):
        await db.add_feedback("flooded", 1, 2, f"spam {i}")
        await db.record_bot_reply("flooded", 1, 100 + i, 50 + i, 2, f"q{i}", f"a{i}")
        await db.add_correction("flooded", 1, 2, 100 + i, f"q{i}", f"a{i}", f"c{i}")
    await db.add_feedback("quiet", 1, 3, "the only one")
    assert [f["text"] for f in await db.list_feedback("flooded")] == ["spam 4", "spam 3", "spam 2"]
    assert [f["text"] for f in await db.list_feedback("quiet")] == ["the only one"]  # untouched by the flood
    assert await db.get_bot_reply("flooded", 100) is None and await db.get_bot_reply("flooded", 104)
    assert [c.correction for c in await db.list_corrections("flooded")] == ["c3", "c4"]
    await db.close()


async def test_old_rows_expire(tmp_path):
    db = Database(tmp_path / "bot.sqlite3", {"bot_replies": Retention(days=30), "feedback": Retention(days=0)})
    await db.open()
    await db.record_bot_reply("s", 1, 7, 6, 2, "q", "a")
    await db.add_feedback("s", 1, 2, "kept forever")
    deleted = await db.prune_expired(now=__import__("time").time() + 31 * 86400)
    assert deleted["bot_replies"] == 1 and "feedback" not in deleted
    assert await db.get_bot_reply("s", 7) is None
    assert len(await db.list_feedback("s")) == 1
    await db.close()


async def test_version_1_database_is_upgraded_and_loses_the_unread_table(tmp_path):
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version=1;")
        conn.execute("INSERT INTO feedback (scope, channel_id, author_id, created_at, text) VALUES ('s', 1, 2, 0, 'old')")
    db = Database(path)
    await db.open()
    assert await db.schema_version() == len(MIGRATIONS)
    assert [f["text"] for f in await db.list_feedback("s")] == ["old"]
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "misclassified" not in tables
    await db.close()


async def test_feedback_can_be_cleared_per_scope(db):
    await db.add_feedback("a", 1, 2, "x")
    await db.add_feedback("b", 1, 2, "y")
    assert await db.clear_feedback("a") == 1
    assert await db.list_feedback("a") == [] and len(await db.list_feedback("b")) == 1


def test_a_server_and_each_persons_dms_are_separate_scopes():
    assert scope_key(123, 7) == scope_key(123, 8) == server_scope(123) == "123"
    assert scope_key(None, 7) == "dm-7" != scope_key(None, 8)
    assert scope_key(None, 123) != server_scope(123)  # a DM is never mistaken for a server
