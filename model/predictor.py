"""Keeps each scope's newest model in memory and reloads when a newer one lands."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import IncompatibleModelError
from .modelstore import latest_version, load_model
from .types import Prediction

if TYPE_CHECKING:  # scikit-learn loads with the first model, not at start-up
    from .learner import TextClassifier


@dataclass(slots=True)
class LoadedModel:
    path: Path
    model: TextClassifier
    meta: dict[str, Any]

    def predict(self, text: str) -> Prediction:
        label, confidence = self.model.predict_one(text)
        reply = self.meta.get("responses", {}).get(label) or label
        return Prediction(label=label, confidence=confidence, reply=reply)


class ModelCache:
    """Blocking; safe to call from several threads."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self._loaded: dict[str, LoadedModel] = {}
        self._refused: dict[str, tuple[Path, IncompatibleModelError]] = {}
        self._lock = threading.Lock()

    def get(self, scope: str) -> LoadedModel | None:
        """Newest model for ``scope``; None if there is none yet.

        A refused (incompatible) file is remembered so chat traffic doesn't
        re-read it on every message; the error is re-raised each time.
        """
        path = latest_version(self.models_dir, scope)
        if path is None:
            return None
        with self._lock:
            hit = self._loaded.get(scope)
            if hit is not None and hit.path == path:
                return hit
            refused = self._refused.get(scope)
            if refused is not None and refused[0] == path:
                raise refused[1]
            try:
                model, meta = load_model(path)
            except IncompatibleModelError as exc:
                self._refused[scope] = (path, exc)
                raise
            except FileNotFoundError:
                return self._loaded.get(scope)  # pruned under us; keep what we have
            loaded = LoadedModel(path, model, meta)
            self._loaded[scope] = loaded
            self._refused.pop(scope, None)
            return loaded

    def predict(self, scope: str, text: str) -> Prediction | None:
        loaded = self.get(scope)
        return loaded.predict(text) if loaded is not None else None

    def forget(self, scope: str) -> None:
        with self._lock:
            self._loaded.pop(scope, None)
            self._refused.pop(scope, None)
