"""Interactions on the local Discord server: the record of one, and Discord's numbers for them.

Tests act as a Discord client would: `FakeDiscord.slash(...)` etc. build an `INTERACTION_CREATE`
from the commands the bot registered (see `appcommands.py`), and refuse what the Discord client
would not let a user send (unregistered commands, missing or mistyped options, commands hidden by
`default_member_permissions` or `contexts`).  The bot answers through the interaction callback
(`POST /interactions/{id}/{token}/callback`) and the webhook routes for the original response and
follow-ups.  Discord's rules are kept: one callback per interaction (40060), 3 s to answer or the
interaction expires (10062), ephemeral messages that only the user sees (no gateway event), a
deferral's "thinking" message that the first follow-up fills.
Protocol facts: ../shared/docs/discord-offline-testing.md ("Interactions").

Where each part lives (this module is what tests hold: an `Interaction` and what they wait for):
- interaction_server.py: `InteractionServer`, the interaction side of a FakeDiscord; builds and
  dispatches INTERACTION_CREATE for what a user does, and expires unanswered interactions;
- interaction_input.py: what the Discord client lets a user send (command lookup, options);
- interaction_routes.py: the bot's answers (the callback and webhook routes);
- command_routes.py: the bot registering its commands.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar

from . import appcommands as ac
from .state import FLAG_EPHEMERAL, Channel, Message, User

if TYPE_CHECKING:
    from .server import FakeDiscord

# A server made with record=False (the playground) keeps the newest RECENT entries of each log tests
# read (its events, requests, typing indicators) and of its interactions.
RECENT = 500

# Interaction types
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
# Callback (response) types
CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 4, 5, 6, 7, 8, 9
ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {CHANNEL_MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
}
RESPONSE_TIMEOUT = 3.0  # seconds Discord gives a bot to answer an interaction
# Message flags a bot may set on an interaction message: suppress embeds, ephemeral, silent,
# voice message, components v2.
SETTABLE_FLAGS = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | (1 << 13) | (1 << 15)
# `app_permissions` in a DM with the bot: ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS.
DM_APP_PERMISSIONS = (1 << 15) | (1 << 14) | (1 << 17) | (1 << 18)

T = TypeVar("T")


class InteractionRefused(AssertionError):
    """What the Discord client would not let a user send (a missing or mistyped option, another
    user's modal, ...) or Discord would refuse; the message says why.  A real check, kept under
    `python -O` (the playground's page reaches these methods), and an AssertionError so a test
    reads it as a failed expectation."""


class CommandUnavailable(InteractionRefused):
    """The Discord client would not offer this command to this user here (not registered in this
    guild or globally, hidden by `default_member_permissions`, or not allowed in this context)."""


@dataclass(eq=False)
class Interaction:
    """One interaction as the server saw it, and how the bot answered it.

    `callbacks` lists the accepted callback types (at most one); `rejected` the refused callback
    attempts as (type, HTTP status, Discord code); `late_callbacks` the types the bot sent after
    the interaction expired (each answered 404 / 10062).  `original` is the response message (kept
    up to date with edits; a deferral's "thinking" message until filled), `followups` the messages
    sent with the follow-up webhook.  After a deferral, Discord turns the first follow-up into the
    original response: that message is then both `original` and `followups[0]`."""

    id: int
    token: str
    type: int
    user: User
    channel: Channel
    name: str  # the command's name; for a modal submit, the modal's custom_id
    command_type: int = ac.CHAT_INPUT
    payload: dict = field(default_factory=dict, repr=False)  # the INTERACTION_CREATE data sent
    callbacks: list[int] = field(default_factory=list)
    rejected: list[tuple[int, int, int]] = field(default_factory=list)
    late_callbacks: list[int] = field(default_factory=list)
    deferred: bool = False
    ephemeral: bool = False
    modal: dict | None = field(default=None, repr=False)
    choices: list[dict] | None = None
    original: Message | None = field(default=None, repr=False)
    followups: list[Message] = field(default_factory=list, repr=False)
    message: Message | None = field(default=None, repr=False)  # the message an UPDATE_MESSAGE edits
    parent: "Interaction | None" = field(default=None, repr=False)  # a modal submit's opening interaction
    modal_submitted: bool = False
    expired: bool = False
    _fake: "FakeDiscord | None" = field(default=None, repr=False)
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def guild_id(self) -> int | None:
        return self.channel.guild_id

    @property
    def response_type(self) -> int | None:
        return self.callbacks[0] if self.callbacks else None

    def describe(self) -> str:
        kind = {APPLICATION_COMMAND: "command", AUTOCOMPLETE: "autocomplete for", MODAL_SUBMIT: "modal submit"}
        prefix = "/" if self.type != MODAL_SUBMIT and self.command_type == ac.CHAT_INPUT else ""
        return f"{kind.get(self.type, 'interaction')} {prefix}{self.name} by {self.user.username}"

    def _state(self) -> str:
        original = None if self.original is None else self.original.text[:200]
        return (f"callbacks {self.callbacks}, rejected {self.rejected}, late {self.late_callbacks}, "
                f"expired {self.expired}, original {original!r}, followups {[m.text[:100] for m in self.followups]}")

    async def _wait(self, found: Callable[[], T | None], what: str, timeout: float) -> T:
        """Wait until `found()` returns something; re-checked whenever the server's state changes."""
        if self._fake is None:
            raise RuntimeError(f"{self.describe()} was not made by a local server")
        changed = self._fake._changed

        async def check() -> T:
            async with changed:
                while True:
                    value = found()
                    if value is not None:
                        return value
                    if self.expired and not self.callbacks:
                        raise AssertionError(f"{self.describe()} expired: the bot did not answer within "
                                             f"{self._fake.interaction_timeout} s ({self._state()})")
                    await changed.wait()
        try:
            return await asyncio.wait_for(check(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.describe()}: no {what} within {timeout}s ({self._state()})") from None

    async def wait_response(self, timeout: float = 10.0) -> "Interaction":
        """Until the bot has answered (any callback type); fails at once if the interaction expired."""
        return await self._wait(lambda: self if self.callbacks else None, "response", timeout)

    async def wait_original(self, predicate: Callable[[Message], bool] = lambda m: True,
                            timeout: float = 10.0) -> Message:
        """The original response message once `predicate` holds for it (e.g. after an edit)."""
        def found() -> Message | None:
            msg = self.original
            return msg if msg is not None and not msg.deleted and predicate(msg) else None
        return await self._wait(found, "original response matching", timeout)

    async def wait_followup(self, predicate: Callable[[Message], bool] = lambda m: True,
                            timeout: float = 10.0) -> Message:
        """The first follow-up message for which `predicate` holds."""
        return await self._wait(lambda: next((m for m in self.followups if predicate(m)), None),
                                "follow-up matching", timeout)

