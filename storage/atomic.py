"""Crash-safe file writes: readers see the old file or the new one, never half.

One implementation for the whole bot (the file sandbox, datasets, models, the
speech cache): write a temp file in the same folder, fsync, then os.replace.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".tmp-"


def atomic_write_bytes(path: Path, data: bytes, *, prefix: str = TMP_PREFIX, suffix: str = "") -> None:
    """Write `data` to `path` atomically; temp names use `prefix`/`suffix` so leftovers can be swept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text variant of `atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))
