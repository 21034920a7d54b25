"""The one user-facing error type, shared by `audio/`, `model/`, `storage/` and the cogs.

Anything a user caused or can act on (a bad upload, a path outside the sandbox, a
full queue) is a ``UserError``: its ``user_message`` is shown in chat as it is, while
the exception's own text (``detail``) is for the log.  Everything else is a bug: the
bot's one error handler logs it and apologises.  No discord import: the pure packages
raise these, the Discord edge turns them into replies.
"""
from __future__ import annotations

import math
from typing import Any


class Phrase(str):
    """Words for a user, in English, that can be said in another language.

    The string is the English text; ``template`` is the English with ``{placeholders}`` (the
    catalog's msgid) and ``params`` their values, which may be Phrases in turn (a unit, a row
    number's wording). ``Phrase("That file is too big: the limit is {mb:g} MB.", mb=8)`` reads
    "That file is too big: the limit is 8 MB." wherever a str is expected; the Discord edge
    says it in the reader's language with the catalog's translation of the template."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, /, **params: Any) -> Phrase:
        phrase = super().__new__(cls, template.format(**params) if params else template)
        phrase.template, phrase.params = str(template), params
        return phrase

    def __reduce__(self):  # pickles (worker processes) as a Phrase, values and all
        return _phrase, (self.template, self.params)


def _phrase(template: str, params: dict[str, Any]) -> Phrase:
    return Phrase(template, **params)


def phrase_data(text: str) -> Any:
    """A message as JSON carries it from a worker process: a Phrase as its template and values."""
    if isinstance(text, Phrase):
        return {"template": text.template, "params": {k: phrase_data(v) for k, v in text.params.items()}}
    return text


def from_phrase_data(data: Any) -> Any:
    """`phrase_data`'s message back as a Phrase (a plain str stays one)."""
    if isinstance(data, dict) and isinstance(data.get("template"), str):
        return Phrase(data["template"], **{k: from_phrase_data(v) for k, v in (data.get("params") or {}).items()})
    return data


class UserError(Exception):
    """A failure to explain to the user; ``user_message`` is safe to show as is."""

    default_user_message = Phrase("Sorry, I couldn't do that.")

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        self.user_message = user_message or self.default_user_message
        super().__init__(detail or self.user_message)


class Busy(UserError):
    """Capacity is used up (a queue, a per-server share); try again later.

    ``retry_after`` (seconds, when known) lets the reply say when."""

    default_user_message = Phrase("I'm busy right now; please try again in a minute.")

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None,
                 detail: str | None = None) -> None:
        self.retry_after = retry_after
        if user_message is None and retry_after is not None:
            user_message = Phrase("I'm busy right now; please try again in {wait}.", wait=format_wait(retry_after))
        super().__init__(user_message, detail=detail)


def format_wait(seconds: float) -> Phrase:
    """'5 s', '2 min': a rounded-up wait that reads well in chat."""
    seconds = max(1.0, seconds)
    if seconds < 90:
        return Phrase("{seconds} s", seconds=math.ceil(seconds))
    return Phrase("{minutes} min", minutes=math.ceil(seconds / 60))
