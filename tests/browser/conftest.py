"""Fixtures: the real playground (`python bot.py` with no token) and Debian's Chromium
driven by Playwright (never a downloaded browser: `executable_path="/usr/bin/chromium"`).

One playground and one browser per test module (module-scoped event loop)."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio

from tests.browser.playground_process import PlaygroundProcess

CHROMIUM = "/usr/bin/chromium"
# What this machine's closed network needs (see the machine notes): no background connections.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("playground-data")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playground(data_dir, request):
    env = dict(getattr(request.module, "PLAYGROUND_ENV", {}))
    process = PlaygroundProcess(data_dir, env)
    await process.start()
    yield process
    code = await process.stop()
    assert code == 0, f"playground exited with {code}:\n{process.log_tail()}"
    tracebacks = [line for line in process.lines if "Traceback" in line]
    assert not tracebacks, f"tracebacks in the playground's log:\n{process.log_tail(80)}"


@pytest.fixture(scope="module")
def fake_microphone() -> list[str]:
    """Extra Chromium flags for the fake microphone; a module overrides it to feed a file."""
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(tmp_path_factory, fake_microphone):
    from playwright.async_api import async_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is missing: run `make setup` (scripts/system-deps.sh)"
    flags = CHROMIUM_FLAGS + fake_microphone
    profile = tmp_path_factory.mktemp("chromium-profile")
    async with async_playwright() as pw:
        # A persistent context on a new, empty profile folder: Chromium's --user-data-dir.
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=flags, viewport={"width": 1200, "height": 800},
            permissions=["microphone"])
        yield context
        await context.close()
