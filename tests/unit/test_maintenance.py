"""The retention loop: the real Maintenance cog on a real `tasks.loop` with a short interval.

A failed run must not end the loop (`tasks.loop` stops for good once an exception leaves its body),
and a locked database is retried within the run. Synchronised on events set by the fake database,
never on sleeps; the timeouts only bound a hang.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from types import SimpleNamespace

import pytest

from commands.maintenance import Maintenance

HANG = 30  # seconds: only a bound on a hang, never reached when the code works


class FlakyDatabase:
    """prune_expired raises the given errors in order, then succeeds; each call is recorded."""

    def __init__(self, *errors: BaseException):
        self.errors = list(errors)
        self.calls = 0
        self.succeeded = asyncio.Event()

    async def prune_expired(self) -> dict[str, int]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.succeeded.set()
        return {"bot_replies": 2, "feedback": 0}


async def run_cog(db: FlakyDatabase) -> Maintenance:
    cog = Maintenance(SimpleNamespace(db=db), locked_retry_delays=(0, 0, 0))
    cog.prune.change_interval(seconds=0.01)
    await cog.cog_load()
    return cog


async def test_a_failed_run_does_not_stop_the_loop(caplog):
    caplog.set_level(logging.INFO, logger="commands.maintenance")
    db = FlakyDatabase(RuntimeError("disk on fire"))
    cog = await run_cog(db)
    try:
        await asyncio.wait_for(db.succeeded.wait(), HANG)
        assert cog.prune.is_running() and not cog.prune.failed()
    finally:
        await cog.cog_unload()
    assert db.calls == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed; trying again at the next run" in m for m in messages)
    assert any("Deleted expired rows: bot_replies 2" in m for m in messages)


async def test_a_locked_database_is_retried_within_the_run(caplog):
    caplog.set_level(logging.INFO, logger="commands.maintenance")
    locked = sqlite3.OperationalError("database is locked")
    db = FlakyDatabase(locked, sqlite3.OperationalError("database is locked"))
    cog = Maintenance(SimpleNamespace(db=db), locked_retry_delays=(0, 0, 0))
    assert await cog.prune_retrying_locked() == {"bot_replies": 2, "feedback": 0}
    assert db.calls == 3
    assert sum("database is locked; retrying" in r.getMessage() for r in caplog.records) == 2


async def test_a_database_locked_too_long_fails_the_run_only(caplog):
    caplog.set_level(logging.INFO, logger="commands.maintenance")
    db = FlakyDatabase(*(sqlite3.OperationalError("database is locked") for _ in range(4)))
    cog = await run_cog(db)  # three retries in the first run, all locked: the run fails, the next succeeds
    try:
        await asyncio.wait_for(db.succeeded.wait(), HANG)
        assert cog.prune.is_running()
    finally:
        await cog.cog_unload()
    assert db.calls == 5
    messages = [r.getMessage() for r in caplog.records]
    assert sum("database is locked; retrying" in m for m in messages) == 3
    assert any("failed; trying again at the next run" in m for m in messages)


async def test_other_database_errors_are_not_retried():
    db = FlakyDatabase(sqlite3.OperationalError("no such table: feedback"))
    cog = Maintenance(SimpleNamespace(db=db), locked_retry_delays=(0, 0, 0))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await cog.prune_retrying_locked()
    assert db.calls == 1
