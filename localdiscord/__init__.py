"""A local Discord-compatible server and a runner for the real bot process, for tests."""
from .botprocess import BotProcess
from .server import BotEvent, FakeDiscord

__all__ = ["BotProcess", "BotEvent", "FakeDiscord"]
