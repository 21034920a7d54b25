"""Sentence embeddings of a scope's dataset rows, cached on disk by content.

Embedding is the slow part of training (~500 rows/s on 2 cores), so
retraining after a few corrections must embed only the new rows. One file
per scope (``<models_dir>/<scope>/embeddings.cache``, next to its models):
SHA-1 of each text and its vector as float16, and the encoder's model_id
(vectors of another model or arithmetic are dropped, never mixed: a scope
that moves from the English to the multilingual encoder starts afresh), written
atomically by the training worker (one writer per scope, since one job runs
per scope).
Bounded by bytes: the rows of the latest training come first, then older
ones, most recently used first, until the bound.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from storage.atomic import atomic_write_bytes

from .names import check_scope

FILENAME = "embeddings.cache"


def _row_bytes(dimension: int) -> int:
    return 20 + 2 * dimension  # digest + float16 vector


def text_digest(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


def _key(digest: bytes) -> bytes:
    """A digest as numpy's "S20" hands it back: without trailing NUL bytes.

    Compared in full, the 1 digest in 256 that ends in a zero byte never
    matched its stored copy, and that row was embedded again at every training.
    """
    return digest.rstrip(b"\0")


def cache_path(models_dir: Path, scope: str) -> Path:
    return Path(models_dir) / check_scope(scope) / FILENAME


def _read(path: Path, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
            made_by = str(data["model"]) if "model" in data.files else ""
        if keys.dtype != np.dtype("S20") or vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError("bad shapes")
        if made_by != model_id:
            return _empty()
        return keys, vectors
    except (OSError, ValueError, KeyError):  # missing or damaged: start afresh
        return _empty()


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, dtype="S20"), np.zeros((0, 0), dtype=np.float16)


def embed_with_cache(
    texts: list[str],
    encode: Callable[[list[str]], np.ndarray],
    path: Path | None,
    max_bytes: int,
    model_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` (float32) and how many had to be computed.

    With ``path`` None (or ``max_bytes`` 0) nothing is read or written.
    ``progress(done, total)`` is called between chunks of the rows to embed
    (long reviews embed at ~90 rows/s, so a status must hear more than once).
    """
    digests = [_key(text_digest(t)) for t in texts]
    use_disk = path is not None and max_bytes > 0
    keys, vectors = _read(path, model_id) if use_disk else _empty()
    index = {k: i for i, k in enumerate(keys.tolist())}
    missing = [i for i, d in enumerate(digests) if d not in index]
    fresh = _encode_in_chunks([texts[i] for i in missing], encode, progress) if missing else None
    dim = fresh.shape[1] if fresh is not None else (vectors.shape[1] if len(vectors) else 384)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, d in enumerate(digests):
        j = index.get(d)
        if j is not None:
            out[i] = vectors[j]
    if fresh is not None:
        out[missing] = fresh
    if use_disk:
        _write(path, digests, out, keys, vectors, max_bytes, model_id)
    return out, len(missing)


# At least four of the encoder's batches of 32, so it still runs two at a time (model/encoder.py).
FIRST_CHUNK = 128
CHUNK_SECONDS = 1.5
# The encoder reads at most 128 tokens (~700 characters) of a text: its cost grows with length up to that.
_COST_CHARS = 700


def _encode_in_chunks(texts: list[str], encode: Callable[[list[str]], np.ndarray],
                      progress: Callable[[int, int], None] | None) -> np.ndarray:
    """``encode(texts)`` in chunks of about CHUNK_SECONDS each, calling ``progress`` between them.

    Rows go by length (as the encoder orders its batches), so chunking costs
    no extra padding; each chunk is sized by the measured speed in characters
    read, since later chunks hold longer texts.
    """
    if progress is None or len(texts) <= FIRST_CHUNK:
        return encode(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    cost = [min(len(texts[i]), _COST_CHARS) + 20 for i in order]  # + a text's fixed overhead
    out: np.ndarray | None = None
    done, size = 0, FIRST_CHUNK
    while done < len(order):
        idx = order[done : done + size]
        started = time.monotonic()
        vectors = encode([texts[i] for i in idx])
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[idx] = vectors
        chars_per_second = sum(cost[done : done + len(idx)]) / max(1e-6, time.monotonic() - started)
        done += len(idx)
        budget, size = chars_per_second * CHUNK_SECONDS, 0
        while done + size < len(order) and budget > 0:
            budget -= cost[done + size]
            size += 1
        size = max(size, FIRST_CHUNK)
        progress(done, len(texts))
    return out


def _write(path: Path, digests: list[bytes], current: np.ndarray, keys: np.ndarray, vectors: np.ndarray,
           max_bytes: int, model_id: str) -> None:
    """Current rows first, then older cached rows not in use now, up to ``max_bytes``."""
    limit = max(0, max_bytes // _row_bytes(current.shape[1]))
    seen: dict[bytes, int] = {}
    for i, d in enumerate(digests):
        seen.setdefault(d, i)
    new_keys = list(seen)[:limit]
    new_vecs = [current[seen[d]] for d in new_keys]
    if len(new_keys) < limit and len(keys) and vectors.shape[1] == current.shape[1]:
        for k, v in zip(keys.tolist(), vectors):
            if len(new_keys) >= limit:
                break
            if k not in seen:
                new_keys.append(k)
                new_vecs.append(v)
    buf = io.BytesIO()
    np.savez(buf, model=np.array(model_id), keys=np.array(new_keys, dtype="S20"),
             vectors=np.array(new_vecs, dtype=np.float16).reshape(len(new_keys), current.shape[1]))
    atomic_write_bytes(path, buf.getvalue())
