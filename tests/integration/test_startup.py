"""Start-up and shutdown of the real bot process."""
from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from localdiscord import BotProcess, FakeDiscord
from localdiscord.botprocess import ROOT

pytestmark = pytest.mark.slow  # many bot starts, retries with backoff


@pytest.mark.parametrize("how", [{"PLAYGROUND": "off"}, "--discord"])
async def test_missing_token_with_the_playground_off_exits_with_instructions(tmp_path, how):
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), **(how if isinstance(how, dict) else {})}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), *([how] if isinstance(how, str) else []), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await exit_output(proc, 30)
    assert proc.returncode == 2
    text = err.decode()
    assert "DISCORD_TOKEN is not set" in text
    assert "Developer Portal" in text or "developers/applications" in text
    assert "MESSAGE CONTENT" in text


async def test_missing_token_opens_the_playground(tmp_path):
    """`make run` on a fresh machine: no token, so the bot runs on the local Discord and the
    page's link (with its token) is printed; the page answers and the bot is online there."""
    import aiohttp

    from tests.browser.playground_process import PlaygroundProcess

    process = PlaygroundProcess(tmp_path, {"PATH": os.environ["PATH"]})
    url = await process.start()
    try:
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        # A browser keeps the cookie the link sets (aiohttp's jar needs `unsafe` for an IP address).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(url) as page:
                assert page.status == 200 and "<textarea" in await page.text()
            async with session.ws_connect(process.base_url + "ws") as ws:
                hello = await ws.receive_json(timeout=10)
                assert hello["type"] == "hello" and hello["world"]["bot"]["name"] == "ChatBot"
                while (update := await ws.receive_json(timeout=10))["type"] != "voice":
                    pass
                assert update["online"] is True
    finally:
        assert await process.stop() == 0, process.log_tail()
    assert not any("Traceback" in line for line in process.lines), process.log_tail()


async def test_playground_forced_with_a_token_and_a_non_loopback_host_says_so(tmp_path):
    from tests.browser.playground_process import PlaygroundProcess

    process = PlaygroundProcess(tmp_path, {"DISCORD_TOKEN": "a-real-looking-token", "PLAYGROUND": "on",
                                           "PLAYGROUND_HOST": "0.0.0.0", "PLAYGROUND_ALLOW_REMOTE": "true"})
    url = await process.start()
    try:
        assert url.startswith("http://0.0.0.0:")
        warning = await process.wait_for_log("PLAYGROUND_HOST=0.0.0.0")
        assert "reachable from other machines" in warning
    finally:
        assert await process.stop() == 0, process.log_tail()


async def test_playground_port_in_use_exits_with_a_clear_message(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "PLAYGROUND"))}
        env.update(DATA_DIR=str(tmp_path), PLAYGROUND_PORT=str(taken.getsockname()[1]))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await exit_output(proc, 60)
    text = out.decode()
    assert proc.returncode == 2, text
    assert "cannot listen" in text and "PLAYGROUND_PORT" in text and "Traceback" not in text


async def test_rejected_token_exits_non_zero_without_logging_it(fake, tmp_path):
    secret = "definitely-wrong-token-1234567890"
    process = BotProcess(fake, tmp_path, env={"DISCORD_TOKEN": secret})
    process.proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=process.environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await exit_output(process.proc, 30)
    log_text = out.decode() + (tmp_path / "logs" / "bot.log").read_text()
    assert process.proc.returncode == 1
    assert "rejected the token" in log_text
    assert secret not in log_text


async def test_sigterm_shuts_down_cleanly(fake, tmp_path):
    process = BotProcess(fake, tmp_path)
    await process.start()
    assert await process.stop() == 0
    assert any("Shutting down" in line for line in process.lines)
    assert not any("Traceback" in line for line in process.lines), process.log_tail()


async def test_missing_ffmpeg_is_warned_about_at_start(fake, tmp_path):
    process = BotProcess(fake, tmp_path, env={"PATH": str(tmp_path / "empty-bin")})
    await process.start()
    try:
        line = await process.wait_for_log("ffmpeg is not installed")
        assert "apt-get install ffmpeg" in line
    finally:
        assert await process.stop() == 0


async def exit_output(proc: asyncio.subprocess.Process, timeout: float) -> tuple[bytes, bytes]:
    """The output of a bot expected to exit by itself; killed (not leaked) if it does not."""
    try:
        return await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_discord_down_at_start_is_retried_until_it_comes_up(tmp_path):
    """Network down at boot: a plain warning per attempt, then the bot connects once Discord answers."""
    fake = FakeDiscord()
    fake.port = free_port()  # nothing listens there yet
    process = BotProcess(fake, tmp_path, env={"CONNECT_RETRY_SECONDS": "120"})
    starting = asyncio.create_task(process.start(timeout=90))
    try:
        line = await process.wait_for_log("Discord cannot be reached", timeout=30)
        assert "retrying in" in line
        await fake.start(port=fake.port)
        await starting
        assert not any("Traceback" in l for l in process.lines), process.log_tail()
    finally:
        starting.cancel()
        await process.stop()
        await fake.stop()


async def test_discord_unreachable_for_good_exits_with_a_clear_message(tmp_path):
    fake = FakeDiscord()
    fake.port = free_port()
    process = BotProcess(fake, tmp_path, env={"CONNECT_RETRY_SECONDS": "1"})
    process.proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=process.environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await exit_output(process.proc, 60)
    text = out.decode()
    assert process.proc.returncode == 3, text
    assert "Discord cannot be reached" in text and "Gave up" in text
    assert "Traceback" not in text


async def test_unresolvable_discord_name_is_said_plainly(tmp_path):
    fake = FakeDiscord()
    process = BotProcess(fake, tmp_path, env={"CONNECT_RETRY_SECONDS": "0"})
    env = process.environment()
    env["FAKE_DISCORD_URL"] = "http://discord.invalid"  # .invalid never resolves (RFC 2606)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await exit_output(proc, 60)
    text = out.decode()
    assert proc.returncode == 3, text
    assert "could not be resolved" in text and "Traceback" not in text
