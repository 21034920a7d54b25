"""An int8 copy of a float16 CTranslate2 Whisper model, so loading it makes no float copies.

CTranslate2 quantizes a float16 model to int8 while loading it (``compute_type="int8"``):
it holds the whole float16 file plus a float32 copy of the largest matrix at once, so
loading tiny.en (75 MB on disk, ~60 MB loaded) peaks ~110 MB above where it settles,
which made the bot's resident peak.  The weights are therefore quantized once, the way
CTranslate2's own converter does (``ModelSpec._quantize``: per-row absmax scale, int8
weights plus a float32 ``weight_scale``; every other float variable as float32, i.e.
``int8_float32``), into a cache folder, and loaded from there.  The conversion runs in a
child process (``python -m audio.whisper_int8 SRC DST``) so its own float copies never
touch the bot's memory; any failure leaves the original model in use.

Reads and writes CTranslate2's model.bin format version 6: a header (version, spec name,
revision), the variables (name, shape, type, bytes), then aliases.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

log = logging.getLogger("audio.stt")

_FORMAT_VERSION = 6
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's DataType order
_CONVERT_TIMEOUT = 300.0
_COPIED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


def quantized_model_dir(source: str | Path, cache_dir: str | Path) -> Path:
    """The int8 copy of ``source`` in ``cache_dir``, made now (in a child process) if missing.

    Raises OSError or RuntimeError when it can't be made; the caller then loads ``source``."""
    source = Path(source)
    model = source / "model.bin"
    stat = model.stat()
    key = hashlib.sha256(f"{model.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = Path(cache_dir) / f"{source.name}-int8-{key}"
    if (target / "model.bin").is_file():
        return target
    with folder_lock(cache_dir):
        if not (target / "model.bin").is_file():
            _convert_in_child(source, target)
    return target


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (made if missing) while making something in it.

    Several processes may share the cache (two bots, shards, test workers): one makes the
    copy, the others wait for it and then find it, instead of each making their own.  The
    lock is on the folder itself, so nothing is left behind in it."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def publish(staging: Path, target: Path) -> None:
    """Move a finished ``staging`` folder to ``target`` atomically; when another process made
    ``target`` first, keep theirs and drop ``staging``."""
    try:
        os.replace(staging, target)
    except OSError:
        if not (target / "model.bin").is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)  # another process made the same copy first


def _convert_in_child(source: Path, target: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "audio.whisper_int8", str(source), str(target)],
                            capture_output=True, text=True, timeout=_CONVERT_TIMEOUT, check=False,
                            cwd=Path(__file__).resolve().parents[1], stdin=subprocess.DEVNULL,
                            env={k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")})
    if result.returncode != 0 or not (target / "model.bin").is_file():
        raise RuntimeError(f"int8 conversion failed ({result.returncode}): {result.stderr.strip()[-500:]}")


def convert(source: Path, target: Path) -> None:
    """Write the int8 copy of ``source`` to ``target`` (a new folder, created atomically)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with open(source / "model.bin", "rb") as reader, open(staging / "model.bin", "wb") as writer:
            _quantize_model(reader, writer)
        for name in _COPIED_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, staging / name)
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _quantize_model(reader: BinaryIO, writer: BinaryIO) -> None:
    version = _read(reader, "I")
    if version != _FORMAT_VERSION:
        raise ValueError(f"model.bin format version {version}, expected {_FORMAT_VERSION}")
    name, revision = _read_string(reader), _read(reader, "I")
    variables = {}
    for _ in range(_read(reader, "I")):
        var_name = _read_string(reader)
        shape = [_read(reader, "I") for _ in range(_read(reader, "B"))]
        dtype = _DTYPES[_read(reader, "B")]
        data = reader.read(_read(reader, "I"))
        variables[var_name] = (shape, dtype, data)
    aliases = [(_read_string(reader), _read_string(reader)) for _ in range(_read(reader, "I"))]
    if reader.read(1):
        raise ValueError("unexpected data after the aliases")

    out: dict[str, np.ndarray | tuple[list[int], str, bytes]] = {}
    for var_name, (shape, dtype, data) in variables.items():
        if dtype not in ("float16", "float32") or not shape:
            out[var_name] = (shape, dtype, data)  # flags, ids, already quantized: as they are
            continue
        value = np.frombuffer(data, dtype=dtype).astype(np.float32).reshape(shape)
        if var_name.rsplit("/", 1)[-1] == "weight":
            weights, scale = _quantize_rows(value)
            out[var_name], out[f"{var_name}_scale"] = weights, scale
        else:
            out[var_name] = value
    quantized = {n for n in variables if f"{n}_scale" in out}
    aliases += [(f"{alias}_scale", f"{target}_scale") for alias, target in aliases if target in quantized]

    _write(writer, "I", version)
    _write_string(writer, name)
    _write(writer, "I", revision)
    _write(writer, "I", len(out))
    for var_name, value in out.items():
        shape, dtype, data = value if isinstance(value, tuple) else (list(value.shape), value.dtype.name,
                                                                      value.tobytes())
        _write_string(writer, var_name)
        _write(writer, "B", len(shape))
        for dim in shape:
            _write(writer, "I", dim)
        _write(writer, "B", _DTYPES.index(dtype))
        _write(writer, "I", len(data))
        writer.write(data)
    _write(writer, "I", len(aliases))
    for alias, target in aliases:
        _write_string(writer, alias)
        _write_string(writer, target)


def _quantize_rows(value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTranslate2's int8 scheme: one scale per output row (conv kernels flattened per row)."""
    rows = value.reshape(value.shape[0], -1)
    amax = np.amax(np.absolute(rows), axis=1)
    amax[amax == 0] = 127.0
    amax = np.maximum(amax, np.float32(127) / np.finfo(np.float32).max)
    scale = (127.0 / amax).astype(np.float32)
    weights = np.rint(rows * np.expand_dims(scale, 1)).astype(np.int8).reshape(value.shape)
    return weights, scale


def _read(reader: BinaryIO, fmt: str) -> int:
    size = struct.calcsize(fmt)
    data = reader.read(size)
    if len(data) != size:
        raise ValueError("truncated model.bin")
    return struct.unpack(fmt, data)[0]


def _read_string(reader: BinaryIO) -> str:
    length = _read(reader, "H")
    return reader.read(length)[:-1].decode("utf-8")


def _write(writer: BinaryIO, fmt: str, value: int) -> None:
    writer.write(struct.pack(fmt, value))


def _write_string(writer: BinaryIO, text: str) -> None:
    data = text.encode("utf-8")
    writer.write(struct.pack("H", len(data) + 1) + data + b"\0")


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
