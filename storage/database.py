"""The bot's one SQLite database: feedback, corrections, chat replies, per-scope settings.

Nothing grows without bound: each table has a `Retention` (rows per scope, days),
enforced on every insert (count) and by `prune_expired` (age), so a member flooding
one server can only push out that server's own oldest rows.

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
    # 2: nothing ever read the misclassified rows (predictions.csv carries them); retention
    # pruning by scope and age needs these indexes.
    """
    DROP TABLE misclassified;
    CREATE INDEX feedback_scope_created ON feedback(scope, created_at);
    CREATE INDEX corrections_scope_created ON corrections(scope, created_at);
    CREATE INDEX bot_replies_scope_created ON bot_replies(scope, created_at);
    CREATE INDEX bot_replies_created ON bot_replies(created_at);
    """,
]

RETAINED_TABLES = ("feedback", "corrections", "bot_replies")


@dataclass(frozen=True)
class Retention:
    """How long rows of one table are kept: newest `rows` per scope, none older than `days`
    (0 = no limit of that kind)."""

    days: float = 0.0
    rows: int = 0


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

    def __init__(self, path: Path, retention: dict[str, Retention] | None = None):
        self.path = path
        self.retention = {table: Retention() for table in RETAINED_TABLES} | (retention or {})
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

    def _insert_capped_sync(self, table: str, scope: str, sql: str, params: tuple) -> int:
        """Insert, then drop the scope's oldest rows beyond the table's row cap (one transaction)."""
        assert self._conn is not None, "database is not open"
        cap = self.retention[table].rows
        self._conn.execute("BEGIN")
        try:
            rowid = self._conn.execute(sql, params).lastrowid or 0
            if cap > 0:
                self._conn.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE scope = ?"
                    " ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?)", (scope, cap))
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return rowid

    async def _insert_capped(self, table: str, scope: str, sql: str, *params: Any) -> int:
        return await self._run(self._insert_capped_sync, table, scope, sql, params)

    async def prune_expired(self, now: float | None = None) -> dict[str, int]:
        """Delete rows older than each table's retention; returns rows deleted per table."""
        now = time.time() if now is None else now

        def prune() -> dict[str, int]:
            assert self._conn is not None, "database is not open"
            deleted = {}
            for table, rule in self.retention.items():
                if rule.days > 0:
                    cur = self._conn.execute(f"DELETE FROM {table} WHERE created_at < ?", (now - rule.days * 86400,))
                    deleted[table] = cur.rowcount
            return deleted
        return await self._run(prune)

    async def count_rows(self, table: str, scope: str) -> int:
        if table not in RETAINED_TABLES:
            raise ValueError(table)
        return await self._fetch_value(f"SELECT COUNT(*) FROM {table} WHERE scope = ?", scope)

    # -- feedback ----------------------------------------------------------------------------
    async def add_feedback(self, scope: str, channel_id: int, author_id: int, text: str,
                           replied_message_id: int | None = None, replied_content: str | None = None) -> int:
        return await self._insert_capped(
            "feedback", scope,
            "INSERT INTO feedback (scope, channel_id, author_id, created_at, text, replied_message_id, replied_content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            scope, channel_id, author_id, time.time(), text, replied_message_id, replied_content,
        )

    async def list_feedback(self, scope: str, limit: int | None = None) -> list[dict]:
        """The scope's feedback, newest first."""
        rows = await self._fetch("SELECT * FROM feedback WHERE scope = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                                 scope, -1 if limit is None else limit)
        return [dict(r) for r in rows]

    async def clear_feedback(self, scope: str) -> int:
        def clear() -> int:
            assert self._conn is not None, "database is not open"
            return self._conn.execute("DELETE FROM feedback WHERE scope = ?", (scope,)).rowcount
        return await self._run(clear)

    # -- chat replies and corrections ---------------------------------------------------------
    async def record_bot_reply(self, scope: str, channel_id: int, bot_message_id: int,
                               user_message_id: int | None, user_id: int | None,
                               user_text: str, reply_text: str) -> None:
        await self._insert_capped(
            "bot_replies", scope,
            "INSERT OR REPLACE INTO bot_replies (bot_message_id, scope, channel_id, user_message_id, user_id,"
            " user_text, reply_text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            bot_message_id, scope, channel_id, user_message_id, user_id, user_text, reply_text, time.time(),
        )

    async def forget_user_replies(self, scope: str, user_id: int) -> list[tuple[int, int, bool]]:
        """Delete what the bot kept of one member's words in one scope (chat and voice transcripts).

        Returns (channel id, bot message id, was voice) of each deleted row, so the caller can
        remove the bot's posted transcripts too."""
        def forget() -> list[tuple[int, int, bool]]:
            assert self._conn is not None, "database is not open"
            with self._conn:
                rows = self._conn.execute(
                    "SELECT channel_id, bot_message_id, user_message_id IS NULL FROM bot_replies"
                    " WHERE scope = ? AND user_id = ?", (scope, user_id)).fetchall()
                self._conn.execute("DELETE FROM bot_replies WHERE scope = ? AND user_id = ?", (scope, user_id))
            return [(int(c), int(m), bool(v)) for c, m, v in rows]
        return await self._run(forget)

    async def get_bot_reply(self, scope: str, bot_message_id: int) -> BotReply | None:
        rows = await self._fetch(
            "SELECT bot_message_id, channel_id, user_message_id, user_text, reply_text FROM bot_replies"
            " WHERE scope = ? AND bot_message_id = ?", scope, bot_message_id,
        )
        return BotReply(**dict(rows[0])) if rows else None

    async def add_correction(self, scope: str, channel_id: int, author_id: int, bot_message_id: int,
                             original_text: str, bot_reply: str, correction: str) -> int:
        return await self._insert_capped(
            "corrections", scope,
            "INSERT INTO corrections (scope, channel_id, author_id, created_at, bot_message_id, original_text,"
            " bot_reply, correction) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            scope, channel_id, author_id, time.time(), bot_message_id, original_text, bot_reply, correction,
        )

    async def list_corrections(self, scope: str) -> list[Correction]:
        rows = await self._fetch(
            "SELECT original_text, bot_reply, correction FROM corrections WHERE scope = ? ORDER BY id", scope
        )
        return [Correction(**dict(r)) for r in rows]

    # -- per-scope settings ---------------------------------------------------------------------
    async def set_setting(self, scope: str, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO scope_settings (scope, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value", scope, key, value,
        )

    async def delete_setting(self, scope: str, key: str) -> None:
        await self._execute("DELETE FROM scope_settings WHERE scope = ? AND key = ?", scope, key)

    async def get_setting(self, scope: str, key: str) -> str | None:
        return await self._fetch_value("SELECT value FROM scope_settings WHERE scope = ? AND key = ?", scope, key)
