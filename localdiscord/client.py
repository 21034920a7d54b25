"""Pointing an unmodified discord.py at the local server, with public API only.

discord.py reads its REST base and gateway address from two public class attributes
(`discord.http.Route.BASE`, `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`); a plain
`Client` never asks `GET /gateway/bot`, so those two are all the redirection needed.  The
rest goes through `Client`'s constructor: the local voice server serves TLS with a
throwaway self-signed certificate, so the bot's HTTP session must not verify it
(`connector=aiohttp.TCPConnector(ssl=False)`), and the local server sends every guild at
once, so `guild_ready_timeout` can be tiny instead of 2 s.

Used by the playground (the bot in the same process as the server) and by
`shim/sitecustomize.py` (the bot under test, in its own process).
"""
from __future__ import annotations

from typing import Any

import aiohttp
import discord.gateway
import discord.http
import yarl

GUILD_READY_TIMEOUT = 0.05  # seconds; every guild arrives in one burst


def point_discord_at(url: str) -> None:
    """Send discord.py's REST calls and gateway connection to the local server at `url`
    (``http://host:port``).  Process-wide: only for a process that talks to it alone."""
    discord.http.Route.BASE = url + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http", "ws", 1) + "/")


def client_options() -> dict[str, Any]:
    """Keyword arguments for `discord.Client` / `commands.Bot` talking to the local server.
    Call inside the running event loop (the connector binds to it)."""
    return {"connector": aiohttp.TCPConnector(limit=0, ssl=False), "guild_ready_timeout": GUILD_READY_TIMEOUT}
