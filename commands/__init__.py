"""The Discord side: one cog per area, each loaded as an extension by `bot.py`.

The cogs only adapt Discord to `audio/`, `model/` and `storage/`, which hold the logic.
"""
