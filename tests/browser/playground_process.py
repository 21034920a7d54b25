"""The playground as a user starts it: `python bot.py` with no DISCORD_TOKEN, in its own process."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"Playground ready: open (http://\S+) in your browser")


class PlaygroundProcess:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.url = ""
        self._reader: asyncio.Task | None = None
        self._changed = asyncio.Condition()

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DISCORD_", "FAKE_", "PLAYGROUND")) and k != "PYTHONPATH"}
        env.update({"DATA_DIR": str(self.data_dir), "PLAYGROUND_PORT": "0", "COOLDOWN_SECONDS": "0",
                    "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "TTS_ENGINES": "piper,espeak"})
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float = 60.0) -> str:
        """Start it; returns the page's URL once it is printed."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cwd is the data dir, so a developer's own .env (with a token) is not read.
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), *self.args, cwd=self.data_dir, env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.create_task(self._read())
        try:
            line = await self.wait_for_log("Playground ready", timeout)
        except AssertionError:
            await self.stop()
            raise
        match = URL_LINE.search(line)
        assert match, line
        self.url = match.group(1)
        return self.url

    async def restart(self, timeout: float = 60.0) -> str:
        """Stop (as Ctrl+C does) and start again on the same DATA_DIR; returns the new URL."""
        code = await self.stop()
        assert code == 0, f"playground exited with {code}:\n{self.log_tail()}"
        self.lines = []
        return await self.start(timeout)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        async def find() -> str:
            async with self._changed:
                while True:
                    for line in self.lines:
                        if text in line:
                            return line
                    if self._reader is not None and self._reader.done():
                        raise AssertionError(f"playground exited ({self.proc.returncode}) before logging {text!r}:\n"
                                             f"{self.log_tail()}")
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"playground did not log {text!r} within {timeout}s:\n{self.log_tail()}") from None

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    async def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl+C, as someone who ran `make run` would
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        return self.proc.returncode
