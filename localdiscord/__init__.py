"""A local Discord-compatible server (gateway, REST, CDN, voice) on 127.0.0.1.

The tests drive the real bot through it; the playground runs the bot on it.
"""
from .botprocess import BotProcess
from .server import BotEvent, FakeDiscord

__all__ = ["BotProcess", "BotEvent", "FakeDiscord"]
