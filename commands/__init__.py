"""Discord adapters: the commands and the chat listener, loaded as one extension."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot import ChatBot


async def setup(bot: ChatBot) -> None:
    from .bot_commands import BotCommands
    from .chat import Chat

    await bot.add_cog(BotCommands(bot))
    await bot.add_cog(Chat(bot))
