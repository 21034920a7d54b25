"""`python bot.py` with no DISCORD_TOKEN: the whole bot on a local Discord, used from the browser.

One process, one event loop: the local Discord-compatible server (localdiscord/, with voice
and DAVE), the bot connected to it exactly as to Discord (only the addresses differ, set
with discord.py's public API: localdiscord/client.py), and the page's server.  The bot's
data lives in DATA_DIR as with Discord, and the playground's server has fixed ids, so
models and datasets trained here are still there after a restart.  Who may use the page, and
why it takes the link's token: the threat model at the top of web.py.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import signal
from dataclasses import replace
from typing import Callable

import discord

from config import Settings, is_loopback_host
from localdiscord.client import client_options, point_discord_at
from localdiscord.server import FakeDiscord
from localdiscord.voice import FakeVoiceServer

from .history import History
from .web import PlaygroundPage
from .world import build_world

log = logging.getLogger("playground")

EXIT_CONFIG = 2


def is_loopback(host: str) -> bool:
    return is_loopback_host(host)


def banner(url: str) -> str:
    """What `make run` prints: the link with its token (it signs the browser in; a new one at every start)."""
    line = "=" * max(60, len(url) + 34)
    return (f"\n{line}\n"
            f"  Playground ready: open {url} in your browser\n"
            f"  (the link's token lets your browser in: don't share it; a new one is made at every start.\n"
            f"  The bot runs on a local Discord; put DISCORD_TOKEN in .env to run it on Discord)\n"
            f"{line}\n")


async def run_playground(settings: Settings, bot_class: Callable[..., discord.Client]) -> int:
    """Run the playground until SIGINT/SIGTERM; an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # record=False: the local server keeps no test records, so it runs for days in bounded memory.
    fake = FakeDiscord(token=secrets.token_urlsafe(32), world=build_world, record=False)
    await fake.start()
    voice = FakeVoiceServer(fake, record=False)
    page = PlaygroundPage(fake, voice, History(settings.data_dir / "playground"),
                          max_upload=settings.max_attachment_bytes)
    try:
        await voice.start()
        restored = await page.history.restore(fake) if page.history else 0
        if not is_loopback(settings.playground_host):  # config.py refuses it without PLAYGROUND_ALLOW_REMOTE
            log.warning("PLAYGROUND_HOST=%s: the playground is reachable from other machines, and anyone who "
                        "has its link (with the token) acts as the bot's owner. Use 127.0.0.1 unless you mean it.",
                        settings.playground_host)
        try:
            await page.start(settings.playground_host, settings.playground_port)
        except OSError as exc:
            log.error("The playground cannot listen on %s port %s (%s). Set PLAYGROUND_PORT to a free port.",
                      settings.playground_host, settings.playground_port, exc.strerror or exc)
            return EXIT_CONFIG
        log.info("Playground: local Discord on %s, %d message(s) restored from %s", fake.url, restored,
                 settings.data_dir / "playground")
        point_discord_at(fake.url)
        return await _run_bot(settings, bot_class, fake, page, page.login_url, stop)
    finally:
        await page.stop()
        await voice.stop()
        await fake.stop()


async def _run_bot(settings: Settings, bot_class: Callable[..., discord.Client], fake: FakeDiscord,
                   page: PlaygroundPage, url: str, stop: asyncio.Event) -> int:
    bot = bot_class(replace(settings, discord_token=fake.token), **client_options())
    async with bot:
        runner = asyncio.create_task(bot.start(fake.token), name="playground-bot")
        ready = asyncio.create_task(bot.wait_until_ready())
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            # The local server has no rate limit: register the slash commands on its server at
            # once, and globally too, which is what offers them in DMs with the bot (on Discord an
            # owner runs !sync here / !sync global).  The page shows a server's copy only once.
            guild = discord.Object(fake.guild.id)
            bot.tree.copy_global_to(guild=guild)  # type: ignore[attr-defined]
            synced = await bot.tree.sync(guild=guild)  # type: ignore[attr-defined]
            synced_global = await bot.tree.sync()  # type: ignore[attr-defined]
            log.info("Playground: %d slash command(s) registered (%d global, for DMs)", len(synced),
                     len(synced_global))
            page.set_bot_online(True)
            print(banner(url), flush=True)
            log.info("Playground: open %s with the token printed on the terminal", page.url)
        else:
            ready.cancel()
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        page.set_bot_online(False)
        if runner.done() and runner.exception() is not None:
            log.error("The bot stopped", exc_info=runner.exception())
            return 1
        await bot.close()
        runner.cancel()
    return 0
