"""Points an unmodified discord.py at the local fake server; loaded via PYTHONPATH.

Only the bot process under test gets this: it reads FAKE_DISCORD_URL and removes
it from the environment, so the bot's own subprocesses (training workers) start clean.
"""
import os

_url = os.environ.pop("FAKE_DISCORD_URL", None)
if _url:
    import aiohttp
    import discord.gateway
    import discord.http
    import discord.state
    import discord.utils
    import yarl

    discord.http.Route.BASE = _url + "/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_url.replace("http", "ws", 1) + "/")

    _state_init = discord.state.ConnectionState.__init__

    def _fast_ready(self, *args, **kwargs):
        _state_init(self, *args, **kwargs)
        self.guild_ready_timeout = 0.05  # the fake sends every guild at once

    discord.state.ConnectionState.__init__ = _fast_ready

    _static_login = discord.http.HTTPClient.static_login

    async def _login_without_tls_verification(self, token):
        # The fake's voice websocket uses a throwaway self-signed certificate.
        if self.connector is discord.utils.MISSING:
            self.connector = aiohttp.TCPConnector(limit=0, ssl=False)
        return await _static_login(self, token)

    discord.http.HTTPClient.static_login = _login_without_tls_verification
