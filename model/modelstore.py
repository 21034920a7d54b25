"""Versioned model files, written atomically, with a readable metadata header.

File layout: MAGIC, 8-byte big-endian header length, UTF-8 JSON metadata,
then the pickle. The header can be checked for library versions without
unpickling, so a model from an incompatible sklearn is refused cleanly.
"""

from __future__ import annotations

import json
import pickle
import platform
import struct
import time
from pathlib import Path
from typing import Any


from errors import Phrase
from storage.atomic import TMP_PREFIX, atomic_write_bytes
from .errors import IncompatibleModelError
from .names import check_scope

MAGIC = b"DISCORD-BOT-MODEL/1\n"
SUFFIX = ".model"
_DAMAGED = Phrase("The saved model file is damaged. Please retrain it with `!train`.")


def library_versions() -> dict[str, str]:
    import numpy  # imported here: the bot starts without loading scikit-learn
    import sklearn

    return {"sklearn": sklearn.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def scope_dir(models_dir: Path, scope: str) -> Path:
    return Path(models_dir) / check_scope(scope)


def list_versions(models_dir: Path, scope: str) -> list[Path]:
    """Complete model files for a scope, oldest first (temp files ignored)."""
    folder = scope_dir(models_dir, scope)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith("model-") and p.name.endswith(SUFFIX))


def latest_version(models_dir: Path, scope: str) -> Path | None:
    versions = list_versions(models_dir, scope)
    return versions[-1] if versions else None


def encode_model(model: Any, meta: dict[str, Any]) -> bytes:
    header = json.dumps({**meta, **library_versions()}, sort_keys=True).encode("utf-8")
    return MAGIC + struct.pack(">Q", len(header)) + header + pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def write_model(models_dir: Path, scope: str, model: Any, meta: dict[str, Any], keep: int = 3) -> Path:
    """Atomically add a new version and prune the oldest beyond ``keep``."""
    folder = scope_dir(models_dir, scope)
    stamp = time.time_ns()
    name = f"model-{stamp:020d}-{meta.get('job_id', 'manual')}{SUFFIX}"
    path = folder / name
    atomic_write_bytes(path, encode_model(model, {**meta, "created_ns": stamp}))
    for old in list_versions(models_dir, scope)[: -max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temp_files(models_dir: Path, scope: str) -> int:
    """Delete leftovers of killed writers; only safe while no writer runs."""
    folder = scope_dir(models_dir, scope)
    removed = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(TMP_PREFIX):
                p.unlink(missing_ok=True)
                removed += 1
    return removed


def _read_header(fh) -> dict[str, Any]:
    if fh.read(len(MAGIC)) != MAGIC:
        raise IncompatibleModelError(Phrase("The saved model isn't in a format I understand. Please retrain it with "
                                            "`!train`."))
    raw_len = fh.read(8)
    if len(raw_len) != 8:
        raise IncompatibleModelError(_DAMAGED)
    (length,) = struct.unpack(">Q", raw_len)
    if length > 50_000_000:
        raise IncompatibleModelError(_DAMAGED)
    try:
        meta = json.loads(fh.read(length).decode("utf-8"))
    except ValueError:
        raise IncompatibleModelError(_DAMAGED) from None
    if not isinstance(meta, dict):
        raise IncompatibleModelError(_DAMAGED)
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    """Metadata only; cheap, no unpickling."""
    with open(path, "rb") as fh:
        return _read_header(fh)


def check_compatible(meta: dict[str, Any]) -> None:
    """Refuse models pickled by a different scikit-learn major.minor."""
    import sklearn

    saved = str(meta.get("sklearn", "unknown"))
    if _major_minor(saved) != _major_minor(sklearn.__version__):
        raise IncompatibleModelError(Phrase(
            "The saved model was trained with scikit-learn {saved}, but the bot now runs {running}. Please retrain it "
            "with `!train`.", saved=saved, running=sklearn.__version__))


def load_model(path: Path) -> tuple[Any, dict[str, Any]]:
    """Model and metadata, or IncompatibleModelError with a user message."""
    from .hybrid import HybridClassifier  # the classes must be importable to unpickle
    from .learner import TextClassifier

    with open(path, "rb") as fh:
        meta = _read_header(fh)
        check_compatible(meta)
        try:
            model = pickle.load(fh)
        except Exception as exc:  # unpickling can raise nearly anything
            raise IncompatibleModelError(
                Phrase("I couldn't load the saved model. Please retrain it with `!train`."),
                detail=f"unpickle failed: {exc!r}") from None
    if not isinstance(model, (TextClassifier, HybridClassifier)):
        raise IncompatibleModelError(Phrase("The saved model isn't one I can use. Please retrain it with `!train`."))
    return model, meta
