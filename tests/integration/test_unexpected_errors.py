"""Something unexpected: an apology in chat, the traceback only in the log, the bot carries on."""
from __future__ import annotations

import sqlite3

EXPECTED_TRACEBACKS = 1


async def test_locked_database_gets_an_apology_and_the_bot_recovers(fake, bot, data_dir):
    blocker = sqlite3.connect(data_dir / "bot.sqlite3", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        msg = await fake.send(fake.bob, "!feedback this will not fit")
        reply = await fake.reply_to(msg, timeout=30)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "Sorry, something went wrong while running `!feedback`" in reply.text
    assert "Traceback" not in reply.text and "OperationalError" not in reply.text
    await bot.wait_for_log("database is locked")
    again = await fake.send(fake.bob, "!feedback second try")
    assert "Thanks for the feedback" in (await fake.reply_to(again)).text
    with sqlite3.connect(data_dir / "bot.sqlite3") as conn:
        assert conn.execute("SELECT text FROM feedback").fetchall() == [("second try",)]
