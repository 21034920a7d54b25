"""Keeps recently used models in memory, bounded by bytes, and reloads on demand.

A bot in many servers can't keep every server's model resident (a 22,500-row,
150-class model is ~25 MB pickled and more in memory), so the cache holds the
least recently used models up to ``max_bytes`` (estimated from the loaded
objects' arrays and vocabularies) and drops the oldest beyond it. A dropped
model is reloaded from disk on its next message; callers run this in a
thread, so a reload never blocks the event loop, and loads for different
scopes don't wait for each other.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IncompatibleModelError
from .modelstore import latest_version, load_model
from .types import Prediction

if TYPE_CHECKING:  # scikit-learn loads with the first model, not at start-up
    from .learner import TextClassifier

DEFAULT_CACHE_BYTES = 200 * 1024 * 1024
# RSS growth per loaded model / estimate_bytes, measured on 3,000-row TF-IDF models
# (allocator overhead the object walk can't see).
MEMORY_FACTOR = 1.2


def _load_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


def release_freed_memory() -> None:
    """Hand memory freed by evicted models back to the OS.

    Without this glibc keeps the freed pages of an evicted model's many small
    objects, and resident memory drifts above the cache bound (measured: +30 MB
    after 150 evictions of 4 MB models).
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


@dataclass(slots=True)
class LoadedModel:
    path: Path
    model: TextClassifier
    meta: dict[str, Any]
    size: int = 0  # estimated resident bytes

    def predict(self, text: str, floor: float = 0.0) -> Prediction:
        d = self.model.decision_one(text, floor)
        label = d.labels[0]
        reply = self.meta.get("responses", {}).get(label) or label
        threshold = getattr(self.model, "threshold", None)
        return Prediction(label=label, confidence=float(d.probability[0]), reply=reply, abstain=bool(d.abstain[0]),
                          threshold=threshold, certainty=float(d.certainty[0]))


def estimate_bytes(obj: Any) -> int:
    """Approximate resident size of a loaded model: arrays, dicts, strings, objects.

    Walks the object graph once (ids de-duplicated). numpy arrays and scipy
    sparse matrices count their buffers; everything else ``sys.getsizeof``.
    Good to ~10 % against RSS growth for the TF-IDF models (bench/model_memory.py).
    """
    import numpy as np

    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            total += o.nbytes + 112
            if o.dtype == object:
                stack.extend(o.ravel().tolist())
            continue
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif isinstance(o, (str, bytes, int, float, bool, type(None))):
            continue
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
        if hasattr(o, "__slots__"):
            stack.extend(getattr(o, s) for s in o.__slots__ if hasattr(o, s))
    return total


class ModelCache:
    """Blocking; safe to call from several threads."""

    def __init__(self, models_dir: Path, max_bytes: int = DEFAULT_CACHE_BYTES, floor: float = 0.0) -> None:
        self.models_dir = Path(models_dir)
        self.max_bytes = max_bytes
        self.floor = floor  # CONFIDENCE_THRESHOLD: see hybrid.decide_rows
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # oldest use first
        self._refused: dict[str, tuple[Path, IncompatibleModelError]] = {}
        self._lock = threading.Lock()  # guards the dicts; never held while loading
        self._scope_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self.loads = 0  # models read from disk (for tests and the benchmark)
        self.evictions = 0

    @property
    def resident_bytes(self) -> int:
        with self._lock:
            return sum(m.size for m in self._loaded.values())

    def cached_scopes(self) -> list[str]:
        """Scopes in memory, least recently used first."""
        with self._lock:
            return list(self._loaded)

    def _hit(self, scope: str, path: Path) -> LoadedModel | None:
        with self._lock:
            hit = self._loaded.get(scope)
            if hit is not None and hit.path == path:
                self._loaded.move_to_end(scope)
                return hit
            refused = self._refused.get(scope)
        if refused is not None and refused[0] == path:
            raise refused[1]
        return None

    def get(self, scope: str) -> LoadedModel | None:
        """Newest model for ``scope``; None if there is none yet.

        A refused (incompatible) file is remembered so chat traffic doesn't
        re-read it on every message; the error is re-raised each time.
        """
        path = latest_version(self.models_dir, scope)
        if path is None:
            return None
        hit = self._hit(scope, path)
        if hit is not None:
            return hit
        with self._lock:
            scope_lock = self._scope_locks[scope]
        with scope_lock:  # one load per scope at a time; other scopes go on
            hit = self._hit(scope, path)
            if hit is not None:
                return hit
            try:
                model, meta = load_model(path)
            except IncompatibleModelError as exc:
                with self._lock:
                    self._refused[scope] = (path, exc)
                raise
            except FileNotFoundError:
                with self._lock:
                    return self._loaded.get(scope)  # pruned under us; keep what we have
            loaded = LoadedModel(path, model, meta, int(estimate_bytes(model) * MEMORY_FACTOR))
            with self._lock:
                self.loads += 1
                replaced = self._loaded.pop(scope, None)
                self._loaded[scope] = loaded
                self._refused.pop(scope, None)
                evicted = self._evict()
            if evicted or replaced is not None:
                del evicted, replaced
                gc.collect(0)
                release_freed_memory()
            return loaded

    def _evict(self) -> list[LoadedModel]:
        """Drop least recently used models beyond the bound (the newest always stays)."""
        evicted = []
        total = sum(m.size for m in self._loaded.values())
        while total > self.max_bytes and len(self._loaded) > 1:
            _, old = self._loaded.popitem(last=False)
            total -= old.size
            evicted.append(old)
            self.evictions += 1
        return evicted

    def predict(self, scope: str, text: str) -> Prediction | None:
        loaded = self.get(scope)
        return loaded.predict(text, self.floor) if loaded is not None else None

    def forget(self, scope: str) -> None:
        with self._lock:
            self._loaded.pop(scope, None)
            self._refused.pop(scope, None)
