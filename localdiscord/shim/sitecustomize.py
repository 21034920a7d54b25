"""Points an unmodified discord.py at the local fake server; loaded via PYTHONPATH.

The REST and gateway addresses are set as `localdiscord/client.py` does for the playground.
The two constructor options the playground passes (`connector`, `guild_ready_timeout`) can't
be passed to a bot that builds its own client, so this test-only shim wraps the two places
that read them instead.

Only the bot process under test gets this: it reads FAKE_DISCORD_URL and removes
it from the environment, so the bot's own subprocesses (training workers) start clean.
"""
import os

_url = os.environ.pop("FAKE_DISCORD_URL", None)
if _url:
    import sys
    from pathlib import Path

    import aiohttp
    import discord.http
    import discord.state
    import discord.utils

    # sitecustomize runs before the script's folder is on sys.path: add the repository.
    sys.path.append(str(Path(__file__).resolve().parents[2]))
    from localdiscord.client import GUILD_READY_TIMEOUT, point_discord_at

    point_discord_at(_url)

    _state_init = discord.state.ConnectionState.__init__

    def _fast_ready(self, *args, **kwargs):
        _state_init(self, *args, **kwargs)
        self.guild_ready_timeout = GUILD_READY_TIMEOUT  # the fake sends every guild at once

    discord.state.ConnectionState.__init__ = _fast_ready

    _static_login = discord.http.HTTPClient.static_login

    async def _login_without_tls_verification(self, token):
        # The fake's voice websocket uses a throwaway self-signed certificate.
        if self.connector is discord.utils.MISSING:
            self.connector = aiohttp.TCPConnector(limit=0, ssl=False)
        return await _static_login(self, token)

    discord.http.HTTPClient.static_login = _login_without_tls_verification
