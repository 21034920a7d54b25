"""Safe names for scopes and datasets, since both become path components."""

from __future__ import annotations

import re
from pathlib import PurePath

from errors import Phrase

from .errors import DatasetError, ModelError

MAX_NAME = 64
_BAD = re.compile(r"[^a-z0-9_-]+")
_SCOPE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def sanitize_name(raw: str) -> str:
    """Lowercase, [a-z0-9_-] only, at most 64 chars; refuse if nothing is left."""
    name = _BAD.sub("_", (raw or "").strip().lower()).strip("_-")[:MAX_NAME].strip("_-")
    if not name:
        raise DatasetError(Phrase("Please give the dataset a name using letters, digits, `-` or `_`."))
    return name


def name_from_filename(filename: str | None, fallback: str = "dataset") -> str:
    """Dataset name from an upload's filename, without its extension."""
    stem = PurePath(filename).stem if filename else ""
    try:
        return sanitize_name(stem)
    except DatasetError:
        return fallback


def check_scope(scope: str) -> str:
    """Scopes come from our own code (guild ids, dm-<id>); reject anything odd."""
    s = str(scope).strip().lower()
    if not _SCOPE.match(s):
        raise ModelError(Phrase("Internal error: invalid scope."), detail=f"invalid scope {scope!r}")
    return s
