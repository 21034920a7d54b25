"""Exceptions whose ``user_message`` can be shown to a chat user as-is.

One hierarchy so the Discord layer needs a single ``except ModelError``.
"""

from __future__ import annotations


class ModelError(Exception):
    """Base for every failure the user should hear about."""

    def __init__(self, user_message: str, *, detail: str | None = None) -> None:
        super().__init__(detail or user_message)
        self.user_message = user_message


class DatasetError(ModelError):
    """The uploaded or stored data can't be used; nothing was changed on disk."""


class Busy(ModelError):
    """Training capacity is used up; the user should retry later."""


class IncompatibleModelError(ModelError):
    """A saved model can't be used by this version of the libraries."""


class NoModelError(ModelError):
    """The scope has no trained model yet."""
