"""Start-up and shutdown of the real bot process."""
from __future__ import annotations

import asyncio
import sys

from localdiscord import BotProcess
from localdiscord.botprocess import ROOT


async def test_missing_token_exits_with_instructions(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    text = err.decode()
    assert "DISCORD_TOKEN is not set" in text
    assert "Developer Portal" in text or "developers/applications" in text
    assert "MESSAGE CONTENT" in text


async def test_rejected_token_exits_non_zero_without_logging_it(fake, tmp_path):
    secret = "definitely-wrong-token-1234567890"
    process = BotProcess(fake, tmp_path, env={"DISCORD_TOKEN": secret})
    process.proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bot.py"), cwd=tmp_path, env=process.environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(process.proc.communicate(), 30)
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
