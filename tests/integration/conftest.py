"""Fixtures: a local Discord server and the real bot process connected to it.

One server and one bot per test module (module-scoped event loop), so start-up
is paid once per module; each module may set BOT_ENV to configure its bot.
"""
from __future__ import annotations

import pytest
import pytest_asyncio

from localdiscord import BotProcess, FakeDiscord


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fake():
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(fake, data_dir, request):
    env = dict(getattr(request.module, "BOT_ENV", {}))
    process = BotProcess(fake, data_dir, env=env)
    await process.start()
    yield process
    code = await process.stop()
    assert code == 0, f"bot exited with {code}:\n{process.log_tail()}"
    errors = [line for line in process.lines if "Traceback" in line]
    expected = getattr(request.module, "EXPECTED_TRACEBACKS", 0)
    assert len(errors) == expected, f"unexpected tracebacks in the bot log:\n{process.log_tail(80)}"
