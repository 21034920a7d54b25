"""The Discord side: one cog per area, each loaded as an extension by `bot.py`.

Every module here is a cog ending in `async def setup(bot)`; what the cogs share (checks, the
data scope, replies, help, the error handler) is in `commands/kit/`. The cogs only adapt
Discord to the services: `voice/` for voice channels, and `audio/`, `model/` and `storage/`,
which hold the logic.
"""
