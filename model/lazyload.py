"""What both sentence encoders share (encoder.py, multilingual.py): loading once, on first use.

- ``LazyEncoder``: the model loads on the first ``encode`` (or ``model_id``), once, under a
  lock, so any number of threads may be first; a subclass says how (``_open``) and how to fill
  the output rows (``_encode_into``).
- ``made_once``: a file derived from a package's weights (the English encoder's int8 copy, the
  multilingual table as .npy), written by a child process ``python -m <module> ... TARGET``
  into a temporary name and moved into place, so a crash or a second process never leaves a
  half-written file; None when it can't be made (the caller then loads the package's way).
- ``side_by_side``: groups of rows encoded in threads (the runtimes release the GIL).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .childenv import child_environment

if TYPE_CHECKING:  # numpy loads with the encoder, not with the bot
    import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# Batches run this many at a time, one onnxruntime thread each: 1.5-1.85x one thread, better
# than one run with two intra-op threads. Only big inputs (training) get here; chat is one text.
PARALLEL_BATCHES = max(1, min(2, os.cpu_count() or 1))


def package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


class LazyEncoder:
    """Text -> unit-length vectors of ``dimension`` floats. Thread-safe; loads on first use."""

    name = ""
    dimension = 0

    def __init__(self, model_id: str) -> None:
        self._model: Any = None  # what _open returned: the loaded model
        self._model_id = model_id  # _open may refine it (which weights and arithmetic)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model_id(self) -> str:
        """Which weights and arithmetic made the vectors (embedding caches are kept per model_id)."""
        self._ensure()
        return self._model_id

    def _ensure(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._open()
        return self._model

    def _open(self) -> Any:
        """Load the model (called once, under the lock); may set ``_model_id``."""
        raise NotImplementedError

    def _encode_into(self, model: Any, texts: list[str], out: np.ndarray) -> None:
        """Fill ``out`` (len(texts) rows) with the texts' vectors."""
        raise NotImplementedError

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32."""
        import numpy as np

        model = self._ensure()
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if texts:
            self._encode_into(model, texts, out)
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def made_once(target: Path, module: str, args: Sequence[str], timeout: float) -> Path | None:
    """``target`` if it is there, else made by ``python -m module *args TMP`` and moved into place."""
    if target.is_file():
        return target
    tmp = target.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}{target.suffix}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", module, *args, str(tmp)], cwd=str(ROOT),
                       env=child_environment(ROOT), capture_output=True, timeout=timeout, check=True)
        os.replace(tmp, target)
        return target
    except (OSError, subprocess.SubprocessError):
        tmp.unlink(missing_ok=True)
        return None


def side_by_side(run: Callable[[list[int]], None], groups: list[list[int]], workers: int, name: str) -> None:
    """``run`` each group of row indices, ``workers`` at a time, in threads named ``name``."""
    with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
        list(pool.map(run, groups))
