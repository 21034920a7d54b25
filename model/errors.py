"""Exceptions whose ``user_message`` can be shown to a chat user as-is.

All share ``errors.UserError``, so the Discord layer needs one handler.
"""

from __future__ import annotations

from errors import Busy, UserError

__all__ = ["ModelError", "DatasetError", "Busy", "IncompatibleModelError", "NoModelError"]


class ModelError(UserError):
    """Base for every model failure the user should hear about."""

    def __init__(self, user_message: str, *, detail: str | None = None) -> None:
        super().__init__(user_message, detail=detail)


class DatasetError(ModelError):
    """The uploaded or stored data can't be used; nothing was changed on disk."""


class IncompatibleModelError(ModelError):
    """A saved model can't be used by this version of the libraries."""


class NoModelError(ModelError):
    """The scope has no trained model yet."""
