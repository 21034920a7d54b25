"""Runs the real bot (`python bot.py`) as a subprocess wired to a FakeDiscord."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from .server import FakeDiscord

ROOT = Path(__file__).resolve().parents[1]
SHIM = Path(__file__).resolve().parent / "shim"
READY_LINE = "Ready:"


class BotProcess:
    """The bot under test; its log lines are kept for assertions and failure reports."""

    def __init__(self, fake: FakeDiscord, data_dir: Path, env: dict[str, str] | None = None):
        self.fake = fake
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task | None = None
        self._line_added = asyncio.Condition()

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAKE_"))}
        env.update({
            "DISCORD_TOKEN": self.fake.token,
            "DATA_DIR": str(self.data_dir),
            "OWNER_IDS": "",
            "COOLDOWN_SECONDS": "0",
            "LOG_LEVEL": "INFO",
            "FAKE_DISCORD_URL": self.fake.url,
            "PYTHONPATH": os.pathsep.join([str(SHIM), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cwd is the data dir, so a developer's own .env in the repository is not read.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), cwd=self.data_dir, env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read_output())
        try:
            await self.wait_for_log(READY_LINE, timeout)
        except AssertionError:
            await self.stop()
            raise

    async def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._line_added:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._line_added.notify_all()
        async with self._line_added:
            self._line_added.notify_all()

    async def wait_for_log(self, text: str, timeout: float = 10.0, start: int = 0) -> str:
        """The first log line from index `start` containing `text`."""
        async def find() -> str:
            async with self._line_added:
                while True:
                    for line in self.lines[start:]:
                        if text in line:
                            return line
                    if self.proc is not None and self.proc.returncode is not None and self._reader.done():
                        raise AssertionError(f"bot exited ({self.proc.returncode}) before logging {text!r}")
                    await self._line_added.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"bot did not log {text!r} within {timeout}s:\n{self.log_tail()}") from None

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, as a service manager would; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return self.proc.returncode
