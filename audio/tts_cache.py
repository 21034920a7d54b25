"""Bounded on-disk cache of spoken phrases, so a repeated reply plays without synthesis.

One WAV file per phrase, named ``<key>.<engine>.wav``: the file name alone says
which engine made it, so the index is rebuilt from a directory listing after a
restart (least recently used = oldest mtime; a hit touches the mtime). Writes go
to a temporary file in the same directory and are renamed into place, so a
reader never sees a partial file. One process owns a cache directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from storage.atomic import atomic_write_bytes

log = logging.getLogger("audio.tts")

_NAME = re.compile(r"^([0-9a-f]{40})\.([a-z0-9_]+)\.wav$")
_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class CachedPhrase:
    path: Path
    engine: str
    size: int


def phrase_key(text: str, language: str, voice: str) -> str:
    """Cache key for cleaned ``text`` in ``language`` spoken by ``voice`` (engine list/voice id).

    It does not depend on which engine finally spoke, so a hit needs no engine.
    """
    payload = json.dumps([text, language.replace("_", "-").lower(), voice], ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


class PhraseCache:
    """LRU by total bytes; thread-safe; survives restarts."""

    def __init__(self, directory: Path | str, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, CachedPhrase] = OrderedDict()  # oldest first
        self._total = 0
        self._clock = 0
        self._load_index()

    @property
    def total_bytes(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CachedPhrase | None:
        """The cached phrase for ``key`` (now most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            try:
                self._touch(entry.path)  # keeps LRU order across restarts
            except FileNotFoundError:  # removed behind our back
                self._forget(key)
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, wav: bytes, engine: str) -> CachedPhrase:
        """Store ``wav`` atomically and evict least recently used phrases over ``max_bytes``.

        The phrase just stored is never evicted, so the caller can always play it.
        """
        if not re.fullmatch(r"[a-z0-9_]+", engine):
            raise ValueError(f"bad engine name {engine!r}")
        if not _NAME.match(f"{key}.{engine}.wav"):
            raise ValueError(f"bad cache key {key!r}")
        path = self.directory / f"{key}.{engine}.wav"
        atomic_write_bytes(path, wav, prefix=f".{key}.", suffix=_TMP_SUFFIX)
        with self._lock:
            self._touch(path)
        entry = CachedPhrase(path=path, engine=engine, size=len(wav))
        with self._lock:
            old = self._entries.get(key)
            if old is not None:
                self._forget(key)
                if old.path != path:
                    old.path.unlink(missing_ok=True)
            self._entries[key] = entry
            self._total += entry.size
            self._evict(keep=key)
        return entry

    def discard(self, key: str) -> None:
        """Drop one phrase (e.g. a file found damaged)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._forget(key)
                entry.path.unlink(missing_ok=True)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._entries[key].path.unlink(missing_ok=True)
                self._forget(key)

    def _evict(self, keep: str) -> None:
        while self._total > self.max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            if oldest == keep:
                break
            entry = self._entries[oldest]
            self._forget(oldest)
            entry.path.unlink(missing_ok=True)
            log.debug("tts cache evicted %s (%d bytes)", entry.path.name, entry.size)

    def _touch(self, path: Path) -> None:
        """Set mtime to a strictly increasing clock: the kernel's own is too coarse to order hits."""
        self._clock = max(time.time_ns(), self._clock + 1)
        os.utime(path, ns=(self._clock, self._clock))

    def _forget(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._total -= entry.size

    def _load_index(self) -> None:
        found: list[tuple[int, str, CachedPhrase]] = []
        for item in os.scandir(self.directory):
            if item.name.endswith(_TMP_SUFFIX):  # left by a crash mid-write
                Path(item.path).unlink(missing_ok=True)
                continue
            match = _NAME.match(item.name)
            if not match or not item.is_file():
                continue
            stat = item.stat()
            if stat.st_size == 0:
                Path(item.path).unlink(missing_ok=True)
                continue
            self._clock = max(self._clock, stat.st_mtime_ns)
            found.append((stat.st_mtime_ns, match.group(1),
                          CachedPhrase(Path(item.path), match.group(2), stat.st_size)))
        for _mtime, key, entry in sorted(found, key=lambda item: item[0]):
            if key in self._entries:  # same phrase from two engines: keep the newer
                stale = self._entries[key]
                self._forget(key)
                stale.path.unlink(missing_ok=True)
            self._entries[key] = entry
            self._total += entry.size
        if self._entries:
            self._evict(keep=next(reversed(self._entries)))
