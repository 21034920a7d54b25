"""The data scope: the key everything a server (or one person's DMs) owns is stored under.

Datasets, models, settings, feedback, corrections and replies are kept per scope, and queries
always filter on it, so one server never sees another's data. A server's scope is its id; a
direct-message conversation's is its own per person. The Discord side maps a message, command,
interaction or voice utterance to a scope through this one function.
"""
from __future__ import annotations


def scope_key(guild_id: int | None, user_id: int) -> str:
    """The scope of something said by ``user_id`` in server ``guild_id`` (None: in a DM)."""
    return server_scope(guild_id) if guild_id is not None else f"dm-{user_id}"


def server_scope(guild_id: int) -> str:
    """A server's own scope (its settings; anything said in it)."""
    return str(guild_id)
