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


class LoggedProcess:
    """`python bot.py` in its own process, its output lines kept for waiting on log lines
    and for failure reports. Subclasses say how it is started."""

    name = "bot"
    stop_signal = signal.SIGTERM  # as a service manager stops it

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task | None = None
        self._line_added = asyncio.Condition()

    async def _spawn(self, args: tuple[str, ...], cwd: Path, env: dict[str, str]) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), *args, cwd=cwd, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read_output())

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
                        raise AssertionError(f"{self.name} exited ({self.proc.returncode}) before logging "
                                             f"{text!r}:\n{self.log_tail()}")
                    await self._line_added.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.name} did not log {text!r} within {timeout}s:\n{self.log_tail()}") from None

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 15.0) -> int:
        """Send `stop_signal`; returns the exit code (killed if it does not exit in time)."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(self.stop_signal)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return self.proc.returncode


class BotProcess(LoggedProcess):
    """The bot under test, wired to a FakeDiscord."""

    def __init__(self, fake: FakeDiscord, data_dir: Path, env: dict[str, str] | None = None):
        super().__init__()
        self.fake = fake
        self.data_dir = data_dir
        self.extra_env = env or {}

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
        await self._spawn((), self.data_dir, self.environment())
        try:
            await self.wait_for_log(READY_LINE, timeout)
        except AssertionError:
            await self.stop()
            raise
