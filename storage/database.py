"""The bot's one SQLite database: feedback, corrections, chat replies, per-scope settings.

sqlite3 blocks, so every statement runs on one dedicated thread (SQLite connections
are not shared across threads) and callers await it.  Every row carries a `scope`
(a guild id, or "dm-<user id>" for direct messages): queries always filter on it,
so one guild never sees another's data.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

log = logging.getLogger("storage.database")
T = TypeVar("T")

# Each entry migrates the schema from version i to i+1.  Append only; never edit.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        channel_id INTEGER NOT NULL,
        author_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        text TEXT NOT NULL,
        replied_message_id INTEGER,
        replied_content TEXT
    );
    CREATE INDEX feedback_scope ON feedback(scope);
    CREATE TABLE corrections (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        channel_id INTEGER NOT NULL,
        author_id INTEGER NOT NULL,
        created_at REAL NOT NULL,
        bot_message_id INTEGER NOT NULL,
        original_text TEXT NOT NULL,
        bot_reply TEXT NOT NULL,
        correction TEXT NOT NULL
    );
    CREATE INDEX corrections_scope ON corrections(scope);
    CREATE TABLE bot_replies (
        bot_message_id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        channel_id INTEGER NOT NULL,
        user_message_id INTEGER,
        user_id INTEGER,
        user_text TEXT NOT NULL,
        reply_text TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE scope_settings (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE misclassified (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL,
        created_at REAL NOT NULL,
        text TEXT NOT NULL,
        expected TEXT NOT NULL,
        predicted TEXT NOT NULL
    );
    CREATE INDEX misclassified_scope ON misclassified(scope);
    """,
]


@dataclass(frozen=True)
class BotReply:
    bot_message_id: int
    channel_id: int
    user_message_id: int | None
    user_text: str
    reply_text: str


@dataclass(frozen=True)
class Correction:
    original_text: str
    bot_reply: str
    correction: str


class Database:
    """Async facade over one sqlite3 connection living on its own thread."""

    def __init__(self, path: Path):
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        await self._run(self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.row_factory = sqlite3.Row
        self._conn = conn
        self._migrate_sync()

    def _migrate_sync(self) -> None:
        assert self._conn is not None
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {version}, newer than this bot knows "
                f"({len(MIGRATIONS)}). Update the bot or use another DATA_DIR."
            )
        for target in range(version, len(MIGRATIONS)):
            log.info("Migrating database %s to schema version %d", self.path, target + 1)
            self._conn.executescript("BEGIN;" + MIGRATIONS[target] + f"; PRAGMA user_version={target + 1}; COMMIT;")

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def schema_version(self) -> int:
        return await self._fetch_value("PRAGMA user_version")

    # -- plumbing ----------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _execute_sync(self, sql: str, params: tuple) -> int:
        assert self._conn is not None, "database is not open"
        cur = self._conn.execute(sql, params)
        return cur.lastrowid or 0

    def _fetch_sync(self, sql: str, params: tuple) -> list[sqlite3.Row]:
        assert self._conn is not None, "database is not open"
        return self._conn.execute(sql, params).fetchall()

    async def _execute(self, sql: str, *params: Any) -> int:
        return await self._run(self._execute_sync, sql, params)

    async def _fetch(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return await self._run(self._fetch_sync, sql, params)

    async def _fetch_value(self, sql: str, *params: Any) -> Any:
        rows = await self._fetch(sql, *params)
        return rows[0][0] if rows else None

    # -- feedback ----------------------------------------------------------------------------
    async def add_feedback(self, scope: str, channel_id: int, author_id: int, text: str,
                           replied_message_id: int | None = None, replied_content: str | None = None) -> int:
        return await self._execute(
            "INSERT INTO feedback (scope, channel_id, author_id, created_at, text, replied_message_id, replied_content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            scope, channel_id, author_id, time.time(), text, replied_message_id, replied_content,
        )

    async def list_feedback(self, scope: str) -> list[dict]:
        rows = await self._fetch("SELECT * FROM feedback WHERE scope = ? ORDER BY id", scope)
        return [dict(r) for r in rows]

    # -- chat replies and corrections ---------------------------------------------------------
    async def record_bot_reply(self, scope: str, channel_id: int, bot_message_id: int,
                               user_message_id: int | None, user_id: int | None,
                               user_text: str, reply_text: str) -> None:
        await self._execute(
            "INSERT OR REPLACE INTO bot_replies (bot_message_id, scope, channel_id, user_message_id, user_id,"
            " user_text, reply_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            bot_message_id, scope, channel_id, user_message_id, user_id, user_text, reply_text, time.time(),
        )

    async def get_bot_reply(self, scope: str, bot_message_id: int) -> BotReply | None:
        rows = await self._fetch(
            "SELECT bot_message_id, channel_id, user_message_id, user_text, reply_text FROM bot_replies"
            " WHERE scope = ? AND bot_message_id = ?", scope, bot_message_id,
        )
        return BotReply(**dict(rows[0])) if rows else None

    async def add_correction(self, scope: str, channel_id: int, author_id: int, bot_message_id: int,
                             original_text: str, bot_reply: str, correction: str) -> int:
        return await self._execute(
            "INSERT INTO corrections (scope, channel_id, author_id, created_at, bot_message_id, original_text,"
            " bot_reply, correction) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            scope, channel_id, author_id, time.time(), bot_message_id, original_text, bot_reply, correction,
        )

    async def list_corrections(self, scope: str) -> list[Correction]:
        rows = await self._fetch(
            "SELECT original_text, bot_reply, correction FROM corrections WHERE scope = ? ORDER BY id", scope
        )
        return [Correction(**dict(r)) for r in rows]

    # -- misclassified examples from !test ------------------------------------------------------
    async def add_misclassified(self, scope: str, rows: list[tuple[str, str, str]]) -> None:
        now = time.time()

        def insert() -> None:
            assert self._conn is not None
            self._conn.executemany(
                "INSERT INTO misclassified (scope, created_at, text, expected, predicted) VALUES (?, ?, ?, ?, ?)",
                [(scope, now, t, e, p) for t, e, p in rows],
            )
        await self._run(insert)

    async def count_misclassified(self, scope: str) -> int:
        return await self._fetch_value("SELECT COUNT(*) FROM misclassified WHERE scope = ?", scope)

    # -- per-scope settings ---------------------------------------------------------------------
    async def set_setting(self, scope: str, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO scope_settings (scope, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value", scope, key, value,
        )

    async def get_setting(self, scope: str, key: str) -> str | None:
        return await self._fetch_value("SELECT value FROM scope_settings WHERE scope = ? AND key = ?", scope, key)
