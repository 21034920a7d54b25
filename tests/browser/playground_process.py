"""The playground as a user starts it: `python bot.py` with no DISCORD_TOKEN, in its own process."""
from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from localdiscord.botprocess import LoggedProcess

URL_LINE = re.compile(r"Playground ready: open (http://\S+) in your browser")


class PlaygroundProcess(LoggedProcess):
    name = "playground"
    stop_signal = signal.SIGINT  # Ctrl+C, as someone who ran `make run` would

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        super().__init__()
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.args = args
        self.url = ""

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DISCORD_", "FAKE_", "PLAYGROUND")) and k != "PYTHONPATH"}
        env.update({"DATA_DIR": str(self.data_dir), "PLAYGROUND_PORT": "0", "COOLDOWN_SECONDS": "0",
                    "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "TTS_ENGINES": "piper,espeak"})
        env.update(self.extra_env)
        return env

    async def start(self, timeout: float = 60.0) -> str:
        """Start it; returns the link it prints (the page's URL with `?token=`)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cwd is the data dir, so a developer's own .env (with a token) is not read.
        await self._spawn(self.args, self.data_dir, self.environment())
        try:
            line = await self.wait_for_log("Playground ready", timeout)
        except AssertionError:
            await self.stop()
            raise
        match = URL_LINE.search(line)
        assert match, line
        self.url = match.group(1)  # the printed link, with its token
        return self.url

    @property
    def base_url(self) -> str:
        """The page's address without the token (what the browser shows once signed in)."""
        return self.url.split("?", 1)[0]

    @property
    def token(self) -> str:
        return self.url.partition("?token=")[2]

    async def restart(self, timeout: float = 60.0) -> str:
        """Stop (as Ctrl+C does) and start again on the same DATA_DIR; returns the new URL."""
        code = await self.stop()
        assert code == 0, f"playground exited with {code}:\n{self.log_tail()}"
        self.lines = []
        return await self.start(timeout)

    async def stop(self, timeout: float = 20.0) -> int:
        return await super().stop(timeout)
